"""Pre-trade checks against the loopback exchange emulator: an order the account cannot carry is
refused before it is sent — one refusal, an event and a clear message, nothing at the venue, and no
retry on the ticks after it.

The emulator's accounts hold 100,000 USDT (Bybit unified, OKX trading, Binance spot) and 50,000
USDT (Binance USD-M); eth_basis buys its spot leg on Bybit first.
"""
from __future__ import annotations

import pytest

from engine.domain.instructions import Instruction, Op
from engine.services.live import LiveStartError, TradingState
from engine.services.live.pretrade import PreTradeRefused
from tests.integration.live_support import make_service, order_posts, request, venue_positions, wait_until


@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    yield svc
    await svc.close()


def refusals(session) -> list:
    return [e for e in session.events.events if e.type == "rejected" and "pre-trade check refused" in e.reason]


async def refused_once_then_quiet(service, emulator, rid: str) -> str:
    """Wait for the refusal, then five more ticks; return its message."""
    s = service.session(rid)
    await wait_until(lambda: refusals(s), what="the pre-trade refusal")
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 5, what="five ticks after the refusal")
    assert len(refusals(s)) == 1                                    # never retried
    assert s.state.state is TradingState.REDUCING
    assert sum(order_posts(emulator).values()) == 0                 # no order reached any venue
    assert venue_positions(emulator) == dict.fromkeys(emulator.venues, 0)
    journaled = [row for row in s.journal.events(limit=100) if row[3] == "pre_trade_refused"]
    assert len(journaled) == 1
    st = service.status(rid)
    assert st.state == "REDUCING" and "pre-trade check refused" in st.last_error
    return refusals(s)[0].reason


async def test_a_capital_larger_than_the_account_is_refused_once_and_never_sent(service, emulator):
    """Capital 5e7 on 100,000 USDT accounts: the entry's spot buy (capped at the mode's capacity,
    4.5M) is larger than Bybit's free USDT. Before these checks the session sent a 40M market buy
    every tick until the venue refused it."""
    rid = await service.start(request(capital=5e7))
    message = await refused_once_then_quiet(service, emulator, rid)
    assert "bybit ETH spot buy" in message
    assert "the bybit unified account has 100,000 USDT free" in message
    st = service.status(rid)
    assert any("more than eth_basis can deploy" in w for w in st.warnings)     # the capacity warning


async def test_orders_past_the_size_cap_or_the_position_limit_are_refused_before_they_are_sent(service, emulator):
    """The strategy sizes its legs inside the limits, so these orders are put to the executor directly
    (as a flatten does): each is refused with its limit named, nothing reaches the venue, and the
    session stops adding exposure."""
    rid = await service.start(request(capital=10_000.0, risk_overrides={"max_position_usdt": 20_000.0}))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.status().trades == 4, what="the entry")
    posts = order_posts(emulator)
    t = len(s.feed.view.timestamps) - 1
    with pytest.raises(PreTradeRefused, match="above risk.max_position_usdt 20,000 USDT"):
        await s.live_exec.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -10.0), t)     # 25k short
    assert s.state.state is TradingState.REDUCING
    s.reset("test: try the size cap next")
    with pytest.raises(PreTradeRefused, match="above the order-size cap 10,000,000 USDT"):
        await s.live_exec.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -5_000.0), t)  # 12.5M
    with pytest.raises(PreTradeRefused, match="not a finite, non-zero number"):
        await s.live_exec.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", float("nan")), t)
    assert order_posts(emulator) == posts and s.live_exec.refused == 3
    # a risk-reducing order still goes out while REDUCING
    await s.live_exec.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", 0.1), t)
    assert order_posts(emulator)["binance"] == posts["binance"] + 1


async def test_a_perp_short_without_free_margin_is_refused_before_it_is_sent(service, emulator):
    """The Binance USD-M account is emptied: the spot buy and the Bybit/OKX... order by order, the first
    perp short (Binance) finds no free margin and is refused; no perp order is sent."""
    emulator.venues["binance"].balances["usdm"]["USDT"] = 0
    rid = await service.start(request(capital=10_000.0))
    s = service.session(rid)
    await wait_until(lambda: refusals(s), what="the pre-trade refusal")
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 5, what="five ticks after the refusal")
    assert len(refusals(s)) == 1
    message = refusals(s)[0].reason
    assert "binance ETH perp sell" in message and "usdm account has 0 USDT free" in message
    assert "initial margin 0.1 x" in message
    posts = order_posts(emulator)
    assert posts["binance"] == 0 and posts["okx"] == 0 and posts["bybit"] == 1      # only the spot buy went
    assert s.state.state is TradingState.REDUCING


async def test_paper_sessions_run_the_same_checks(service, emulator):
    rid = await service.start(request(execution="paper", capital=10_000.0))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.status().trades == 6, what="the paper entry")
    t = len(s.feed.view.timestamps) - 1
    with pytest.raises(PreTradeRefused, match="above the order-size cap 10,000,000 USDT"):
        s.paper.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -5_000.0), t)
    assert s.paper.refused == 1 and s.state.state is TradingState.REDUCING
    assert [row for row in s.journal.events(limit=100) if row[3] == "pre_trade_refused"]


@pytest.mark.parametrize("capital, needle", [
    (float("inf"), "must be a finite number"),
    (1e30, "above the largest accepted capital"),
    (200.0, "minimum capital is 580 USDT"),
])
async def test_unusable_capitals_never_start_a_session(service, emulator, capital, needle):
    with pytest.raises(LiveStartError, match=needle):
        await service.start(request(capital=capital))
    assert service.sessions == {} and sum(order_posts(emulator).values()) == 0
