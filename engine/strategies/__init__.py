"""One strategy class per mode, all on engine.strategies.base.Strategy."""
from __future__ import annotations

from engine.strategies.base import Strategy
from engine.strategies.btc_basis import BtcBasisStrategy
from engine.strategies.eth_basis import EthBasisStrategy
from engine.strategies.eth_leveraged import EthLeveragedStrategy
from engine.strategies.eth_staking_only import EthStakingOnlyStrategy
from engine.strategies.pure_lending import PureLendingStrategy
from engine.strategies.usdt_market_neutral import UsdtMarketNeutralStrategy
from engine.strategies.usdt_market_neutral_no_leverage import UsdtMarketNeutralNoLeverageStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    cls.mode: cls for cls in (
        PureLendingStrategy, BtcBasisStrategy, EthBasisStrategy, EthStakingOnlyStrategy,
        EthLeveragedStrategy, UsdtMarketNeutralNoLeverageStrategy, UsdtMarketNeutralStrategy,
    )
}

__all__ = ["STRATEGIES", "Strategy"]
