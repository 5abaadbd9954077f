"""Cash-and-carry basis: long spot on one CEX, short perps split across venues (btc/eth_basis)."""
from __future__ import annotations

import numpy as np

from engine.domain.instructions import Instruction, Op
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.math.costs import slippage_bps
from engine.strategies.base import Program, QuietContext, Strategy, StrategyContext
from engine.strategies.hedge import (
    clamp_order,
    collect_surplus,
    fund_margins,
    hedge_to,
    margin_cash_needed,
    margin_targets,
    venue_equity,
    venue_notional,
)
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
        """USDT the spot venue can send away without dropping below its own margin target. Its margin
        is its equity (cash plus its own short's unrealised P&L): cash that an unrealised loss already
        spends is not free, whatever the cash balance says."""
        venue = self.sp.spot_venue
        cash = ctx.portfolio.account(venue).usdt
        if venue not in targets:
            return cash
        return min(cash, venue_equity(ctx, venue)) - targets[venue]

    def entry(self, ctx: StrategyContext) -> Program:
        self.require_capital(ctx)
        sp = self.sp
        price = self._spot_price(ctx)
        # The buy's own fee comes out of the same cash, so it is reserved: the margins then get
        # their whole targets (a small account's floors leave no slack for it).
        cost = sp_cost_rate(ctx, sp.spot_venue, sp.underlying, ctx.value_usd / (1.0 + sp.margin_ratio_target))
        long_usd = self.target_long_usd(ctx, cost)
        qty = long_usd / price
        yield Instruction(Op.SPOT_TRADE, sp.spot_venue, sp.underlying, qty, reason="entry")
        targets = margin_targets(ctx, long_usd)
        yield from fund_margins(ctx, long_usd, sp.spot_venue, self._free_cash(ctx, targets), "entry")
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
            # Shrink the spot leg to its target (V/(1+m) less any margin floors, capped at capacity)
            # and fund the margins. The sale raises at least what the venues in danger need; a sale
            # below the spot venue's floor is rounded up to it when they need the cash.
            price = self._spot_price(ctx)
            long_usd = self.target_long_usd(ctx)
            cp = ctx.params.cex[sp.spot_venue]
            held = self._spot_qty(ctx)
            sell_usd, note = held * price - long_usd, ""
            short = self._cash_to_raise(ctx, long_usd)
            if short > max(sell_usd, 0.0):
                sell_usd = short
            if 0.0 < short and sell_usd < cp.min_order_usdt:
                note = (f" (sale rounded up to {sp.spot_venue}'s min_order_usdt {cp.min_order_usdt:g} "
                        f"from {sell_usd:.2f} USDT to fund the margin)")
                sell_usd = cp.min_order_usdt
            sell = clamp_order(min(sell_usd / price, held), price, cp.max_order_usdt)
            if sell * price >= cp.min_order_usdt * (1.0 - 1e-12):
                yield Instruction(Op.SPOT_TRADE, sp.spot_venue, sp.underlying, -sell, reason=reason + note)
            long_now = self._spot_qty(ctx) * price
            targets = margin_targets(ctx, long_now)
            yield from fund_margins(ctx, long_now, sp.spot_venue, self._free_cash(ctx, targets), reason)
        yield from hedge_to(ctx, self._spot_qty(ctx), reason)

    def _cash_to_raise(self, ctx: StrategyContext, long_usd: float) -> float:
        """USDT the spot venue lacks for the margins that need it now: its own shortfall plus the
        transfers the other venues need (each at least its floor), less the free cash it holds."""
        sp = self.sp
        venue = sp.spot_venue
        targets = margin_targets(ctx, long_usd)
        own = 0.0
        if venue in targets:
            equity = venue_equity(ctx, venue)
            hedge = max(sp.allocation[venue] * long_usd, venue_notional(ctx, venue))
            if equity < sp.margin_ratio_trigger * hedge:        # the spot venue's own margin in danger
                own = targets[venue] - equity
        transfers = margin_cash_needed(ctx, long_usd, venue)
        if not own and not transfers:
            return 0.0
        return own + transfers - max(self._free_cash(ctx, targets), 0.0)

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
