"""Credentials dialog: a round trip through a keyring (the real OS keyring inside tests/run.sh's
throwaway D-Bus session, an in-memory keyring elsewhere), masked inputs, a stored value never shown
again, Test connection against the emulator, Delete only after a confirmation."""
from __future__ import annotations

import logging
import uuid

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QMessageBox

from app.controllers.venues import VenueAccess
from app.panels.credentials_dialog import STORED, CredentialsDialog
from tests.gui.emulator_support import CEX, fast_checks, os_keyring_or_none
from tests.integration.emulator import TEST_KEYS
from venues.checks import Status
from venues.credentials import CredentialStore

# the emulator and keyring-store fixtures (run on the qasync loop)
pytest_plugins = ["tests.gui.emulator_support"]


@pytest.fixture
def store(memory_store) -> CredentialStore:
    """The OS keyring when the suite runs in its throwaway keyring session, else the in-memory one."""
    real = os_keyring_or_none()
    chosen = real if real is not None else memory_store
    yield chosen
    for env in ("testnet", "production"):
        for venue in VenueAccess.credential_venues():
            chosen.delete(env, venue)


@pytest.fixture
def dialog(qtbot, store, emulator):
    access = VenueAccess(store=store, url_overrides={v: emulator.base_url(v) for v in CEX},
                         check_settings=fast_checks())
    dlg = CredentialsDialog(access, environment="testnet", venue="okx", mode="eth_basis")
    qtbot.addWidget(dlg)
    dlg.open()
    qtbot.waitExposed(dlg)
    qtbot.waitUntil(lambda: not dlg.busy, timeout=5000)
    return dlg


def visible_text(widget) -> str:
    """Everything the dialog shows: labels, inputs, result table cells and tooltips."""
    parts = [w.text() for w in widget.findChildren(QLabel)] + [w.text() for w in widget.findChildren(QLineEdit)]
    parts += [w.placeholderText() for w in widget.findChildren(QLineEdit)]
    model = widget.results
    for row in range(model.rowCount()):
        for column in range(model.columnCount()):
            index = model.index(row, column)
            parts += [str(index.data()), str(index.data(Qt.ItemDataRole.ToolTipRole))]
    return "\n".join(parts)


def save(qtbot, dialog, values: dict[str, str]) -> list[str]:
    for field, value in values.items():
        qtbot.keyClicks(dialog.edits[field], value)
    with qtbot.waitSignal(dialog.saved, timeout=5000) as saved:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    return saved.args[2]


def test_fields_per_venue_are_masked_and_okx_alone_has_a_passphrase():
    assert VenueAccess.venue_fields("okx") == ("api_key", "secret", "passphrase")
    assert VenueAccess.venue_fields("binance") == ("api_key", "secret")
    assert VenueAccess.venue_fields("alchemy") == ("rpc_url", "wallet_address", "private_key", "executor_address")
    assert set(VenueAccess.credential_venues()) == {"binance", "bybit", "okx", "alchemy"}


def test_round_trip_save_test_delete_never_shows_a_secret(qtbot, dialog, store, caplog):
    caplog.set_level(logging.DEBUG)
    keys = TEST_KEYS["okx"]
    assert all(dialog.edits[f].echoMode() == QLineEdit.EchoMode.Password for f in ("api_key", "secret", "passphrase"))
    assert dialog.stored == []

    stored = save(qtbot, dialog, {"api_key": keys.api_key, "secret": keys.secret, "passphrase": keys.passphrase})
    assert stored == ["api_key", "passphrase", "secret"]
    # in the keyring (a fresh store reads it back: for the OS keyring, another process would too) ...
    fresh = CredentialStore(store._backend) if store._backend is not None else CredentialStore()
    assert fresh.load("testnet", "okx").reveal("secret") == keys.secret
    # ... and gone from the dialog: inputs cleared, only "stored" shown
    assert all(e.text() == "" for e in dialog.edits.values())
    assert all(dialog.states[f].text() == STORED for f in stored)
    assert "stored — type to replace" in dialog.edits["secret"].placeholderText()

    # a new dialog on the same venue shows which fields exist, never their values
    again = CredentialsDialog(dialog.access, environment="testnet", venue="okx")
    qtbot.addWidget(again)
    again.open()
    qtbot.waitUntil(lambda: again.stored == ["api_key", "passphrase", "secret"], timeout=5000)
    assert all(e.text() == "" for e in again.edits.values())
    again.close()

    with qtbot.waitSignal(dialog.test_finished, timeout=15000) as tested:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    results = tested.args[0]
    assert {r.venue for r in results} == {"okx"}
    assert {r.check: r.status for r in results}["account"] is Status.OK
    assert all(r.status is Status.OK for r in results)
    assert "every check passed" in dialog.message.text()

    shown = visible_text(dialog)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (keys.api_key, keys.secret, keys.passphrase):
        assert secret not in shown
        assert secret not in logged

    # Delete asks first; Cancel keeps everything
    box = dialog.confirm_delete()
    assert isinstance(box, QMessageBox) and box.isVisible() and "okx (testnet)" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=2000)
    assert not dialog.busy and store.list_fields("testnet", "okx") == ["api_key", "passphrase", "secret"]

    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    box = dialog.confirm_box
    with qtbot.waitSignal(dialog.deleted, timeout=5000) as deleted:
        box.button(QMessageBox.StandardButton.Yes).click()
    assert sorted(deleted.args[2]) == ["api_key", "passphrase", "secret"]
    assert store.list_fields("testnet", "okx") == [] and store.get("testnet", "okx", "secret") is None
    assert all(dialog.states[f].text() == "not set" for f in dialog.edits)


def test_wrong_keys_fail_the_test_with_a_hint_and_bad_input_names_the_field_only(qtbot, dialog, store):
    bogus = f"wrong-secret-{uuid.uuid4().hex}"
    save(qtbot, dialog, {"api_key": TEST_KEYS["okx"].api_key, "secret": bogus,
                         "passphrase": TEST_KEYS["okx"].passphrase})
    with qtbot.waitSignal(dialog.test_finished, timeout=15000) as tested:
        dialog.test_connection()
    account = next(r for r in tested.args[0] if r.check == "account")
    assert account.status is Status.FAIL and "credentials set" in account.hint
    assert dialog.message.objectName() == "banner" and "failed" in dialog.message.text()
    assert bogus not in visible_text(dialog)

    # switching to the RPC venue: its own fields, wallet address checked before anything is written
    dialog.venue_combo.setCurrentIndex(list(VenueAccess.credential_venues()).index("alchemy"))
    qtbot.waitUntil(lambda: not dialog.busy, timeout=5000)
    assert list(dialog.edits) == ["rpc_url", "wallet_address", "private_key", "executor_address"]
    assert dialog.edits["wallet_address"].echoMode() == QLineEdit.EchoMode.Normal     # public
    assert dialog.edits["rpc_url"].echoMode() == QLineEdit.EchoMode.Password          # embeds the provider key
    qtbot.keyClicks(dialog.edits["wallet_address"], "0x1234-not-an-address")
    assert dialog.save() is None
    assert dialog.message.text() == "wallet_address must be 0x followed by 40 hex digits"
    assert store.list_fields("testnet", "alchemy") == []


def test_show_typed_values_toggle_never_reveals_stored_ones(qtbot, dialog):
    save(qtbot, dialog, {"api_key": TEST_KEYS["okx"].api_key})
    qtbot.keyClicks(dialog.edits["secret"], "typed-now")
    dialog.show_box.setChecked(True)
    assert dialog.edits["secret"].echoMode() == QLineEdit.EchoMode.Normal
    assert dialog.edits["secret"].text() == "typed-now" and dialog.edits["api_key"].text() == ""
    dialog.show_box.setChecked(False)
    assert dialog.edits["secret"].echoMode() == QLineEdit.EchoMode.Password
    dialog.close()
    assert dialog.edits["secret"].text() == "", "closing drops typed values"
