"""The backtest hot loop: one pass over the hourly grid with plain floats (DESIGN §4-§5).

Per hour: attribute the market move of the holdings, let the venues act (funding, liquidations), let
the strategy rebalance, pay any reward distribution due, then value the portfolio independently and
record how far the value change is from the sum of the attributed components (reconciliation error).

The reported value is mark-to-market (LSTs at their market rate); the strategy and the risk checks
see the protocol value (LSTs at the oracle rate, what AAVE uses). The `lst_peg` component is the
difference moving: its market part comes with the market move, and the part trades cause (an LST
minted at the oracle rate is worth the market rate) is booked after the hour's actions.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from engine.components.balance_sheet import BalanceSheetRecorder
from engine.components.event_log import EventLog, record_deposits
from engine.components.pnl_attribution import attribute_market_move
from engine.components.pnl_ledger import PnlLedger
from engine.components.rewards import RewardBook, RewardPayment, eligible_eeth
from engine.components.risk import RiskSnapshot, snapshot
from engine.components.valuation import lst_peg_usd, to_numeraire, value_usd
from engine.domain.instructions import Fill, Instruction
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.domain.rewards import RewardPayout
from engine.execution.manager import ExecutionManager
from engine.services.backtest_risk import BacktestRiskMonitor
from engine.strategies.base import Strategy, StrategyContext

PROGRESS_EVERY = 500   # hours between progress callbacks (cheap enough, smooth enough for a bar)


class VenueWorld(Protocol):
    """The simulated venue layer: executes instructions and plays the venues' own hourly actions."""

    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill: ...
    def settle_funding(self, t: int) -> list: ...
    def sell_reward(self, t: int, payout: RewardPayout, tokens: float) -> Any: ...
    def liquidate(self, t: int) -> list: ...


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
    record_deposits(log, portfolio, mv.timestamps[0])
    manager = ExecutionManager(world, mv, ledger, log, cur, rejected_exc)
    # Where the live circuit breakers would have stopped a session (reported, see backtest_risk).
    monitor = BacktestRiskMonitor(params, mv, log)

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
    liquidations = 0
    underlying = sp.underlying or "ETH"
    aave = params.aave
    usdt = cur == "USDT"
    has_lst = bool(mv.lst_market) and sp.lst is not None
    rewards = RewardBook(mv.reward_payouts, sp.rewards_mode, n) if sp.lst == "weETH" else None
    if rewards is not None and not rewards.active:
        rewards = None
    holdings = BalanceSheetRecorder()

    def peg_value(t: int) -> float:
        """The LSTs' market-vs-oracle value in the share currency (0 without LSTs)."""
        if not has_lst:
            return 0.0
        peg = lst_peg_usd(portfolio, mv, t)
        return peg if usdt else peg / mv.eth[t]

    # ---- hour 0: deploy the capital. The hour's P&L is the entry cost (value - capital).
    ledger.start_hour(0)
    initial_value = sp.capital
    ctx = StrategyContext(portfolio, mv, 0, snapshot(portfolio, mv, 0, aave), params)
    monitor.observe(0, initial_value, ctx.risk)
    manager.run(strategy.entry(ctx), 0)
    prev_usd = value_usd(portfolio, mv, 0)
    if rewards is not None:
        rewards.eligible[0] = eligible_eeth(portfolio, mv, 0, sp.lst)
        if rewards.due(0):
            prev_usd = _pay_rewards(0, rewards, world, portfolio, mv, ledger, log, cur)
    peg = peg_value(0)
    ledger.book("lst_peg", peg)
    prev_value = to_numeraire(prev_usd, cur, mv, 0) + peg
    recon[0] = abs(prev_value - initial_value - ledger.hour_total())
    values[0] = prev_value
    values_protocol[0] = prev_value - peg
    ledger.close_hour()
    holdings.snapshot(0, portfolio)
    risk = snapshot(portfolio, mv, 0, aave)
    _record_risk(0, risk, portfolio, mv, hf, ltv, margin, d_on, d_cex, hedge_notional, underlying)

    for t in range(1, n):
        if should_cancel is not None and t % PROGRESS_EVERY == 0 and should_cancel():
            raise Cancelled(f"cancelled at hour {t} of {n}")
        ledger.start_hour(t)
        changed = False
        move = attribute_market_move(portfolio, mv, t - 1, t, prev_usd, cur)
        ledger.book("lending", move.lending)
        ledger.book("borrow", move.borrow)
        ledger.book("staking", move.staking)
        ledger.book("lst_peg", move.lst_peg)
        ledger.book("perp_mtm", move.perp_mtm)
        ledger.book("spot_price", move.spot_price)
        eth = mv.eth[t]

        if portfolio.cex:
            for f in world.settle_funding(t):
                changed = True
                ledger.book("funding", f.payment_usd if usdt else f.payment_usd / eth)
                log.add(mv.timestamps[t], t, f.venue, "funding", asset=f.asset, amount=f.size,
                        amount_out=f.payment_usd, price=f.mark, reason=f"rate {f.rate:.8g}")
        for liq in world.liquidate(t):
            liquidations += 1
            changed = True
            ledger.book("liquidation", -liq.loss_usd if usdt else -liq.loss_usd / eth)
            log.add(mv.timestamps[t], t, liq.venue, "liquidation", asset=liq.asset,
                    amount=liq.repaid_or_closed, amount_out=liq.seized, execution_cost_usd=liq.loss_usd,
                    reason=liq.trigger)

        risk = snapshot(portfolio, mv, t, aave)
        usd = value_usd(portfolio, mv, t)
        monitor.observe(t, usd if usdt else usd / eth, risk)
        ctx = StrategyContext(portfolio, mv, t, risk, params, usd)
        reason = strategy.check(ctx)
        if reason is not None:
            marker = log.add(mv.timestamps[t], t, "strategy", "rebalance", reason=reason)
            if manager.run(strategy.rebalance(ctx, reason), t):
                changed = True
                rebalance_hours.append(t)
                risk = snapshot(portfolio, mv, t, aave)
                usd = value_usd(portfolio, mv, t)
            elif log.events[-1] is marker:
                log.retract(marker)
        if rewards is not None:
            # The end-of-hour balance counts for the hour; a payout due now pays on the period
            # including this hour (an EIGEN week pays on its last day).
            rewards.eligible[t] = eligible_eeth(portfolio, mv, t, sp.lst)
            if rewards.due(t):
                changed = True
                usd = _pay_rewards(t, rewards, world, portfolio, mv, ledger, log, cur)
                risk = snapshot(portfolio, mv, t, aave)

        # Without an action the holdings are the ones the market move priced at t: same peg value.
        peg = peg_value(t) if changed else move.peg_b
        if changed and has_lst:
            ledger.book("lst_peg", peg - move.peg_b)     # what this hour's trades did to the peg value
        value = to_numeraire(usd, cur, mv, t) + peg
        recon[t] = abs(value - prev_value - ledger.hour_total())
        values[t] = value
        values_protocol[t] = value - peg
        ledger.close_hour()
        if changed:
            holdings.snapshot(t, portfolio)
        _record_risk(t, risk, portfolio, mv, hf, ltv, margin, d_on, d_cex, hedge_notional, underlying)
        prev_usd, prev_value = usd, value
        if progress is not None and t % PROGRESS_EVERY == 0:
            progress(t, n)
    if progress is not None:
        progress(n, n)

    return SimulationOutput(
        values=values, values_protocol=values_protocol, components=ledger.rows, reconciliation=recon,
        health_factor=hf, ltv=ltv, margin_ratio=margin, delta_onchain=d_on, delta_cex=d_cex,
        hedge_notional=hedge_notional, rebalance_hours=rebalance_hours, liquidation_count=liquidations,
        events=log, initial_value=initial_value, engine_seconds=time.perf_counter() - started,
        ledger_totals=ledger.totals(), rewards=rewards, holdings=holdings, final_portfolio=portfolio,
        risk_warnings=monitor.warnings(), margin_ratio_at_check=dict(monitor.margin_ratio_min),
    )


def _pay_rewards(t: int, book: RewardBook, world: VenueWorld, portfolio: Portfolio, mv: MarketView,
                 ledger: PnlLedger, log: EventLog, currency: str) -> float:
    """Pay every distribution due at hour t: tokens owed on the period's average balance, sold into
    the share currency (net of sale cost and gas) and booked as `rewards`; one REWARD_PAYMENT event
    each. A payout the pack has no price for, or one worth less than its costs, is recorded and not
    paid. Returns the protocol USD value after the payments."""
    eth = mv.eth[t]
    for payout in book.due(t):
        average, tokens = book.owed(payout)
        if payout.price_eth is None:
            book.payments.append(RewardPayment(payout, "excluded", average, tokens))
            continue
        sale = world.sell_reward(t, payout, tokens)
        if sale is None:
            book.payments.append(RewardPayment(payout, "unclaimed", average, tokens))
            continue
        book.payments.append(RewardPayment(payout, "paid", average, tokens, sale.gross_value, sale.sale_cost,
                                           sale.gas, sale.net_value, sale.gross_eth))
        ledger.book("rewards", sale.net_value)
        to_usd = 1.0 if currency == "USDT" else eth
        log.add(mv.timestamps[t], t, "etherfi", "REWARD_PAYMENT", asset=payout.token, amount=tokens,
                to_asset=sale.token_out, amount_out=sale.proceeds, price=payout.price_eth,
                execution_cost_usd=sale.sale_cost * to_usd, gas_eth=sale.gas_eth,
                reason=(f"{payout.label}: {payout.per_eeth:.6g} {payout.token}/eETH on an average "
                        f"{average:.6g} eETH held; price {payout.price_eth:.6g} ETH/{payout.token} "
                        f"({payout.price_source})"))
    return value_usd(portfolio, mv, t)


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
