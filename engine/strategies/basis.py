"""Cash-and-carry basis: long spot on one CEX, short perps split across venues (btc/eth_basis)."""
from __future__ import annotations

from engine.domain.instructions import Instruction, Op
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.strategies.base import Program, Strategy, StrategyContext
from engine.strategies.hedge import fund_margins, hedge_to, margin_targets


class BasisStrategy(Strategy):
    """Capital starts as USDT on the spot venue. Spot X = V/(1+m) is bought there; each perp venue
    gets m x its allocation of X as margin and shorts its allocation of the spot quantity."""

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
        sp = self.sp
        price = self._spot_price(ctx)
        long_usd = ctx.value_usd / (1.0 + sp.margin_ratio_target)
        qty = long_usd / price
        yield Instruction(Op.SPOT_TRADE, sp.spot_venue, sp.underlying, qty, reason="entry")
        targets = margin_targets(ctx, long_usd)
        yield from fund_margins(ctx, targets, sp.spot_venue, self._free_cash(ctx, targets), "entry")
        yield from hedge_to(ctx, self._spot_qty(ctx), "entry")

    def check(self, ctx: StrategyContext) -> str | None:
        return self.hedged_check(ctx, 0.0) if self.sp.rebalancing else None

    def rebalance(self, ctx: StrategyContext, reason: str) -> Program:
        sp = self.sp
        if reason.startswith("margin"):
            price = self._spot_price(ctx)
            long_usd = ctx.value_usd / (1.0 + sp.margin_ratio_target)
            sell = self._spot_qty(ctx) - long_usd / price
            if sell * price > ctx.params.cex[sp.spot_venue].min_order_usdt:
                yield Instruction(Op.SPOT_TRADE, sp.spot_venue, sp.underlying, -sell, reason=reason)
            targets = margin_targets(ctx, self._spot_qty(ctx) * price)
            yield from fund_margins(ctx, targets, sp.spot_venue, self._free_cash(ctx, targets), reason)
        yield from hedge_to(ctx, self._spot_qty(ctx), reason)


class BtcBasisStrategy(BasisStrategy):
    mode = "btc_basis"


class EthBasisStrategy(BasisStrategy):
    mode = "eth_basis"


__all__ = ["BasisStrategy", "BtcBasisStrategy", "EthBasisStrategy"]
