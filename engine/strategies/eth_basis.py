"""eth_basis: long ETH spot (Bybit: the Binance ETH spot series is missing), short ETH perps."""
from engine.strategies.basis import EthBasisStrategy

__all__ = ["EthBasisStrategy"]
