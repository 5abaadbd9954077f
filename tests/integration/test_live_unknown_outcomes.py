"""A live order whose outcome is unknown, against the loopback emulator: the venue booked it, but the
answer came late, was cut off, garbled, or a gateway answered 504. The session looks the order up by
its client order id before anything else is sent, waits for it visibly, and never doubles the
exposure; an order the venue never booked is sent again only once the venue confirms it; an outcome
that stays unknown for the whole budget halts the session with the reason. The venues' spot holdings
are reconciled with the book like the perps.

Each case asserts: one spot entry at the venue, the book's holdings equal to the venue's, and what
the session showed while it waited.
"""
from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from engine.services.live import TradingState
from tests.integration.live_support import make_service, order_posts, request, venue_positions, wait_until

SPOT_CREATE = ("v5/order/create", "POST")      # the eth_basis entry's first order: ETH spot at Bybit
BYBIT_ETH_AT_START = Decimal("10")             # the emulator's Bybit account holds 10 ETH of its own


def spot_orders(emulator) -> list:
    return [o for o in emulator.venues["bybit"].orders.values() if o.instrument.kind == "spot"]


def venue_spot(emulator) -> Decimal:
    return emulator.venues["bybit"].balances["unified"]["ETH"] - BYBIT_ETH_AT_START


def journal_rows(tmp_path) -> list[tuple]:
    db = sqlite3.connect(tmp_path / "journal" / "journal-testnet.sqlite3")
    try:
        return db.execute("SELECT venue, symbol, side, status, error FROM orders ORDER BY created_at").fetchall()
    finally:
        db.close()


@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    # 0.5 s per request: a late answer (1.5 s) is a timeout while the order is booked
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir, timeout_s=0.5)
    yield svc
    await svc.close()


def watch(service):
    """Every snapshot the session published (the views' only input)."""
    seen = []
    service.on_update = lambda session: seen.append(session.snapshot())
    return seen


@pytest.mark.parametrize("fault", [
    {"answer_late_s": 1.5}, {"drop_answer": True}, {"body": "html"}, {"body": "truncated"}, {"body": "empty"},
    {"status_after": 504},
], ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
async def test_a_booked_order_whose_answer_is_lost_is_looked_up_never_sent_twice(service, emulator, tmp_path, fault):
    emulator.add_fault("bybit", *SPOT_CREATE, times=1, **fault)
    seen = watch(service)
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 4 and s.ticks >= 3, timeout=10, what="the entry")
    assert len(spot_orders(emulator)) == 1, "the entry's spot buy was sent once"
    book = Decimal(repr(s.portfolio.cex["bybit"].spot["ETH"]))
    assert venue_spot(emulator) == book > 0                                # the book holds what the venue holds
    perps = venue_positions(emulator)
    for venue, size in perps.items():
        assert float(size) == pytest.approx(s.portfolio.cex[venue].perps["ETH"].size, abs=1e-12)
    # the perps hedge that one spot entry once (each rounded to its venue's lot)
    assert float(sum(perps.values())) == pytest.approx(-float(book), abs=0.005)
    st = service.status(rid)
    assert st.state == "ACTIVE" and not st.breaches
    kinds = [e.type for e in s.events.events]
    assert "order_outcome_started" in kinds and "order_outcome_found" in kinds
    assert any(snap.unresolved_orders for snap in seen), "the wait was shown"
    waiting = next(snap for snap in seen if snap.unresolved_orders)
    assert "outcome unknown" in waiting.unresolved_orders[0] and "WAITING" in waiting.phase_line
    assert journal_rows(tmp_path)[0][:4] == ("bybit", "ETH/USDT", "buy", "closed")


async def test_an_order_the_venue_never_booked_is_sent_again_only_after_the_venue_says_so(service, emulator,
                                                                                            tmp_path):
    # 503 before the venue sees it: not booked. The gate still cannot know, so it looks the order up.
    emulator.add_fault("bybit", *SPOT_CREATE, times=1, http_status=503)
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 5 and all(venue_positions(emulator).values()), timeout=15,
                     what="the entry, second time")
    assert len(spot_orders(emulator)) == 1 and order_posts(emulator)["bybit"] == 3     # 2 spot tries + 1 perp
    assert venue_spot(emulator) == Decimal(repr(s.portfolio.cex["bybit"].spot["ETH"]))
    assert "order_outcome_not_placed" in [e.type for e in s.events.events]
    rows = journal_rows(tmp_path)
    assert rows[0][3] == "not_placed" and rows[1][:4] == ("bybit", "ETH/USDT", "buy", "closed")


async def test_an_outcome_that_stays_unknown_halts_the_session_with_the_reason(emulator, cex_store, tmp_path,
                                                                               cache_dir):
    service = make_service(emulator, cex_store, tmp_path / "journal", cache_dir, timeout_s=0.5)
    try:
        emulator.add_fault("bybit", *SPOT_CREATE, times=1, answer_late_s=1.0)
        rid = await service.start(request(resolve_budget_seconds=1.0))
        # from the first tick on (start() returns before it runs), every look-up fails: open orders,
        # the order by id, its trades (the funding read on the same endpoint still answers: without
        # it the venue's cash is unknown and nothing trades at all)
        for path in ("v5/order/realtime", "v5/order/history"):
            emulator.add_fault("bybit", path, "GET", http_status=503)
        emulator.add_fault("bybit", "v5/execution/list", "GET", query="orderLinkId", http_status=503)
        s = service.session(rid)
        await wait_until(lambda: s.state.state is TradingState.HALTED, timeout=10, what="the halt")
        st = service.status(rid)
        assert "order outcome unknown" in st.state_reason and "client id" in st.state_reason
        assert "no conclusive answer" in st.state_reason
        assert len(spot_orders(emulator)) == 1 and order_posts(emulator)["bybit"] == 1      # nothing else was sent
        assert "order_outcome_unresolved" in [e.type for e in s.events.events]
        assert journal_rows(tmp_path)[0][3] == "unknown"          # a restart resolves it
        await wait_until(lambda: s.last_estop is not None, what="the halt's cancel-all")
    finally:
        await service.close()


async def test_a_spot_buy_made_by_hand_is_a_breach_that_halts(service, emulator):
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 4 and s.ticks >= 2, what="the entry")
    assert not service.status(rid).breaches
    # what the 16.4-vs-3.2 report was: the venue holds more spot than the book
    emulator.venues["bybit"].place("spot:ETHUSDT", "buy", "market", Decimal("3.2"), None, "byhand1")
    await wait_until(lambda: s.state.state is TradingState.HALTED, what="the spot mismatch")
    assert any("ETH/USDT (spot)" in b for b in service.status(rid).breaches)


async def test_a_binance_spot_buy_whose_answer_is_lost_is_booked_with_the_fee_in_the_coin(service, emulator,
                                                                                          tmp_path):
    """Binance's order look-up carries no fee: the resolver's look-up completes the order with its
    trades (myTrades by the orderId found by client id), whose commission is in the ETH bought. The
    book holds what arrived and pays only the notional in USDT, so cash and spot stay equal to the
    venue's tick after tick (the configured-bps USDT estimate would differ on both counts)."""
    binance = emulator.venues["binance"]
    emulator.add_fault("binance", "api/v3/order", "POST", times=1, drop_answer=True)
    seen = watch(service)
    rid = await service.start(request(config_overrides={"hedge.spot_venue": "binance"}))
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 4 and s.ticks >= 3 and len(s.cash.baseline) == 3, timeout=10,
                     what="the entry")
    [buy] = [o for o in binance.orders.values() if o.instrument.kind == "spot"]
    assert buy.side == "buy" and buy.fee_asset == "ETH" and buy.fee == buy.filled * binance.taker_fee["spot"] > 0
    assert order_posts(emulator)["binance"] == 2, "one spot buy (answer lost, not sent again) and one perp"
    assert "order_outcome_found" in [e.type for e in s.events.events]
    assert any(snap.unresolved_orders for snap in seen), "the wait was shown"
    assert ("GET", "api/v3/myTrades") in binance.requests, "the fee came from the order's trades"
    book = s.portfolio.cex["binance"]
    assert book.spot["ETH"] == pytest.approx(float(buy.filled - buy.fee), abs=1e-12)

    def gaps() -> tuple[float, float]:
        held_usdt = sum((b.get("USDT", Decimal(0)) for b in binance.balances.values()), Decimal(0))
        held_eth = sum((b.get("ETH", Decimal(0)) for b in binance.balances.values()), Decimal(0))
        cash = float(held_usdt - s.cash.baseline["binance"]) - book.usdt
        spot = float(held_eth - s.spot_baseline[("binance", "ETH")]) - book.spot.get("ETH", 0.0)
        return abs(cash), abs(spot)

    cash_gaps, spot_gaps = [], []
    for _ in range(3):
        ticks = s.ticks
        await wait_until(lambda ticks=ticks: s.ticks >= ticks + 1, what="a tick")
        async with s.lock:
            cash, spot = gaps()
        cash_gaps.append(cash)
        spot_gaps.append(spot)
    st = service.status(rid)
    assert st.state == "ACTIVE" and not st.breaches, (st.state_reason, st.breaches, st.last_error)
    assert max(cash_gaps) <= 1e-6, cash_gaps
    assert max(spot_gaps) <= 1e-12, spot_gaps
    assert journal_rows(tmp_path)[0][:4] == ("binance", "ETH/USDT", "buy", "closed")
