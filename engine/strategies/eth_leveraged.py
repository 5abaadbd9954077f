"""eth_leveraged: LST collateral on AAVE e-mode, WETH debt, looped to the target LTV (ETH share class).
Rebalancing deleverages back to hf_target when the health factor falls below hf_floor."""
from __future__ import annotations

import numpy as np

from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.strategies.base import Program, QuietContext, Strategy, StrategyContext
from engine.strategies.onchain_legs import deleverage_to_target, estimated_gas_eth, lever_up
from engine.strategies.rebalance import HF_FLOOR, Rebalance


class EthLeveragedStrategy(Strategy):
    mode = "eth_leveraged"

    def seed(self, portfolio: Portfolio, market: MarketView) -> None:
        portfolio.wallet.add("ETH", self.sp.capital)

    def entry(self, ctx: StrategyContext) -> Program:
        ops = ["SET_EMODE_ONCE", "APPROVAL_ONCE"]
        ops += ["ATOMIC_ENTRY"] if self.sp.loop_method == "atomic" else []
        reserve = estimated_gas_eth(ctx, *ops)
        self.require_entry_gas(ctx, reserve)
        yield from lever_up(ctx, ctx.portfolio.wallet.tokens["ETH"] - reserve, "entry")

    def check(self, ctx: StrategyContext) -> Rebalance | None:
        return HF_FLOOR if self.sp.rebalancing and self.hf_below_floor(ctx) else None

    def quiet_check(self, q: QuietContext) -> np.ndarray:
        if not self.sp.rebalancing:
            return np.zeros(q.hours.stop - q.hours.start, dtype=bool)
        return self.hf_quiet_below_floor(q)

    def rebalance(self, ctx: StrategyContext, why: Rebalance) -> Program:
        yield from deleverage_to_target(ctx, str(why))
