"""Market-move P&L attribution, in closed form from holdings and price changes.

Between hour t-1 and t the holdings are fixed, only market factors move. The factors are applied in a
fixed order: supply indices (lending), borrow indices (borrow), LST oracle rates (staking), perp marks
(perp_mtm), then spot prices (spot_price). Each component is computed from quantities and prices, NOT
as a residual of the valuation, so `value(t) - value(t-1) == sum(components)` is a real check of the
accounting that the backtest measures every hour (reconciliation_error).

These components move the protocol value (LSTs at the oracle rate). The mark-to-market value adds
each LST's market/oracle difference; its change is `lst_peg`: units x (market - oracle) at b minus
the same at a, in the share currency (so in USDT it also carries the ETH move of that difference).
"""
from __future__ import annotations

from engine.domain.market import ETH_LIKE, LSTS, STABLES, MarketView
from engine.domain.portfolio import Portfolio


class MarketMove:
    """Components of one hour's market move, in USD and (for ETH share classes) in ETH."""

    __slots__ = ("borrow", "lending", "lst_peg", "peg_b", "perp_mtm", "spot_price", "staking")

    def __init__(self) -> None:
        self.lending = self.borrow = self.staking = self.perp_mtm = self.spot_price = 0.0
        self.lst_peg = 0.0      # change of the LSTs' market-vs-oracle value from a to b
        self.peg_b = 0.0        # that value at b on the holdings before b's actions (share currency)


def attribute_market_move(p: Portfolio, mv: MarketView, a: int, b: int, value_usd_a: float,
                          currency: str) -> MarketMove:
    """Attribute the move from hour a to hour b; `value_usd_a` is the protocol USD value at a (after
    a's actions)."""
    w = p.wallet
    e0, e1 = mv.eth[a], mv.eth[b]
    m = MarketMove()
    lending = borrow = staking = perp = 0.0
    eth_units = 0.0          # net ETH exposure at b's rates (for the spot move)
    other_spot = 0.0         # non-ETH spot price moves (BTC)

    lst_units: dict[str, float] = {}
    lst_units_a: dict[str, float] = {}      # at a: aToken units grow with the index between a and b
    for token, amount in w.tokens.items():
        if not amount:
            continue
        if token in ETH_LIKE:
            eth_units += amount
        elif token in LSTS:
            lst_units[token] = lst_units.get(token, 0.0) + amount
            lst_units_a[token] = lst_units_a.get(token, 0.0) + amount
        elif token not in STABLES:
            other_spot += amount * (mv.spot[token][b] - mv.spot[token][a])

    for reserve, scaled in w.supply_scaled.items():
        if not scaled:
            continue
        idx = mv.supply_index[reserve]
        growth = scaled * (idx[b] - idx[a])
        if reserve in STABLES:
            lending += growth
        elif reserve in ETH_LIKE:
            lending += growth * e0
            eth_units += scaled * idx[b]
        else:  # LST collateral: index growth at the old oracle rate, units feed the staking move
            lending += growth * mv.lst_oracle[reserve][a] * e0
            lst_units[reserve] = lst_units.get(reserve, 0.0) + scaled * idx[b]
            lst_units_a[reserve] = lst_units_a.get(reserve, 0.0) + scaled * idx[a]

    for reserve, scaled in w.debt_scaled.items():
        if not scaled:
            continue
        idx = mv.borrow_index[reserve]
        growth = scaled * (idx[b] - idx[a])
        if reserve in STABLES:
            borrow -= growth
        elif reserve in ETH_LIKE:
            borrow -= growth * e0
            eth_units -= scaled * idx[b]
        else:
            raise NotImplementedError(f"LST debt ({reserve}) is not a supported position")

    peg_a = peg_b = 0.0          # USD
    for lst, units in lst_units.items():
        rate = mv.lst_oracle[lst]
        staking += units * (rate[b] - rate[a]) * e0
        eth_units += units * rate[b]
        market = mv.lst_market[lst]
        peg_a += lst_units_a[lst] * (market[a] - rate[a])
        peg_b += units * (market[b] - rate[b])
    peg_a *= e0
    peg_b *= e1

    for venue, acct in p.cex.items():
        for asset, qty in acct.spot.items():
            if not qty:
                continue
            if asset in ETH_LIKE:
                eth_units += qty
            else:
                other_spot += qty * (mv.spot[asset][b] - mv.spot[asset][a])
        for asset, pos in acct.perps.items():
            if pos.size:
                marks = mv.perp[(venue, asset)]
                perp += pos.size * (marks[b] - marks[a])

    spot_usd = eth_units * (e1 - e0) + other_spot
    if currency == "USDT":
        m.lending, m.borrow, m.staking, m.perp_mtm, m.spot_price = lending, borrow, staking, perp, spot_usd
        m.lst_peg, m.peg_b = peg_b - peg_a, peg_b
    else:
        # Every factor but ETH/USD moves at the old ETH price; the last step re-expresses the
        # whole USD value at the new ETH price.
        mid_usd = value_usd_a + lending + borrow + staking + perp
        m.lending, m.borrow, m.staking, m.perp_mtm = lending / e0, borrow / e0, staking / e0, perp / e0
        m.spot_price = (mid_usd + spot_usd) / e1 - mid_usd / e0
        m.lst_peg, m.peg_b = peg_b / e1 - peg_a / e0, peg_b / e1
    return m
