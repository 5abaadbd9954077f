"""eth_staking_only: stake the ETH capital into the LST and hold it (ETH share class)."""
from __future__ import annotations

from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.strategies.base import Program, Strategy, StrategyContext
from engine.strategies.onchain_legs import estimated_gas_eth, stake


class EthStakingOnlyStrategy(Strategy):
    mode = "eth_staking_only"

    def seed(self, portfolio: Portfolio, market: MarketView) -> None:
        portfolio.wallet.add("ETH", self.sp.capital)

    def entry(self, ctx: StrategyContext) -> Program:
        # Keep back exactly the gas of the stake so the wallet does not start in gas debt.
        gas = estimated_gas_eth(ctx, "STAKE_DEPOSIT")
        self.require_entry_gas(ctx, gas)
        yield from stake(ctx, ctx.portfolio.wallet.tokens["ETH"] - gas, "entry")
