"""pure_lending: supply USDT on AAVE v3 and hold the aToken (docs/ARCHITECTURE.md, Modes)."""
from __future__ import annotations

from engine.domain.instructions import Instruction, Op
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.strategies.base import Program, Strategy, StrategyContext


class PureLendingStrategy(Strategy):
    mode = "pure_lending"

    def seed(self, portfolio: Portfolio, market: MarketView) -> None:
        portfolio.wallet.add(self.sp.lending_asset, self.sp.capital)

    def entry(self, ctx: StrategyContext) -> Program:
        asset = self.sp.lending_asset
        yield Instruction(Op.APPROVE, "aave_v3", asset, reason="entry")
        amount = ctx.portfolio.wallet.tokens[asset]
        yield Instruction(Op.SUPPLY, "aave_v3", asset, amount, reason="entry")
