"""Valuation: what the portfolio is worth, in USD(T) and in the share-class currency.

value = CEX cash + CEX spot + perp unrealised P&L + aToken underlying x price - debt underlying x price
        + free wallet tokens (ETH may be negative: gas debt)
Two values of the same holdings:
- protocol value: LSTs at their oracle rate, the rate AAVE uses for the health factor (value_usd);
- mark-to-market value: LSTs at their market rate, what an exit would get before costs
  (value_usd + lst_peg_usd). The reported value series, returns and drawdowns use this one, so a
  depeg (weETH 2024-08-06) shows up as the loss it is for anyone who has to sell.
Selling an LST realises the market/oracle difference as an execution cost of the swap; the lst_peg
component gives back the part of it the mark-to-market value had already booked.
"""
from __future__ import annotations

from engine.domain.market import MarketView
from engine.domain.numeraire import Numeraire
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


def lst_peg_usd(p: Portfolio, mv: MarketView, t: int) -> float:
    """(market rate - oracle rate) x ETH price of every LST held, free or supplied on AAVE."""
    w = p.wallet
    peg = 0.0
    for lst, market in mv.lst_market.items():
        units = w.tokens.get(lst, 0.0)
        scaled = w.supply_scaled.get(lst, 0.0)
        if scaled:
            units += scaled * mv.supply_index[lst][t]
        if units:
            peg += units * (market[t] - mv.lst_oracle[lst][t])
    return peg * mv.eth[t]


def to_numeraire(usd: float, currency: str, mv: MarketView, t: int) -> float:
    """Convert a USD(T) amount to the share-class currency at hour t (see engine.domain.numeraire)."""
    return Numeraire(currency, mv).from_usd(usd, t)


def value(p: Portfolio, mv: MarketView, t: int, currency: str) -> float:
    return to_numeraire(value_usd(p, mv, t), currency, mv, t)
