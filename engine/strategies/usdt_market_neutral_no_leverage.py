"""usdt_market_neutral_no_leverage: LST long in the wallet + USDT-margined ETH perp shorts."""
from engine.strategies.market_neutral import UsdtMarketNeutralNoLeverageStrategy

__all__ = ["UsdtMarketNeutralNoLeverageStrategy"]
