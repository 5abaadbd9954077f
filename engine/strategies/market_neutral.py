"""USDT market-neutral modes: an on-chain LST long (plain or looped on AAVE) hedged with ETH perp
shorts sized to its net ETH, so the USDT value earns staking (+ leverage spread) + funding."""
from __future__ import annotations

import numpy as np

from engine.domain.instructions import WALLET, Instruction, Op
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.strategies.base import Program, QuietContext, Strategy, StrategyContext
from engine.strategies.hedge import (
    DUST_USD,
    clamp_order,
    collect_surplus,
    fund_margins,
    hedge_to,
    margin_targets,
)
from engine.strategies.onchain_legs import deleverage_to_target, lever_up, stake, unwind_fraction
from engine.strategies.rebalance import HF_FLOOR, Rebalance, RebalanceKind


class MarketNeutralStrategy(Strategy):
    """Capital starts as USDT in the wallet: X = V/(1+m) (at most the mode's capacity) buys ETH for the
    long leg, m x X is margin and anything beyond stays idle in the wallet."""

    leveraged = False

    def seed(self, portfolio: Portfolio, market: MarketView) -> None:
        portfolio.wallet.add("USDT", self.sp.capital)

    def entry(self, ctx: StrategyContext) -> Program:
        self.require_capital(ctx)
        long_usd = self.target_long_usd(ctx)
        fill = yield Instruction(Op.SWAP, "uniswap", "USDT", long_usd, to_asset="ETH", reason="entry")
        if self.leveraged:
            yield from lever_up(ctx, fill.amount_out, "entry")
        else:
            yield from stake(ctx, fill.amount_out, "entry")
        targets = margin_targets(ctx, long_usd)
        yield from fund_margins(ctx, targets, WALLET, ctx.portfolio.wallet.tokens.get("USDT", 0.0), "entry")
        yield from hedge_to(ctx, self.onchain_exposure(ctx), "entry")

    def check(self, ctx: StrategyContext) -> Rebalance | None:
        if not self.sp.rebalancing:
            return None
        if self.leveraged and self.hf_below_floor(ctx):
            return HF_FLOOR
        exposure = self.onchain_exposure(ctx)
        return self.hedged_check(ctx, exposure, exposure)

    def quiet_check(self, q: QuietContext) -> np.ndarray:
        if not self.sp.rebalancing:
            return np.zeros(q.hours.stop - q.hours.start, dtype=bool)
        exposure = q.risk.delta_onchain_eth            # onchain_exposure: the same closed form
        fire = self.hedged_quiet_check(q, exposure, exposure)
        return fire | self.hf_quiet_below_floor(q) if self.leveraged else fire

    def rebalance(self, ctx: StrategyContext, why: Rebalance) -> Program:
        reason = str(why)
        if why.kind is RebalanceKind.HF_FLOOR:
            yield from deleverage_to_target(ctx, reason)
        elif why.kind is RebalanceKind.MARGIN_EXCESS:
            yield from self._redeploy_surplus(ctx, reason)
        elif why.moves_margin:
            yield from self._move_value_to_margin(ctx, reason)
        yield from hedge_to(ctx, self.onchain_exposure(ctx), reason)

    def _redeploy_surplus(self, ctx: StrategyContext, reason: str) -> Program:
        """Bring surplus margin back to the wallet and grow the long leg with it (the hedge follows),
        up to the long leg's target and one depth-limited swap."""
        target_long = self.target_long_usd(ctx)
        yield from collect_surplus(ctx, margin_targets(ctx, target_long), WALLET, reason)
        usdt = ctx.portfolio.wallet.tokens.get("USDT", 0.0)
        room = target_long - self.onchain_exposure(ctx) * ctx.eth
        if room < usdt - DUST_USD:           # capital held idle beyond the capacity stays idle
            usdt = room
        usdt = min(usdt, ctx.params.dex_max_order_usdt)
        if usdt <= DUST_USD:
            return
        fill = yield Instruction(Op.SWAP, "uniswap", "USDT", usdt, to_asset="ETH", reason=reason)
        if self.leveraged:
            yield from lever_up(ctx, fill.amount_out, reason, first_time=False)
        else:
            yield from stake(ctx, fill.amount_out, reason)

    def _move_value_to_margin(self, ctx: StrategyContext, reason: str) -> Program:
        """Shrink the long leg to its target (V/(1+m), capped at capacity), sell the freed ETH for USDT
        and send it to the short venues (one depth-limited swap each way per hour)."""
        long_usd = self.onchain_exposure(ctx) * ctx.eth
        target_long = self.target_long_usd(ctx)
        excess = long_usd - target_long
        if excess > DUST_USD and long_usd > 0.0:
            depth = ctx.params.dex_max_order_usdt
            if self.leveraged:
                yield from unwind_fraction(ctx, excess / long_usd, reason)
            else:
                lst = self.sp.lst
                price = ctx.market.lst_oracle[lst][ctx.t] * ctx.eth
                units = clamp_order(excess / price, price, depth)
                yield Instruction(Op.SWAP, "uniswap", lst, units, to_asset="ETH", reason=reason)
            eth = ctx.portfolio.wallet.tokens.get("ETH", 0.0)
            if eth * ctx.eth > DUST_USD:
                yield Instruction(Op.SWAP, "uniswap", "ETH", clamp_order(eth, ctx.eth, depth), to_asset="USDT",
                                  reason=reason)
        targets = margin_targets(ctx, self.onchain_exposure(ctx) * ctx.eth)
        yield from fund_margins(ctx, targets, WALLET, ctx.portfolio.wallet.tokens.get("USDT", 0.0), reason)


class UsdtMarketNeutralNoLeverageStrategy(MarketNeutralStrategy):
    mode = "usdt_market_neutral_no_leverage"


class UsdtMarketNeutralStrategy(MarketNeutralStrategy):
    mode = "usdt_market_neutral"
    leveraged = True
