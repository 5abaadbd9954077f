"""The backtest hot loop: one pass over the hourly grid with plain floats (DESIGN §4-§5).

Per hour: attribute the market move of the holdings, let the venues act (funding, rewards,
liquidations), let the strategy rebalance, then value the portfolio independently and record how far
the value change is from the sum of the attributed components (reconciliation error).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from engine.components.event_log import EventLog
from engine.components.pnl_attribution import attribute_market_move
from engine.components.pnl_ledger import PnlLedger
from engine.components.risk import RiskSnapshot, snapshot
from engine.components.valuation import to_numeraire, value_usd
from engine.domain.instructions import Fill, Instruction
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.execution.manager import ExecutionManager
from engine.services.backtest_risk import BacktestRiskMonitor
from engine.strategies.base import Strategy, StrategyContext

PROGRESS_EVERY = 500   # hours between progress callbacks (cheap enough, smooth enough for a bar)


class VenueWorld(Protocol):
    """The simulated venue layer: executes instructions and plays the venues' own hourly actions."""

    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill: ...
    def settle_funding(self, t: int) -> list: ...
    def accrue_rewards(self, t: int, lst: str) -> float: ...
    def liquidate(self, t: int) -> list: ...


class Cancelled(Exception):
    """The caller asked the run to stop (the app's Cancel button)."""


@dataclass
class SimulationOutput:
    values: np.ndarray                  # hourly value in the share-class currency (after the hour's actions)
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
    ledger_totals: dict[str, float] = field(default_factory=dict)
    risk_warnings: list[str] = field(default_factory=list)   # live circuit breakers the run crossed


def simulate(strategy: Strategy, params: RunParams, mv: MarketView,
             world_factory: Callable[[Portfolio, MarketView, RunParams], VenueWorld],
             rejected_exc: type[Exception],
             progress: Callable[[int, int], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> SimulationOutput:
    started = time.perf_counter()
    sp = params.strategy
    cur = sp.currency
    n = mv.hours
    portfolio = Portfolio()
    strategy.seed(portfolio, mv)
    world = world_factory(portfolio, mv, params)
    ledger = PnlLedger(n)
    log = EventLog()
    manager = ExecutionManager(world, mv, ledger, log, cur, rejected_exc)
    # Where the live circuit breakers would have stopped a session (reported, see backtest_risk).
    monitor = BacktestRiskMonitor(params, mv, log)

    values = np.empty(n)
    recon = np.empty(n)
    hf = np.full(n, np.nan)
    ltv = np.zeros(n)
    margin_venues = [v for v, w in sp.allocation.items() if w > 0] if sp.hedge else []
    margin = {v: np.full(n, np.nan) for v in margin_venues}
    d_on = np.zeros(n)
    d_cex = np.zeros(n)
    hedge_notional = np.zeros(n)
    rebalance_hours: list[int] = []
    liquidations = 0
    underlying = sp.underlying or "ETH"
    rewards_lst = sp.lst if (sp.rewards and sp.lst == "weETH") else None
    aave = params.aave

    # ---- hour 0: deploy the capital. The hour's P&L is the entry cost (value - capital).
    ledger.start_hour(0)
    initial_value = sp.capital
    ctx = StrategyContext(portfolio, mv, 0, snapshot(portfolio, mv, 0, aave), params)
    monitor.observe(0, initial_value, ctx.risk)
    manager.run(strategy.entry(ctx), 0)
    prev_usd = value_usd(portfolio, mv, 0)
    prev_value = to_numeraire(prev_usd, cur, mv, 0)
    recon[0] = abs(prev_value - initial_value - ledger.hour_total())
    values[0] = prev_value
    ledger.close_hour()
    risk = snapshot(portfolio, mv, 0, aave)
    _record_risk(0, risk, portfolio, mv, hf, ltv, margin, d_on, d_cex, hedge_notional, underlying)

    for t in range(1, n):
        if should_cancel is not None and t % PROGRESS_EVERY == 0 and should_cancel():
            raise Cancelled(f"cancelled at hour {t} of {n}")
        ledger.start_hour(t)
        move = attribute_market_move(portfolio, mv, t - 1, t, prev_usd, cur)
        ledger.book("lending", move.lending)
        ledger.book("borrow", move.borrow)
        ledger.book("staking", move.staking)
        ledger.book("perp_mtm", move.perp_mtm)
        ledger.book("spot_price", move.spot_price)
        eth = mv.eth[t]

        if portfolio.cex:
            for f in world.settle_funding(t):
                ledger.book("funding", f.payment_usd if cur == "USDT" else f.payment_usd / eth)
                log.add(mv.timestamps[t], t, f.venue, "funding", asset=f.asset, amount=f.size,
                        amount_out=f.payment_usd, price=f.mark, reason=f"rate {f.rate:.8g}")
        if rewards_lst is not None:
            reward_eth = world.accrue_rewards(t, rewards_lst)
            if reward_eth:
                ledger.book("rewards", reward_eth * eth if cur == "USDT" else reward_eth)
        for liq in world.liquidate(t):
            liquidations += 1
            ledger.book("liquidation", -liq.loss_usd if cur == "USDT" else -liq.loss_usd / eth)
            log.add(mv.timestamps[t], t, liq.venue, "liquidation", asset=liq.asset,
                    amount=liq.repaid_or_closed, amount_out=liq.seized, execution_cost_usd=liq.loss_usd,
                    reason=liq.trigger)

        risk = snapshot(portfolio, mv, t, aave)
        usd = value_usd(portfolio, mv, t)
        monitor.observe(t, to_numeraire(usd, cur, mv, t), risk)
        ctx = StrategyContext(portfolio, mv, t, risk, params, usd)
        reason = strategy.check(ctx)
        if reason is not None:
            marker = log.add(mv.timestamps[t], t, "strategy", "rebalance", reason=reason)
            if manager.run(strategy.rebalance(ctx, reason), t):
                rebalance_hours.append(t)
                risk = snapshot(portfolio, mv, t, aave)
                usd = value_usd(portfolio, mv, t)
            elif log.events[-1] is marker:
                log.retract(marker)

        value = to_numeraire(usd, cur, mv, t)
        recon[t] = abs(value - prev_value - ledger.hour_total())
        values[t] = value
        ledger.close_hour()
        _record_risk(t, risk, portfolio, mv, hf, ltv, margin, d_on, d_cex, hedge_notional, underlying)
        prev_usd, prev_value = usd, value
        if progress is not None and t % PROGRESS_EVERY == 0:
            progress(t, n)
    if progress is not None:
        progress(n, n)

    return SimulationOutput(
        values=values, components=ledger.rows, reconciliation=recon, health_factor=hf, ltv=ltv,
        margin_ratio=margin, delta_onchain=d_on, delta_cex=d_cex, hedge_notional=hedge_notional,
        rebalance_hours=rebalance_hours, liquidation_count=liquidations, events=log,
        initial_value=initial_value, engine_seconds=time.perf_counter() - started,
        ledger_totals=ledger.totals(), risk_warnings=monitor.warnings(),
    )


def _record_risk(t: int, risk: RiskSnapshot, portfolio: Portfolio, mv: MarketView, hf: np.ndarray,
                 ltv: np.ndarray, margin: dict[str, np.ndarray], d_on: np.ndarray, d_cex: np.ndarray,
                 hedge_notional: np.ndarray, underlying: str) -> None:
    if not math.isinf(risk.health_factor):
        hf[t] = risk.health_factor
    ltv[t] = risk.ltv
    for venue, arr in margin.items():
        ratio = risk.margin_ratio.get(venue, math.inf)
        if not math.isinf(ratio):
            arr[t] = ratio
    d_on[t] = risk.delta_onchain_eth
    d_cex[t] = risk.delta_cex.get(underlying, 0.0)
    notional = 0.0
    for venue, acct in portfolio.cex.items():
        for asset, pos in acct.perps.items():
            if pos.size:
                notional += abs(pos.size) * mv.perp[(venue, asset)][t]
    hedge_notional[t] = notional
