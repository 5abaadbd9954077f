"""Valuation: what the portfolio is worth, in USD(T) and in the share-class currency.

value = CEX cash + CEX spot + perp unrealised P&L + aToken underlying x price - debt underlying x price
        + free wallet tokens (ETH may be negative: gas debt)
LSTs are valued at their oracle rate (the rate AAVE uses); the market/oracle difference is realised
only when an LST is actually sold, as an execution cost.
"""
from __future__ import annotations

from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio


def value_usd(p: Portfolio, mv: MarketView, t: int) -> float:
    w = p.wallet
    price = mv.price_usd
    v = 0.0
    for token, amount in w.tokens.items():
        if amount:
            v += amount * price(token, t)
    for reserve, scaled in w.supply_scaled.items():
        if scaled:
            v += scaled * mv.supply_index[reserve][t] * price(reserve, t)
    for reserve, scaled in w.debt_scaled.items():
        if scaled:
            v -= scaled * mv.borrow_index[reserve][t] * price(reserve, t)
    for venue, acct in p.cex.items():
        v += acct.usdt
        for asset, qty in acct.spot.items():
            if qty:
                v += qty * price(asset, t)
        for asset, pos in acct.perps.items():
            if pos.size:
                v += pos.unrealized(mv.perp[(venue, asset)][t])
    return v


def to_numeraire(usd: float, currency: str, mv: MarketView, t: int) -> float:
    """Convert a USD(T) amount to the share-class currency at hour t."""
    return usd if currency == "USDT" else usd / mv.eth[t]


def value(p: Portfolio, mv: MarketView, t: int, currency: str) -> float:
    return to_numeraire(value_usd(p, mv, t), currency, mv, t)
