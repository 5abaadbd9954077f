"""Live trading dashboard (DESIGN §7, issue 5 item 6): start a paper or live session, watch it, stop it.

Top: the session form (mode, paper/live, environment, capital, tick) with Start and Stop, the explicit
Reset (leaves HALTED, confirmed) and Flatten (closes the CEX legs, confirmed, says plainly which
on-chain legs it cannot unwind). Then the state badge (ACTIVE / REDUCING / HALTED), heartbeat and data
age, value and P&L; positions per venue; risk and exposure (HF, LTV, margin ratio per venue with the
distance to liquidation, net delta on-chain vs CEX); the cumulative P&L by component; and the order
blotter, event log, emergency-stop progress and restart-recovery report.

The EMERGENCY STOP itself is not in this panel: it is in the main window's safety toolbar, always
visible, and on Ctrl+Shift+X / F12 (app.widgets.estop). This panel shows its per-venue progress.

Updates: every service notification only marks the view dirty (the state badge is set at once); a
FrameScheduler redraws at most 10 times a second and a 0.5 s timer keeps the ages current between
ticks. Confirmations use QMessageBox.open() + finished, never exec() (DESIGN §10).
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import replace
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
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

from app.frame_scheduler import FrameScheduler
from app.panels.live_controller import EStopPress, LiveController
from app.panels.venue_wiring import spawn
from app.widgets.banner import show_banner
from app.widgets.estop import CancelProgressModel, StateBadge, shortcut_label
from app.widgets.live_chart import LivePnlChart
from app.widgets.live_tables import (
    LiveEventsModel,
    OrdersModel,
    PositionsModel,
    RiskLine,
    RiskModel,
    num,
    pct,
    perp_liquidation_move,
)
from engine.config import MODES, check_capital_text
from engine.services.live import FlattenReport, LiveSession, LiveStartError, LiveStartRequest, SessionPhase
from engine.services.live.service import ENVIRONMENTS, EXECUTIONS

FRAME_MS = 100
AGE_TIMER_MS = 500
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
        self.result_box: QMessageBox | None = None
        self.last_flatten: FlattenReport | None = None
        self.positions = PositionsModel(self)
        self.risk = RiskModel(self)
        self.orders = OrdersModel(self)
        self.events = LiveEventsModel(parent=self)
        self.cancels = CancelProgressModel(controller, self)
        self.frames = FrameScheduler(self._draw, interval_ms=FRAME_MS, parent=self)
        self._build(initial_mode if initial_mode in MODES else MODES[0])
        controller.session_updated.connect(self._session_updated)
        controller.sessions_changed.connect(self._sessions_changed)
        controller.estop_pressed.connect(self._estop_pressed)
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
        self.flatten_button.setToolTip("Close the CEX legs with reduce-only orders (asks first; ends HALTED)")
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
        for column, width in enumerate((70, 70, 120, 50, 110, 85, 75, 90, 90, 230)):
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
        self.estop_summary = QLabel("The emergency stop has not been pressed in this session of the app.", estop_page)
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
        if request.execution == "live" and request.environment == "production" and not request.confirm_production:
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
        session = self.session
        if session is None or session.phase is SessionPhase.STOPPED:
            return None
        request_id = session.request_id
        self._show_message(f"Stopping {request_id}…", "infoBanner")

        async def stop() -> None:
            await self.controller.stop(request_id)
            self._show_message(f"Session {request_id} stopped. Positions are left as they are.", "infoBanner")

        return spawn(stop(), name=f"live-stop:{request_id}")

    def shutdown(self, done) -> bool:
        """Before the window closes: True when nothing runs; else stop every session, then call `done`."""
        if not self.controller.active:
            return True
        self._show_message("Stopping the live sessions before closing…", "warnBanner")

        async def close() -> None:
            try:
                await asyncio.wait_for(self.controller.aclose(), 15.0)
            finally:
                if shiboken6.isValid(self):
                    done()

        spawn(close(), name="live-shutdown")
        return False

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
        session = self.session
        if session is None:
            return None
        request_id = session.request_id
        history = session.state.history
        why = history[-1].reason if history else "no state change recorded"
        return self._ask("Reset to ACTIVE",
                         f"Reset session {request_id} ({session.mode}) from {session.state.state.value} to ACTIVE?\n\n"
                         f"It is {session.state.state.value} because: {why}\n\nThe strategy trades again at its next "
                         "tick. Make sure the cause is fixed.", "Reset to ACTIVE", lambda: self._reset(request_id))

    def _reset(self, request_id: str) -> None:
        self.controller.reset(request_id)
        self._show_message(f"Session {request_id} reset to ACTIVE by the operator.", "infoBanner")

    def confirm_flatten(self) -> QMessageBox | None:
        session = self.session
        if session is None:
            return None
        request_id = session.request_id
        close, cannot = flatten_preview(session)
        text = (f"Flatten session {request_id} ({session.mode}, {session.execution})?\n\n"
                + ("It will send, perps first (reduce-only), then spot:\n  " + "\n  ".join(close) if close else
                   "No CEX position to close.")
                + ("\n\nIt cannot unwind these on-chain legs (on-chain execution does not exist yet; do it by hand):\n  "
                   + "\n  ".join(cannot) if cannot else "")
                + "\n\nThe session ends HALTED.")
        return self._ask("Flatten", text, "Flatten", lambda: self._flatten(request_id))

    def _flatten(self, request_id: str) -> asyncio.Task:
        self.flatten_button.setEnabled(False)

        async def run() -> None:
            try:
                report = await self.controller.flatten(request_id)
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

    def acknowledge_recovery(self) -> None:
        session = self.session
        if session is not None and session.phase is SessionPhase.AWAITING_ACK:
            self.controller.acknowledge_recovery(session.request_id)
            self._show_message(f"Recovery acknowledged: session {session.request_id} trades.", "infoBanner")

    # ---- sessions -----------------------------------------------------------------------------
    @property
    def session(self) -> LiveSession | None:
        if self.request_id is None:
            return None
        try:
            return self.controller.session(self.request_id)
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
        for s in reversed(self.controller.sessions()):
            combo.addItem(f"{s.request_id} · {s.mode} · {s.execution}/{s.environment} · {s.phase.value}", s.request_id)
        if current is not None and combo.findData(current) >= 0:
            combo.setCurrentIndex(combo.findData(current))
        combo.blockSignals(False)
        self.frames.request()

    def _session_chosen(self, index: int) -> None:
        if index >= 0:
            self.request_id = self.session_combo.itemData(index)
            self._draw()

    def _session_updated(self, request_id: str) -> None:
        if self.request_id is None:
            self.select_session(request_id)
            return
        if request_id == self.request_id:
            session = self.session
            if session is not None:                   # the state is shown at once, the rest at frame rate
                self.badge.set_state(session.state.state.value)
            self.frames.request()

    # ---- emergency stop -----------------------------------------------------------------------
    def _estop_pressed(self, press: EStopPress) -> None:
        self.tabs.setCurrentIndex(self.estop_index)
        session = self.session
        if session is not None:
            self.badge.set_state(session.state.state.value)
        targets = ", ".join(press.request_ids) or "none"
        self.estop_summary.setText(f"Pressed at {time.strftime('%H:%M:%S', time.localtime(press.at))} "
                                   f"({press.source}): HALTED {targets} in {press.halted_ms:.2f} ms; "
                                   "cancelling open orders on every venue…" + (f" {press.note}" if press.note else ""))
        self.frames.request()

    def _estop_finished(self, press: EStopPress) -> None:
        rows = self.cancels.rows
        done = sum(1 for r in rows if r.status == "done")
        bad = [f"{r.venue} {r.status}" for r in rows if r.status in ("failed", "timeout")]
        text = (f"Emergency stop ({press.source}): HALTED in {press.halted_ms:.2f} ms; "
                f"{done}/{len(rows)} venue(s) confirmed their cancels")
        if press.finished_ms is not None and rows:
            text += f" within {press.finished_ms:.0f} ms"
        if bad:
            text += f"; NOT confirmed: {', '.join(bad)} (open orders may remain there)"
        if press.note:
            text += f". {press.note}"
        if press.error:
            text += f". Error: {press.error}"
        self.estop_summary.setText(text + ".")
        self.frames.request()

    # ---- drawing ------------------------------------------------------------------------------
    def _show_message(self, text: str, kind: str) -> None:
        show_banner(self.message, text, kind)

    def _draw(self) -> None:
        session = self.session
        self._update_buttons(session)
        if session is None:
            self.badge.set_state(None)
            for label in self.readouts.values():
                label.setText("–")
            return
        st = session.status()
        self.badge.set_state(st.state)
        cur = st.currency
        dp = 2 if cur == "USDT" else 6
        r = self.readouts
        r["phase"].setText(st.phase)
        r["value"].setText("–" if st.value is None else f"{st.value:,.{dp}f} {cur}")
        r["pnl"].setText("–" if st.pnl is None else f"{st.pnl:+,.{dp}f} ({st.pnl / st.capital * 100:+.3f}%)")
        r["drawdown"].setText(pct(st.drawdown))
        r["trades"].setText(str(st.trades))
        r["ticks"].setText(str(st.ticks))
        r["session"].setText(f"{st.request_id} · {st.mode} · {st.execution}/{st.environment}")
        self._update_ages()
        self.positions.refresh(session.positions())
        self.risk.refresh(risk_lines(session, st))
        self.orders.refresh(session.orders)
        self.events.refresh(session, session.events.events)
        self.chart.sync(session, session.history, cur, st.ticks)
        alerts = [f"BREACH {b}" for b in st.breaches] + ([f"Error: {st.last_error}"] if st.last_error else []) \
            + st.warnings + [f"dead-man {v}: {t}" for v, t in st.dead_man.items()]
        self.alert.setText("\n".join(alerts))
        self.alert.setVisible(bool(alerts))
        recovery = session.recovery
        awaiting = session.phase is SessionPhase.AWAITING_ACK
        if recovery is not None:
            self.recovery_text.setPlainText("\n".join(recovery.lines()) or "clean: nothing open, no difference")
        self.recovery_banner.setVisible(awaiting)
        self.ack_button.setVisible(awaiting)
        if awaiting and recovery is not None:
            self.recovery_banner.setText("Restart recovery found positions, open orders or differences; trading waits "
                                         "for you:\n" + "\n".join(recovery.lines()[:8]))

    def _update_ages(self) -> None:
        session = self.session
        if session is None:
            return
        now = time.time()
        r = self.readouts
        hb = None if session.last_heartbeat is None else max(0.0, now - session.last_heartbeat)
        stale = hb is not None and hb > 3 * session.tick_seconds + 1
        r["heartbeat"].setText("–" if hb is None else f"{hb:.1f} s ago")
        r["heartbeat"].setStyleSheet("color: #ffb454;" if stale else "")
        age = session.data_age
        limit = session.limits.max_data_age_seconds
        r["data_age"].setText("–" if age is None else f"{age:.1f} s")
        r["data_age"].setStyleSheet("color: #ff6b6b;" if age is not None and age > limit else "")
        r["uptime"].setText(_duration(now - session.started_at))

    def _update_buttons(self, session: LiveSession | None) -> None:
        live = session is not None and session.phase is not SessionPhase.STOPPED
        self.stop_button.setEnabled(live)
        self.reset_button.setEnabled(live and session.state.state.value != "ACTIVE")
        self.flatten_button.setEnabled(live and session.phase in (SessionPhase.RUNNING, SessionPhase.AWAITING_ACK))


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def flatten_preview(session: LiveSession) -> tuple[list[str], list[str]]:
    """(orders a flatten would send, on-chain legs it cannot unwind), from the strategy book."""
    close: list[str] = []
    portfolio = session.portfolio
    for venue, acct in portfolio.cex.items():
        for asset, pos in acct.perps.items():
            if pos.size:
                close.append(f"{venue} {asset} perp {'buy' if pos.size < 0 else 'sell'} {abs(pos.size):.8g} "
                             "(reduce-only)")
    for venue, acct in portfolio.cex.items():
        for asset, qty in acct.spot.items():
            if qty > 0:
                close.append(f"{venue} {asset} spot sell {qty:.8g}")
    cannot: list[str] = []
    w = portfolio.wallet
    if any(w.debt_scaled.values()):
        cannot.append("AAVE leverage loop (LST collateral and WETH debt)")
    elif any(w.supply_scaled.values()):
        cannot.append("AAVE supply (" + ", ".join(k for k, v in w.supply_scaled.items() if v) + ")")
    lst = session.params.strategy.lst
    if lst and w.tokens.get(lst, 0.0) > 0:
        cannot.append(f"{lst} holding ({w.tokens[lst]:.6g})")
    return close, cannot


def risk_lines(session: LiveSession, st) -> list[RiskLine]:
    """The risk-and-exposure rows for one session (see RiskModel)."""
    limits = session.limits
    sp = session.params.strategy
    risk = session.risk()
    lines: list[RiskLine] = []
    if risk is not None:
        hf = risk.health_factor
        if math.isinf(hf):
            lines.append(RiskLine("Health factor", "∞ (no debt)", f"floor {limits.hf_floor:g}"))
        else:
            color = "bad" if hf < limits.hf_floor else "warn" if hf < limits.hf_floor * 1.05 else None
            lines.append(RiskLine("Health factor", f"{hf:.3f}", f"floor {limits.hf_floor:g} · collateral can fall "
                                  f"{pct(max(0.0, 1 - 1 / hf))} vs debt before HF 1", color))
        lines.append(RiskLine("LTV", pct(risk.ltv) if risk.ltv else "0", ""))
        for venue, ratio in sorted(risk.margin_ratio.items()):
            acct = session.portfolio.cex.get(venue)
            size = sum(p.size for p in acct.perps.values()) if acct else 0.0
            cex = session.params.cex.get(venue)
            if math.isinf(ratio) or cex is None:
                lines.append(RiskLine(f"Margin ratio {venue}", "∞ (flat)" if math.isinf(ratio) else f"{ratio:.3f}",
                                      f"floor {limits.margin_ratio_floor:g}"))
                continue
            move = perp_liquidation_move(ratio, cex.maintenance_margin_ratio, size < 0)
            color = "bad" if ratio < limits.margin_ratio_floor else "warn" if ratio < cex.margin_warning_ratio else None
            lines.append(RiskLine(
                f"Margin ratio {venue}", f"{ratio:.3f}",
                f"floor {limits.margin_ratio_floor:g} · maintenance {cex.maintenance_margin_ratio:g} · mark can "
                f"{'rise' if size < 0 else 'fall'} {pct(move)} before liquidation", color,
                "equity / perp notional of the venue account (USDT + unrealized P&L)"))
        underlying = sp.underlying or "ETH"
        cex_units = risk.delta_cex.get(underlying, 0.0)
        onchain = risk.delta_onchain_eth if underlying == "ETH" else 0.0
        net = onchain + cex_units
        view = session.feed.view
        price = view.spot[underlying][-1] if view.timestamps and view.spot.get(underlying) else None
        per_venue = ", ".join(f"{v}: spot {num(a.spot.get(underlying, 0.0), 6)}, perp "
                              f"{num(a.perps[underlying].size if underlying in a.perps else 0.0, 6)}"
                              for v, a in session.portfolio.cex.items())
        lines.append(RiskLine(f"Delta on-chain ({underlying})", f"{onchain:+.6f}", "wallet, LSTs and AAVE net of debt"))
        lines.append(RiskLine(f"Delta CEX ({underlying})", f"{cex_units:+.6f}", per_venue, tip=per_venue))
        drift = None
        if price and st.value:
            value_usd = st.value if st.currency == "USDT" else st.value * view.eth[-1]
            drift = abs(net) * price / value_usd if value_usd > 0 else None
        color = "warn" if drift is not None and drift > sp.delta_drift_trigger else None
        lines.append(RiskLine(f"Net delta ({underlying})", f"{net:+.6f}",
                              ("" if price is None else f"≈ {net * price:+,.2f} USD · ")
                              + f"rebalance above {pct(sp.delta_drift_trigger)} of value"
                              + ("" if drift is None else f" (now {pct(drift)})"), color))
    lines.append(RiskLine("Drawdown", pct(st.drawdown), f"limit {pct(limits.max_drawdown)}",
                          "bad" if st.drawdown > limits.max_drawdown else None))
    age = st.data_age_seconds
    lines.append(RiskLine("Data age", "–" if age is None else f"{age:.1f} s",
                          f"limit {limits.max_data_age_seconds:g} s",
                          "bad" if age is not None and age > limits.max_data_age_seconds else None))
    lines.append(RiskLine("Breach action", limits.breach_action, "what a breached limit does"))
    return lines
