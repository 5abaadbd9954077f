"""Each mode's entry program and each rebalance reason's program, driven through the real execution
manager and simulated venues on a hand-set market, with the amounts recomputed here by hand.

The market (tests/unit/market_support.py): ETH 2,000 on spot and every perp, weETH at 1.05 ETH
(oracle and market), every AAVE index 1.0, gas 10 gwei; spot/DEX cost buckets 5 / 7 / 13 bps, perp
buckets 3 / 4 / 8 bps. Hour 1 is where a test moves a price. The mode files give the rest: the hedge
allocation 40 / 30 / 30 % (Binance / Bybit / OKX), margin target 0.35 and trigger 0.25 (ETH modes),
the loop's target LTV 0.90, the venues' fees.

A rebalance is asked for the way the backtest asks: `strategy.check` at hour 1 names the reason and
`strategy.rebalance` runs with it.
"""
from __future__ import annotations

import math

import pytest

from engine.components.event_log import EventLog
from engine.components.risk import aave_state, cex_equity, onchain_eth_units, snapshot
from engine.config import load_config
from engine.domain.instructions import WALLET
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.domain.numeraire import Numeraire
from engine.execution.ledger import HourlyLedger
from engine.execution.manager import ExecutionManager
from engine.execution.outcome import Failures
from engine.services.run_params import build_run_params
from engine.strategies import STRATEGIES
from engine.strategies.base import StrategyContext
from tests.unit.market_support import MARK, market
from venues.simulated.venue import ExecutionRejected, SimulatedVenues

GWEI = 10.0
ALLOCATION = {"binance": 0.4, "bybit": 0.3, "okx": 0.3}


def slip(notional: float, b10k: float = 5.0, b100k: float = 7.0) -> float:
    """The cost table's bps between the 10k and 100k buckets (log-linear), as data/README.md states."""
    return b10k if notional <= 1e4 else b10k + (b100k - b10k) * math.log10(notional / 1e4)


class Run:
    """One strategy on one portfolio, with the manager, log and market the backtest would give it."""

    def __init__(self, mode: str, capital: float | None = None, mv: MarketView | None = None, **overrides) -> None:
        self.params = build_run_params(load_config(mode, cli_overrides=overrides), capital)
        self.mv = mv or market()
        self.mv.supply_index.setdefault("USDT", [1.0] * self.mv.hours)
        self.strategy = STRATEGIES[mode](self.params)
        self.p = Portfolio()
        self.strategy.seed(self.p, self.mv)
        self.log = EventLog()
        ledger = HourlyLedger(self.mv.hours)
        ledger.start_hour(0)
        world = SimulatedVenues(self.p, self.mv, self.params)
        self.manager = ExecutionManager(world, self.mv, ledger, self.log, Numeraire(self.params.strategy.currency, self.mv),
                                        Failures(rejected=(ExecutionRejected,)))

    def ctx(self, t: int) -> StrategyContext:
        return StrategyContext(self.p, self.mv, t, snapshot(self.p, self.mv, t, self.params.aave), self.params)

    def entry(self) -> list:
        self.manager.run(self.strategy.entry(self.ctx(0)), 0)
        return list(self.log.events)

    def rebalance(self, t: int = 1) -> tuple[str, list]:
        ctx = self.ctx(t)
        why = self.strategy.check(ctx)
        assert why is not None, "check() found nothing to rebalance"
        start = len(self.log.events)
        self.manager.run(self.strategy.rebalance(ctx, why), t)
        return str(why), self.log.events[start:]

    def gas(self, *ops: str) -> float:
        return sum(self.params.gas_units[o] for o in ops) * GWEI * 1e-9

    def ratio(self, venue: str, t: int) -> float:
        equity, notional = cex_equity(self.p.cex[venue], venue, self.mv, t)
        return equity / notional


def kinds(events) -> list[tuple[str, str]]:
    return [(e.type, e.venue) for e in events]


def two_hours(eth: tuple[float, float], weeth: tuple[float, float] = (1.05, 1.05)) -> MarketView:
    return market(marks=eth, weeth=weeth)


# ------------------------------------------------------------------------------ entry programs
def test_pure_lending_approves_and_supplies_the_capital():
    run = Run("pure_lending")
    events = run.entry()
    assert kinds(events) == [("approve", "aave_v3"), ("supply", "aave_v3")]
    assert events[1].asset == "USDT" and events[1].amount == 100_000.0
    assert run.p.wallet.supply_scaled["USDT"] == 100_000.0
    assert run.p.wallet.tokens["GAS_DEBT"] == pytest.approx(-run.gas("APPROVAL_ONCE", "COLLATERAL_SUPPLIED"))


def test_eth_staking_only_stakes_the_capital_less_the_stakes_gas():
    run = Run("eth_staking_only")
    [stake] = run.entry()
    amount = 40.0 - run.gas("STAKE_DEPOSIT")
    assert (stake.type, stake.venue, stake.asset, stake.to_asset) == ("stake", "etherfi", "ETH", "weETH")
    assert stake.amount == pytest.approx(amount) and stake.amount_out == pytest.approx(amount / 1.05)
    assert run.p.wallet.tokens["ETH"] == pytest.approx(0.0, abs=1e-15)       # exactly its gas kept back


def test_eth_leveraged_enters_the_loop_in_one_flash_bundle():
    """Equity E = 40 ETH less the entry's gas; flash F = 0.9 / 0.1 x E; E + F staked and supplied,
    F borrowed to repay the flash loan (Morpho: no fee). LTV = F / (E + F) = 0.9 exactly."""
    run = Run("eth_leveraged")
    events = run.entry()
    assert kinds(events) == [("set_emode", "aave_v3"), ("approve", "aave_v3"), ("bundle", "morpho"),
                             ("flash_borrow", "morpho"), ("stake", "etherfi"), ("supply", "aave_v3"),
                             ("borrow", "aave_v3"), ("flash_repay", "morpho")]
    equity = 40.0 - run.gas("SET_EMODE_ONCE", "APPROVAL_ONCE", "ATOMIC_ENTRY")
    flash = 9.0 * equity
    by_type = {e.type: e for e in events}
    assert by_type["flash_borrow"].amount == pytest.approx(flash)
    assert by_type["stake"].amount == pytest.approx(equity + flash)
    assert by_type["supply"].amount == pytest.approx((equity + flash) / 1.05)
    assert by_type["borrow"].amount == pytest.approx(flash) and by_type["flash_repay"].amount == pytest.approx(flash)
    state = aave_state(run.p, run.mv, 0, run.params.aave)
    assert state.ltv == pytest.approx(0.9) and state.health_factor == pytest.approx(0.95 / 0.9)


def test_eth_leveraged_sequential_loop_stakes_supplies_and_borrows_each_round():
    """Three rounds: stake E, supply, borrow 0.9 E; stake that, ...; the last round only supplies."""
    run = Run("eth_leveraged", **{"leverage.loop_method": "sequential", "leverage.max_iterations": 2,
                                  "leverage.flash_venue": None})
    events = run.entry()
    loop = [e for e in events if e.iteration is not None]
    assert [(e.type, e.iteration) for e in loop] == [
        ("stake", 0), ("supply", 0), ("borrow", 0), ("stake", 1), ("supply", 1), ("borrow", 1),
        ("stake", 2), ("supply", 2)]
    equity = 40.0 - run.gas("SET_EMODE_ONCE", "APPROVAL_ONCE")
    stakes = [e for e in loop if e.type == "stake"]
    borrows = [e for e in loop if e.type == "borrow"]
    assert stakes[0].amount == pytest.approx(equity)
    # each round borrows 0.9 of what it staked; the next stakes that, less the gas paid in between
    for i, borrow in enumerate(borrows):
        assert borrow.amount == pytest.approx(0.9 * stakes[i].amount)
    assert stakes[1].amount == pytest.approx(borrows[0].amount - run.gas("LOAN_CREATED"))


def test_eth_basis_buys_spot_funds_the_margins_and_shorts_the_allocation():
    """L = 100,000 / (1 + 0.35 + c), c the spot buy's cost (Bybit taker 10 bps + the table at
    100,000 / 1.35, x 1.0001) reserved so that each margin gets its whole target 0.35 x share x L."""
    run = Run("eth_basis")
    events = run.entry()
    assert kinds(events) == [("spot_trade", "bybit"), ("transfer", "bybit"), ("transfer", "bybit"),
                             ("perp_trade", "binance"), ("perp_trade", "bybit"), ("perp_trade", "okx")]
    c = (10.0 + slip(100_000.0 / 1.35)) * 1e-4 * 1.0001
    long_usd = 100_000.0 / (1.35 + c)
    qty = long_usd / MARK
    assert events[0].amount == pytest.approx(qty)
    assert {(e.to_asset, round(e.amount, 6)) for e in events[1:3]} == {
        ("binance", round(0.35 * 0.4 * long_usd, 6)), ("okx", round(0.35 * 0.3 * long_usd, 6))}
    for e in events[3:]:
        assert e.amount == pytest.approx(-ALLOCATION[e.venue] * qty)
    # Bybit keeps its own margin: the capital less the long, its fee, the transfers and its short's fee
    spot_fee = long_usd * (10.0 + slip(long_usd)) * 1e-4
    short = 0.3 * long_usd
    perp_fee = short * (5.5 + slip(short, 3.0, 4.0)) * 1e-4
    assert run.p.cex["bybit"].usdt == pytest.approx(100_000.0 - long_usd - spot_fee - 0.35 * 0.7 * long_usd - perp_fee)


def tranche_pattern(events) -> tuple[list, int, list]:
    """(the funding transfers, the number of perp-then-swap rounds, what follows them) of a
    market-neutral entry, checking on the way that every round is one short per venue (in the
    allocation's order) followed by one swap."""
    k = kinds(events)
    funding = [e for e in events[:3]]
    assert k[:3] == [("transfer", WALLET)] * 3
    perps = [("perp_trade", v) for v in ALLOCATION]
    i, rounds = 3, 0
    while k[i:i + 4] == perps + [("swap", "uniswap")]:
        i, rounds = i + 4, rounds + 1
    return funding, rounds, events[i:]


def test_usdt_market_neutral_no_leverage_funds_then_builds_long_and_hedge_in_tranches():
    """L = 100,000 / 1.35. Each venue first gets 0.35 x share x L from the wallet. Then the legs
    leapfrog by a lead of 0.9 x the delta band (0.02 x L): the shorts go to the on-chain ETH + lead,
    a swap of 2 x lead x 2,000 USDT buys ETH up to the hedge + lead ((5 bps table + 30 bps pool fee),
    10k bucket), so L takes ceil(L / (2 x lead)) = 28 swaps; a last round of shorts hedges what was
    bought, the ETH is staked once, and the net is the stake's gas."""
    run = Run("usdt_market_neutral_no_leverage")
    events = run.entry()
    funding, rounds, tail = tranche_pattern(events)
    long_usd = 100_000.0 / 1.35
    lead = 0.9 * 0.02 * long_usd
    for e in funding:
        assert e.amount == pytest.approx(0.35 * ALLOCATION[e.to_asset] * long_usd)
    assert rounds == math.ceil(long_usd / (2 * lead)) == 28
    assert kinds(tail) == [("perp_trade", v) for v in ALLOCATION] + [("stake", "etherfi")]
    swaps = [e for e in events if e.type == "swap"]
    assert all(s.amount == pytest.approx(2 * lead) for s in swaps[:-1])
    assert sum(s.amount for s in swaps) == pytest.approx(long_usd)           # the whole long leg's USDT
    for s in swaps:
        assert s.amount_out == pytest.approx(s.amount * (1 - 35e-4) / MARK)
    eth = sum(s.amount_out for s in swaps)
    stake = tail[-1]
    assert stake.amount == pytest.approx(eth) and stake.amount_out == pytest.approx(eth / 1.05)
    # the last shorts hedge the ETH bought less the gas owed so far; the stake's gas is the residual
    exposure = eth - run.gas(*["TOKEN_SWAP"] * 28, *["VENUE_TRANSFER"] * 3)
    for venue, weight in ALLOCATION.items():
        assert run.p.cex[venue].perps["ETH"].size == pytest.approx(-weight * exposure)
    net = onchain_eth_units(run.p, run.mv, 0) + sum(run.p.cex[v].perps["ETH"].size for v in ALLOCATION)
    assert net == pytest.approx(-run.gas("STAKE_DEPOSIT"), abs=1e-12)
    assert run.p.wallet.tokens["USDT"] == pytest.approx(0.0, abs=1e-6)


def test_usdt_market_neutral_builds_in_tranches_then_levers_the_eth_in_one_flash_loan():
    """As above, then e-mode, the approval and one flash bundle over all the ETH bought (9 x flash at
    LTV 0.9); the loop keeps the net ETH but for its gas, below any venue's min order, so no perp
    order follows it."""
    run = Run("usdt_market_neutral")
    events = run.entry()
    _, rounds, tail = tranche_pattern(events)
    long_usd = 100_000.0 / 1.35
    assert rounds == 28
    assert kinds(tail) == [("perp_trade", v) for v in ALLOCATION] + [
        ("set_emode", "aave_v3"), ("approve", "aave_v3"), ("bundle", "morpho"), ("flash_borrow", "morpho"),
        ("stake", "etherfi"), ("supply", "aave_v3"), ("borrow", "aave_v3"), ("flash_repay", "morpho")]
    swaps = [e for e in events if e.type == "swap"]
    assert sum(s.amount for s in swaps) == pytest.approx(long_usd)
    eth = sum(s.amount_out for s in swaps)
    by_type = {e.type: e for e in tail}
    assert by_type["flash_borrow"].amount == pytest.approx(9.0 * eth)
    assert by_type["stake"].amount == pytest.approx(10.0 * eth)
    exposure = eth - run.gas(*["TOKEN_SWAP"] * 28, *["VENUE_TRANSFER"] * 3)
    for venue, weight in ALLOCATION.items():
        assert run.p.cex[venue].perps["ETH"].size == pytest.approx(-weight * exposure)
    net = onchain_eth_units(run.p, run.mv, 0) + sum(run.p.cex[v].perps["ETH"].size for v in ALLOCATION)
    assert net == pytest.approx(-run.gas("SET_EMODE_ONCE", "APPROVAL_ONCE", "ATOMIC_ENTRY"), abs=1e-12)


# ------------------------------------------------------------------------------ rebalance programs
def test_basis_margin_sells_spot_sends_the_cash_and_resizes_the_hedge():
    """ETH +10 %: each short's margin ratio falls from 0.35 to about (0.35 - 0.10) / 1.10 = 0.227,
    under the 0.25 trigger. The program sells the spot above the long target V / (1 + 0.35), sends
    the cash to the venues short of their target and buys back the shorts to the smaller spot leg."""
    run = Run("eth_basis", mv=two_hours((MARK, 2_200.0)))
    run.entry()
    spot_before = run.p.cex["bybit"].spot["ETH"]
    why, events = run.rebalance()
    assert why.startswith("margin:")
    assert kinds(events)[0] == ("spot_trade", "bybit") and events[0].amount < 0
    transfers = [e for e in events if e.type == "transfer"]
    assert {e.to_asset for e in transfers} == {"binance", "okx"} and all(e.venue == "bybit" for e in transfers)
    perps = [e for e in events if e.type == "perp_trade"]
    assert {e.venue for e in perps} == set(ALLOCATION) and all(e.amount > 0 for e in perps)
    spot = run.p.cex["bybit"].spot["ETH"]
    assert spot < spot_before
    for venue, weight in ALLOCATION.items():                  # the hedge follows the spot leg
        assert run.p.cex[venue].perps["ETH"].size == pytest.approx(-weight * spot, rel=1e-9)
        assert run.ratio(venue, 1) > 0.3                                      # back near the 0.35 target


def test_basis_margin_excess_brings_surplus_home_and_buys_spot():
    """ETH -35 %: each short's ratio is (0.35 + 0.35) / 0.65 = 1.08, above the 1.0 ceiling. Its cash is
    below the surplus (the gain is unrealised), so the short is closed and reopened to realise it,
    the surplus comes to Bybit, buys spot, and the shorts grow with it."""
    run = Run("eth_basis", mv=two_hours((MARK, 1_300.0)))
    run.entry()
    spot_before = run.p.cex["bybit"].spot["ETH"]
    why, events = run.rebalance()
    assert why.startswith("margin_excess:")
    realise = [e for e in events if "realise P&L" in e.reason]
    reopen = [e for e in events if "(reopen)" in e.reason]
    assert realise and len(realise) == len(reopen)
    assert all(a.amount == -b.amount and a.venue == b.venue for a, b in zip(realise, reopen))
    assert all(e.to_asset == "bybit" for e in events if e.type == "transfer")
    buys = [e for e in events if e.type == "spot_trade"]
    assert len(buys) == 1 and buys[0].amount > 0
    spot = run.p.cex["bybit"].spot["ETH"]
    assert spot > spot_before
    for venue, weight in ALLOCATION.items():
        assert run.p.cex[venue].perps["ETH"].size == pytest.approx(-weight * spot, rel=1e-9)


def test_delta_drift_only_resizes_the_hedge():
    run = Run("eth_basis")
    run.entry()
    short = run.p.cex["binance"].perps["ETH"]
    short.size /= 2                               # half the Binance short gone: 20 % of the long unhedged
    why, events = run.rebalance()
    assert why == "delta"
    [trade] = events
    assert (trade.type, trade.venue) == ("perp_trade", "binance")
    assert trade.amount == pytest.approx(-0.4 * run.p.cex["bybit"].spot["ETH"] / 2)


def test_capacity_trims_a_leg_grown_past_its_position_limit():
    """risk.max_position_usdt 50,000: the entry buys 0.9 x 50,000 = 45,000 of spot (the rest idles);
    ETH +12 % carries it to 50,400, past the limit, and the program sells back to 45,000."""
    run = Run("eth_basis", mv=two_hours((MARK, 2_240.0)), **{
        "risk.max_position_usdt": 50_000.0, "rebalancing.margin_ratio_trigger": 0.1,
        "risk.margin_ratio_floor": 0.08})
    events = run.entry()
    assert events[0].amount == pytest.approx(45_000.0 / MARK)
    why, events = run.rebalance()
    assert why == "capacity"
    assert kinds(events)[0] == ("spot_trade", "bybit")
    assert run.p.cex["bybit"].spot["ETH"] * 2_240.0 == pytest.approx(45_000.0)


def test_the_loop_deleverages_to_the_health_factor_target_in_one_bundle():
    """weETH 1.05 -> 1.00 ETH (oracle and market): HF 0.95 / 0.9 x 1.00 / 1.05 = 1.005, under the 1.015
    floor. One flash bundle repays debt with sold collateral until HF is back at the 1.03 target."""
    run = Run("eth_leveraged", mv=two_hours((MARK, MARK), weeth=(1.05, 1.00)))
    run.entry()
    hf = aave_state(run.p, run.mv, 1, run.params.aave).health_factor
    assert hf == pytest.approx(0.95 / 0.9 * 1.00 / 1.05)
    why, events = run.rebalance()
    assert why == "hf_floor"
    assert kinds(events) == [("bundle", "morpho"), ("flash_borrow", "morpho"), ("repay", "aave_v3"),
                             ("withdraw", "aave_v3"), ("swap", "uniswap"), ("flash_repay", "morpho")]
    assert events[0].gas_eth == pytest.approx(run.gas("ATOMIC_DELEVERAGE_ONE_SWAP"))
    assert aave_state(run.p, run.mv, 1, run.params.aave).health_factor == pytest.approx(1.03, abs=2e-3)


def test_market_neutral_margin_sells_lst_for_usdt_and_tops_up_the_venues():
    """ETH +10 %: the shorts' margin falls under the trigger; weETH is sold for ETH, the ETH for USDT,
    the USDT goes to every venue short of its target, and the shorts shrink to the smaller long."""
    run = Run("usdt_market_neutral_no_leverage", mv=two_hours((MARK, 2_200.0)))
    run.entry()
    lst_before = run.p.wallet.tokens["weETH"]
    why, events = run.rebalance()
    assert why.startswith("margin:")
    assert kinds(events)[:2] == [("swap", "uniswap"), ("swap", "uniswap")]
    assert (events[0].asset, events[0].to_asset, events[1].asset, events[1].to_asset) == ("weETH", "ETH", "ETH", "USDT")
    transfers = [e for e in events if e.type == "transfer"]
    assert {e.to_asset for e in transfers} == set(ALLOCATION) and all(e.venue == WALLET for e in transfers)
    assert run.p.wallet.tokens["weETH"] < lst_before
    net = onchain_eth_units(run.p, run.mv, 1)
    for venue, weight in ALLOCATION.items():
        assert run.p.cex[venue].perps["ETH"].size == pytest.approx(-weight * net, rel=1e-9)
        assert run.ratio(venue, 1) > 0.3


def test_market_neutral_margin_excess_returns_surplus_to_the_long_leg():
    """ETH -70 %: the shorts' ratio is (0.35 + 0.70) / 0.30 = 3.5, above the 3.0 ceiling. The surplus
    is realised, sent to the wallet, swapped to ETH and staked, and the shorts grow to the new long."""
    run = Run("usdt_market_neutral_no_leverage", mv=two_hours((MARK, 600.0)))
    run.entry()
    lst_before = run.p.wallet.tokens["weETH"]
    why, events = run.rebalance()
    assert why.startswith("margin_excess:")
    assert all(e.to_asset == WALLET for e in events if e.type == "transfer")
    swaps = [e for e in events if e.type == "swap"]
    assert swaps and all((s.asset, s.to_asset) == ("USDT", "ETH") for s in swaps)
    # the long grows in tranches led by the shorts (a short before every swap), staked once
    growth = [e.type for e in events if e.type in ("perp_trade", "swap")]
    assert "swap,swap" not in ",".join(growth) and growth[0] == "perp_trade"
    assert [e.type for e in events if e.type == "stake"] == ["stake"]
    assert run.p.wallet.tokens["weETH"] > lst_before
    # the shorts hedge the long to within each venue's min order (a smaller correction is not sent)
    net = onchain_eth_units(run.p, run.mv, 1)
    for venue, weight in ALLOCATION.items():
        gap = abs(run.p.cex[venue].perps["ETH"].size + weight * net) * 600.0
        assert gap < run.params.cex[venue].min_order_usdt
