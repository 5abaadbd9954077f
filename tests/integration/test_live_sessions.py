"""Paper and live sessions against the loopback exchange emulator: the same strategy classes as the
backtest, live emulator prices, real orders in live mode, risk breaches, flatten and the start gates."""
from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from engine.services.live import LiveStartError, SessionPhase, TradingHalted, TradingState
from engine.domain.instructions import Instruction, Op
from tests.integration.live_support import (
    make_service,
    order_posts,
    request,
    venue_positions,
    wait_until,
)

ALLOCATION = {"binance": 0.4, "bybit": 0.3, "okx": 0.3}      # configs/modes/eth_basis.yaml
MARKS = {"binance": 2500.0, "bybit": 2501.0, "okx": 2499.0}  # the emulator's ETH perp prices


@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    yield svc
    await svc.close()


def perp(session, venue: str) -> float:
    acct = session.portfolio.cex.get(venue)
    return acct.perps["ETH"].size if acct and "ETH" in acct.perps else 0.0


async def test_paper_eth_basis_places_its_hedge_at_live_emulator_prices(service, emulator):
    rid = await service.start(request(execution="paper"))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 3, what="three paper ticks")
    spot = s.portfolio.cex["bybit"].spot["ETH"]
    # entry: X = V / (1 + m + c) of spot at the emulator's Bybit ETH spot price (last 2501): m the margin
    # target, c the spot buy's own cost (Bybit's taker fee + the cost table's 10k bucket, with the
    # 1.0001 rounding margin), reserved so that every margin account gets its whole target
    m = s.params.strategy.margin_ratio_target
    c = (s.params.cex["bybit"].spot_taker_bps + s.feed.view.cost_bps["ETH_USDT"][0][0]) * 1e-4 * 1.0001
    assert spot == pytest.approx(10_000 / (1.0 + m + c) / 2501.0, rel=1e-9)
    for venue, weight in ALLOCATION.items():
        assert perp(s, venue) == pytest.approx(-weight * spot, rel=1e-9)
        assert s.portfolio.cex[venue].perps["ETH"].entry_price == pytest.approx(MARKS[venue], rel=1e-12)  # the live mark
    st = service.status(rid)
    assert st.phase == "running" and st.state == "ACTIVE" and st.trades == 6   # spot + 2 transfers + 3 perps
    assert st.value == pytest.approx(10_000 + st.pnl_components["execution_costs"], rel=1e-9)
    assert st.reconciliation_error < 1e-6
    assert sum(order_posts(emulator).values()) == 0 and venue_positions(emulator) == dict.fromkeys(emulator.venues, 0)


async def test_live_mode_places_real_orders_and_journals_them(service, emulator, tmp_path):
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 3, what="three live ticks")
    positions = venue_positions(emulator)
    spot_qty = emulator.venues["bybit"].balances["unified"]["ETH"] - Decimal("10")   # it started with 10 ETH
    assert spot_qty == Decimal(repr(s.portfolio.cex["bybit"].spot["ETH"])) and spot_qty > Decimal("2.9")
    for venue, weight in ALLOCATION.items():
        assert positions[venue] < 0
        assert float(positions[venue]) == pytest.approx(perp(s, venue), abs=1e-12)        # book == venue
        assert float(positions[venue]) == pytest.approx(-weight * float(spot_qty), abs=0.002)  # venue lot steps
    filled = [(v, o.instrument.kind, o.side, o.status) for v, st in emulator.venues.items() for o in st.orders.values()]
    assert sorted(filled) == sorted([("bybit", "spot", "buy", "filled"), ("binance", "perp", "sell", "filled"),
                                     ("bybit", "perp", "sell", "filled"), ("okx", "perp", "sell", "filled")])
    db = sqlite3.connect(tmp_path / "journal" / "journal-testnet.sqlite3")
    rows = db.execute("SELECT venue, symbol, side, status, filled FROM orders ORDER BY created_at").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("bybit", "ETH/USDT", "buy", "closed"), ("binance", "ETH/USDT:USDT", "sell", "closed"),
        ("bybit", "ETH/USDT:USDT", "sell", "closed"), ("okx", "ETH/USDT:USDT", "sell", "closed")]
    fills = dict(((v, sym), Decimal(a)) for v, sym, a in db.execute("SELECT venue, symbol, amount FROM fills"))
    assert fills[("okx", "ETH/USDT:USDT")] == -positions["okx"]
    st = service.status(rid)
    assert st.trades == 4 and not st.breaches and st.state == "ACTIVE"
    assert st.reconciliation_error < 1e-6
    assert len(s.orders) == 4 and all(o.status == "closed" for o in s.orders)      # the blotter


async def test_live_refuses_modes_with_onchain_legs(service, emulator):
    with pytest.raises(LiveStartError, match="on-chain legs.*paper"):
        await service.start(request("usdt_market_neutral_no_leverage"))
    assert service.sessions == {} and sum(len(st.requests) for st in emulator.venues.values()) == 0


async def test_production_live_needs_confirmation_and_passing_checks(service, emulator):
    with pytest.raises(LiveStartError, match="explicit confirmation"):
        await service.start(request(environment="production"))
    emulator.set_faults("okx", bad_auth=True)                    # check-venues FAILs on OKX's key
    with pytest.raises(LiveStartError, match="passing check-venues run.*okx"):
        await service.start(request(environment="production", confirm_production=True))
    assert service.sessions == {} and sum(order_posts(emulator).values()) == 0
    emulator.clear_faults()
    rid = await service.start(request(environment="production", confirm_production=True))
    assert service.status(rid).environment == "production"


async def test_a_risk_breach_halts_before_trading_on_the_data(service, emulator):
    # The venues' clocks run 10 s behind: every quote is 10 s old, over a 5 s data-age limit.
    for venue in emulator.venues:
        emulator.set_faults(venue, clock_skew_ms=-10_000)
    rid = await service.start(request(execution="paper", risk_overrides={"max_data_age_seconds": 5.0}))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2, what="two ticks")
    st = service.status(rid)
    assert st.state == "HALTED" and any(b.startswith("max_data_age_seconds") for b in st.breaches)
    assert st.trades == 0 and s.portfolio.cex["bybit"].spot == {}    # the entry never ran on stale data
    assert [e.type for e in s.events.events[:2]] == ["breach", "state"]
    assert s.journal.events(limit=50) and any(row[3] == "breach" for row in s.journal.events(limit=50))


async def test_a_live_drawdown_breach_halts_and_cancels_then_nothing_more_is_sent(service, emulator):
    rid = await service.start(request(risk_overrides={"max_drawdown": 1e-6, "max_daily_loss": 0.5}))
    s = service.session(rid)
    await wait_until(lambda: s.state.state is TradingState.HALTED, what="the drawdown breach")
    await wait_until(lambda: s.last_estop is not None, what="the breach's cancel-all")
    assert s.last_estop.all_cancelled and set(s.last_estop.venues) == set(emulator.venues)
    assert "max_drawdown" in [b.limit for b in service.risk_check(rid)]
    sent = order_posts(emulator)
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 3, what="ticks after the halt")
    assert order_posts(emulator) == sent


async def test_flatten_closes_cex_legs_reduce_only(service, emulator):
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.status().trades == 4, what="the entry")
    with pytest.raises(LiveStartError, match="confirmation"):
        await service.flatten(rid, confirmed=False)
    report = await service.flatten(rid, confirmed=True)
    assert report.failed == [] and report.cannot_unwind == []
    assert len(report.closed) == 4 and sum("(reduce-only)" in c for c in report.closed) == 3
    assert venue_positions(emulator) == dict.fromkeys(emulator.venues, Decimal(0))
    # the spot leg was sold: all of it but the part below one lot (the buy's fee was taken in ETH, so
    # the holding is off the lot grid), which the book holds too
    left = emulator.venues["bybit"].balances["unified"]["ETH"] - Decimal("10")
    assert Decimal(0) <= left < emulator.venues["bybit"].instrument("spot:ETHUSDT").lot
    assert s.portfolio.cex["bybit"].spot.get("ETH", 0.0) == pytest.approx(float(left), abs=1e-12)
    closes = [o for st in emulator.venues.values() for o in st.orders.values()
              if o.instrument.kind == "perp" and o.side == "buy"]
    assert len(closes) == 3 and all(o.reduce_only for o in closes)
    assert s.state.state is TradingState.HALTED
    with pytest.raises(TradingHalted):             # and nothing new can be sent until an explicit reset
        await s.live_exec.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.1), len(s.feed.view.timestamps) - 1)


async def test_paper_flatten_unwinds_the_onchain_legs_with_the_hedge_in_step(service):
    rid = await service.start(request("usdt_market_neutral_no_leverage", execution="paper"))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.portfolio.wallet.tokens.get("weETH", 0) > 0, what="the entry")
    report = await service.flatten(rid, confirmed=True)
    assert report.failed == [] and report.cannot_unwind == []
    assert report.closed[0].startswith("uniswap: sell") and report.closed[0].endswith("weETH for ETH")
    sales = [i for i, c in enumerate(report.closed) if "ETH for USDT" in c]
    assert len(sales) >= 4 and all("perp buy" in report.closed[i + 1] for i in sales)   # hedge cut after each
    assert s.portfolio.wallet.tokens.get("weETH", 0.0) == 0.0
    assert all(perp(s, v) == 0 for v in ALLOCATION)
    assert s.phase is SessionPhase.RUNNING and s.state.state is TradingState.HALTED
