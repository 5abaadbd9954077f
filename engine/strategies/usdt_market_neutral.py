"""usdt_market_neutral: leveraged LST loop on AAVE + ETH perp shorts sized to the loop's net ETH."""
from engine.strategies.market_neutral import UsdtMarketNeutralStrategy

__all__ = ["UsdtMarketNeutralStrategy"]
