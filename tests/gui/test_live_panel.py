"""Live trading dashboard and the EMERGENCY STOP, in the real main window, against the loopback
exchange emulator: a paper session updates state, heartbeat, positions, risk, chart and events; the
toolbar button and the keyboard shortcut HALT synchronously (no await between the press and HALTED),
then every venue's cancel-all reports its progress until done; Reset and Flatten ask first; the
config editor is locked while a session runs."""
from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.main_window import MainWindow
from app.widgets.estop import ESTOP_SHORTCUTS, ESTOP_TEXT
from bootstrap import DATA_DIR, app_services
from engine.components.valuation import value_usd
from tests.gui.emulator_support import CEX, fast_checks, run_on_loop
from venues.cex.account import RetryPolicy

TICK = 0.2
# Resting orders the emulator books per venue: (instrument key, quantity in venue units).
RESTING = {"binance": [("spot:ETHUSDT", Decimal("0.01")), ("perp:ETHUSDT", Decimal("0.01"))],
           "bybit": [("spot:ETHUSDT", Decimal("0.01")), ("linear:ETHUSDT", Decimal("0.01"))],
           "okx": [("ETH-USDT", Decimal("0.01")), ("ETH-USDT-SWAP", Decimal(1))]}

# the emulator and keyring-store fixtures (run on the qasync loop)
pytest_plugins = ["tests.gui.emulator_support"]


@pytest.fixture
def live_window(qtbot, bridge, emulator, cex_store, tmp_path, cache_dir):
    urls = {v: emulator.base_url(v) for v in CEX}
    services = app_services(store=cex_store, url_overrides=urls, check_settings=fast_checks(),
                            journal_dir=tmp_path / "journal", data_dir=DATA_DIR, cache_dir=cache_dir,
                            timeout_s=2.0, rate_limit_ms=1, retry=RetryPolicy(attempts=2, base_delay_s=0.01),
                            check_timeout_s=2.0)
    window = MainWindow(services, bridge=bridge, persist_layout=False, initial_mode="eth_basis")
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    qtbot.waitExposed(window)
    window.backtest_panel.autoplay_box.setChecked(False)
    panel = window.live_panel
    panel.request_defaults = {"cancel_timeout_seconds": 1.0, "data_timeout_seconds": 1.0, "dead_man_seconds": None}
    panel.set_form(mode="eth_basis", execution="paper", environment="testnet", capital=10_000, tick_seconds=TICK)
    window.show_panel("live")
    yield window
    run_on_loop(qtbot, services.live.close())      # pytest-qt may have deleted the window already


def start(qtbot, window, *, timeout_ms: int = 20000, **form) -> str:
    """Start from the form and wait for the session (``timeout_ms``: the first start of a process
    loads the data seed cold, slow on a busy box)."""
    panel = window.live_panel
    if form:
        panel.set_form(**form)
    with qtbot.waitSignal(panel.session_started, timeout=timeout_ms) as started:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    return started.args[0]


def start_hedged_live_session(qtbot, window, *, start_timeout_ms: int = 20000, orders_timeout_ms: int = 10000):
    """A live session against the emulator, waited until its four entry orders are placed."""
    rid = start(qtbot, window, timeout_ms=start_timeout_ms, execution="live")
    service = window.live_controller.service
    session = service.session(rid)
    qtbot.waitUntil(lambda: session.ticks >= 2 and len(session.orders) == 4, timeout=orders_timeout_ms)
    return rid, service


def answer(qtbot, panel, button=QMessageBox.StandardButton.Yes) -> str:
    box = panel.confirm_box
    assert box is not None and box.isVisible(), "the action must ask first"
    text = box.text()
    box.button(button).click()
    qtbot.waitUntil(lambda: panel.confirm_box is None, timeout=2000)
    return text


def place_resting(emulator, per_slot: int) -> int:
    count = 0
    for venue, rows in RESTING.items():
        st = emulator.venues[venue]
        for key, qty in rows:
            inst = st.instruments[key]
            for _ in range(per_slot):
                st.place(key, "buy", "limit", qty, (inst.price * Decimal("0.8")).quantize(inst.tick), None)
                count += 1
    return count


def test_paper_session_updates_the_dashboard_and_the_button_halts_synchronously(qtbot, live_window):
    window, panel = live_window, live_window.live_panel
    assert window.estop_button.isVisible() and ESTOP_TEXT in window.estop_button.text()
    assert all(s in window.estop_button.text() for s in ESTOP_SHORTCUTS)
    assert not window.config_panel.locked

    rid = start(qtbot, window)
    service = window.live_controller.service
    session = service.session(rid)
    assert window.config_panel.locked, "editing the config is locked while a session runs"
    qtbot.waitUntil(lambda: session.ticks >= 3, timeout=10000)
    panel.frames.flush()
    assert panel.badge.text() == "ACTIVE" and window.safety_bar.badge.text() == "ACTIVE"
    assert panel.readouts["heartbeat"].text().endswith("s ago") and panel.readouts["data_age"].text().endswith(" s")
    assert int(panel.readouts["ticks"].text()) >= 3
    rows = {(v, k, a) for v, k, a in zip(panel.positions.column("Venue"), panel.positions.column("Kind"),
                                         panel.positions.column("Asset"))}
    assert ("bybit", "spot", "ETH") in rows
    assert {("binance", "perp", "ETH"), ("bybit", "perp", "ETH"), ("okx", "perp", "ETH")} <= rows
    assert panel.risk.value_of("Health factor") == "∞ (no debt)"
    assert float(panel.risk.value_of("Margin ratio okx")) > 0.2
    assert abs(float(panel.risk.value_of("Net delta (ETH)"))) < 1e-6, "spot long and perp shorts offset"
    assert "perp_trade" in panel.events.types() and "spot_trade" in panel.events.types()
    assert panel.chart.drawn_points() >= 3
    assert panel.orders.rowCount() == 4 and set(panel.orders.column("Status")) == {"filled (paper)"}, \
        "paper fills show in the blotter (simulated: no venue saw them)"
    trades = service.status(rid).trades

    # the toolbar button: HALTED before mouseClick returns (nothing awaited in between)
    qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)
    assert service.status(rid).state == "HALTED"
    assert panel.badge.text() == "HALTED" and window.safety_bar.badge.text() == "HALTED"
    press = window.live_controller.last_press
    assert press.source == "button" and press.request_ids == [rid] and press.halted_ms < 50
    qtbot.waitUntil(lambda: press.finished_ms is not None, timeout=5000)
    assert "paper" in panel.estop_summary.text() and panel.tabs.currentIndex() == panel.estop_index
    ticks = session.ticks
    qtbot.waitUntil(lambda: session.ticks >= ticks + 3, timeout=10000)
    assert service.status(rid).state == "HALTED" and service.status(rid).trades == trades, "nothing traded"
    assert int(panel.readouts["ticks"].text()) >= ticks, "the heartbeat goes on while HALTED"

    # leaving HALTED is an explicit, confirmed reset
    panel.frames.flush()
    assert panel.reset_button.isEnabled()
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert "operator emergency stop (button)" in answer(qtbot, panel, QMessageBox.StandardButton.Cancel)
    assert service.status(rid).state == "HALTED"
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    answer(qtbot, panel)
    assert service.status(rid).state == "ACTIVE" and panel.badge.text() == "ACTIVE"

    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.config_panel.locked, timeout=5000)
    assert service.status(rid).phase == "stopped"


def test_live_session_estop_button_cancels_every_venue_and_the_shortcut_works(qtbot, live_window, emulator):
    window, panel = live_window, live_window.live_panel
    rid, service = start_hedged_live_session(qtbot, window)
    panel.frames.flush()
    assert panel.orders.rowCount() == 4 and set(panel.orders.column("Status")) == {"closed"}
    assert set(panel.orders.column("Venue")) == set(CEX)
    posts_before = sum(len(st.orders) for st in emulator.venues.values())
    resting = place_resting(emulator, per_slot=3)
    assert sum(len(st.open_orders()) for st in emulator.venues.values()) == resting

    qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)
    assert service.status(rid).state == "HALTED", "HALTED synchronously, before any cancel was sent"
    model = panel.cancels
    qtbot.waitUntil(lambda: [model.status_of(v) for v in CEX] == ["done"] * 3, timeout=5000)
    assert sum(r.canceled for r in model.rows) == resting
    assert all(r.elapsed_ms > 0 for r in model.rows)
    assert all(len(st.open_orders()) == 0 for st in emulator.venues.values())
    qtbot.waitUntil(lambda: window.live_controller.last_press.finished_ms is not None, timeout=5000)
    assert "3/3 venue(s) confirmed their cancels" in panel.estop_summary.text()
    assert "done" in window.safety_bar.progress_label.text()
    shown = [model.index(i, 2).data() for i in range(model.rowCount())]
    assert shown == ["DONE"] * 3

    # the keyboard shortcut does the same from anywhere in the window (after an explicit reset)
    window.live_controller.reset(rid)
    assert service.status(rid).state == "ACTIVE"
    more = place_resting(emulator, per_slot=1)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=2000)
    qtbot.keyClick(window.backtest_panel, Qt.Key.Key_F12)
    assert service.status(rid).state == "HALTED"
    assert window.live_controller.last_press.source == "keyboard"
    qtbot.waitUntil(lambda: [model.status_of(v) for v in CEX] == ["done"] * 3, timeout=5000)
    assert sum(r.canceled for r in model.rows) == more
    assert sum(len(st.orders) for st in emulator.venues.values()) == posts_before + resting + more, \
        "no order was sent after either press"


def flatten_ticket(qtbot, panel):
    """The flatten's pre-sign ticket, opened by the Flatten button: Confirm disabled while the engine
    simulates, then the preview."""
    dialog = panel.flatten_dialog
    assert dialog is not None and dialog.isVisible(), "flatten must show its ticket first"
    assert not dialog.confirm_button.isEnabled(), "nothing to confirm while the plan is simulated"
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=15000)
    return dialog


def test_flatten_asks_first_then_closes_the_cex_legs(qtbot, live_window, emulator):
    window, panel = live_window, live_window.live_panel
    rid, service = start_hedged_live_session(qtbot, window)
    panel.frames.flush()
    qtbot.mouseClick(panel.flatten_button, Qt.MouseButton.LeftButton)
    dialog = flatten_ticket(qtbot, panel)
    text = dialog.details()
    assert "okx ETH perp buy" in text and "(reduce-only)" in text and "bybit ETH spot sell" in text
    assert dialog.confirm_button.isEnabled() and dialog.preview.ready
    orders_before = sum(len(st.orders) for st in emulator.venues.values())
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.flatten_dialog is None, timeout=2000)
    assert service.status(rid).state == "ACTIVE", "cancelled: nothing happened"
    assert sum(len(st.orders) for st in emulator.venues.values()) == orders_before, "cancel sends nothing"

    qtbot.mouseClick(panel.flatten_button, Qt.MouseButton.LeftButton)
    dialog = flatten_ticket(qtbot, panel)
    with qtbot.waitSignal(panel.flattened, timeout=10000) as done:
        qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    report = done.args[0]
    assert len(report.closed) == len(dialog.preview.steps) == 4 and report.failed == []
    assert service.status(rid).state == "HALTED"
    for venue in CEX:
        st = emulator.venues[venue]
        assert all(p.qty == 0 for p in st.positions.values())
    assert panel.result_box is not None and "closed" in panel.result_box.text()


def test_paper_flatten_previews_the_onchain_legs_from_the_simulated_book(qtbot, live_window):
    window, panel = live_window, live_window.live_panel
    rid = start(qtbot, window, mode="usdt_market_neutral_no_leverage")
    session = window.live_controller.service.session(rid)
    qtbot.waitUntil(lambda: session.ticks >= 2, timeout=10000)
    panel.frames.flush()
    assert any("on-chain series" in w for w in window.live_controller.service.status(rid).warnings)
    assert panel.alert.isVisible() and "on-chain series" in panel.alert.text()
    qtbot.mouseClick(panel.flatten_button, Qt.MouseButton.LeftButton)
    dialog = flatten_ticket(qtbot, panel)
    lst = session.params.strategy.lst
    assert "paper" in dialog.banner.text().lower() and "nothing is simulated on a chain" in dialog.banner.text()
    assert f"sell {session.portfolio.wallet.tokens[lst]:.8g} {lst} for ETH" in dialog.details()
    assert all(step.where == "simulated" and step.ticket is None for step in dialog.preview.steps)


def test_a_session_that_cannot_start_says_why(qtbot, live_window):
    window, panel = live_window, live_window.live_panel
    panel.set_form(mode="usdt_market_neutral", execution="live")
    with qtbot.waitSignal(panel.start_failed, timeout=10000) as failed:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert "on-chain legs" in failed.args[0]
    assert panel.message.objectName() == "banner" and "Cannot start usdt_market_neutral" in panel.message.text()
    assert not window.config_panel.locked and panel.start_button.isEnabled()
    panel.capital_edit.setText("-5")
    assert panel.start_session() is None and "capital -5 must be positive" in panel.message.text()


def test_the_emergency_stop_with_no_session_says_so(qtbot, live_window):
    window = live_window
    qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)
    press = window.live_controller.last_press
    assert press.request_ids == [] and "nothing to halt" in press.note
    assert "nothing to halt" in window.safety_bar.progress_label.text()
    service = window.live_controller.service
    assert service.sessions == {} and service._journals == {}, "a press with no session touches nothing"
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=2000)
    qtbot.keyClick(window.config_panel, Qt.Key.Key_X,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.live_controller.last_press is not press and window.live_controller.last_press.source == "keyboard"


def test_closing_the_window_with_a_session_asks_first_and_never_closes_silently(qtbot, live_window):
    window, panel = live_window, live_window.live_panel
    rid = start(qtbot, window)
    service = window.live_controller.service
    qtbot.waitUntil(lambda: service.session(rid).ticks >= 1, timeout=10000)
    assert window.close() is False, "a running session is never left behind silently"
    box = panel.close_box
    assert box is not None and box.isVisible() and rid in box.text() and "positions stay" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: panel.close_box is None, timeout=2000)
    assert window.isVisible() and service.status(rid).phase == "running", "cancel keeps everything running"

    assert window.close() is False
    panel.close_choices["stop"].click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15000)
    assert service.status(rid).phase == "stopped"


def test_closing_with_a_live_session_cancels_its_open_orders_and_names_the_positions_kept(qtbot, live_window,
                                                                                          emulator):
    from tests.integration.live_support import open_orders, venue_positions

    window, panel = live_window, live_window.live_panel
    rid, service = start_hedged_live_session(qtbot, window)
    place_resting(emulator, per_slot=2)
    assert sum(open_orders(emulator).values()) == 12
    panel.frames.flush()
    assert window.close() is False
    text = panel.close_box.text()
    assert f"{rid}: okx ETH perp -" in text and f"{rid}: bybit ETH spot +" in text, "the positions kept are named"
    panel.close_choices["stop"].click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15000)
    assert open_orders(emulator) == {"binance": 0, "bybit": 0, "okx": 0}
    assert all(size < 0 for size in venue_positions(emulator).values()), "positions are kept"
    assert service.status(rid).phase == "stopped"


def test_the_dashboard_renders_snapshots_only_and_badge_phase_and_estop_agree(qtbot, live_window):
    """Whatever the session object says, the dashboard shows the snapshot it was handed: badge,
    phase line and e-stop line from one snapshot, never a mix."""
    import dataclasses

    from engine.services.live import TradingState
    from engine.services.live.snapshot import Badge, EStopLine

    window, panel = live_window, live_window.live_panel
    rid = start(qtbot, window)
    session = window.live_controller.service.session(rid)
    qtbot.waitUntil(lambda: session.ticks >= 1, timeout=10000)
    real = window.live_controller.snapshot(rid)
    assert real.badge.text == "ACTIVE" and real.estop is None
    panel.frames.flush()
    assert panel.estop_summary.text() == "The emergency stop has not been pressed for this session."

    window.live_controller.service.on_update = None          # only the snapshots below reach the view
    halted = dataclasses.replace(real, state=TradingState.HALTED, badge=Badge("HALTED", "bad"),
                                 phase_line="running, HALTED: nothing but cancels (test)",
                                 estop=EStopLine("test", real.taken_at, 0.01, (), True, 3.0, "", "E-STOP TEXT"))
    window.live_controller._snapshots[rid] = halted
    window.live_controller.session_updated.emit(halted)
    panel.frames.flush()
    assert session.state.state is TradingState.ACTIVE, "the session itself was not touched"
    assert panel.badge.text() == "HALTED" and panel.readouts["phase"].text().startswith("running, HALTED")
    assert panel.estop_summary.text() == "E-STOP TEXT"

    waiting = dataclasses.replace(real, phase="awaiting_acknowledgement", badge=Badge("AWAITING ACK", "warn"),
                                  phase_line="awaiting acknowledgement", awaiting_ack=True, estop=None)
    window.live_controller._snapshots[rid] = waiting
    window.live_controller.session_updated.emit(waiting)
    panel.frames.flush()
    assert panel.badge.text() == "AWAITING ACK" and panel.readouts["phase"].text() == "awaiting acknowledgement"
    assert panel.ack_button.isVisible() and "not been pressed" in panel.estop_summary.text()


def test_the_button_stops_and_cancels_with_the_journal_locked_and_no_crash_dialog(qtbot, live_window, emulator,
                                                                                  tmp_path, qasync_loop):
    from app.crash import CrashReporter
    from tests.integration.live_support import ExclusiveLock

    window, panel = live_window, live_window.live_panel
    rid, service = start_hedged_live_session(qtbot, window)
    resting = place_resting(emulator, per_slot=3)
    reporter = CrashReporter(window)
    reporter.install(qasync_loop)
    try:
        with ExclusiveLock(tmp_path / "journal" / "journal-testnet.sqlite3"):     # another process holds it
            qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)
            assert service.status(rid).state == "HALTED", "the first press halts"
            model = panel.cancels
            qtbot.waitUntil(lambda: [model.status_of(v) for v in CEX] == ["done"] * 3, timeout=5000)
            assert sum(r.canceled for r in model.rows) == resting
            assert all(len(st.open_orders()) == 0 for st in emulator.venues.values())
            qtbot.waitUntil(lambda: "writes failing" in service.status(rid).journal, timeout=3000)
        assert reporter.dialog is None, "the press went to the stop, not to the crash dialog"
    finally:
        reporter.uninstall()


def test_leveraged_paper_session_shows_its_aave_supply_and_debt_rows_with_values(qtbot, live_window):
    window, panel = live_window, live_window.live_panel
    rid = start(qtbot, window, mode="eth_leveraged")
    session = window.live_controller.service.session(rid)
    qtbot.waitUntil(lambda: session.ticks >= 2 and any(session.portfolio.wallet.debt_scaled.values()), timeout=20000)
    panel.frames.flush()
    rows = list(zip(panel.positions.column("Venue"), panel.positions.column("Kind"), panel.positions.column("Asset"),
                    panel.positions.column("Value (USD)")))
    supply = [r for r in rows if r[:2] == ("aave_v3", "supply")]
    debt = [r for r in rows if r[:2] == ("aave_v3", "debt")]
    lst = session.params.strategy.lst
    assert [r[2] for r in supply] == [lst] and debt, f"the loop's collateral and debt have rows: {rows}"
    values = [float(r[3].replace(",", "")) for r in rows]
    assert all(r[3] for r in rows), "every row carries its USD value"
    assert float(supply[0][3].replace(",", "")) > 0 > float(debt[0][3].replace(",", ""))
    mv = session.feed.view
    assert sum(values) == pytest.approx(value_usd(session.portfolio, mv, len(mv.timestamps) - 1), rel=1e-6), \
        "the rows add up to the book's (protocol) value"
