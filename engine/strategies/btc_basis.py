"""btc_basis: long BTC spot on Binance, short BTC perps across binance/bybit/okx."""
from engine.strategies.basis import BtcBasisStrategy

__all__ = ["BtcBasisStrategy"]
