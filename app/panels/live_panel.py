"""Live trading dashboard: start a paper or live session, watch it, stop it.

Top: the session form (mode, paper/live, environment, capital, tick) with Start and Stop, the explicit
Reset (leaves HALTED, confirmed) and Flatten (opens the flatten's pre-sign ticket: every step, each
on-chain transaction simulated on the current block; Confirm sends exactly that plan). Then the state badge (ACTIVE / REDUCING / HALTED), heartbeat and data
age, value and P&L; positions per venue; risk and exposure (HF, LTV, margin ratio per venue with the
distance to liquidation, net delta on-chain vs CEX); the cumulative P&L by component; and the order
blotter, event log, emergency-stop progress and restart-recovery report.

The EMERGENCY STOP itself is not in this panel: it is in the main window's safety toolbar, always
visible, and on Ctrl+Shift+X / F12 (app.widgets.estop). This panel shows its per-venue progress.

Updates: every service notification only marks the view dirty (the state badge is set at once); a
FrameScheduler redraws at most 10 times a second and a 0.5 s timer keeps the ages current between
ticks. Confirmations use QMessageBox.open() + finished, never exec() (docs/ARCHITECTURE.md, The app).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers.live import LiveController
from app.frame_scheduler import FrameScheduler
from app.tasks import spawn
from app.view_models import CancelRow, EStopPress
from app.widgets.banner import show_banner
from app.widgets.estop import CancelProgressModel, StateBadge, shortcut_label
from app.widgets.flatten_ticket import FlattenTicketDialog
from app.widgets.live_chart import LivePnlChart
from app.widgets.live_tables import LiveEventsModel, OrdersModel, PositionsModel, RiskModel, pct
from app.widgets.order_ticket import OrderTicket
from engine.config import MODES, check_capital_text
from engine.domain.modes import ExecutionMode
from engine.services.live import (
    FlattenPreview,
    FlattenPreviewStale,
    FlattenRefused,
    FlattenReport,
    LiveStartError,
    LiveStartRequest,
    SessionSnapshot,
)
from engine.services.live.manual_orders import ManualOrder, ManualOrderRefused, ManualOrderResult
from engine.services.live.service import ENVIRONMENTS, EXECUTIONS

log = logging.getLogger(__name__)

FRAME_MS = 100
AGE_TIMER_MS = 500
NO_ESTOP = "The emergency stop has not been pressed for this session."
ESTOP_HINT = (f"<b>EMERGENCY STOP</b>: the red button in the toolbar or <b>{shortcut_label()}</b> halts every "
              "session at once (no confirmation) and cancels every open order; Reset below leaves HALTED.")


def _table(model, parent: QWidget, stretch_last: bool = True) -> QTableView:
    view = QTableView(parent)
    view.setModel(model)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(22)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(stretch_last)
    return view


class LivePanel(QWidget):
    #: (request id) a session started from this panel
    session_started = Signal(str)
    #: (message) a session could not start
    start_failed = Signal(str)
    #: (FlattenReport) a confirmed flatten finished
    flattened = Signal(object)
    #: (ManualOrderResult | str) a confirmed manual order was placed, or the reason it was not
    manual_order_done = Signal(object)
    status_message = Signal(str)

    def __init__(self, controller: LiveController, initial_mode: str = "eth_basis",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        #: Extra LiveStartRequest fields for every start (timeouts, dead-man): tests and embedding.
        self.request_defaults: dict[str, Any] = {}
        self.request_id: str | None = None
        self.task: asyncio.Task | None = None
        self.confirm_box: QMessageBox | None = None
        self.flatten_dialog: FlattenTicketDialog | None = None
        self.result_box: QMessageBox | None = None
        self.close_box: QMessageBox | None = None
        self.close_choices: dict[str, QPushButton] = {}
        self.last_flatten: FlattenReport | None = None
        self.last_manual: ManualOrderResult | None = None
        self.positions = PositionsModel(self)
        self.risk = RiskModel(self)
        self.orders = OrdersModel(self)
        self.events = LiveEventsModel(parent=self)
        self.cancels = CancelProgressModel(self)
        self.frames = FrameScheduler(self._draw, interval_ms=FRAME_MS, parent=self)
        self._build(initial_mode if initial_mode in MODES else MODES[0])
        controller.session_updated.connect(self._session_updated)
        controller.sessions_changed.connect(self._sessions_changed)
        controller.estop_pressed.connect(self._estop_pressed)
        controller.cancel_progress.connect(self.cancels.update_row)
        controller.estop_finished.connect(self._estop_finished)
        self.age_timer = QTimer(self)
        self.age_timer.setInterval(AGE_TIMER_MS)
        self.age_timer.timeout.connect(self._update_ages)
        self.age_timer.start()
        self._draw()

    # ---- layout -------------------------------------------------------------------------------
    def _build(self, mode: str) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 4)
        outer.setSpacing(4)

        form = QHBoxLayout()
        form.addWidget(QLabel("Mode"))
        self.mode_combo = QComboBox(self)
        for name in MODES:
            self.mode_combo.addItem(name, name)
        self.mode_combo.setCurrentIndex(MODES.index(mode))
        form.addWidget(self.mode_combo)
        form.addWidget(QLabel("Execution"))
        self.execution_combo = QComboBox(self)
        for name in EXECUTIONS:
            self.execution_combo.addItem(name, name)
        self.execution_combo.setToolTip("paper: live market data, simulated fills (no order reaches a venue); "
                                        "live: real orders through the venue adapters (CEX legs only)")
        form.addWidget(self.execution_combo)
        form.addWidget(QLabel("Environment"))
        self.env_combo = QComboBox(self)
        for name in ENVIRONMENTS:
            self.env_combo.addItem(name, name)
        form.addWidget(self.env_combo)
        form.addWidget(QLabel("Capital"))
        self.capital_edit = QLineEdit(self)
        self.capital_edit.setPlaceholderText("share-class default")
        self.capital_edit.setMaximumWidth(130)
        form.addWidget(self.capital_edit)
        form.addWidget(QLabel("Tick"))
        self.tick_spin = QDoubleSpinBox(self)
        self.tick_spin.setRange(0.1, 3600.0)
        self.tick_spin.setDecimals(1)
        self.tick_spin.setValue(5.0)
        self.tick_spin.setSuffix(" s")
        self.tick_spin.setToolTip("Seconds between strategy ticks (market data, risk limits, strategy)")
        form.addWidget(self.tick_spin)
        self.start_button = QPushButton("Start", self)
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(self.start_session)
        form.addWidget(self.start_button)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop the session's loop (positions stay as they are; use Flatten to close them)")
        self.stop_button.clicked.connect(self.stop_session)
        form.addWidget(self.stop_button)
        self.reset_button = QPushButton("Reset…", self)
        self.reset_button.setToolTip("Leave HALTED / REDUCING and trade again (asks first)")
        self.reset_button.clicked.connect(self.confirm_reset)
        form.addWidget(self.reset_button)
        self.flatten_button = QPushButton("Flatten…", self)
        self.flatten_button.setToolTip("Unwind every leg: shows the plan and each transaction's simulated ticket "
                                       "first; ends HALTED")
        self.flatten_button.clicked.connect(self.confirm_flatten)
        form.addWidget(self.flatten_button)
        form.addStretch(1)
        form.addWidget(QLabel("Session"))
        self.session_combo = QComboBox(self)
        self.session_combo.setMinimumWidth(260)
        self.session_combo.currentIndexChanged.connect(self._session_chosen)
        form.addWidget(self.session_combo)
        outer.addLayout(form)

        hint = QLabel(ESTOP_HINT, self)
        hint.setObjectName("sectionHelp")
        hint.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(hint)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        outer.addWidget(self.message)
        self.alert = QLabel(self)
        self.alert.setObjectName("warnBanner")
        self.alert.setWordWrap(True)
        self.alert.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.alert.hide()
        outer.addWidget(self.alert)
        recovery_row = QHBoxLayout()
        self.recovery_banner = QLabel(self)
        self.recovery_banner.setObjectName("warnBanner")
        self.recovery_banner.setWordWrap(True)
        recovery_row.addWidget(self.recovery_banner, 1)
        self.ack_button = QPushButton("Acknowledge and start trading", self)
        self.ack_button.clicked.connect(self.acknowledge_recovery)
        recovery_row.addWidget(self.ack_button)
        self.recovery_banner.hide()
        self.ack_button.hide()
        outer.addLayout(recovery_row)
        # A pending wallet transaction holds new risk (acknowledged or not): say why, offer the cancel.
        hold_row = QHBoxLayout()
        self.hold_banner = QLabel(self)
        self.hold_banner.setObjectName("warnBanner")
        self.hold_banner.setWordWrap(True)
        hold_row.addWidget(self.hold_banner, 1)
        self.cancel_pending_button = QPushButton("Cancel pending transactions…", self)
        self.cancel_pending_button.setToolTip("Replace each pending transaction of the wallet by a 0-value "
                                              "self-transfer at the same nonce with bumped fees (asks first)")
        self.cancel_pending_button.clicked.connect(self.confirm_cancel_pending)
        hold_row.addWidget(self.cancel_pending_button)
        self.hold_banner.hide()
        self.cancel_pending_button.hide()
        outer.addLayout(hold_row)

        strip = QHBoxLayout()
        self.badge = StateBadge(self, large=True)
        strip.addWidget(self.badge)
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(0)
        self.readouts: dict[str, QLabel] = {}
        names = (("phase", "Phase"), ("heartbeat", "Heartbeat"), ("data_age", "Data age"), ("value", "Value"),
                 ("pnl", "P&L"), ("drawdown", "Drawdown"), ("trades", "Trades"), ("ticks", "Ticks"),
                 ("uptime", "Uptime"), ("session", "Session"))
        for column, (key, title) in enumerate(names):
            caption = QLabel(title, self)
            caption.setObjectName("dim")
            value = QLabel("–", self)
            value.setObjectName("readout")
            grid.addWidget(caption, 0, column)
            grid.addWidget(value, 1, column)
            self.readouts[key] = value
        strip.addLayout(grid, 1)
        outer.addLayout(strip)

        center = QSplitter(Qt.Orientation.Horizontal, self)
        left = QSplitter(Qt.Orientation.Vertical, center)
        box = QWidget(left)
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.addWidget(self._caption("Positions per venue (the strategy book, marked at live prices)", box))
        self.positions_view = _table(self.positions, box)
        box_layout.addWidget(self.positions_view)
        box2 = QWidget(left)
        box2_layout = QVBoxLayout(box2)
        box2_layout.setContentsMargins(0, 0, 0, 0)
        box2_layout.addWidget(self._caption("Risk and exposure", box2))
        self.risk_view = _table(self.risk, box2)
        self.risk_view.horizontalHeader().resizeSection(0, 150)
        self.risk_view.horizontalHeader().resizeSection(1, 120)
        box2_layout.addWidget(self.risk_view)
        left.addWidget(box)
        left.addWidget(box2)
        left.setStretchFactor(0, 2)
        left.setStretchFactor(1, 3)
        right = QWidget(center)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self._caption("P&L by component (cumulative since the session started)", right))
        self.chart = LivePnlChart(right)
        right_layout.addWidget(self.chart)
        center.addWidget(left)
        center.addWidget(right)
        center.setStretchFactor(0, 1)
        center.setStretchFactor(1, 1)

        self.tabs = QTabWidget(self)
        self.orders_view = _table(self.orders, self.tabs)
        for column, width in enumerate((70, 70, 70, 120, 50, 110, 85, 75, 90, 90, 230)):
            self.orders_view.horizontalHeader().resizeSection(column, width)
        self.tabs.addTab(self.orders_view, "Order blotter")
        self.events_view = _table(self.events, self.tabs)
        header = self.events_view.horizontalHeader()
        for column, width in enumerate((150, 80, 90, 520)):
            header.resizeSection(column, width)
        self.tabs.addTab(self.events_view, "Event log")
        estop_page = QWidget(self.tabs)
        estop_layout = QVBoxLayout(estop_page)
        estop_layout.setContentsMargins(4, 4, 4, 4)
        self.estop_summary = QLabel(NO_ESTOP, estop_page)
        self.estop_summary.setWordWrap(True)
        estop_layout.addWidget(self.estop_summary)
        self.cancels_view = _table(self.cancels, estop_page)
        estop_layout.addWidget(self.cancels_view)
        self.estop_index = self.tabs.addTab(estop_page, "Emergency stop")
        self.recovery_text = QPlainTextEdit(self.tabs)
        self.recovery_text.setReadOnly(True)
        self.recovery_text.setPlaceholderText("Live sessions read positions, open orders and balances back from the "
                                              "venues before trading and compare them with the journal; the report "
                                              "shows here.")
        self.tabs.addTab(self.recovery_text, "Recovery")
        self.ticket = OrderTicket(self.tabs)
        self.ticket.review_requested.connect(self.review_order)
        self.ticket_index = self.tabs.addTab(self.ticket, "Order ticket")
        self.positions_view.clicked.connect(self._position_clicked)

        body = QSplitter(Qt.Orientation.Vertical, self)
        body.addWidget(center)
        body.addWidget(self.tabs)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        outer.addWidget(body, 1)

    @staticmethod
    def _caption(text: str, parent: QWidget) -> QLabel:
        label = QLabel(text, parent)
        label.setObjectName("dim")
        return label

    # ---- the session form ---------------------------------------------------------------------
    def build_request(self) -> LiveStartRequest:
        """The LiveStartRequest the form describes (raises ValueError on a bad capital)."""
        text = self.capital_edit.text()
        capital = check_capital_text(text, None, "capital") if text.strip() else None
        fields: dict[str, Any] = {"mode": self.mode_combo.currentData(), "execution": self.execution_combo.currentData(),
                                  "environment": self.env_combo.currentData(), "capital": capital,
                                  "tick_seconds": self.tick_spin.value()}
        fields.update(self.request_defaults)
        return LiveStartRequest(**fields)

    def set_form(self, mode: str | None = None, execution: str | None = None, environment: str | None = None,
                 capital: float | None = None, tick_seconds: float | None = None) -> None:
        for combo, value, allowed in ((self.mode_combo, mode, MODES), (self.execution_combo, execution, EXECUTIONS),
                                      (self.env_combo, environment, ENVIRONMENTS)):
            if value is not None:
                if value not in allowed:
                    raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
                combo.setCurrentIndex(list(allowed).index(value))
        if capital is not None:
            self.capital_edit.setText(f"{capital:g}")
        if tick_seconds is not None:
            self.tick_spin.setValue(tick_seconds)

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def start_session(self) -> asyncio.Task | None:
        """Start what the form says; production live asks for a confirmation first."""
        try:
            request = self.build_request()
        except ValueError as exc:
            self._show_message(str(exc), "banner")
            return None
        if ExecutionMode.parse(request.execution).sends_orders and request.environment == "production" and not request.confirm_production:
            self._ask("Live trading with real money",
                      f"Start {request.mode} LIVE on PRODUCTION with real money?\n\n"
                      "The venues' pre-live checks must pass first (they run now). The emergency stop "
                      f"({shortcut_label()}) halts everything at once.",
                      "Trade with real money", lambda: self._start(replace(request, confirm_production=True)))
            return None
        return self._start(request)

    def _start(self, request: LiveStartRequest) -> asyncio.Task | None:
        if self.busy:
            return None
        self.start_button.setEnabled(False)
        self._show_message(f"Starting {request.mode} ({request.execution}, {request.environment})…", "infoBanner")
        self.task = spawn(self._run_start(request), name=f"live-start:{request.mode}")
        return self.task

    async def _run_start(self, request: LiveStartRequest) -> None:
        try:
            request_id = await self.controller.start(request)
        except (LiveStartError, ValueError) as exc:          # ConfigError is a ValueError too
            self._show_message(f"Cannot start {request.mode}: {exc}", "banner")
            self.start_failed.emit(str(exc))
            return
        finally:
            self.start_button.setEnabled(True)
        self._show_message(f"Session {request_id} started: {request.mode} ({request.execution}, "
                           f"{request.environment}).", "infoBanner")
        self.select_session(request_id)
        self.session_started.emit(request_id)
        self.status_message.emit(f"Live session {request_id} started")

    def stop_session(self) -> asyncio.Task | None:
        snap = self.snapshot
        if snap is None or not snap.active:
            return None
        request_id = snap.request_id
        self._show_message(f"Stopping {request_id}…", "infoBanner")

        async def stop() -> None:
            await self.controller.stop(request_id)
            self._show_message(f"Session {request_id} stopped. Positions are left as they are.", "infoBanner")

        return spawn(stop(), name=f"live-stop:{request_id}")

    def shutdown(self, done) -> bool:
        """Before the window closes: True when no session runs. Otherwise ask (open() + finished, never
        exec()): stop the sessions (open orders cancelled, positions kept and named), emergency stop,
        or keep the app open; ``done()`` is called once the chosen stop has finished."""
        active = self.controller.active_snapshots()
        if not self.controller.active:
            return True
        if self.close_box is not None:
            self.close_box.raise_()
            return False
        kept = [f"{snap.request_id}: {p.venue} {p.asset} {p.kind} {p.size:+.8g}"
                for snap in active for p in snap.positions if p.kind != "cash" and p.size] \
            + [f"{snap.request_id}: {leg}" for snap in active for leg in snap.flatten.cannot_unwind]
        names = "\n  ".join(f"{s.request_id}: {s.mode} {s.execution}/{s.environment} ({s.badge.text})"
                            for s in active) or "a session is starting"
        box = QMessageBox(QMessageBox.Icon.Warning, "Live sessions are running",
                          f"Closing the workstation leaves these sessions unmanaged:\n  {names}\n\n"
                          "Stop sessions: their loops stop and every open order on their venues is cancelled; "
                          "positions stay as they are"
                          + (":\n  " + "\n  ".join(kept) if kept else " (none is held).")
                          + "\n\nEmergency stop: HALT every session and cancel every open order at once, then close."
                          "\n\nCancel: keep the workstation open.", QMessageBox.StandardButton.NoButton, self)
        stop = box.addButton("Stop sessions and close", QMessageBox.ButtonRole.AcceptRole)
        estop = box.addButton("Emergency stop and close", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.close_choices = {"stop": stop, "estop": estop}

        def answered(_result: int) -> None:
            clicked = box.clickedButton()
            self.close_box = None
            if clicked is stop:
                self._close_sessions(done, kept, emergency=False)
            elif clicked is estop:
                self._close_sessions(done, kept, emergency=True)
            else:
                self._show_message("Close cancelled: the sessions keep running.", "infoBanner")

        box.finished.connect(answered)
        self.close_box = box
        box.open()
        return False

    def _close_sessions(self, done, kept: list[str], emergency: bool) -> asyncio.Task:
        if emergency:
            self.controller.emergency_stop("closing the workstation")
        self._show_message("Stopping the live sessions before closing…", "warnBanner")
        log.info("closing: stopping the live sessions (%s); positions kept: %s",
                 "emergency stop" if emergency else "open orders cancelled", "; ".join(kept) or "none")

        async def close() -> None:
            try:
                await asyncio.wait_for(self.controller.aclose(cancel_open_orders=True), 30.0)
            finally:
                if shiboken6.isValid(self):
                    done()

        return spawn(close(), name="live-shutdown")

    # ---- confirmed actions --------------------------------------------------------------------
    def _ask(self, title: str, text: str, yes_text: str, on_yes) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText(yes_text)

        def answered(result: int) -> None:
            self.confirm_box = None
            if result == QMessageBox.StandardButton.Yes:
                on_yes()

        box.finished.connect(answered)
        self.confirm_box = box
        box.open()
        return box

    def confirm_reset(self) -> QMessageBox | None:
        snap = self.snapshot
        if snap is None:
            return None
        request_id, state = snap.request_id, snap.state.value
        why = snap.state_reason or "no state change recorded"
        return self._ask("Reset to ACTIVE",
                         f"Reset session {request_id} ({snap.mode}) from {state} to ACTIVE?\n\n"
                         f"It is {state} because: {why}\n\nThe strategy trades again at its next "
                         "tick. Make sure the cause is fixed.", "Reset to ACTIVE", lambda: self._reset(request_id))

    def confirm_cancel_pending(self) -> QMessageBox | None:
        snap = self.snapshot
        if snap is None or not snap.pending_transactions:
            return None
        request_id = snap.request_id
        text = (f"Cancel the pending transactions of session {request_id}'s wallet?\n\n  "
                + "\n  ".join(snap.pending_transactions)
                + "\n\nEach is replaced by a 0-value self-transfer at its nonce with bumped fees. One that is "
                "mined first stays as it is; either way the nonce is resolved and new risk may go again.")
        return self._ask("Cancel pending transactions", text, "Cancel them", lambda: self._cancel_pending(request_id))

    def _cancel_pending(self, request_id: str) -> asyncio.Task:
        self.cancel_pending_button.setEnabled(False)

        async def run() -> None:
            try:
                results = await self.controller.cancel_pending_transactions(request_id)
            except (LiveStartError, KeyError) as exc:
                self._show_message(f"Cancel pending transactions failed: {exc}", "banner")
                return
            finally:
                self.cancel_pending_button.setEnabled(True)
                self.frames.request()
            lines = [f"nonce {r.nonce}: {r.outcome}" for r in results] or ["nothing was pending"]
            failed = any(r.outcome not in ("cancelled", "mined first") for r in results)
            self._show_message("Cancel pending transactions: " + "; ".join(lines), "banner" if failed else "infoBanner")

        return spawn(run(), name=f"live-cancel-pending:{request_id}")

    def _reset(self, request_id: str) -> None:
        self.controller.reset(request_id)
        self._show_message(f"Session {request_id} reset to ACTIVE by the operator.", "infoBanner")

    def confirm_flatten(self, note: str = "") -> FlattenTicketDialog | None:
        """Open the flatten's pre-sign ticket at once (Confirm disabled) and fill it when the engine's
        preview returns: every step, each on-chain transaction simulated on the current block."""
        snap = self.snapshot
        if snap is None:
            return None
        request_id = snap.request_id
        dialog = FlattenTicketDialog(request_id, snap.mode, snap.execution, parent=self)
        dialog.set_simulating(note)
        task = spawn(self._load_flatten_preview(dialog, request_id, note), name=f"live-flatten-preview:{request_id}")

        def answered(result: int) -> None:
            if self.flatten_dialog is dialog:
                self.flatten_dialog = None
            if not task.done():
                task.cancel()                    # nothing was sent: a preview only simulates
            if result == QDialog.DialogCode.Accepted and dialog.preview is not None:
                self._flatten(request_id, dialog.preview)

        dialog.finished.connect(answered)
        self.flatten_dialog = dialog
        dialog.open()
        return dialog

    async def _load_flatten_preview(self, dialog: FlattenTicketDialog, request_id: str, note: str) -> None:
        try:
            preview = await self.controller.preview_flatten(request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:                 # noqa: BLE001 - whatever failed, the dialog says it and refuses
            log.warning("flatten preview of %s failed: %s", request_id, exc)
            if shiboken6.isValid(dialog):
                dialog.set_failed(str(exc))
            return
        if shiboken6.isValid(dialog) and dialog.isVisible():
            dialog.set_preview(preview, note)

    def _flatten(self, request_id: str, preview: FlattenPreview) -> asyncio.Task:
        self.flatten_button.setEnabled(False)

        async def run() -> None:
            try:
                report = await self.controller.flatten(request_id, preview)
            except FlattenPreviewStale as stale:
                self._show_message(f"Flatten not sent: {stale}", "warnBanner")
                self._show_again(request_id, stale.fresh, f"The plan changed since the preview ({stale.why}): "
                                 "nothing was sent. Review it again.")
                return
            except FlattenRefused as refused:
                self._show_message(f"Flatten not sent: {refused}", "banner")
                self._show_again(request_id, refused.preview, "Simulated again at confirmation:")
                return
            except (LiveStartError, KeyError) as exc:
                self._show_message(f"Flatten failed: {exc}", "banner")
                return
            finally:
                self.frames.request()
            self.last_flatten = report
            kind = "banner" if report.failed else "warnBanner" if report.cannot_unwind else "infoBanner"
            self._show_message("Flatten: " + "; ".join(report.lines()), kind)
            box = QMessageBox(QMessageBox.Icon.Information if not report.failed else QMessageBox.Icon.Warning,
                              "Flatten finished", "\n".join(report.lines()), QMessageBox.StandardButton.Ok, self)
            self.result_box = box
            box.open()
            self.flattened.emit(report)

        return spawn(run(), name=f"live-flatten:{request_id}")

    def _show_again(self, request_id: str, preview: FlattenPreview, note: str) -> None:
        """The fresh preview the service made at confirmation, in a new ticket (never a stale plan)."""
        snap = self.snapshot
        if snap is None or snap.request_id != request_id:
            return
        dialog = FlattenTicketDialog(request_id, snap.mode, snap.execution, parent=self)
        dialog.set_preview(preview, note)

        def answered(result: int) -> None:
            if self.flatten_dialog is dialog:
                self.flatten_dialog = None
            if result == QDialog.DialogCode.Accepted and dialog.preview is not None:
                self._flatten(request_id, dialog.preview)

        dialog.finished.connect(answered)
        self.flatten_dialog = dialog
        dialog.open()

    # ---- manual orders (the ticket and the Close buttons) ---------------------------------------
    def review_order(self, order: ManualOrder) -> QMessageBox | None:
        """Check and price the ticket, then ask (notional, fee) before anything is sent."""
        snap = self.snapshot
        if snap is None or not snap.active:
            self.ticket.show_message("Start a session first: the ticket trades on its venues.", "banner")
            return None
        request_id = snap.request_id
        try:
            quote = self.controller.quote_manual_order(request_id, order)
        except (ManualOrderRefused, KeyError) as exc:
            self.ticket.show_message(f"Refused: {exc}", "banner")
            return None
        where = f"session {request_id} ({snap.mode}, {snap.execution}/{snap.environment})"
        text = ("\n".join(quote.lines()) + f"\n\nOn {where}. It goes through the same pre-trade checks, order "
                "gate and journal as the strategy's orders; the emergency stop halts it like any other.")
        return self._ask("Confirm manual order", text, "Send order", lambda: self._send_manual(request_id, order))

    def _send_manual(self, request_id: str, order: ManualOrder) -> asyncio.Task:
        self.ticket.review_button.setEnabled(False)
        self.ticket.show_message(f"Sending {order.describe()}…", "infoBanner")

        async def run() -> None:
            try:
                result = await self.controller.manual_order(request_id, order)
            except (ManualOrderRefused, KeyError) as exc:
                self.ticket.show_message(f"Not sent: {exc}", "banner")
                self.manual_order_done.emit(str(exc))
                return
            finally:
                self.ticket.review_button.setEnabled(True)
                self.frames.request()
            self.last_manual = result
            self.ticket.show_message(result.message + f" (client id {result.client_order_id})", "infoBanner")
            self.status_message.emit(f"Manual order: {result.message}")
            self.manual_order_done.emit(result)

        return spawn(run(), name=f"live-manual:{request_id}")

    def _position_clicked(self, index) -> QMessageBox | None:
        if index.column() != PositionsModel.CLOSE_COLUMN:
            return None
        line = self.positions.closable(index.row())
        snap = self.snapshot
        if line is None or snap is None:
            return None
        return self.close_position(line.venue, line.kind, line.asset)

    def close_position(self, venue: str, kind: str, asset: str) -> QMessageBox | None:
        """The row's Close button: a reduce-only market order for the whole position, confirmed first."""
        snap = self.snapshot
        if snap is None:
            return None
        try:
            order = self.controller.close_position_order(snap.request_id, venue, kind, asset)
        except (ManualOrderRefused, KeyError) as exc:
            self.ticket.show_message(f"Cannot close: {exc}", "banner")
            return None
        self.ticket.set_order(order)
        return self.review_order(order)

    def acknowledge_recovery(self) -> None:
        snap = self.snapshot
        if snap is not None and snap.awaiting_ack:
            self.controller.acknowledge_recovery(snap.request_id)
            self._show_message(f"Recovery acknowledged: session {snap.request_id} trades.", "infoBanner")

    # ---- sessions -----------------------------------------------------------------------------
    @property
    def snapshot(self) -> SessionSnapshot | None:
        """The latest snapshot of the session shown (everything here renders from it)."""
        if self.request_id is None:
            return None
        try:
            return self.controller.snapshot(self.request_id)
        except KeyError:
            return None

    def select_session(self, request_id: str) -> None:
        self._sessions_changed()
        index = self.session_combo.findData(request_id)
        if index < 0:
            raise KeyError(f"no live session {request_id!r}")
        self.session_combo.setCurrentIndex(index)
        self.request_id = request_id
        self._draw()

    def _sessions_changed(self) -> None:
        combo = self.session_combo
        current = self.request_id
        combo.blockSignals(True)
        combo.clear()
        for s in reversed(self.controller.snapshots()):
            combo.addItem(f"{s.request_id} · {s.mode} · {s.execution}/{s.environment} · {s.phase}", s.request_id)
        if current is not None and combo.findData(current) >= 0:
            combo.setCurrentIndex(combo.findData(current))
        combo.blockSignals(False)
        self.frames.request()

    def _session_chosen(self, index: int) -> None:
        if index >= 0:
            self.request_id = self.session_combo.itemData(index)
            self._draw()

    def _session_updated(self, snap: SessionSnapshot) -> None:
        if self.request_id is None:
            self.select_session(snap.request_id)
            return
        if snap.request_id == self.request_id:   # the badge and phase at once, the rest at frame rate
            self._show_status(snap)
            self.frames.request()

    # ---- emergency stop -----------------------------------------------------------------------
    def _estop_pressed(self, press: EStopPress) -> None:
        self.tabs.setCurrentIndex(self.estop_index)
        snap = self.snapshot
        if snap is not None:
            self._show_status(snap)
        self.frames.request()

    def _estop_finished(self, press: EStopPress) -> None:
        self.frames.request()

    # ---- drawing ------------------------------------------------------------------------------
    def _show_message(self, text: str, kind: str) -> None:
        show_banner(self.message, text, kind)

    def _show_status(self, snap: SessionSnapshot | None) -> None:
        """Badge, phase and the e-stop line: all from one snapshot, so they always agree."""
        if snap is None:
            self.badge.set_state(None)
            self.estop_summary.setText(NO_ESTOP)
            self.cancels.reset([])
            return
        self.badge.set_state(snap.badge.text)
        self.readouts["phase"].setText(snap.phase_line)
        estop = snap.estop
        self.estop_summary.setText(NO_ESTOP if estop is None else estop.summary)
        rows = [] if estop is None else [CancelRow(snap.request_id, p.venue, p.status.value, p.canceled, p.error,
                                                   p.elapsed_ms) for p in estop.venues]
        if rows != self.cancels.rows:
            self.cancels.reset(rows)

    def _draw(self) -> None:
        snap = self.snapshot
        self._update_buttons(snap)
        self._show_status(snap)
        if snap is None:
            for label in self.readouts.values():
                label.setText("–")
            return
        cur = snap.currency
        dp = 2 if snap.currency == "USDT" else 6
        r = self.readouts
        r["value"].setText("–" if snap.value is None else f"{snap.value:,.{dp}f} {cur}")
        r["pnl"].setText("–" if snap.pnl is None else f"{snap.pnl:+,.{dp}f} ({snap.pnl / snap.capital * 100:+.3f}%)")
        r["drawdown"].setText(pct(snap.drawdown))
        r["trades"].setText(str(snap.trades))
        r["ticks"].setText(str(snap.ticks))
        r["session"].setText(f"{snap.request_id} · {snap.mode} · {snap.execution}/{snap.environment}")
        self._update_ages()
        self.positions.refresh(snap.positions)
        self.ticket.set_markets(dict.fromkeys(p.venue for p in snap.positions if p.kind == "cash"),
                                dict.fromkeys([p.asset for p in snap.positions if p.kind in ("perp", "spot")]
                                              or ["BTC" if snap.mode.startswith("btc") else "ETH"]))
        self.risk.refresh(snap.risk_lines)
        self.orders.refresh(snap.orders)
        self.events.refresh(snap.request_id, snap.events, snap.events_total)
        self.chart.sync(snap.request_id, snap.history, cur, snap.ticks)
        alerts = [f"BREACH {b}" for b in snap.breaches] + ([f"Error: {snap.last_error}"] if snap.last_error else []) \
            + list(snap.warnings) + [f"dead-man {v}: {t}" for v, t in snap.dead_man.items()]
        self.alert.setText("\n".join(alerts))
        self.alert.setVisible(bool(alerts))
        if snap.recovery_lines:
            self.recovery_text.setPlainText("\n".join(snap.recovery_lines))
        self.recovery_banner.setVisible(snap.awaiting_ack)
        self.ack_button.setVisible(snap.awaiting_ack)
        self.hold_banner.setVisible(bool(snap.risk_hold))
        self.cancel_pending_button.setVisible(bool(snap.pending_transactions))
        if snap.risk_hold:
            self.hold_banner.setText(snap.risk_hold)
        if snap.awaiting_ack:
            self.recovery_banner.setText("Restart recovery found positions, open orders or differences; trading waits "
                                         "for you:\n" + "\n".join(snap.recovery_lines[:8]))

    def _update_ages(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        now = time.time()
        r = self.readouts
        hb = snap.heartbeat_age(now)
        r["heartbeat"].setText("–" if hb is None else f"{hb:.1f} s ago")
        r["heartbeat"].setStyleSheet("color: #ffb454;" if hb is not None and hb > snap.heartbeat_stale_after else "")
        age = snap.data_age_seconds
        r["data_age"].setText("–" if age is None else f"{age:.1f} s")
        r["data_age"].setStyleSheet("color: #ff6b6b;" if age is not None and age > snap.max_data_age_seconds else "")
        r["uptime"].setText(_duration(now - snap.started_at))

    def _update_buttons(self, snap: SessionSnapshot | None) -> None:
        live = snap is not None and snap.active
        self.stop_button.setEnabled(live)
        self.reset_button.setEnabled(live and snap is not None and snap.state.value != "ACTIVE")
        self.flatten_button.setEnabled(live and snap is not None and snap.phase in ("running", "awaiting_acknowledgement"))


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"
