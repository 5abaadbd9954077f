"""Credentials dialog: set, test and delete a venue's keys in the OS keyring.

Per environment and venue it shows the fields that venue uses (API key, secret and — OKX only — the
passphrase for exchanges; RPC URL, wallet address and private key for the chain) as masked inputs,
and which of them are stored. A stored value is never read back into the dialog: the inputs start
empty and say "stored" (the keyring's field index is read, never the secrets), typing a value and
Save replaces it. Test connection runs that venue's pre-live checks with what is stored. Delete
removes every field of the venue in that environment, after a confirmation.

Keyring calls are synchronous (D-Bus): `VenueAccess` runs them in a thread; the confirmation uses
open() + finished, never exec() (a nested event loop inside a coroutine re-enters the qasync loop),
so nothing blocks the loop. Nothing here logs a value.
"""
from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.controllers.venues import CredentialProblem, VenueAccess
from app.tasks import spawn
from app.widgets.banner import show_banner
from app.widgets.check_results import CheckListModel
from engine.config import ConfigError
from engine.domain.readiness import CheckResult, CheckStatus

FIELD_LABELS = {
    "api_key": "API key",
    "secret": "API secret",
    "passphrase": "API passphrase",
    "rpc_url": "RPC URL",
    "wallet_address": "Wallet address",
    "private_key": "Private key",
    "executor_address": "Executor address",
}
FIELD_HELP = {
    "api_key": "The exchange API key (trading on, withdrawals off).",
    "secret": "The API secret shown once when the key was created.",
    "passphrase": "The passphrase chosen when the OKX key was created.",
    "rpc_url": "The provider URL including its key, e.g. https://eth-sepolia.g.alchemy.com/v2/KEY.",
    "wallet_address": "0x… address of the strategy wallet (public).",
    "private_key": "Signs the wallet's transactions; the checks and paper trading only read the chain.",
    "executor_address": "0x… address of the wallet's LeverageExecutor (public; `python main.py executor deploy` "
                        "stores it). Only atomic leverage needs it.",
}
STORED = "stored"
NOT_SET = "not set"


class CredentialsDialog(QDialog):
    #: (environment, venue, fields written)
    saved = Signal(str, str, object)
    #: (environment, venue, fields deleted)
    deleted = Signal(str, str, object)
    #: the stored field names of the shown venue/environment were (re)read
    fields_loaded = Signal(object)
    #: the results of a Test connection run (list[CheckResult])
    test_finished = Signal(object)
    #: a keyring operation failed (message, never a value)
    operation_failed = Signal(str)

    def __init__(self, access: VenueAccess, environment: str = "testnet", venue: str | None = None,
                 mode: str = "eth_basis", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Venue credentials")
        self.setModal(False)
        self.resize(760, 560)
        self.access = access
        self.mode = mode
        self.stored: list[str] = []
        self.edits: dict[str, QLineEdit] = {}
        self.states: dict[str, QLabel] = {}
        self.task: asyncio.Task | None = None
        self.confirm_box: QMessageBox | None = None
        self.results = CheckListModel(self)
        self._build()
        if environment in access.environments:
            self.env_combo.setCurrentIndex(access.environments.index(environment))
        venues = list(access.credential_venues())
        if venue is not None:
            if venue not in venues:
                raise ValueError(f"{venue} holds no credentials of its own; allowed: {', '.join(venues)}")
            self.venue_combo.setCurrentIndex(venues.index(venue))
        self.env_combo.currentIndexChanged.connect(self._target_changed)
        self.venue_combo.currentIndexChanged.connect(self._target_changed)
        self._rebuild_fields()

    # ---- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Environment"))
        self.env_combo = QComboBox(self)
        for env in self.access.environments:
            self.env_combo.addItem(env, env)
        top.addWidget(self.env_combo)
        top.addWidget(QLabel("Venue"))
        self.venue_combo = QComboBox(self)
        for venue in self.access.credential_venues():
            self.venue_combo.addItem(self.access.display_name(venue), venue)
        top.addWidget(self.venue_combo)
        top.addStretch(1)
        layout.addLayout(top)

        note = QLabel("Values go to the OS keyring only (service basis-workstation/&lt;environment&gt;/&lt;venue&gt;). "
                      "A stored value is never shown again: leave a field empty to keep it, type to replace it.",
                      self)
        note.setObjectName("sectionHelp")
        note.setWordWrap(True)
        layout.addWidget(note)

        self.form_host = QWidget(self)
        self.form = QFormLayout(self.form_host)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        layout.addWidget(self.form_host)
        self.show_box = QCheckBox("Show what I type", self)
        self.show_box.setToolTip("Unmask the values typed here (stored values are never shown)")
        self.show_box.toggled.connect(self._set_echo)
        layout.addWidget(self.show_box)

        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save", self)
        self.save_button.setObjectName("primary")
        self.save_button.clicked.connect(self.save)
        self.test_button = QPushButton("Test connection", self)
        self.test_button.setToolTip("Run this venue's pre-live checks with the stored credentials")
        self.test_button.clicked.connect(self.test_connection)
        self.delete_button = QPushButton("Delete…", self)
        self.delete_button.setToolTip("Delete every stored field of this venue in this environment")
        self.delete_button.clicked.connect(self.confirm_delete)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        for b in (self.save_button, self.test_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        layout.addWidget(self.message)

        self.results_view = QTableView(self)
        self.results_view.setModel(self.results)
        self.results_view.verticalHeader().hide()
        self.results_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results_view.setWordWrap(True)
        header = self.results_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 170)
        header.resizeSection(1, 60)
        header.resizeSection(2, 70)
        header.setStretchLastSection(True)
        layout.addWidget(self.results_view, 1)

    def _rebuild_fields(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.edits, self.states = {}, {}
        for field in self.access.venue_fields(self.venue):
            edit = QLineEdit(self.form_host)
            edit.setObjectName(f"field_{field}")
            edit.setEchoMode(QLineEdit.EchoMode.Password if field in self.access.secret_fields and not self.show_box.isChecked()
                             else QLineEdit.EchoMode.Normal)
            edit.setToolTip(FIELD_HELP[field])
            edit.setPlaceholderText("…")
            state = QLabel(NOT_SET, self.form_host)
            state.setObjectName("dim")
            state.setMinimumWidth(60)
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(state)
            self.form.addRow(FIELD_LABELS[field], row)
            self.edits[field], self.states[field] = edit, state
        self.results.clear()
        self.refresh()

    def _set_echo(self, show: bool) -> None:
        for field, edit in self.edits.items():
            if field in self.access.secret_fields:
                edit.setEchoMode(QLineEdit.EchoMode.Normal if show else QLineEdit.EchoMode.Password)

    # ---- state --------------------------------------------------------------------------------
    @property
    def environment(self) -> str:
        return self.env_combo.currentData()

    @property
    def venue(self) -> str:
        return self.venue_combo.currentData()

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def _target_changed(self) -> None:
        if self.busy:
            self.task.cancel()
        self.task = None
        self._show_message("", None)
        self._rebuild_fields()

    def _set_busy(self, busy: bool) -> None:
        for b in (self.save_button, self.test_button, self.delete_button, self.env_combo, self.venue_combo):
            b.setEnabled(not busy)

    def _show_message(self, text: str, kind: str | None) -> None:
        if not text:
            self.message.hide()
            return
        show_banner(self.message, text, kind or "infoBanner")

    def _start(self, coro, name: str) -> asyncio.Task:
        if self.busy:
            coro.close()
            return self.task
        self._set_busy(True)
        self.task = spawn(self._guard(coro), name=name)
        return self.task

    async def _guard(self, coro) -> None:
        try:
            await coro
        except CredentialProblem as exc:          # messages and hints never contain a value
            self._show_message(exc.text(), "banner")
            self.operation_failed.emit(exc.message)
        finally:
            if self.task is None or self.task is asyncio.current_task():
                self._set_busy(False)

    # ---- actions ------------------------------------------------------------------------------
    def refresh(self) -> asyncio.Task:
        """Re-read which fields are stored (names only)."""
        return self._start(self._refresh(self.environment, self.venue), "credentials-list")

    async def _refresh(self, env: str, venue: str) -> None:
        try:
            fields = await self.access.stored_fields(env, venue)
        except CredentialProblem:
            for state in self.states.values():
                state.setText("?")
            raise
        self._apply_stored(fields)

    def _apply_stored(self, fields: list[str]) -> None:
        self.stored = [f for f in fields if f in self.edits]
        for field, state in self.states.items():
            there = field in fields
            state.setText(STORED if there else NOT_SET)
            state.setStyleSheet("color: #5fd38d;" if there else "")
            self.edits[field].setPlaceholderText("stored — type to replace" if there else
                                                 ("optional" if field == "private_key" else "not set"))
        self.fields_loaded.emit(list(self.stored))

    def save(self) -> asyncio.Task | None:
        """Write the typed fields (empty ones keep what is stored); the inputs are cleared after."""
        typed = {f: e.text() for f, e in self.edits.items() if e.text().strip()}
        if not typed:
            self._show_message("Nothing to save: type a value in at least one field.", "warnBanner")
            return None
        try:
            values = {f: self.access.normalize(f, v) for f, v in typed.items()}   # errors name the field, never the value
        except CredentialProblem as exc:
            self._show_message(exc.message, "banner")
            return None
        return self._start(self._save(self.environment, self.venue, values), "credentials-save")

    async def _save(self, env: str, venue: str, values: dict[str, str]) -> None:
        fields = await self.access.save(env, venue, values)
        for field in values:
            self.edits[field].clear()
        values.clear()
        self._apply_stored(fields)
        names = ", ".join(FIELD_LABELS[f] for f in self.edits if f in fields)
        self._show_message(f"Saved in the OS keyring for {venue} ({env}). Stored now: {names}.", "infoBanner")
        self.saved.emit(env, venue, sorted(fields))

    def confirm_delete(self) -> QMessageBox:
        """Ask first (open() + finished: never a blocking exec())."""
        env, venue = self.environment, self.venue
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete credentials",
                          f"Delete every stored credential of {venue} ({env}) from the OS keyring?\n\n"
                          "Live trading and the authenticated checks of this venue stop working until new "
                          "keys are saved. This cannot be undone.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Delete")
        box.finished.connect(lambda result: self._delete_answered(result, env, venue))
        self.confirm_box = box
        box.open()
        return box

    def _delete_answered(self, result: int, env: str, venue: str) -> None:
        self.confirm_box = None
        if result == QMessageBox.StandardButton.Yes and env == self.environment and venue == self.venue:
            self._start(self._delete(env, venue), "credentials-delete")

    async def _delete(self, env: str, venue: str) -> None:
        removed, fields = await self.access.delete(env, venue)
        self._apply_stored(fields)
        self._show_message(f"Deleted {', '.join(removed) or 'nothing (no field was stored)'} for {venue} ({env}).",
                           "infoBanner")
        self.deleted.emit(env, venue, removed)

    def test_connection(self) -> asyncio.Task:
        """This venue's checks with the stored credentials (typed, unsaved values are not used)."""
        return self._start(self._test(self.environment, self.venue), "credentials-test")

    async def _test(self, env: str, venue: str) -> None:
        self.results.clear()
        pending = [f for f, e in self.edits.items() if e.text().strip()]
        note = f" (unsaved input in {', '.join(FIELD_LABELS[f] for f in pending)} is not used: Save first)" \
            if pending else ""
        self._show_message(f"Testing {venue} ({env}) with the stored credentials…{note}", "infoBanner")
        try:
            run = await self.access.plan(self.mode, env, venue=venue)
        except (ConfigError, ValueError) as exc:
            self._show_message(f"Cannot test: {exc}", "banner")
            return
        results: list[CheckResult] = []
        async for result in self.access.checks(run):
            results.append(result)
            self.results.add(result)
        failed = [r for r in results if r.status is CheckStatus.FAIL]
        warned = [r for r in results if r.status is CheckStatus.WARN]
        if failed:
            self._show_message(f"{venue} ({env}): {len(failed)} check(s) failed — first: {failed[0].check}: "
                               f"{failed[0].message}", "banner")
        elif warned:
            self._show_message(f"{venue} ({env}) works, with {len(warned)} warning(s){note}.", "warnBanner")
        else:
            self._show_message(f"{venue} ({env}): every check passed{note}.", "infoBanner")
        self.test_finished.emit(results)

    def done(self, result: int) -> None:
        """Closing (Close, Esc, the window's X) drops typed values and stops a running operation."""
        for edit in self.edits.values():
            edit.clear()
        if self.busy:
            self.task.cancel()
        super().done(result)

    def closeEvent(self, event) -> None:
        for edit in self.edits.values():
            edit.clear()
        if self.busy:
            self.task.cancel()
        super().closeEvent(event)
