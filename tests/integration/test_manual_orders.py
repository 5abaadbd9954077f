"""Manual orders (the order ticket and the per-position Close) against the loopback exchange emulator
with the real ccxt clients: placed through the same pre-trade checks, order gate and journal as
strategy orders, shown in the blotter as manual, refused while HALTED or while recovery waits, and
refused by a pre-trade check with its reason; Close sends a reduce-only order for the position size."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from engine.domain.venue_ports import OrderType, Side
from engine.services.live import TradingState
from engine.services.live.manual_orders import ManualOrder, ManualOrderRefused
from tests.integration.live_support import make_service, order_posts, request, venue_positions, wait_until


@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    yield svc
    await svc.close()


async def entered(service, **kw):
    rid = await service.start(request(**kw))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.status().trades == 4, timeout=10, what="the live entry")
    return rid, s


def manual_events(service, rid: str) -> list[dict]:
    assert service._journal("testnet").flush(5.0)       # journal writes are queued off the trading path
    return [json.loads(d) for _at, sid, _v, type_, d in service._journal("testnet").events(2000)
            if type_ == "manual_order" and sid == rid]


async def test_a_manual_order_is_placed_journaled_and_in_the_blotter(service, emulator):
    rid, s = await entered(service)
    perp_before = venue_positions(emulator)["binance"]
    book_before = s.portfolio.cex["binance"].perps["ETH"].size
    order = ManualOrder("binance", "ETH", "perp", Side.BUY, Decimal("0.05"))
    quote = service.quote_manual_order(rid, order)
    assert quote.notional == pytest.approx(0.05 * quote.reference_price) and quote.fee > 0
    assert any("Notional" in line for line in quote.lines()) and any("Fee" in line for line in quote.lines())
    posts = order_posts(emulator)
    result = await service.manual_order(rid, order)
    assert order_posts(emulator)["binance"] == posts["binance"] + 1
    assert result.client_order_id.startswith("man") and result.filled == pytest.approx(0.05)
    assert venue_positions(emulator)["binance"] == perp_before + Decimal("0.05")
    assert s.portfolio.cex["binance"].perps["ETH"].size == pytest.approx(book_before + 0.05), "the book follows"
    row = s.orders[-1]
    assert row.source == "manual" and row.client_order_id == result.client_order_id and row.status == "closed"
    assert s.journal.flush(5.0)                  # journal writes are queued off the trading path
    journaled = service._journal("testnet").db.execute(
        "SELECT venue, side, amount, status FROM orders WHERE client_order_id=?", (result.client_order_id,)).fetchone()
    assert journaled == ("binance", "buy", "0.05", "closed")
    assert manual_events(service, rid)[0]["client_order_id"] == result.client_order_id
    # the book and the venues still agree: ticks go on without a position breach
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 3, what="three more ticks")
    assert s.state.state is TradingState.ACTIVE, s.state.history[-1].reason if s.state.history else ""


async def test_refused_while_halted_and_nothing_is_sent(service, emulator):
    rid, s = await entered(service)
    await service.emergency_stop("test").done
    posts = order_posts(emulator)
    order = ManualOrder("binance", "ETH", "perp", Side.BUY, Decimal("0.01"))
    with pytest.raises(ManualOrderRefused, match="HALTED"):
        service.quote_manual_order(rid, order)
    with pytest.raises(ManualOrderRefused, match="HALTED"):
        await service.manual_order(rid, order)
    assert order_posts(emulator) == posts


async def test_refused_while_recovery_is_unacknowledged(service, emulator, cex_store, tmp_path, cache_dir):
    rid, s = await entered(service)
    await service.close()                      # positions stay: a restart finds them
    again = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    try:
        rid2 = await again.start(request())
        assert again.session(rid2).phase.value == "awaiting_acknowledgement"
        with pytest.raises(ManualOrderRefused, match="acknowledg"):
            await again.manual_order(rid2, ManualOrder("binance", "ETH", "perp", Side.SELL, Decimal("0.01")))
    finally:
        await again.close()


async def test_refused_by_a_pretrade_check_with_the_reason(service, emulator):
    rid, s = await entered(service, risk_overrides={"max_position_usdt": 20_000.0})
    posts = order_posts(emulator)
    with pytest.raises(ManualOrderRefused, match="above risk.max_position_usdt 20,000 USDT"):
        await service.manual_order(rid, ManualOrder("binance", "ETH", "perp", Side.SELL, Decimal(10)))
    emulator.venues["binance"].balances["spot"]["USDT"] = Decimal(0)
    with pytest.raises(ManualOrderRefused, match="account has 0 USDT free"):
        await service.manual_order(rid, ManualOrder("binance", "ETH", "spot", Side.BUY, Decimal("0.5")))
    assert order_posts(emulator) == posts
    assert s.state.state is TradingState.ACTIVE, "a refused ticket does not reduce the strategy's session"
    assert [e["outcome"] for e in manual_events(service, rid)] == ["refused", "refused"]
    with pytest.raises(ManualOrderRefused, match="reduce-only"):
        service.quote_manual_order(rid, ManualOrder("binance", "ETH", "perp", Side.SELL, Decimal("0.01"),
                                                    reduce_only=True))


async def test_close_sends_a_reduce_only_order_for_the_position_size(service, emulator):
    rid, s = await entered(service)
    size = s.portfolio.cex["okx"].perps["ETH"].size
    assert size < 0
    order = service.close_position_order(rid, "okx", "perp", "ETH")
    assert order.side is Side.BUY and order.reduce_only and order.amount == Decimal(repr(abs(size)))
    assert order.order_type is OrderType.MARKET
    result = await service.manual_order(rid, order)
    row = s.orders[-1]
    assert row.reduce_only and row.source == "manual" and row.client_order_id == result.client_order_id
    assert venue_positions(emulator)["okx"] == 0
    assert s.portfolio.cex["okx"].perps["ETH"].size == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ManualOrderRefused, match="no okx ETH perp position"):
        service.close_position_order(rid, "okx", "perp", "ETH")


async def test_paper_fills_and_paper_manual_orders_are_in_the_blotter(service, emulator):
    rid = await service.start(request(execution="paper"))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2 and len(s.orders) >= 4, timeout=10, what="the paper entry")
    rows = s.orders
    assert len(rows) == 4 and {r.status for r in rows} == {"filled (paper)"}
    assert {r.venue for r in rows} == {"binance", "bybit", "okx"} and {r.source for r in rows} == {"strategy"}
    result = await service.manual_order(rid, ManualOrder("okx", "ETH", "perp", Side.BUY, Decimal("0.1")))
    assert s.orders[-1].source == "manual" and s.orders[-1].status == "filled (paper)"
    assert result.filled == pytest.approx(0.1) and order_posts(emulator) == dict.fromkeys(emulator.venues, 0)
    with pytest.raises(ManualOrderRefused, match="paper sessions fill at the market price"):
        service.quote_manual_order(rid, ManualOrder("okx", "ETH", "perp", Side.BUY, Decimal("0.1"),
                                                    OrderType.LIMIT, Decimal(1000)))


async def test_a_resting_limit_order_is_sent_journaled_and_listed(service, emulator):
    rid, s = await entered(service)
    ref = s.feed.view.perp[("binance", "ETH")][-1]
    price = Decimal(int(ref * 0.8))
    order = ManualOrder("binance", "ETH", "perp", "buy", Decimal("0.02"), "limit", price)
    quote = service.quote_manual_order(rid, order)
    assert quote.notional == pytest.approx(0.02 * float(price))
    result = await service.manual_order(rid, order)
    assert result.status == "open" and result.filled == 0 and result.client_order_id.startswith("man")
    row = s.orders[-1]
    assert row.source == "manual" and row.status == "open"
    assert s.journal.flush(5.0)                  # journal writes are queued off the trading path
    journaled = service._journal("testnet").db.execute(
        "SELECT type, price, status FROM orders WHERE client_order_id=?", (result.client_order_id,)).fetchone()
    assert journaled == ("limit", str(price), "open")
    assert len(emulator.venues["binance"].open_orders()) == 1
    with pytest.raises(ManualOrderRefused, match="side 'hold'"):
        ManualOrder("binance", "ETH", "perp", "hold", Decimal("1"))


def resting_fills(service, rid: str | None = None) -> list[dict]:
    assert service._journal("testnet").flush(5.0)
    return [json.loads(d) for _at, sid, _v, type_, d in service._journal("testnet").events(2000)
            if type_ == "resting_fill" and (rid is None or sid == rid)]


def rest_then_cross(emulator, venue: str, key: str) -> tuple[Decimal, Decimal]:
    """(limit price one tick inside the book's buy side, the price that makes the ask reach it)."""
    inst = emulator.venues[venue].instruments[key]
    limit = inst.price - inst.tick * 2          # below the ask: rests
    return limit, limit - inst.tick             # ask = price + tick = limit: crosses


async def test_a_resting_limit_orders_later_fills_are_booked_once_and_the_book_keeps_matching(service, emulator):
    rid, s = await entered(service)
    perp_before = s.portfolio.cex["binance"].perps["ETH"].size
    spot_before = s.portfolio.cex["bybit"].spot["ETH"]
    perp_limit, perp_cross = rest_then_cross(emulator, "binance", "perp:ETHUSDT")
    spot_limit, spot_cross = rest_then_cross(emulator, "bybit", "spot:ETHUSDT")
    perp = await service.manual_order(rid, ManualOrder("binance", "ETH", "perp", "buy", Decimal("0.02"), "limit",
                                                       perp_limit))
    spot = await service.manual_order(rid, ManualOrder("bybit", "ETH", "spot", "buy", Decimal("0.01"), "limit",
                                                       spot_limit))
    assert perp.status == "open" and spot.status in ("open", "unknown") and perp.filled == spot.filled == 0
    assert {o.client_order_id for o in s.resting.orders.values()} == {perp.client_order_id, spot.client_order_id}
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 2, what="two ticks with the orders resting")
    assert s.portfolio.cex["binance"].perps["ETH"].size == perp_before and not resting_fills(service, rid)

    # the market comes down to both limits: the venue fills them (at their limit prices)
    assert emulator.venues["binance"].move_price("perp:ETHUSDT", perp_cross)
    assert emulator.venues["bybit"].move_price("spot:ETHUSDT", spot_cross)
    await wait_until(lambda: not s.resting, timeout=10, what="both resting orders final")
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 3, what="three ticks after the fills")
    assert s.state.state is TradingState.ACTIVE, s.state.history[-1].reason if s.state.history else ""
    assert s.portfolio.cex["binance"].perps["ETH"].size == pytest.approx(perp_before + 0.02, abs=1e-12)
    # Bybit took the spot buy's fee in ETH and reported it: the book holds what arrived
    spot_fee = 0.01 * float(emulator.venues["bybit"].taker_fee["spot"])
    assert s.portfolio.cex["bybit"].spot["ETH"] == pytest.approx(spot_before + 0.01 - spot_fee, abs=1e-12)
    fills = resting_fills(service, rid)
    spot_fill = next(f for f in fills if f["client_order_id"] == spot.client_order_id)
    assert spot_fill["fee_reported"] and spot_fill["fee_coin"] == pytest.approx(spot_fee) and spot_fill["fee"] == 0
    assert sorted((f["client_order_id"], f["amount"], f["price"]) for f in fills) == sorted(
        [(perp.client_order_id, pytest.approx(0.02), pytest.approx(float(perp_limit))),
         (spot.client_order_id, pytest.approx(0.01), pytest.approx(float(spot_limit)))]), "each fill booked once"
    assert venue_positions(emulator)["binance"] == Decimal(str(s.portfolio.cex["binance"].perps["ETH"].size))


async def test_resting_orders_survive_a_restart_and_each_fill_is_booked_once(service, emulator):
    rid, s = await entered(service)
    perp_before = s.portfolio.cex["binance"].perps["ETH"].size
    limit, cross = rest_then_cross(emulator, "binance", "perp:ETHUSDT")
    first = await service.manual_order(rid, ManualOrder("binance", "ETH", "perp", "buy", Decimal("0.02"), "limit",
                                                        limit))
    second = await service.manual_order(rid, ManualOrder("binance", "ETH", "perp", "buy", Decimal("0.03"), "limit",
                                                         limit - 10))
    emulator.venues["binance"].move_price("perp:ETHUSDT", cross)            # the first fills, the second rests
    await wait_until(lambda: len(s.resting.orders) == 1, timeout=10, what="the first fill booked")
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 1, what="a tick after the first fill (the book saved)")
    await service.stop(rid)                  # the loop stops; the second order rests on at the venue
    emulator.venues["binance"].move_price("perp:ETHUSDT", limit - 10 - emulator.venues["binance"]
                                          .instruments["perp:ETHUSDT"].tick)   # it fills while we are away
    assert not emulator.venues["binance"].open_orders()

    rid2 = await service.start(request())
    s2 = service.session(rid2)
    if s2.phase.value == "awaiting_acknowledgement":
        service.acknowledge_recovery(rid2)
    await wait_until(lambda: s2.ticks >= 3 and not s2.resting, timeout=15, what="the resumed session's ticks")
    assert s2.state.state is TradingState.ACTIVE, s2.state.history[-1].reason if s2.state.history else ""
    assert s2.portfolio.cex["binance"].perps["ETH"].size == pytest.approx(perp_before + 0.05, abs=1e-12)
    assert venue_positions(emulator)["binance"] == Decimal(str(s2.portfolio.cex["binance"].perps["ETH"].size))
    booked = [(f["client_order_id"], f["amount"]) for f in resting_fills(service)]
    assert sorted(booked) == sorted([(first.client_order_id, pytest.approx(0.02)),
                                     (second.client_order_id, pytest.approx(0.03))]), booked
