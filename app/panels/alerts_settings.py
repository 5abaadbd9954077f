"""Settings › Alerts: which events alert, how (tray, sound, webhook, Telegram), and the bot token.

The URL, chat id and switches are saved in the app's settings; the Telegram bot token goes straight
to the OS keyring (app secret ``telegram_bot_token``) and is never shown again, like the venue keys
in the credentials dialog. "Send test alert" raises one alert through the whole path and reports
what each remote channel answered.
"""
from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.controllers.alerts import TELEGRAM_API, AlertsController, AlertSettings, AppliedSettings
from app.tasks import spawn
from app.widgets.banner import show_banner
from engine.services.live.alerts import AlertKind

KIND_HELP = {
    AlertKind.RISK_BREACH: "a risk limit is breached (the session reduces or halts)",
    AlertKind.ESTOP: "the emergency stop halts a session (button, shortcut, a breach or an error)",
    AlertKind.VENUE_TIMEOUT: "a venue gives no answer in time (market data, cancel-all)",
    AlertKind.ORDER_FAILED: "an order fails at the venue or is refused (trading state, pre-trade check)",
    AlertKind.TX_FAILED: "an on-chain transaction reverts, is dropped or replaced",
}


class AlertSettingsDialog(QDialog):
    #: (AppliedSettings) the settings were saved and applied
    applied = Signal(object)
    #: (str) a test alert finished: what each channel answered
    test_finished = Signal(str)

    def __init__(self, controller: AlertsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Alerts")
        self.setModal(False)
        self.controller = controller
        self.task: asyncio.Task | None = None
        self._build()
        self.show_settings(controller.settings)
        self.refresh_token()

    # ---- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        kinds = QGroupBox("Alert on", self)
        kinds_layout = QVBoxLayout(kinds)
        self.kind_boxes: dict[AlertKind, QCheckBox] = {}
        for kind in AlertKind:
            box = QCheckBox(f"{kind.label} — {KIND_HELP[kind]}", kinds)
            kinds_layout.addWidget(box)
            self.kind_boxes[kind] = box
        layout.addWidget(kinds)

        local = QGroupBox("On this desktop", self)
        local_layout = QHBoxLayout(local)
        self.desktop_box = QCheckBox("Tray notification", local)
        self.sound_box = QCheckBox("Sound", local)
        self.sound_box.setToolTip("Untick to mute alert sounds")
        local_layout.addWidget(self.desktop_box)
        local_layout.addWidget(self.sound_box)
        local_layout.addStretch(1)
        layout.addWidget(local)

        remote = QGroupBox("Remote", self)
        form = QFormLayout(remote)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.webhook_edit = QLineEdit(remote)
        self.webhook_edit.setPlaceholderText("https://hooks.example.com/… (empty: no webhook)")
        self.webhook_edit.setToolTip("Each alert is POSTed here as JSON: kind, severity, title, message, "
                                     "session, venue, at, suppressed, text")
        form.addRow("Webhook URL", self.webhook_edit)
        self.chat_edit = QLineEdit(remote)
        self.chat_edit.setPlaceholderText("chat id, e.g. -1001234567890 (empty: no Telegram)")
        form.addRow("Telegram chat id", self.chat_edit)
        token_row = QHBoxLayout()
        self.token_edit = QLineEdit(remote)
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("bot token from @BotFather (goes to the OS keyring only)")
        token_row.addWidget(self.token_edit, 1)
        self.save_token_button = QPushButton("Save to keyring", remote)
        self.save_token_button.clicked.connect(self.save_token)
        token_row.addWidget(self.save_token_button)
        self.delete_token_button = QPushButton("Delete", remote)
        self.delete_token_button.clicked.connect(self.delete_token)
        token_row.addWidget(self.delete_token_button)
        form.addRow("Telegram bot token", token_row)
        self.token_state = QLabel("checking the keyring…", remote)
        self.token_state.setObjectName("dim")
        form.addRow("", self.token_state)
        self.api_edit = QLineEdit(remote)
        self.api_edit.setPlaceholderText(TELEGRAM_API)
        form.addRow("Telegram API", self.api_edit)
        self.timeout_spin = QDoubleSpinBox(remote)
        self.timeout_spin.setRange(0.5, 60.0)
        self.timeout_spin.setDecimals(1)
        self.timeout_spin.setSuffix(" s")
        self.timeout_spin.setToolTip("A remote send that takes longer is abandoned (it never delays trading)")
        form.addRow("Send timeout", self.timeout_spin)
        self.dedupe_spin = QDoubleSpinBox(remote)
        self.dedupe_spin.setRange(1.0, 3600.0)
        self.dedupe_spin.setDecimals(0)
        self.dedupe_spin.setSuffix(" s")
        self.dedupe_spin.setToolTip("The same alert (kind, session, venue) goes out at most once per this "
                                    "window; the next one says how many were held back")
        form.addRow("Repeat at most every", self.dedupe_spin)
        layout.addWidget(remote)

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        layout.addWidget(self.message)

        buttons = QDialogButtonBox(self)
        self.test_button = buttons.addButton("Send test alert", QDialogButtonBox.ButtonRole.ActionRole)
        self.test_button.clicked.connect(self.send_test)
        self.save_button = buttons.addButton(QDialogButtonBox.StandardButton.Save)
        self.save_button.clicked.connect(self.save)
        buttons.addButton(QDialogButtonBox.StandardButton.Close).clicked.connect(self.close)
        layout.addWidget(buttons)

    # ---- values -------------------------------------------------------------------------------
    def show_settings(self, s: AlertSettings) -> None:
        for kind, box in self.kind_boxes.items():
            box.setChecked(kind in s.kinds)
        self.desktop_box.setChecked(s.desktop)
        self.sound_box.setChecked(s.sound)
        self.webhook_edit.setText(s.webhook_url)
        self.chat_edit.setText(s.telegram_chat_id)
        self.api_edit.setText("" if s.telegram_api == TELEGRAM_API else s.telegram_api)
        self.timeout_spin.setValue(s.send_timeout_seconds)
        self.dedupe_spin.setValue(s.dedupe_seconds)

    def settings(self) -> AlertSettings:
        return AlertSettings(kinds=frozenset(k for k, b in self.kind_boxes.items() if b.isChecked()),
                             desktop=self.desktop_box.isChecked(), sound=self.sound_box.isChecked(),
                             webhook_url=self.webhook_edit.text().strip(),
                             telegram_chat_id=self.chat_edit.text().strip(),
                             telegram_api=self.api_edit.text().strip() or TELEGRAM_API,
                             send_timeout_seconds=self.timeout_spin.value(), dedupe_seconds=self.dedupe_spin.value())

    def _show(self, text: str, kind: str) -> None:
        show_banner(self.message, text, kind)

    # ---- actions ------------------------------------------------------------------------------
    def save(self) -> asyncio.Task:
        settings = self.settings()

        async def run() -> None:
            applied = await self.controller.apply(settings)
            self._report(applied)
            self.applied.emit(applied)

        self.task = spawn(run(), name="alerts-apply")
        return self.task

    def _report(self, applied: AppliedSettings) -> None:
        on = ", ".join(["tray"] * applied.settings.desktop + ["sound"] * applied.settings.sound + applied.channels)
        problems = "; ".join(f"{p.channel}: {p.message}" for p in applied.problems)
        if problems:
            self._show(f"Saved. Alerts go to: {on or 'nowhere'}. Not used: {problems}", "warnBanner")
        else:
            self._show(f"Saved. Alerts go to: {on or 'nowhere (every output is off)'}.", "infoBanner")

    def refresh_token(self) -> asyncio.Task | None:
        async def run() -> None:
            try:
                stored = await self.controller.has_token()
            except Exception as exc:  # noqa: BLE001 - a keyring problem is shown, the dialog stays usable
                self.token_state.setText(f"keyring: {getattr(exc, 'message', exc)}")
                return
            self.token_state.setText("a token is stored in the OS keyring" if stored else "no token stored")

        try:
            return spawn(run(), name="alerts-token-state")
        except RuntimeError:            # no loop (a plain widget test): leave the placeholder
            return None

    def save_token(self) -> asyncio.Task | None:
        token = self.token_edit.text().strip()
        if not token:
            self._show("Type the bot token first (it is never shown again once saved).", "banner")
            return None

        async def run() -> None:
            try:
                await self.controller.save_token(token)
            except Exception as exc:  # noqa: BLE001 - keyring errors carry a message and never the value
                self._show(f"Could not store the token: {getattr(exc, 'message', type(exc).__name__)}", "banner")
                return
            self.token_edit.clear()
            self.token_state.setText("a token is stored in the OS keyring")
            self._show("Token stored in the OS keyring. Save to use it.", "infoBanner")

        return spawn(run(), name="alerts-token-save")

    def delete_token(self) -> asyncio.Task:
        async def run() -> None:
            removed = await self.controller.delete_token()
            self.token_state.setText("no token stored")
            self._show("Token deleted from the OS keyring." if removed else "No token was stored.", "infoBanner")

        return spawn(run(), name="alerts-token-delete")

    def send_test(self) -> asyncio.Task:
        settings = self.settings()

        async def run() -> None:
            await self.controller.apply(settings)
            before = len(self.controller.bus.deliveries)
            if not self.controller.send_test():
                text = "The test alert was held back (its kind is off, or one went out within the repeat window)."
            else:
                await self.controller.bus.drain(timeout=settings.send_timeout_seconds + 1.0)
                answers = self.controller.bus.deliveries[before:]
                text = "Test alert sent: " + ("; ".join(
                    f"{d.channel} {'OK' if d.ok else 'FAILED: ' + d.error} ({d.elapsed_ms:.0f} ms)" for d in answers)
                    or "desktop only (no remote channel set)")
            self._show(text, "infoBanner" if "FAILED" not in text else "warnBanner")
            self.test_finished.emit(text)

        self.task = spawn(run(), name="alerts-test")
        return self.task
