"""The share-class currency: every USD(T) amount the engine books is converted through one helper.

USDT share classes count in USD(T) (1:1); ETH share classes count in ETH at the hour's ETH price.
Every site that used to write ``x if cur == "USDT" else x / eth`` asks the numeraire instead.
"""
from __future__ import annotations

from engine.domain.market import MarketView


class Numeraire:
    """Conversions between USD(T), ETH and the share currency at hour t of a MarketView."""

    __slots__ = ("currency", "is_usd", "_mv")

    def __init__(self, currency: str, market: MarketView) -> None:
        if currency not in ("USDT", "ETH"):
            raise ValueError(f"share-class currency {currency!r} (allowed: USDT, ETH)")
        self.currency = currency
        self.is_usd = currency == "USDT"
        self._mv = market

    def from_usd(self, usd: float, t: int) -> float:
        """A USD(T) amount in the share currency."""
        return usd if self.is_usd else usd / self._mv.eth[t]

    def to_usd(self, amount: float, t: int) -> float:
        """A share-currency amount in USD(T)."""
        return amount if self.is_usd else amount * self._mv.eth[t]

    def from_eth(self, eth: float, t: int) -> float:
        """An ETH amount (gas, rewards) in the share currency."""
        return eth * self._mv.eth[t] if self.is_usd else eth

    def usd_factor(self, t: int) -> float:
        """USD(T) per unit of the share currency (1 for USDT)."""
        return 1.0 if self.is_usd else self._mv.eth[t]

    def decimals(self) -> int:
        """Digits a value in this currency is shown with."""
        return 2 if self.is_usd else 6
