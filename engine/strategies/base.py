"""The strategy base: every mode emits Instructions and never calls a venue (docs/ARCHITECTURE.md, Layers).

A strategy program is a generator: it yields an Instruction and receives the resulting Fill back, so
later steps can size themselves on what actually executed (a swap's proceeds, a withdrawal capped by
the balance). The backtest drives the generator synchronously; a live driver can await each fill.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Generator

from engine.components.risk import RiskSnapshot, onchain_eth_units
from engine.components.valuation import value_usd
from engine.domain.instructions import Fill, Instruction
from engine.domain.market import MarketView
from engine.domain.params import RunParams, StrategyParams
from engine.domain.portfolio import Portfolio
from engine.strategies.rebalance import DELTA, Rebalance, margin, margin_excess

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


class Strategy:
    """Base for all seven modes. Subclasses implement `seed`, `entry` and optionally `check`/`rebalance`."""

    mode: ClassVar[str] = ""

    def __init__(self, params: RunParams) -> None:
        self.params = params
        self.sp: StrategyParams = params.strategy

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

    def rebalance(self, ctx: StrategyContext, why: Rebalance) -> Program:
        return
        yield  # pragma: no cover

    # -- shared checks -------------------------------------------------------------------------
    def hedged_check(self, ctx: StrategyContext, onchain_units: float) -> Rebalance | None:
        """Margin first (a liquidation is the bigger danger), then delta drift, then idle surplus
        margin. Net delta is the on-chain exposure plus every CEX holding of the underlying."""
        sp = self.sp
        for venue, ratio in ctx.risk.margin_ratio.items():
            if ratio < sp.margin_ratio_trigger:
                return margin(venue)
        net = onchain_units + ctx.risk.delta_cex.get(sp.underlying or "", 0.0)
        price = ctx.market.spot[sp.underlying][ctx.t] if sp.underlying != "ETH" else ctx.eth
        equity = ctx.value_at_check_usd
        if equity > 0 and abs(net) * price / equity > sp.delta_drift_trigger:
            return DELTA
        for venue, ratio in ctx.risk.margin_ratio.items():
            if ratio > sp.margin_ratio_ceiling:
                return margin_excess(venue)
        return None

    def hf_below_floor(self, ctx: StrategyContext) -> bool:
        hf = ctx.risk.health_factor
        return not math.isinf(hf) and hf < self.sp.hf_floor

    def onchain_exposure(self, ctx: StrategyContext) -> float:
        return onchain_eth_units(ctx.portfolio, ctx.market, ctx.t)
