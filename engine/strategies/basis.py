"""Cash-and-carry basis: long spot on one CEX, short perps split across venues (btc/eth_basis)."""
from __future__ import annotations

import numpy as np

from engine.domain.instructions import Instruction, Op
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.math.costs import slippage_bps
from engine.strategies.base import Program, QuietContext, Strategy, StrategyContext
from engine.strategies.hedge import clamp_order, collect_surplus, fund_margins, hedge_to, margin_targets
from engine.strategies.rebalance import Rebalance, RebalanceKind


class BasisStrategy(Strategy):
    """Capital starts as USDT on the spot venue. Spot X = V/(1+m) is bought there (at most the mode's
    capacity); each perp venue gets m x its allocation of X as margin and shorts its allocation of
    the spot quantity."""

    def seed(self, portfolio: Portfolio, market: MarketView) -> None:
        portfolio.account(self.sp.spot_venue).usdt = self.sp.capital

    def _spot_price(self, ctx: StrategyContext) -> float:
        return ctx.market.spot[self.sp.underlying][ctx.t]

    def _spot_qty(self, ctx: StrategyContext) -> float:
        return ctx.portfolio.account(self.sp.spot_venue).spot.get(self.sp.underlying, 0.0)

    def _free_cash(self, ctx: StrategyContext, targets: dict[str, float]) -> float:
        """USDT the spot venue can send away without dropping below its own margin target."""
        venue = self.sp.spot_venue
        return ctx.portfolio.account(venue).usdt - targets.get(venue, 0.0) if venue in targets \
            else ctx.portfolio.account(venue).usdt

    def entry(self, ctx: StrategyContext) -> Program:
        self.require_capital(ctx)
        sp = self.sp
        price = self._spot_price(ctx)
        long_usd = self.target_long_usd(ctx)
        qty = long_usd / price
        yield Instruction(Op.SPOT_TRADE, sp.spot_venue, sp.underlying, qty, reason="entry")
        targets = margin_targets(ctx, long_usd)
        yield from fund_margins(ctx, targets, sp.spot_venue, self._free_cash(ctx, targets), "entry")
        yield from hedge_to(ctx, self._spot_qty(ctx), "entry")

    def check(self, ctx: StrategyContext) -> Rebalance | None:
        return self.hedged_check(ctx, 0.0, self._spot_qty(ctx)) if self.sp.rebalancing else None

    def quiet_check(self, q: QuietContext) -> np.ndarray:
        if not self.sp.rebalancing:
            return np.zeros(q.hours.stop - q.hours.start, dtype=bool)
        spot = q.portfolio.cex.get(self.sp.spot_venue)
        return self.hedged_quiet_check(q, 0.0, spot.spot.get(self.sp.underlying, 0.0) if spot is not None else 0.0)

    def rebalance(self, ctx: StrategyContext, why: Rebalance) -> Program:
        sp = self.sp
        reason = str(why)
        if why.kind is RebalanceKind.MARGIN_EXCESS:
            yield from self._redeploy_surplus(ctx, reason)
        elif why.moves_margin:
            # Shrink the spot leg to its target (V/(1+m), capped at capacity) and fund the margins.
            price = self._spot_price(ctx)
            long_usd = self.target_long_usd(ctx)
            sell = clamp_order(self._spot_qty(ctx) - long_usd / price, price,
                               ctx.params.cex[sp.spot_venue].max_order_usdt)
            if sell * price > ctx.params.cex[sp.spot_venue].min_order_usdt:
                yield Instruction(Op.SPOT_TRADE, sp.spot_venue, sp.underlying, -sell, reason=reason)
            targets = margin_targets(ctx, self._spot_qty(ctx) * price)
            yield from fund_margins(ctx, targets, sp.spot_venue, self._free_cash(ctx, targets), reason)
        yield from hedge_to(ctx, self._spot_qty(ctx), reason)

    def _redeploy_surplus(self, ctx: StrategyContext, reason: str) -> Program:
        """Bring surplus margin home to the spot venue and buy spot with it (the hedge follows)."""
        sp = self.sp
        price = self._spot_price(ctx)
        long_usd = self.target_long_usd(ctx)
        targets = margin_targets(ctx, long_usd)
        yield from collect_surplus(ctx, targets, sp.spot_venue, reason)
        cash = min(self._free_cash(ctx, targets), long_usd - self._spot_qty(ctx) * price,
                   ctx.params.cex[sp.spot_venue].max_order_usdt)
        if cash <= ctx.params.cex[sp.spot_venue].min_order_usdt:
            return
        cost = sp_cost_rate(ctx, sp.spot_venue, sp.underlying, cash)
        yield Instruction(Op.SPOT_TRADE, sp.spot_venue, sp.underlying, cash / (price * (1.0 + cost)),
                          reason=reason)


def sp_cost_rate(ctx: StrategyContext, venue: str, asset: str, notional: float) -> float:
    """Fee + slippage as a fraction of `notional` for a spot buy (so the buy fits the cash)."""
    mv = ctx.market
    pair = f"{asset}_USDT" if f"{asset}_USDT" in mv.cost_bps else f"{asset}USDT-PERP"
    bps = ctx.params.cex[venue].spot_taker_bps + slippage_bps(notional, *(c[ctx.t] for c in mv.cost_bps[pair]))
    return bps * 1e-4 * 1.0001


class BtcBasisStrategy(BasisStrategy):
    mode = "btc_basis"


class EthBasisStrategy(BasisStrategy):
    mode = "eth_basis"


__all__ = ["BasisStrategy", "BtcBasisStrategy", "EthBasisStrategy"]
