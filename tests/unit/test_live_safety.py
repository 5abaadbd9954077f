"""Emergency stop, order gate, dead-man heartbeat and journal books with in-memory fake venues:
the timing and race rules that must hold whatever an adapter does."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from engine.domain.venue_ports import (
    CancelAllResult,
    DeadManSwitchStatus,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueError,
    VenueErrorKind,
    VenueOrder,
    new_client_order_id,
)
from engine.services.live.dead_man import DeadManHeartbeat, check_timeout
from engine.services.live.emergency_stop import CancelStatus, EmergencyStop
from engine.services.live.journal import Journal
from engine.services.live.order_gate import OrderGate
from engine.services.live.outcome_resolver import OrderNotPlaced, ResolvePolicy, UnknownOutcomeResolver
from engine.services.live.state import TradingHalted, TradingState, TradingStateMachine


def order(req: OrderRequest, status: OrderStatus = OrderStatus.OPEN) -> VenueOrder:
    return VenueOrder("fake", req.symbol, "1", req.client_order_id, req.side, "limit", req.amount, Decimal(0),
                      req.price, None, status)


class FakeVenue:
    """A venue whose calls take ``delay`` seconds; ``stubborn`` ignores cancellation for a while."""

    def __init__(self, delay: float = 0.0, stubborn: float = 0.0, fail: VenueError | None = None) -> None:
        self.delay, self.stubborn, self.fail = delay, stubborn, fail
        self.created: list[OrderRequest] = []
        self.cancelled: list[str] = []
        self.known: dict[str, VenueOrder] = {}
        self.arms: list[float] = []

    async def _wait(self) -> None:
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            if self.stubborn:
                await asyncio.sleep(self.stubborn)       # a connection that takes its time to tear down
            raise

    async def cancel_all_orders(self, symbol=None) -> CancelAllResult:
        await self._wait()
        if self.fail:
            raise self.fail
        return CancelAllResult("fake", verified=True)      # read back: nothing open

    async def create_order(self, req: OrderRequest, *, may_send=None) -> VenueOrder:
        # the port's contract: ask may_send right before the request leaves (it leaves at once here)
        if may_send is not None and not may_send():
            raise VenueError("fake", VenueErrorKind.NOT_SENT, "not sent")
        await self._wait()
        self.created.append(req)
        if self.fail:
            raise self.fail
        self.known[req.client_order_id] = order(req)
        return self.known[req.client_order_id]

    async def cancel_order(self, symbol, *, order_id=None, client_order_id=None) -> VenueOrder:
        self.cancelled.append(client_order_id)
        return self.known[client_order_id]

    async def fetch_order_by_client_id(self, symbol, client_order_id):
        return self.known.get(client_order_id)

    async def fetch_fills_by_client_id(self, symbol, client_order_id, since_ms=None):
        return None                                          # its trades carry no client ids

    async def arm_dead_man_switch(self, timeout_s: float) -> DeadManSwitchStatus:
        await self._wait()
        self.arms.append(timeout_s)
        return DeadManSwitchStatus("fake", True, timeout_s, ("all orders",))

    async def disarm_dead_man_switch(self) -> DeadManSwitchStatus:
        self.arms.append(0.0)
        return DeadManSwitchStatus("fake", False, 0.0)


def limit_buy() -> OrderRequest:
    return OrderRequest("ETH/USDT:USDT", Side.BUY, OrderType.LIMIT, Decimal("0.1"), new_client_order_id(),
                        price=Decimal("2000"))


async def test_a_hung_venue_is_reported_at_its_timeout_even_if_its_cancellation_drags():
    venues = {"ok": FakeVenue(0.01), "hung": FakeVenue(30.0, stubborn=1.0),
              "bad": FakeVenue(fail=VenueError("bad", VenueErrorKind.UNAVAILABLE, "HTTP 503"))}
    sm = TradingStateMachine()
    seen = []
    estop = EmergencyStop(sm, venues, None, 0.3, [lambda p: seen.append((p.venue, p.status))])
    t0 = time.perf_counter()
    pressed = estop.press()
    assert sm.state is TradingState.HALTED, "HALTED inside the press, before anything awaited"
    assert [status for _, status in seen] == [CancelStatus.PENDING] * 3
    report = await pressed
    elapsed = time.perf_counter() - t0
    assert report.halted_after_ms < 5
    assert report.venues["ok"].status is CancelStatus.DONE and report.venues["ok"].elapsed_ms < 200
    assert report.venues["bad"].status is CancelStatus.FAILED and "503" in report.venues["bad"].error
    assert report.venues["hung"].status is CancelStatus.TIMEOUT
    assert 0.29 <= elapsed < 0.5          # not 0.3 s + the 1 s the hung connection takes to give up
    assert ("hung", CancelStatus.CANCELLING) in seen and seen[-1] == ("hung", CancelStatus.TIMEOUT)


async def test_an_order_in_flight_at_the_press_is_waited_for_and_cancelled():
    venue = FakeVenue(0.05)
    sm = TradingStateMachine()
    gate = OrderGate(sm, {"v": venue})
    req = limit_buy()
    submit = asyncio.ensure_future(gate.submit("v", req))
    await asyncio.sleep(0.01)                         # the order has left, no answer yet
    report = await EmergencyStop(sm, {"v": venue}, gate, 1.0).press()
    assert venue.cancelled == [req.client_order_id] and report.venues["v"].canceled == 1
    assert (await submit).client_order_id == req.client_order_id
    with pytest.raises(TradingHalted):                # and the gate lets nothing else out
        await gate.submit("v", limit_buy())
    assert len(venue.created) == 1 and gate.refused == 1


async def test_an_uncertain_submit_is_looked_up_by_client_id_never_resent():
    journal = []
    venue = FakeVenue(fail=VenueError("v", VenueErrorKind.TIMEOUT, "no response"))
    resolver = UnknownOutcomeResolver({"v": venue}, ResolvePolicy(absent_after_s=0.05, first_delay_s=0.01))
    gate = OrderGate(TradingStateMachine(), {"v": venue}, lambda what, *a: journal.append(what), resolver=resolver)
    req = limit_buy()
    venue.known[req.client_order_id] = order(req)      # the venue did receive it
    found = await gate.submit("v", req)
    assert found.client_order_id == req.client_order_id and len(venue.created) == 1
    assert journal == ["submitted", "uncertain", "acknowledged"]
    journal.clear()
    with pytest.raises(OrderNotPlaced):                # never received: reported as not placed
        await gate.submit("v", limit_buy())
    assert journal == ["submitted", "uncertain", "not_placed"] and len(venue.created) == 2


async def test_a_rejected_submit_is_not_looked_up():
    venue = FakeVenue(fail=VenueError("v", VenueErrorKind.REJECTED, "insufficient margin"))
    looked = []
    venue.fetch_order_by_client_id = lambda *a: looked.append(a)   # type: ignore[method-assign]
    with pytest.raises(VenueError, match="insufficient"):
        await OrderGate(TradingStateMachine(), {"v": venue}).submit("v", limit_buy())
    assert looked == []


async def test_the_dead_man_heartbeat_rearms_in_the_background_and_disarms_on_stop():
    slow = FakeVenue(0.2)
    hb = DeadManHeartbeat({"v": slow, "no-switch": object()}, timeout_s=30, tick_seconds=0.1, call_timeout_s=1)
    await hb.arm()
    assert slow.arms == [30] and list(hb.ports) == ["v"]
    hb.last_beat["v"] -= 5                            # a beat is due
    t0 = time.perf_counter()
    hb.beat()
    hb.beat()                                         # still out: not stacked
    assert time.perf_counter() - t0 < 0.05            # never blocks the tick
    await asyncio.sleep(0.3)
    assert slow.arms == [30, 30] and hb.describe()["v"].startswith("armed 30 s")
    await hb.disarm()
    assert slow.arms[-1] == 0.0 and hb.describe()["v"].startswith("off")


def test_the_countdown_must_outlast_two_heartbeats():
    check_timeout(10, 5)
    with pytest.raises(ValueError, match="at least 10 s"):
        check_timeout(9, 5)
    with pytest.raises(ValueError, match="at least 2 s"):          # heartbeats are at least 1 s apart
        check_timeout(1.5, 0.1)


def test_journal_books_survive_a_restart(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    assert j.latest_book("eth_basis", "live") is None
    j.save_book("s1", "eth_basis", "live", {"cex": {"okx": {"usdt": 1.0, "spot": {}, "perps": {"ETH": [-1, 2500]}}}})
    j.save_book("s1", "eth_basis", "live", {"cex": {}, "flat": True})
    j.save_book("s2", "btc_basis", "live", {"cex": {}})
    j.close()
    session, _, book = Journal(tmp_path / "j.sqlite3").latest_book("eth_basis", "live")
    assert session == "s1" and book == {"cex": {}, "flat": True}


async def test_one_press_halts_every_session_inside_the_call_and_reports_through_its_handle():
    from engine.services.live.emergency_stop import EStopHandle

    class Session:
        def __init__(self, rid: str, venue: FakeVenue) -> None:
            self.request_id = rid
            self.state = TradingStateMachine()
            self.stop = EmergencyStop(self.state, {"v": venue}, None, 1.0)
            self.presses = 0

        @property
        def halted_at(self):
            return self.stop.last_halted_at

        def emergency_stop(self, reason, on_progress=()):
            self.presses += 1
            return self.stop.press(reason, on_progress)

    heard = []
    sessions = [Session("a", FakeVenue(0.02)), Session("b", FakeVenue(0.01))]
    starting = object()
    handle = EStopHandle("press", [lambda rid, p: heard.append((rid, p.status))], starts=[starting])
    for s in sessions:
        handle.stop(s)
    handle.halted()
    assert all(s.state.state is TradingState.HALTED and s.presses == 1 for s in sessions), "one halt each"
    assert handle.request_ids == ["a", "b"] and handle.halted_ms < 50
    await asyncio.sleep(0.05)
    assert not handle.done.done(), "a session that was starting at the press is still to come"
    late = Session("c", FakeVenue())
    handle.stop(late)                      # the service does this the moment the start is up
    assert late.state.state is TradingState.HALTED
    handle.start_ended(starting)
    reports = await asyncio.wait_for(handle.done, 1.0)
    assert set(reports) == {"a", "b", "c"} and handle.all_cancelled and handle.finished_ms > 0
    assert [st for rid, st in heard if rid == "a"] == [CancelStatus.PENDING, CancelStatus.CANCELLING,
                                                         CancelStatus.DONE]


def test_the_badge_and_the_phase_line_come_from_the_same_facts():
    from engine.services.live.snapshot import badge as _badge

    badge, line = _badge("awaiting_acknowledgement", TradingState.ACTIVE, "")
    assert badge.text == "AWAITING ACK" and "acknowledge" in line, "never ACTIVE while trading waits"
    badge, line = _badge("running", TradingState.HALTED, "operator emergency stop (button)")
    assert badge.text == "HALTED" and line.startswith("running, HALTED") and "operator emergency stop" in line
    badge, line = _badge("running", TradingState.REDUCING, "risk limit")
    assert badge.text == "REDUCING" and "REDUCING" in line
    assert _badge("stopped", TradingState.HALTED, "")[0].text == "STOPPED"
    assert _badge("running", TradingState.ACTIVE, "")[0].text == "ACTIVE"


def test_reducing_lets_only_risk_reducing_instructions_through():
    from engine.domain.instructions import Instruction, Op
    from engine.domain.portfolio import Portfolio
    from engine.services.live.execution import PaperExecutor, is_risk_reducing

    book = Portfolio()
    book.account("okx").perp("ETH").size = -2.0
    book.account("bybit").spot["ETH"] = 3.0
    adds_short = Instruction(Op.PERP_TRADE, "okx", "ETH", -0.5)
    covers = Instruction(Op.PERP_TRADE, "okx", "ETH", 0.5)
    flips = Instruction(Op.PERP_TRADE, "okx", "ETH", 3.0)           # past flat: opens a long
    assert not is_risk_reducing(adds_short, book) and is_risk_reducing(covers, book)
    assert not is_risk_reducing(flips, book)
    assert not is_risk_reducing(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.1), book), "a new position"
    assert is_risk_reducing(Instruction(Op.SPOT_TRADE, "bybit", "ETH", -1.0), book)
    assert not is_risk_reducing(Instruction(Op.SPOT_TRADE, "bybit", "ETH", 1.0), book)
    borrow = Instruction(Op.BUNDLE, "aave_v3", children=[Instruction(Op.BORROW, "aave_v3", "WETH", 1.0)])
    repay = Instruction(Op.BUNDLE, "aave_v3", children=[Instruction(Op.REPAY, "aave_v3", "WETH", 1.0)])
    assert not is_risk_reducing(borrow, book) and is_risk_reducing(repay, book)

    class World:
        def __init__(self) -> None:
            self.executed: list[Instruction] = []

        def execute(self, ins, t, charge_gas=True):
            self.executed.append(ins)
            return ins

    from engine.config import load_config
    from engine.services.run_params import build_run_params
    from tests.unit.market_support import market

    book.account("okx").usdt = 10_000.0                 # margin enough for the pre-trade check
    world, state = World(), TradingStateMachine()
    paper = PaperExecutor(world, state, book, params=build_run_params(load_config("eth_basis"), 10_000.0),
                          market=market())
    state.reduce("risk limit")
    with pytest.raises(TradingHalted, match="reduce-only"):
        paper.execute(adds_short, 0)
    paper.execute(covers, 0)
    assert world.executed == [covers] and paper.sent == 1
