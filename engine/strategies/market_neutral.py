"""USDT market-neutral modes: an on-chain LST long (plain or looped on AAVE) hedged with ETH perp
shorts sized to its net ETH, so the USDT value earns staking (+ leverage spread) + funding."""
from __future__ import annotations

import numpy as np

from engine.domain.instructions import WALLET, Instruction, Op
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.math.costs import slippage_bps
from engine.math.leverage import sequential_loop
from engine.strategies.banded_growth import grow_hedged_long, plan_tranches
from engine.strategies.base import Program, QuietContext, Strategy, StrategyContext
from engine.strategies.capacity import check_hedged_capital
from engine.strategies.hedge import (
    DUST_USD,
    clamp_order,
    collect_surplus,
    fund_margins,
    hedge_to,
    margin_cash_needed,
    margin_targets,
)
from engine.strategies.onchain_legs import (
    deleverage_to_target,
    estimated_gas_eth,
    lever_up,
    stake,
    unwind_fraction,
    usdt_per_usd_freed,
)
from engine.strategies.rebalance import HF_FLOOR, Rebalance, RebalanceKind

#: A sale that must raise a margin top-up frees this much more than its costs say it needs: the cost
#: table is read at an estimated size and the peg moves within the bundle's rounding.
UNWIND_COST_CUSHION = 1.01


class MarketNeutralStrategy(Strategy):
    """Capital starts as USDT in the wallet: X = V/(1+m) (at most the mode's capacity) buys ETH for the
    long leg, m x X is margin and anything beyond stays idle in the wallet."""

    leveraged = False

    def seed(self, portfolio: Portfolio, market: MarketView) -> None:
        portfolio.wallet.add("USDT", self.sp.capital)

    def require_capital(self, ctx: StrategyContext) -> None:
        """The perps hedge what the entry leaves on-chain: the long leg's USDT less the swap's cost (and
        the flash fee of the loop) and less the entry's gas, which a USDT share class owes in ETH. At a
        small capital those costs decide whether the smallest short still reaches its venue's floor,
        so the minimum capital is priced at this hour's gas and cost table."""
        sp = self.sp
        mv, t = ctx.market, ctx.t
        notional = ctx.value_usd / (1.0 + sp.margin_ratio_target)     # at least the long leg
        plan = plan_tranches(self.params, notional)                   # its swaps: 2 x lead each
        swap_usd = min(notional, 2.0 * plan.lead_usd)
        swap_bps = slippage_bps(swap_usd, *(c[t] for c in mv.cost_bps["ETH_USDT"])) + ctx.params.swap_fee_bps
        fraction = swap_bps * 1e-4
        ops = ["TOKEN_SWAP"] * max(plan.swaps, 1) + ["VENUE_TRANSFER"] * sum(1 for w in sp.allocation.values() if w > 0.0)
        if not self.leveraged:
            ops.append("STAKE_DEPOSIT")
        else:
            ops += ["SET_EMODE_ONCE" if sp.emode else "APPROVAL_ONCE", "APPROVAL_ONCE"]
            if sp.loop_method == "atomic":
                ops.append("ATOMIC_ENTRY")
                fraction += ctx.params.flash_fee_rate[sp.flash_venue] * sp.target_ltv / (1.0 - sp.target_ltv)
            else:
                steps = sequential_loop(notional / ctx.eth, sp.target_ltv, sp.max_iterations, sp.min_borrow_eth)
                for step in steps:
                    ops += ["STAKE_DEPOSIT", "COLLATERAL_SUPPLIED"] + (["LOAN_CREATED"] if step.borrow_eth else [])
        gas_usd = estimated_gas_eth(ctx, *ops) * ctx.eth
        check_hedged_capital(self.params, fraction, gas_usd,
                             f"at {mv.timestamps[t]}: swap cost {swap_bps:.1f} bps, entry gas {gas_usd:,.2f} USDT "
                             f"for {max(plan.swaps, 1)} swaps")

    def entry(self, ctx: StrategyContext) -> Program:
        """Fund every perp venue's margin for the whole hedge first (no ETH exposure exists yet, and
        a real deposit's wait costs nothing), then build the long leg and its hedge in tranches that
        keep the net delta inside the band after every instruction (engine.strategies.banded_growth),
        then stake or loop the ETH bought once (one flash loan: a loop keeps the net ETH, less its
        gas), and hedge what that changed."""
        self.require_capital(ctx)
        long_usd = self.target_long_usd(ctx)
        wallet = ctx.portfolio.wallet
        yield from fund_margins(ctx, long_usd, WALLET, max(wallet.tokens.get("USDT", 0.0) - long_usd, 0.0), "entry")
        budget = min(long_usd, wallet.tokens.get("USDT", 0.0))
        bought = yield from grow_hedged_long(ctx, budget, long_usd, "entry")
        yield from self._put_to_work(ctx, bought, "entry", first_time=True)
        yield from hedge_to(ctx, self.onchain_exposure(ctx), "entry")

    def _put_to_work(self, ctx: StrategyContext, eth: float, reason: str, first_time: bool) -> Program:
        """Stake the ETH bought, or loop it on AAVE."""
        if eth <= 0.0:
            return
        if self.leveraged:
            yield from lever_up(ctx, eth, reason, first_time=first_time)
        else:
            yield from stake(ctx, eth, reason)

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
        """Bring surplus margin back to the wallet and grow the long leg with it, up to the long
        leg's target and the DEX's depth limit, in tranches led by the hedge as the entry does
        (a partial entry completes this way too)."""
        target_long = self.target_long_usd(ctx)
        yield from collect_surplus(ctx, margin_targets(ctx, target_long), WALLET, reason)
        usdt = ctx.portfolio.wallet.tokens.get("USDT", 0.0)
        room = target_long - self.onchain_exposure(ctx) * ctx.eth
        if room < usdt - DUST_USD:           # capital held idle beyond the capacity stays idle
            usdt = room
        usdt = min(usdt, ctx.params.dex_max_order_usdt)
        if usdt <= DUST_USD:
            return
        bought = yield from grow_hedged_long(ctx, usdt, target_long, reason)
        yield from self._put_to_work(ctx, bought, reason, first_time=False)

    def _move_value_to_margin(self, ctx: StrategyContext, reason: str) -> Program:
        """Shrink the long leg to its target (V/(1+m), capped at capacity), sell the freed ETH for USDT
        and send it to the short venues (one depth-limited swap each way per hour)."""
        long_usd = self.onchain_exposure(ctx) * ctx.eth
        target_long = self.target_long_usd(ctx)
        excess = long_usd - target_long
        # Raise at least what the venues in danger need (each top-up at least its floor) beyond the
        # USDT the wallet holds, grossed up for what the unwind and the swaps cost on the way.
        short = margin_cash_needed(ctx, target_long, WALLET) - ctx.portfolio.wallet.tokens.get("USDT", 0.0)
        if short > 0.0:
            yield_ = usdt_per_usd_freed(ctx, short, self.leveraged)
            need = short / yield_ * UNWIND_COST_CUSHION if yield_ > 0.0 else long_usd
            excess = min(max(excess, need), long_usd)
        if excess > DUST_USD and long_usd > 0.0:
            depth = ctx.params.dex_max_order_usdt
            if self.leveraged:
                yield from unwind_fraction(ctx, excess / long_usd, reason)
            else:
                lst = self.sp.lst
                price = ctx.market.lst_oracle[lst][ctx.t] * ctx.eth
                units = clamp_order(min(excess / price, ctx.portfolio.wallet.tokens.get(lst, 0.0)), price, depth)
                yield Instruction(Op.SWAP, "uniswap", lst, units, to_asset="ETH", reason=reason)
            eth = ctx.portfolio.wallet.tokens.get("ETH", 0.0)
            if eth * ctx.eth > DUST_USD:
                yield Instruction(Op.SWAP, "uniswap", "ETH", clamp_order(eth, ctx.eth, depth), to_asset="USDT",
                                  reason=reason)
        yield from fund_margins(ctx, self.onchain_exposure(ctx) * ctx.eth, WALLET,
                                ctx.portfolio.wallet.tokens.get("USDT", 0.0), reason)


class UsdtMarketNeutralNoLeverageStrategy(MarketNeutralStrategy):
    mode = "usdt_market_neutral_no_leverage"


class UsdtMarketNeutralStrategy(MarketNeutralStrategy):
    mode = "usdt_market_neutral"
    leveraged = True
