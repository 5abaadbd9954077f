"""Holdings: one on-chain wallet (with AAVE scaled balances) and one account per CEX.

AAVE positions are stored as *scaled* balances: underlying = scaled x index, with the liquidity index
for aTokens and the variable borrow index for debt. Storing the scaled amount is what makes interest
accrue correctly without touching the position every hour (the predecessor valued aTokens without the
index and debt with the supply index).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PerpPosition:
    """Linear USDT-margined perp. size > 0 long, < 0 short, in base-asset units."""

    size: float = 0.0
    entry_price: float = 0.0

    def unrealized(self, mark: float) -> float:
        return self.size * (mark - self.entry_price)

    def trade(self, qty: float, price: float) -> float:
        """Apply a fill of `qty` at `price`; returns realized P&L (moved to the account's cash)."""
        old = self.size
        new = old + qty
        realized = 0.0
        if old == 0.0 or (old > 0) == (qty > 0):
            # opening or increasing: volume-weighted entry
            self.entry_price = (old * self.entry_price + qty * price) / new if new != 0.0 else 0.0
        else:
            closed = min(abs(qty), abs(old))
            sign = 1.0 if old > 0 else -1.0
            realized = closed * sign * (price - self.entry_price)
            if abs(qty) > abs(old):     # flipped through zero: the rest opens at the fill price
                self.entry_price = price
            elif new == 0.0:
                self.entry_price = 0.0
        self.size = new
        return realized


@dataclass(slots=True)
class CexAccount:
    """One exchange account: USDT cash (perp margin), spot holdings, perps by asset."""

    usdt: float = 0.0
    spot: dict[str, float] = field(default_factory=dict)
    perps: dict[str, PerpPosition] = field(default_factory=dict)

    def perp(self, asset: str) -> PerpPosition:
        pos = self.perps.get(asset)
        if pos is None:
            pos = self.perps[asset] = PerpPosition()
        return pos


@dataclass(slots=True)
class Wallet:
    """The on-chain address. `tokens` holds free balances (ETH may go negative: gas debt in USDT modes)."""

    tokens: dict[str, float] = field(default_factory=dict)
    supply_scaled: dict[str, float] = field(default_factory=dict)   # AAVE aToken scaled balances
    debt_scaled: dict[str, float] = field(default_factory=dict)     # AAVE variable-debt scaled balances
    emode: bool = False

    def add(self, token: str, amount: float) -> None:
        self.tokens[token] = self.tokens.get(token, 0.0) + amount


@dataclass(slots=True)
class Portfolio:
    wallet: Wallet = field(default_factory=Wallet)
    cex: dict[str, CexAccount] = field(default_factory=dict)

    def account(self, venue: str) -> CexAccount:
        acct = self.cex.get(venue)
        if acct is None:
            acct = self.cex[venue] = CexAccount()
        return acct
