"""The backtest driver: the trading cycle stepped over every hour of the grid, with the hourly series
the results and charts need recorded into preallocated arrays.

The step itself (attribution, venue actions, strategy, valuation, reconciliation) is
`engine.execution.cycle.TradingCycle`, shared with paper and live sessions. The reported value is
mark-to-market (LSTs at their market rate); the strategy and the risk checks see the protocol value
(LSTs at the oracle rate, what AAVE uses); `lst_peg` is the difference moving.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.components.balance_sheet import BalanceSheetRecorder
from engine.components.event_log import EventLog, record_deposits
from engine.components.rewards import RewardBook
from engine.components.risk import RiskSnapshot
from engine.domain.market import MarketView
from engine.domain.numeraire import Numeraire
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.execution.cycle import Allowance, TradingCycle, VenueWorld
from engine.execution.ledger import HourlyLedger
from engine.execution.manager import ExecutionManager
from engine.execution.quiet import QuietHours, QuietStretches, StretchWorld, covers
from engine.execution.outcome import Failures
from engine.services.backtest_risk import BacktestRiskMonitor
from engine.strategies.base import Strategy

__all__ = ["Cancelled", "SimulationOutput", "VenueWorld", "simulate"]

PROGRESS_EVERY = 500   # hours between progress callbacks (cheap enough, smooth enough for a bar)


class Cancelled(Exception):
    """The caller asked the run to stop (the app's Cancel button)."""


@dataclass
class SimulationOutput:
    values: np.ndarray                  # hourly mark-to-market value, share currency (after the hour's actions)
    values_protocol: np.ndarray         # the same holdings with LSTs at the oracle rate (what AAVE counts)
    components: np.ndarray              # hours x components
    reconciliation: np.ndarray          # hourly |value change - sum of components|
    health_factor: np.ndarray           # NaN where there is no debt
    ltv: np.ndarray
    margin_ratio: dict[str, np.ndarray]
    delta_onchain: np.ndarray           # ETH units
    delta_cex: np.ndarray               # units of the hedge underlying (spot + perps on CEXs)
    hedge_notional: np.ndarray          # sum |perp size x mark| in USD
    rebalance_hours: list[int]
    liquidation_count: int
    events: EventLog
    initial_value: float
    engine_seconds: float
    engine_cpu_seconds: float = 0.0     # CPU time of the run's thread (the wall time counts the neighbours)
    ledger_totals: dict[str, float] = field(default_factory=dict)
    risk_warnings: list[str] = field(default_factory=list)   # live circuit breakers the run crossed
    margin_ratio_at_check: dict[str, float] = field(default_factory=dict)  # lowest per venue, before acting
    rewards: RewardBook | None = None
    holdings: BalanceSheetRecorder = field(default_factory=BalanceSheetRecorder)
    final_portfolio: Portfolio | None = None


def simulate(strategy: Strategy, params: RunParams, mv: MarketView,
             world_factory: Callable[[Portfolio, MarketView, RunParams], VenueWorld],
             rejected_exc: type[Exception],
             progress: Callable[[int, int], None] | None = None,
             should_cancel: Callable[[], bool] | None = None,
             stepwise: bool = False) -> SimulationOutput:
    """Run ``strategy`` over every hour of ``mv``; ``rejected_exc`` is what the venue layer raises
    when it refuses an instruction (it stops that program; anything else raised is a bug).

    The hours between events are valued in closed form, many at once (engine/execution/quiet.py);
    ``stepwise`` steps every hour instead: the reference the fast path is tested against."""
    started = time.perf_counter()
    cpu_started = time.thread_time()
    sp = params.strategy
    n = mv.hours
    portfolio = Portfolio()
    strategy.seed(portfolio, mv)
    world = world_factory(portfolio, mv, params)
    ledger = HourlyLedger(n)
    log = EventLog()
    record_deposits(log, portfolio, mv.timestamps[0])
    manager = ExecutionManager(world, mv, ledger, log, Numeraire(sp.currency, mv), Failures(rejected=(rejected_exc,)))
    cycle = TradingCycle(strategy, params, mv, portfolio, world, manager, ledger, log, opening_value=sp.capital)
    # Where the live circuit breakers would have stopped a session (reported, see backtest_risk): the
    # cycle's guard sees every hour after the venues acted and before the strategy, as live does.
    monitor = BacktestRiskMonitor(params, mv, log)
    numeraire = manager.numeraire
    everything = Allowance.EVERYTHING

    def observe(t: int) -> Allowance:
        risk = cycle.risk
        assert risk is not None                # the cycle has taken the step's snapshot
        monitor.observe(t, numeraire.from_usd(cycle.value_usd, t) if t else sp.capital, risk)
        return everything

    values = np.empty(n)
    values_protocol = np.empty(n)
    recon = np.empty(n)
    hf = np.full(n, np.nan)
    ltv = np.zeros(n)
    margin_venues = [v for v, w in sp.allocation.items() if w > 0] if sp.hedge else []
    margin = {v: np.full(n, np.nan) for v in margin_venues}
    d_on = np.zeros(n)
    d_cex = np.zeros(n)
    hedge_notional = np.zeros(n)
    rebalance_hours: list[int] = []
    underlying = sp.underlying or "ETH"
    holdings = BalanceSheetRecorder()
    step = cycle.step
    quiet = None
    if not stepwise and covers(strategy) and isinstance(world, StretchWorld):
        quiet = QuietStretches(cycle, world, ledger, holdings,
                               lambda first, share, risk: monitor.observe_stretch(first, share, risk))

    t = 0
    tick = PROGRESS_EVERY                  # the next hour at which to report progress / poll cancel
    while t < n:
        if t >= tick:
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"cancelled at hour {t} of {n}")
            if progress is not None:
                progress(t, n)
            tick = (t // PROGRESS_EVERY + 1) * PROGRESS_EVERY
        if quiet is not None and t and cycle.entered:
            stretch = quiet.advance(t)
            if stretch is not None:
                _record_stretch(stretch, values, values_protocol, recon, hf, ltv, margin, d_on, d_cex,
                                hedge_notional, underlying)
                t = stretch.hours.stop
                continue
        step(t, guard=observe)
        value = cycle.value
        values[t] = value
        values_protocol[t] = value - cycle.peg
        recon[t] = cycle.reconciliation
        if cycle.changed or t == 0:
            holdings.snapshot(t, portfolio)
            if cycle.rebalanced:
                rebalance_hours.append(t)
        _record_risk(t, cycle.risk, hf, ltv, margin, d_on, d_cex, hedge_notional, underlying)
        t += 1
    if progress is not None:
        progress(n, n)

    return SimulationOutput(
        values=values, values_protocol=values_protocol, components=ledger.rows, reconciliation=recon,
        health_factor=hf, ltv=ltv, margin_ratio=margin, delta_onchain=d_on, delta_cex=d_cex,
        hedge_notional=hedge_notional, rebalance_hours=rebalance_hours, liquidation_count=cycle.liquidations,
        events=log, initial_value=sp.capital, engine_seconds=time.perf_counter() - started,
        engine_cpu_seconds=time.thread_time() - cpu_started,
        ledger_totals=ledger.totals(), rewards=cycle.rewards, holdings=holdings, final_portfolio=portfolio,
        risk_warnings=monitor.warnings(), margin_ratio_at_check=dict(monitor.margin_ratio_min),
    )


def _record_stretch(q: QuietHours, values: np.ndarray, values_protocol: np.ndarray, recon: np.ndarray,
                    hf: np.ndarray, ltv: np.ndarray, margin: dict[str, np.ndarray], d_on: np.ndarray,
                    d_cex: np.ndarray, hedge_notional: np.ndarray, underlying: str) -> None:
    """`_record_risk` and the value arrays for every hour of a quiet stretch."""
    sl, risk = q.hours, q.risk
    values[sl] = q.value
    values_protocol[sl] = q.value_protocol
    recon[sl] = q.reconciliation
    hf[sl] = np.where(np.isinf(risk.health_factor), np.nan, risk.health_factor)
    ltv[sl] = risk.ltv
    for venue, arr in margin.items():
        ratio = risk.margin_ratio.get(venue)
        if ratio is not None:
            arr[sl] = np.where(np.isinf(ratio), np.nan, ratio)
    d_on[sl] = risk.delta_onchain_eth
    d_cex[sl] = risk.delta_cex.get(underlying, 0.0)
    hedge_notional[sl] = risk.hedge_notional


def _record_risk(t: int, risk: RiskSnapshot | None, hf: np.ndarray,
                 ltv: np.ndarray, margin: dict[str, np.ndarray], d_on: np.ndarray, d_cex: np.ndarray,
                 hedge_notional: np.ndarray, underlying: str) -> None:
    assert risk is not None                    # a step always leaves its risk snapshot
    if not math.isinf(risk.health_factor):
        hf[t] = risk.health_factor
    ltv[t] = risk.ltv
    for venue, arr in margin.items():
        ratio = risk.margin_ratio.get(venue, math.inf)
        if not math.isinf(ratio):
            arr[t] = ratio
    d_on[t] = risk.delta_onchain_eth
    d_cex[t] = risk.delta_cex.get(underlying, 0.0)
    hedge_notional[t] = risk.hedge_notional
