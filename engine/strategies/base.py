"""The strategy base: every mode emits Instructions and never calls a venue (docs/ARCHITECTURE.md, Layers).

A strategy program is a generator: it yields an Instruction and receives the resulting Fill back, so
later steps can size themselves on what actually executed (a swap's proceeds, a withdrawal capped by
the balance). The backtest drives the generator synchronously; a live driver can await each fill.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Generator

import numpy as np

from engine.components.risk import RiskSnapshot, cex_equity, onchain_eth_units
from engine.components.stretch import RiskSeries
from engine.components.valuation import value_usd
from engine.domain.instructions import Fill, Instruction
from engine.domain.market import MarketSeries, MarketView
from engine.domain.params import RunParams, StrategyParams
from engine.domain.portfolio import Portfolio
from engine.strategies.capacity import (
    Capacity,
    CapitalTooSmall,
    check_hedged_capital,
    hedged_capacity,
    long_for_value,
)
from engine.strategies.rebalance import CAPACITY, DELTA, Rebalance, margin, margin_excess

Program = Generator[Instruction, Fill, None]


@dataclass(slots=True)
class StrategyContext:
    """What a strategy may look at: holdings (read-only by convention), market at hour t, risk."""

    portfolio: Portfolio
    market: MarketView
    t: int
    risk: RiskSnapshot
    params: RunParams
    value_before_usd: float | None = None     # the hour's value before any action, when known

    @property
    def value_usd(self) -> float:
        """Current value (recomputed: programs read it again after their own fills)."""
        return value_usd(self.portfolio, self.market, self.t)

    @property
    def value_at_check_usd(self) -> float:
        """The value the hourly check sees; reuses the simulation's figure instead of recomputing."""
        return self.value_before_usd if self.value_before_usd is not None else self.value_usd

    @property
    def eth(self) -> float:
        return self.market.eth[self.t]


#: A quiet check is conservative by this relative margin: an hour within it of a trigger is stepped
#: and `check` decides it there (float rounding between the two never skips a rebalance).
NEAR = 1e-9


@dataclass(slots=True)
class QuietContext:
    """`StrategyContext` over a stretch of hours whose holdings do not change (only prices and
    funding move): every figure is an array over ``hours``."""

    portfolio: Portfolio
    market: MarketSeries
    hours: slice
    risk: RiskSeries
    params: RunParams
    value_usd: np.ndarray                  # the value `check` would see (after the hour's funding)

    @property
    def eth(self) -> np.ndarray:
        return self.market.eth[self.hours]

    def below(self, x: np.ndarray, threshold: float) -> np.ndarray:
        """Where ``x < threshold`` could hold (within NEAR)."""
        return x < threshold + abs(threshold) * NEAR

    def above(self, x: np.ndarray, threshold: float) -> np.ndarray:
        """Where ``x > threshold`` could hold (within NEAR)."""
        return x > threshold - abs(threshold) * NEAR


class Strategy:
    """Base for all seven modes. Subclasses implement `seed`, `entry` and optionally `check`/`rebalance`
    (a mode with a `check` also implements `quiet_check`, its vectorised twin)."""

    mode: ClassVar[str] = ""

    def __init__(self, params: RunParams) -> None:
        self.params = params
        self.sp: StrategyParams = params.strategy
        hedged = self.sp.hedge and self.sp.currency == "USDT"
        self.capacity: Capacity | None = hedged_capacity(params) if hedged else None
        cap = self.capacity
        usable = cap.long_usd * (1.0 + self.sp.margin_ratio_target) if cap is not None else math.inf
        self._position_cap = cap.position_usd if cap is not None else math.inf
        self._long_cap = cap.long_usd if cap is not None else math.inf
        self._working_capital = usable
        self._idle_on_spot_venue = self.sp.capital > usable

    # -- lifecycle -----------------------------------------------------------------------------
    def seed(self, portfolio: Portfolio, market: MarketView) -> None:
        """Put the initial capital where this mode starts from (wallet or a CEX account)."""
        raise NotImplementedError

    def entry(self, ctx: StrategyContext) -> Program:
        """Build the initial positions at the first hour."""
        raise NotImplementedError
        yield  # pragma: no cover

    def check(self, ctx: StrategyContext) -> Rebalance | None:
        """Cheap per-hour test: why to rebalance, or None. Called every hour."""
        return None

    def quiet_check(self, q: QuietContext) -> np.ndarray | None:
        """`check` for many hours at once, holdings fixed: True at each hour where `check` could name a
        reason. The backtest steps those hours (and `check` decides); every other hour of the stretch
        is valued in closed form without calling the strategy. Margin ratios, delta drift and the
        health factor against their triggers are closed forms in the prices, so a mode's check can
        say this with a few array comparisons. Conservative is correct (an extra hour is stepped);
        missing an hour would not be, so a mode whose `check` this does not cover returns None and
        every hour is stepped."""
        return None

    def rebalance(self, ctx: StrategyContext, why: Rebalance) -> Program:
        return
        yield  # pragma: no cover

    # -- capital -------------------------------------------------------------------------------
    def require_capital(self, ctx: StrategyContext) -> None:
        """Refuse (CapitalTooSmall) a capital the entry cannot use; each mode adds its own floor."""
        check_hedged_capital(self.params)

    def require_entry_gas(self, ctx: StrategyContext, gas_eth: float) -> None:
        """ETH share classes pay the entry's gas from the capital: it must leave something to stake."""
        if self.sp.capital <= gas_eth:
            raise CapitalTooSmall(
                f"capital {self.sp.capital:g} ETH is too small for {self.sp.mode}: the entry's gas at the first "
                f"hour's price is {gas_eth:.6f} ETH, leaving nothing to stake; the minimum capital is "
                f"{gas_eth:.6f} ETH (and a position that small mostly pays gas)")

    def target_long_usd(self, ctx: StrategyContext, cost_rate: float = 0.0) -> float:
        """The long leg for the current value: V / (1 + margin target) for a large account, less where
        a venue's margin floor binds (engine.strategies.capacity.long_for_value), capped at the mode's
        capacity: capital beyond it stays idle. `cost_rate` reserves the entry order's own cost."""
        if self.capacity is None:
            return ctx.value_usd / (1.0 + self.sp.margin_ratio_target)
        return min(long_for_value(self.params, ctx.value_usd, cost_rate), self.capacity.long_usd)

    # -- shared checks -------------------------------------------------------------------------
    def hedged_check(self, ctx: StrategyContext, onchain_units: float, long_units: float) -> Rebalance | None:
        """Margin first (a liquidation is the bigger danger), then a leg past its position limit,
        then delta drift, then idle surplus margin. Net delta is the on-chain exposure plus every CEX
        holding of the underlying; `long_units` is the long leg the perps hedge. Runs every hour:
        the capacity figures are precomputed in __init__."""
        sp = self.sp
        risk = ctx.risk
        ratios = risk.margin_ratio
        for venue, ratio in ratios.items():
            if ratio < sp.margin_ratio_trigger:
                return margin(venue)
        price = ctx.market.spot[sp.underlying][ctx.t] if sp.underlying != "ETH" else ctx.eth
        long_usd = long_units * price
        if long_usd > self._position_cap:
            return CAPACITY
        net = onchain_units + risk.delta_cex.get(sp.underlying or "", 0.0)
        # Drift is measured against the capital at work: idle capital beyond the capacity would
        # otherwise let the deployed legs drift unhedged by a multiple of themselves.
        equity = min(ctx.value_at_check_usd, self._working_capital)
        if equity > 0 and abs(net) * price / equity > sp.delta_drift_trigger:
            short = self.margin_shortfall(ctx, long_units)
            # Re-hedging an account below its initial margin would only be refused: fund it first.
            return margin(short, "below initial margin for its hedge") if short else DELTA
        if long_usd >= self._long_cap:
            return None      # surplus margin cannot grow a long leg that is at its capacity
        ceiling = sp.margin_ratio_ceiling
        for venue, ratio in ratios.items():
            # Capital beyond the capacity waits on the spot venue (basis modes): its margin ratio
            # then says nothing about surplus margin.
            if ratio > ceiling and not (self._idle_on_spot_venue and venue == sp.spot_venue):
                return margin_excess(venue)
        return None

    def hedged_quiet_check(self, q: QuietContext, onchain_units: np.ndarray | float,
                           long_units: np.ndarray | float) -> np.ndarray:
        """`hedged_check` over a quiet stretch: True where any of its reasons could fire (a margin
        below the trigger, a leg past its position limit, delta drift, or surplus margin on a leg
        below its capacity). Which reason `check` names is for the stepped hour to decide."""
        sp = self.sp
        ratios = q.risk.margin_ratio
        fire = np.zeros(q.hours.stop - q.hours.start, dtype=bool)
        for ratio in ratios.values():
            fire |= q.below(ratio, sp.margin_ratio_trigger)
        price = q.market.spot[sp.underlying][q.hours] if sp.underlying != "ETH" else q.eth
        long_usd = long_units * price
        fire |= q.above(long_usd, self._position_cap)
        net = onchain_units + q.risk.delta_cex.get(sp.underlying or "", 0.0)
        equity = np.minimum(q.value_usd, self._working_capital)
        with np.errstate(divide="ignore", invalid="ignore"):
            drift = np.abs(net) * price / equity
        fire |= (equity > 0) & q.above(drift, sp.delta_drift_trigger)
        below_capacity = q.below(long_usd, self._long_cap)
        for venue, ratio in ratios.items():
            if not (self._idle_on_spot_venue and venue == sp.spot_venue):
                fire |= below_capacity & q.above(ratio, sp.margin_ratio_ceiling)
        return fire

    def hf_quiet_below_floor(self, q: QuietContext) -> np.ndarray:
        """`hf_below_floor` over a quiet stretch (+inf, no debt, is never below)."""
        return q.below(q.risk.health_factor, self.sp.hf_floor)

    def margin_shortfall(self, ctx: StrategyContext, long_units: float) -> str | None:
        """The first perp venue whose equity is below the initial margin of its full hedge of
        `long_units` (e.g. an account emptied by a liquidation), or None."""
        sp = self.sp
        asset = sp.underlying or "ETH"
        for venue, weight in sp.allocation.items():
            if weight <= 0.0:
                continue
            acct = ctx.portfolio.cex.get(venue)
            mark = ctx.market.perp[(venue, asset)][ctx.t]
            need = ctx.params.cex[venue].initial_margin_ratio * weight * abs(long_units) * mark
            equity = cex_equity(acct, venue, ctx.market, ctx.t)[0] if acct is not None else 0.0
            if equity < need:
                return venue
        return None

    def hf_below_floor(self, ctx: StrategyContext) -> bool:
        hf = ctx.risk.health_factor
        return not math.isinf(hf) and hf < self.sp.hf_floor

    def onchain_exposure(self, ctx: StrategyContext) -> float:
        return onchain_eth_units(ctx.portfolio, ctx.market, ctx.t)
