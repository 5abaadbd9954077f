"""The USDT market-neutral entry run LIVE: CEX legs on the loopback exchange emulator through ccxt,
on-chain legs on the local DeFi stack (real AAVE v3, Uniswap v3 and Morpho Blue bytecode) through
the TxManager, margin deposits as real ERC-20 transfers credited at the emulator.

The entry funds the venues first, then builds the long leg and its hedge in tranches (its band
after every step, both modes: tests/integration/test_live_onchain_modes.py). Part-way:
- A perp order the venue refuses part-way (OKX: insufficient margin) stops the program: no swap
  follows it, the book still equals chain and venues, the journal names the stop, and the delta is
  inside the band.
- A swap that reverts part-way (the pool moved beyond the swap's slippage limit) stops it the same
  way, over-hedged by at most one lead.
"""
from __future__ import annotations

from decimal import Decimal

from engine.strategies.banded_growth import plan_tranches
from engine.strategies.capacity import long_for_value
from tests.integration.chain.live import (
    EMULATOR_ETH,
    onchain_service_factory,  # noqa: F401 - the make_service fixture
)
from tests.integration.live_support import wait_until
from tests.integration.test_live_onchain_modes import (
    book_matches_venues,
    chain_matches_book,
    entry_steps,
    start_market_neutral,
)

#: OKX's own answer to an order its account cannot margin (sCode 51008; ccxt: InsufficientFunds)
OKX_NO_MARGIN = {"code": "1", "msg": "All operations failed", "data": [
    {"clOrdId": "", "ordId": "", "sCode": "51008", "sMsg": "Order failed. Insufficient USDT margin in account",
     "tag": ""}]}


async def test_a_perp_refused_by_the_venue_mid_entry_stops_before_the_long_grows(make_service, emulator, defi,
                                                                                 cache_dir):
    mode = "usdt_market_neutral"
    svc, rid, s, _, oracle = await start_market_neutral(make_service, emulator, defi, cache_dir, mode)
    swaps = lambda: sum(1 for e in s.events.events if e.type == "swap")
    await wait_until(lambda: swaps() >= 3, timeout=120, what="three tranches")
    # from now on OKX refuses every new order for lack of margin (its answer, nothing booked)
    rule = emulator.add_fault("okx", "api/v5/trade/batch-orders", "POST", answer_json=OKX_NO_MARGIN)
    await wait_until(lambda: rule.hits >= 1 and s.ticks >= 2, timeout=60, what="the refused okx order")
    events, steps = entry_steps(s, oracle)
    refused = [e for e in events if e.type == "rejected"]
    assert refused and refused[0].venue == "okx"
    done = [e for e in events if e.type != "rejected" and e.order < refused[0].order]
    assert done[-1].type == "perp_trade"                     # nothing was swapped after the refusal
    assert not any(e.type in ("bundle", "set_emode") for e in events)       # nor looped
    assert s.last_failure and "okx" in s.last_failure
    stops = [e for e in s.journal.events(limit=500) if e[3] == "program_stopped"]
    assert stops and "okx" in stops[0][4]
    long_usd = plan_long(s)
    plan = plan_tranches(s.params, long_usd)
    eth = float(EMULATOR_ETH)
    assert all(abs(x.net_eth) * eth <= plan.band_usd for x in steps)
    # on-chain exposure never grew past the hedge after the refusal: long by at most one lead
    assert steps[-1].net_eth * eth <= plan.lead_usd * 1.02 + 3
    chain_matches_book(s)
    book_matches_venues(s, emulator)
    assert svc.status(rid).reconciliation_error < 0.01
    emulator.clear_faults("okx")


async def test_a_swap_reverting_mid_entry_stops_over_hedged_by_at_most_a_lead(make_service, emulator, defi,
                                                                              cache_dir):
    mode = "usdt_market_neutral_no_leverage"
    svc, rid, s, _, oracle = await start_market_neutral(make_service, emulator, defi, cache_dir, mode)
    swaps = lambda: sum(1 for e in s.events.events if e.type == "swap")
    await wait_until(lambda: swaps() >= 3, timeout=120, what="three tranches")
    # The pool moves 10 % against the wallet: the next swap's amountOutMinimum (oracle price less the
    # configured slippage) cannot be met, so it reverts.
    defi.admin.set_pool_price("WETH", "USDT", EMULATOR_ETH * Decimal("1.10"))
    await wait_until(lambda: any(e.type == "rejected" for e in s.events.events) and s.ticks >= 2, timeout=60,
                     what="the reverted swap")
    events, steps = entry_steps(s, oracle)
    refused = [e for e in events if e.type == "rejected"]
    assert refused[0].venue == "uniswap"
    done = [e for e in events if e.type != "rejected" and e.order < refused[0].order]
    assert done[-1].type == "perp_trade" and not any(e.type == "stake" for e in done)
    failed = [r for r in s.router.progress.steps if r.status == "failed"]
    assert failed and failed[0].op == "swap"
    plan = plan_tranches(s.params, plan_long(s))
    eth = float(EMULATOR_ETH)
    assert all(abs(x.net_eth) * eth <= plan.band_usd for x in steps)
    assert -plan.lead_usd * 1.02 - 3 <= steps[-1].net_eth * eth < 0.0
    assert s.last_failure and "uniswap" in s.last_failure
    chain_matches_book(s)
    book_matches_venues(s, emulator)
    assert svc.status(rid).reconciliation_error < 0.01


def plan_long(s) -> float:
    """The long leg the entry planned: the strategy's target at the capital (what the band is of)."""
    return min(long_for_value(s.params, s.capital), s.strategy.capacity.long_usd)
