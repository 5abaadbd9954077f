"""Manual trading in the real live dashboard against the loopback exchange emulator: the order
ticket asks first (notional and fee in the confirmation), the order goes out and shows in the blotter
as manual; a position row's Close sends a reduce-only order for its size; a HALTED session refuses
the ticket with the reason shown; paper fills show in the blotter."""
from __future__ import annotations

from PySide6.QtCore import Qt

from app.widgets.live_tables import PositionsModel
from engine.services.live.manual_orders import ManualOrderResult
from tests.gui.test_live_panel import answer, live_window, start  # noqa: F401 - the fixture and a helper
from tests.gui.test_live_panel import start_hedged_live_session as start_live_panel_session
from tests.integration.live_support import venue_positions

pytest_plugins = ["tests.gui.emulator_support"]


def start_hedged_live_session(qtbot, window):
    """As the live panel's tests do, with the room a cold first start of a process needs."""
    return start_live_panel_session(qtbot, window, start_timeout_ms=60000, orders_timeout_ms=15000)


def test_ticket_confirms_sends_and_the_blotter_shows_it(qtbot, live_window, emulator):  # noqa: F811
    window, panel = live_window, live_window.live_panel
    rid, service = start_hedged_live_session(qtbot, window)
    panel.frames.flush()
    ticket = panel.ticket
    panel.tabs.setCurrentIndex(panel.ticket_index)
    assert {ticket.venue_combo.itemData(i) for i in range(ticket.venue_combo.count())} == {"binance", "bybit", "okx"}
    ticket.venue_combo.setCurrentIndex(ticket.venue_combo.findData("binance"))
    ticket.size_edit.setText("0.03")
    qtbot.mouseClick(ticket.review_button, Qt.MouseButton.LeftButton)
    box = panel.confirm_box
    assert box is not None and "Notional:" in box.text() and "Fee:" in box.text() and "BUY 0.03 ETH perp" in box.text()
    with qtbot.waitSignal(panel.manual_order_done, timeout=10000) as done:
        answer(qtbot, panel)
    result = done.args[0]
    assert isinstance(result, ManualOrderResult), result
    panel.frames.flush()
    assert panel.orders.column("Source")[0] == "manual" and panel.orders.column("Client id")[0] == result.client_order_id
    assert panel.orders.column("Status")[0] == "closed"

    # Close on the okx perp row: a reduce-only buy for the whole short
    rows = list(zip(panel.positions.column("Venue"), panel.positions.column("Kind")))
    row = rows.index(("okx", "perp"))
    index = panel.positions.index(row, PositionsModel.CLOSE_COLUMN)
    assert panel.positions.data(index) == "Close…"
    panel.positions_view.scrollTo(index)
    qtbot.mouseClick(panel.positions_view.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.positions_view.visualRect(index).center())
    box = panel.confirm_box
    assert box is not None and "Reduce-only: yes" in box.text() and "BUY" in box.text()
    with qtbot.waitSignal(panel.manual_order_done, timeout=10000) as done:
        answer(qtbot, panel)
    assert isinstance(done.args[0], ManualOrderResult)
    panel.frames.flush()
    assert panel.orders.column("Reduce-only")[0] == "yes" and panel.orders.column("Venue")[0] == "okx"
    assert venue_positions(emulator)["okx"] == 0


def test_a_halted_session_refuses_the_ticket_with_the_reason(qtbot, live_window):  # noqa: F811
    window, panel = live_window, live_window.live_panel
    rid, service = start_hedged_live_session(qtbot, window)
    qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)
    panel.frames.flush()
    panel.ticket.size_edit.setText("0.01")
    qtbot.mouseClick(panel.ticket.review_button, Qt.MouseButton.LeftButton)
    assert panel.confirm_box is None, "nothing to confirm: refused before the dialog"
    assert not panel.ticket.message.isHidden() and "HALTED" in panel.ticket.message.text()


def test_paper_fills_show_in_the_blotter(qtbot, live_window):  # noqa: F811
    window, panel = live_window, live_window.live_panel
    rid = start(qtbot, window, timeout_ms=60000)
    session = window.live_controller.service.session(rid)
    qtbot.waitUntil(lambda: len(session.orders) >= 4, timeout=10000)
    panel.frames.flush()
    assert set(panel.orders.column("Status")) == {"filled (paper)"}
    assert set(panel.orders.column("Venue")) == {"binance", "bybit", "okx"}
