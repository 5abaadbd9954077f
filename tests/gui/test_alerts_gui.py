"""Alerts in the real main window: a risk breach of a paper session against the loopback exchange
emulator shows a tray message (through QSystemTrayIcon.showMessage) and sounds, and is journaled;
Settings › Alerts stores the Telegram bot token in the keyring (never in the settings file), and its
test alert reaches a loopback webhook and a loopback Telegram Bot API."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSystemTrayIcon

from app.controllers.alerts import TOKEN_NAME
from engine.services.live.alerts import Alert, AlertKind
from tests.gui.emulator_support import run_on_loop
from tests.gui.test_live_panel import live_window, start  # noqa: F401 - the fixture and the helper
from tests.integration.alert_receiver import TOKEN, Receiver

pytest_plugins = ["tests.gui.emulator_support"]


def test_a_breach_shows_a_tray_message_sounds_and_is_journaled(qtbot, live_window, monkeypatch):  # noqa: F811
    window, panel = live_window, live_window.live_panel
    notifier = window.alert_notifier
    shown: list[tuple[str, str, QSystemTrayIcon.MessageIcon]] = []
    real = notifier.tray.showMessage

    def spy(title, text, icon, ms):                  # records, then calls Qt's real API
        shown.append((title, text, icon))
        real(title, text, icon, ms)

    monkeypatch.setattr(notifier.tray, "showMessage", spy)
    panel.request_defaults = {**panel.request_defaults, "risk_overrides": {"max_data_age_seconds": 1e-6}}
    rid = start(qtbot, window)
    qtbot.waitUntil(lambda: any(t.startswith("Risk limit breached") for t, _, _ in shown), timeout=10000)
    title, text, icon = next(m for m in shown if m[0].startswith("Risk limit breached"))
    assert icon is QSystemTrayIcon.MessageIcon.Critical and "max_data_age_seconds" in text and rid in text
    assert notifier.sounds >= 1
    assert "ALERT" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: any(t.startswith("Emergency stop") for t, _, _ in shown), timeout=5000)
    journal = window.live_controller.service._journal("testnet")
    assert journal.flush(5.0)                            # journal writes are queued off the trading path
    alerts = [json.loads(d) for _at, sid, _v, type_, d in journal.events(2000) if type_ == "alert" and sid == rid]
    assert {"risk_breach", "emergency_stop"} <= {a["kind"] for a in alerts}

    # muted: the next alert shows but makes no sound
    notifier.sound = False
    sounds = notifier.sounds
    window.alerts.bus.raise_alert(Alert(AlertKind.ORDER_FAILED, "muted test", session=rid, venue="okx"))
    qtbot.waitUntil(lambda: any("muted test" in t for _, t, _ in shown), timeout=3000)
    assert notifier.sounds == sounds


def test_alert_settings_store_the_token_in_the_keyring_and_send_a_test(qtbot, window, state_dir):
    receiver = run_on_loop(qtbot, Receiver().start())
    try:
        dialog = window.open_alert_settings()
        qtbot.waitUntil(lambda: dialog.token_state.text() == "no token stored", timeout=3000)
        dialog.token_edit.setText(TOKEN)
        qtbot.mouseClick(dialog.save_token_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.token_state.text() == "a token is stored in the OS keyring", timeout=3000)
        assert dialog.token_edit.text() == "", "a stored token is never shown again"
        assert window.services.venues.store.get_app_secret(TOKEN_NAME).reveal() == TOKEN
        dialog.webhook_edit.setText(receiver.url + "/hook")
        dialog.chat_edit.setText("-100555")
        dialog.api_edit.setText(receiver.url)
        dialog.kind_boxes[AlertKind.VENUE_TIMEOUT].setChecked(False)
        with qtbot.waitSignal(dialog.applied, timeout=5000) as applied:
            qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        assert applied.args[0].channels == ["webhook", "telegram"] and not applied.args[0].problems
        assert AlertKind.VENUE_TIMEOUT not in window.alerts.bus.policy.enabled
        with qtbot.waitSignal(dialog.test_finished, timeout=10000) as finished:
            qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
        assert "webhook OK" in finished.args[0] and "telegram OK" in finished.args[0], finished.args[0]
        assert {p for p, _ in receiver.posts} == {"/hook", "sendMessage"}
        assert next(b for p, b in receiver.posts if p == "sendMessage")["chat_id"] == "-100555"
        ini = (state_dir / "workstation.ini").read_text()
        assert receiver.url in ini and "-100555" in ini and TOKEN not in ini
    finally:
        run_on_loop(qtbot, receiver.stop())
