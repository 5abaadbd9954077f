"""The market-neutral entry keeps the net ETH delta inside its band after every instruction, and a
refusal part-way stops it in a state still inside the band.

Driven through the real execution manager and simulated venues on the hand-set market of
tests/unit/market_support.py (ETH 2,000, weETH 1.05, gas 10 gwei, DEX 5 bps below 10k + 30 bps pool
fee). The band is `rebalancing.delta_drift_trigger` (0.02) x the long leg; each leg leads the other
by at most 0.9 of it (engine/strategies/banded_growth.py). The delta after each step is replayed
from the event log (tests/entry_band.py), not read from the engine's own delta code.
"""
from __future__ import annotations

import math

import pytest

from engine.components.risk import onchain_eth_units
from engine.config import load_config
from engine.domain.instructions import Op
from engine.services.run_params import build_run_params
from engine.strategies.banded_growth import BAND_SHARE, MIN_ORDER_CUSHION, plan_tranches
from engine.strategies.capacity import long_for_value
from tests.entry_band import net_after_each_step
from tests.unit.market_support import MARK
from tests.unit.test_strategy_programs import ALLOCATION, Run
from venues.simulated.venue import ExecutionRejected, InsufficientMargin

MODES = ("usdt_market_neutral_no_leverage", "usdt_market_neutral")
SEQUENTIAL = {"leverage.loop_method": "sequential", "leverage.max_iterations": 3, "leverage.flash_venue": None}
#: the largest min_order_usdt / allocation of the shipped venues: 100 / 0.3
FLOOR = 100.0 / 0.3


def book_net(run: Run, t: int = 0) -> float:
    return onchain_eth_units(run.p, run.mv, t) + sum(a.perps["ETH"].size for a in run.p.cex.values() if "ETH" in a.perps)


class FailingAt:
    """The simulated venues, refusing the `n`-th instruction of one operation the way the venue
    itself refuses (its own exception types; nothing executes)."""

    def __init__(self, venues, op: Op, n: int, exc: Exception) -> None:
        self.venues, self.op, self.n, self.exc = venues, op, n, exc
        self.seen = 0

    def execute(self, ins, t, charge_gas=True):
        if ins.op is self.op:
            self.seen += 1
            if self.seen == self.n:
                raise self.exc
        return self.venues.execute(ins, t, charge_gas)


# ------------------------------------------------------------------------------ the plan
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("capital, swaps, floor_binds", [
    (10_000.0, 11, True), (26_000.0, 28, True), (30_000.0, 28, False), (100_000.0, 28, False),
    (1e6, 28, False), (1e9, 28, False)])
def test_the_shipped_configs_build_the_long_leg_in_28_swaps_above_a_small_account(mode, capital, swaps, floor_binds):
    """Lead = 0.9 x 0.02 x L = 0.018 L, so L takes ceil(L / 0.036 L) = 28 swaps whatever the capital,
    until the venues' floors bind: a perp step of one lead must give every venue min_order_usdt,
    lead >= 1.05 x 100 / 0.3 = 350 USDT, i.e. below L = 19,444 (capital 26,250). There the lead is
    350 and L / 700 swaps are needed (capital 10,000: L = 7,407, 11 swaps). Capital 1e9 is capped at
    the DEX's 2M long leg."""
    params = build_run_params(load_config(mode), capital)
    long_usd = min(long_for_value(params, capital), 2e6)
    plan = plan_tranches(params, long_usd)
    assert plan.band_usd == pytest.approx(0.02 * long_usd)
    assert plan.lead_usd == pytest.approx(max(BAND_SHARE * 0.02 * long_usd, MIN_ORDER_CUSHION * FLOOR))
    assert (plan.swaps, plan.floor_binds) == (swaps, floor_binds)
    assert plan.swaps == math.ceil(long_usd / (2 * plan.lead_usd))


# ------------------------------------------------------------------------------ the band, step by step
@pytest.mark.parametrize("mode, overrides", [(MODES[0], {}), (MODES[1], {}), (MODES[1], SEQUENTIAL)],
                         ids=["no_leverage", "atomic_loop", "sequential_loop"])
@pytest.mark.parametrize("capital", [30_000.0, 100_000.0, 2e6])
def test_the_net_delta_stays_in_the_band_after_every_step(mode, overrides, capital):
    run = Run(mode, capital=capital, **overrides)
    events = run.entry()
    long_usd = sum(e.amount for e in events if e.type == "swap")
    assert long_usd == pytest.approx(long_for_value(run.params, capital))
    lead = plan_tranches(run.params, long_usd).lead_usd
    band = 0.02 * long_usd
    steps = net_after_each_step(events, 1.05)
    worst = max(abs(s.net_eth) * MARK for s in steps)
    assert worst <= lead * (1 + 1e-9) < band
    assert worst > 0.95 * lead                      # the legs do lead by about that much
    # the replay ends where the book does, and the entry ends hedged: every venue within its min
    # order of its share of the on-chain ETH (a smaller correction is not sent)
    assert steps[-1].net_eth == pytest.approx(book_net(run), abs=1e-9)
    exposure = onchain_eth_units(run.p, run.mv, 0)
    for venue, weight in ALLOCATION.items():
        assert abs(run.p.cex[venue].perps["ETH"].size + weight * exposure) * MARK < 100.0
    # the margins were all at the venues before the first order that moves the delta
    first_exposure = next(i for i, e in enumerate(events) if e.type in ("perp_trade", "swap"))
    assert [e.type for e in events[:first_exposure]] == ["transfer"] * 3
    if mode == MODES[1]:
        loop = [e.type for e in events if e.type in ("bundle", "borrow") and e.parent is None]
        assert loop == (["bundle"] if not overrides else ["borrow"] * 3)   # the loop runs once, at the end


def test_a_small_account_leads_by_the_venues_floor_and_says_so():
    """Capital 10,000: L = 7,407, band 148 USDT, but a venue's short below 100 USDT is not sent, so the
    legs lead by 350 USDT; the reasons name the band it exceeds."""
    run = Run(MODES[0], capital=10_000.0)
    events = run.entry()
    steps = net_after_each_step(events, 1.05)
    assert max(abs(s.net_eth) * MARK for s in steps) <= 350.0 * (1 + 1e-9)
    growth = [e for e in events if e.type in ("perp_trade", "swap")]
    assert all("above the delta band 148 USDT: the venues' min_order_usdt need it" in e.reason for e in growth)
    assert all(abs(e.amount) * MARK >= 100.0 for e in growth if e.type == "perp_trade")


# ------------------------------------------------------------------------------ a refusal part-way
@pytest.mark.parametrize("mode", MODES)
def test_a_perp_refused_mid_entry_stops_before_the_long_grows(mode):
    """The 8th short (the second venue of the third round) is refused for margin: the program stops
    there, naming it; no swap follows, nothing is staked or looped, and the net is still inside the
    lead (the first venue of the round already shorted its share)."""
    run = Run(mode)
    run.manager.port = FailingAt(run.manager.port, Op.PERP_TRADE, 8, InsufficientMargin("bybit: below initial margin"))
    outcome = run.manager.run(run.strategy.entry(run.ctx(0)), 0)
    assert outcome.stop is not None and outcome.stop.venue == "bybit" and "initial margin" in outcome.stop.reason
    events = run.log.events
    assert events[-1].type == "rejected" and events[-1].venue == "bybit"
    done = [e for e in events if e.type != "rejected"]
    assert [e.type for e in done].count("swap") == 2 and done[-1].type == "perp_trade"
    assert not any(e.type in ("stake", "bundle") for e in done)
    lead = plan_tranches(run.params, 100_000.0 / 1.35).lead_usd
    assert all(abs(s.net_eth) * MARK <= lead * (1 + 1e-9) for s in net_after_each_step(done, 1.05))
    assert net_after_each_step(done, 1.05)[-1].net_eth == pytest.approx(book_net(run), abs=1e-9)
    assert 0.0 < book_net(run) * MARK <= lead           # long by less than the lead, never more


@pytest.mark.parametrize("mode", MODES)
def test_a_swap_refused_mid_entry_stops_short_by_at_most_the_lead(mode):
    run = Run(mode)
    run.manager.port = FailingAt(run.manager.port, Op.SWAP, 5, ExecutionRejected("uniswap: pool paused"))
    outcome = run.manager.run(run.strategy.entry(run.ctx(0)), 0)
    assert outcome.stop is not None and outcome.stop.venue == "uniswap" and "pool paused" in outcome.stop.reason
    done = [e for e in run.log.events if e.type != "rejected"]
    assert [e.type for e in done].count("swap") == 4 and done[-1].type == "perp_trade"
    lead = plan_tranches(run.params, 100_000.0 / 1.35).lead_usd
    assert all(abs(s.net_eth) * MARK <= lead * (1 + 1e-9) for s in net_after_each_step(done, 1.05))
    assert -lead * (1 + 1e-9) <= book_net(run) * MARK < 0.0          # over-hedged by one lead at most
    # the round before the swap completed: every venue holds its share of one hedge
    hedges = [run.p.cex[v].perps["ETH"].size / w for v, w in ALLOCATION.items()]
    assert hedges == pytest.approx([hedges[0]] * 3, rel=1e-12)


def test_a_margin_transfer_refused_stops_the_entry_before_any_exposure():
    """The second venue's deposit is refused: the entry stops with no short and no swap, the USDT not
    sent still in the wallet."""
    run = Run(MODES[1])
    run.manager.port = FailingAt(run.manager.port, Op.TRANSFER, 2, ExecutionRejected("bybit is down (outage)"))
    outcome = run.manager.run(run.strategy.entry(run.ctx(0)), 0)
    assert outcome.stop is not None and "bybit is down" in outcome.stop.reason and outcome.fills == 1
    assert not any(e.type in ("perp_trade", "swap") for e in run.log.events)
    assert onchain_eth_units(run.p, run.mv, 0) == pytest.approx(-run.gas("VENUE_TRANSFER"))
    sent = run.log.events[0].amount
    assert run.p.wallet.tokens["USDT"] == pytest.approx(100_000.0 - sent)
