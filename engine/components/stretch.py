"""The hourly closed forms over a stretch of hours at once, for holdings that do not change.

Between two events (a trade, a liquidation, a reward payment) a backtest's holdings are constant:
only prices move, and CEX cash moves by the funding paid at each settlement. Everything the step
computes for such an hour (the market move by component, the independent valuation, the risk
figures) is then a closed form in the price series, so it is evaluated here for many hours with one
numpy expression per term instead of one Python call per hour.

Each function mirrors its per-hour counterpart term for term and in the same order
(`pnl_attribution.attribute_market_move`, `valuation.value_usd` and `lst_peg_usd`,
`risk.snapshot`, `rewards.eligible_eeth`): numpy's element-wise float64 arithmetic is the same
IEEE arithmetic as Python's, so the arrays equal the per-hour values (tests/e2e/test_fast_path.py
compares whole runs). Valuation and attribution stay independent of each other, so the
reconciliation of the two is still a check, hour by hour.

Hours are a slice ``hours`` of the grid; ``before`` is the same stretch shifted one hour back (the
previous hour of each). ``cash`` maps each CEX venue to its cash over the stretch (after each
hour's funding).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.domain.market import ETH_LIKE, LSTS, STABLES, MarketSeries
from engine.domain.params import AaveParams
from engine.domain.portfolio import Portfolio

Cash = dict[str, np.ndarray]


@dataclass
class MoveSeries:
    """`pnl_attribution.MarketMove` per hour of a stretch (share currency)."""

    lending: np.ndarray
    borrow: np.ndarray
    staking: np.ndarray
    lst_peg: np.ndarray
    peg_b: np.ndarray
    perp_mtm: np.ndarray
    spot_price: np.ndarray


@dataclass
class RiskSeries:
    """`risk.RiskSnapshot` per hour of a stretch; margin ratios are +inf where a venue holds no notional."""

    health_factor: np.ndarray
    ltv: np.ndarray
    margin_ratio: dict[str, np.ndarray] = field(default_factory=dict)
    delta_onchain_eth: np.ndarray | float = 0.0
    delta_cex: dict[str, float] = field(default_factory=dict)
    largest_position_usd: np.ndarray | float = 0.0
    hedge_notional: np.ndarray | float = 0.0

    def head(self, k: int) -> RiskSeries:
        """The first k hours."""
        def cut(x: np.ndarray | float) -> np.ndarray | float:
            return x[:k] if isinstance(x, np.ndarray) else x
        return RiskSeries(self.health_factor[:k], self.ltv[:k], {v: r[:k] for v, r in self.margin_ratio.items()},
                          cut(self.delta_onchain_eth), dict(self.delta_cex), cut(self.largest_position_usd),
                          cut(self.hedge_notional))


def value_usd(p: Portfolio, ms: MarketSeries, hours: slice, cash: Cash) -> np.ndarray:
    """Protocol value of the holdings at each hour (`valuation.value_usd`)."""
    w = p.wallet
    price = ms.price_usd
    v: np.ndarray | float = 0.0
    for token, amount in w.tokens.items():
        if amount:
            v = v + amount * price(token, hours)
    for reserve, scaled in w.supply_scaled.items():
        if scaled:
            v = v + scaled * ms.supply_index[reserve][hours] * price(reserve, hours)
    for reserve, scaled in w.debt_scaled.items():
        if scaled:
            v = v - scaled * ms.borrow_index[reserve][hours] * price(reserve, hours)
    for venue, acct in p.cex.items():
        v = v + cash[venue]
        for asset, qty in acct.spot.items():
            if qty:
                v = v + qty * price(asset, hours)
        for asset, pos in acct.perps.items():
            if pos.size:
                v = v + pos.size * (ms.perp[(venue, asset)][hours] - pos.entry_price)
    return _full(v, hours)


def lst_peg_usd(p: Portfolio, ms: MarketSeries, hours: slice) -> np.ndarray:
    """(market - oracle rate) x ETH price of every LST held (`valuation.lst_peg_usd`)."""
    w = p.wallet
    peg: np.ndarray | float = 0.0
    for lst, market in ms.lst_market.items():
        units: np.ndarray | float = w.tokens.get(lst, 0.0)
        scaled = w.supply_scaled.get(lst, 0.0)
        if scaled:
            units = units + scaled * ms.supply_index[lst][hours]
        if np.any(units):
            peg = peg + units * (market[hours] - ms.lst_oracle[lst][hours])
    return _full(peg * ms.eth[hours], hours)


def attribute(p: Portfolio, ms: MarketSeries, before: slice, hours: slice, value_usd_before: np.ndarray,
              currency: str) -> MoveSeries:
    """The market move of each hour from the previous one (`pnl_attribution.attribute_market_move`)."""
    a, b = before, hours
    w = p.wallet
    e0, e1 = ms.eth[a], ms.eth[b]
    lending: np.ndarray | float = 0.0
    borrow: np.ndarray | float = 0.0
    staking: np.ndarray | float = 0.0
    perp: np.ndarray | float = 0.0
    eth_units: np.ndarray | float = 0.0
    other_spot: np.ndarray | float = 0.0
    lst_units: dict[str, np.ndarray | float] = {}
    lst_units_a: dict[str, np.ndarray | float] = {}
    for token, amount in w.tokens.items():
        if not amount:
            continue
        if token in ETH_LIKE:
            eth_units = eth_units + amount
        elif token in LSTS:
            lst_units[token] = lst_units.get(token, 0.0) + amount
            lst_units_a[token] = lst_units_a.get(token, 0.0) + amount
        elif token not in STABLES:
            other_spot = other_spot + amount * (ms.spot[token][b] - ms.spot[token][a])
    for reserve, scaled in w.supply_scaled.items():
        if not scaled:
            continue
        idx = ms.supply_index[reserve]
        growth = scaled * (idx[b] - idx[a])
        if reserve in STABLES:
            lending = lending + growth
        elif reserve in ETH_LIKE:
            lending = lending + growth * e0
            eth_units = eth_units + scaled * idx[b]
        else:
            lending = lending + growth * ms.lst_oracle[reserve][a] * e0
            lst_units[reserve] = lst_units.get(reserve, 0.0) + scaled * idx[b]
            lst_units_a[reserve] = lst_units_a.get(reserve, 0.0) + scaled * idx[a]
    for reserve, scaled in w.debt_scaled.items():
        if not scaled:
            continue
        idx = ms.borrow_index[reserve]
        growth = scaled * (idx[b] - idx[a])
        if reserve in STABLES:
            borrow = borrow - growth
        elif reserve in ETH_LIKE:
            borrow = borrow - growth * e0
            eth_units = eth_units - scaled * idx[b]
        else:
            raise NotImplementedError(f"LST debt ({reserve}) is not a supported position")
    peg_a: np.ndarray | float = 0.0
    peg_b: np.ndarray | float = 0.0
    for lst, units in lst_units.items():
        rate = ms.lst_oracle[lst]
        staking = staking + units * (rate[b] - rate[a]) * e0
        eth_units = eth_units + units * rate[b]
        market = ms.lst_market[lst]
        peg_a = peg_a + lst_units_a[lst] * (market[a] - rate[a])
        peg_b = peg_b + units * (market[b] - rate[b])
    peg_a = peg_a * e0
    peg_b = peg_b * e1
    for venue, acct in p.cex.items():
        for asset, qty in acct.spot.items():
            if not qty:
                continue
            if asset in ETH_LIKE:
                eth_units = eth_units + qty
            else:
                other_spot = other_spot + qty * (ms.spot[asset][b] - ms.spot[asset][a])
        for asset, pos in acct.perps.items():
            if pos.size:
                marks = ms.perp[(venue, asset)]
                perp = perp + pos.size * (marks[b] - marks[a])
    spot_usd = eth_units * (e1 - e0) + other_spot
    if currency == "USDT":
        parts = (lending, borrow, staking, peg_b - peg_a, peg_b, perp, spot_usd)
    else:
        mid_usd = value_usd_before + lending + borrow + staking + perp
        parts = (lending / e0, borrow / e0, staking / e0, peg_b / e1 - peg_a / e0, peg_b / e1, perp / e0,
                 (mid_usd + spot_usd) / e1 - mid_usd / e0)
    lend, borr, stak, lst_peg, pb, perp_mtm, spot_price = (_full(x, b) for x in parts)
    return MoveSeries(lend, borr, stak, lst_peg, pb, perp_mtm, spot_price)


def risk(p: Portfolio, ms: MarketSeries, hours: slice, params: AaveParams | None, cash: Cash) -> RiskSeries:
    """Health factor, LTV, margin ratios, deltas and exposure at each hour (`risk.snapshot`)."""
    out = risk_aave(p, ms, hours, params)
    _cex_risk(p, ms, hours, cash, out)
    out.delta_onchain_eth = onchain_eth_units(p, ms, hours)
    return out


def health_factor(p: Portfolio, ms: MarketSeries, hours: slice, params: AaveParams | None) -> np.ndarray:
    """The AAVE health factor at each hour (+inf without debt)."""
    return risk_aave(p, ms, hours, params).health_factor


def risk_aave(p: Portfolio, ms: MarketSeries, hours: slice, params: AaveParams | None) -> RiskSeries:
    """The AAVE part of `risk` alone (health factor and LTV)."""
    w = p.wallet
    coll: np.ndarray | float = 0.0
    weighted: np.ndarray | float = 0.0
    debt: np.ndarray | float = 0.0
    for reserve, scaled in w.supply_scaled.items():
        if scaled:
            usd = scaled * ms.supply_index[reserve][hours] * ms.price_usd(reserve, hours)
            coll = coll + usd
            if params is not None:
                weighted = weighted + usd * params.collateral(reserve, w.emode).liquidation_threshold
    for reserve, scaled in w.debt_scaled.items():
        if scaled:
            debt = debt + scaled * ms.borrow_index[reserve][hours] * ms.price_usd(reserve, hours)
    has_debt = any(s for s in w.debt_scaled.values())
    has_collateral = any(s for s in w.supply_scaled.values())
    # aave_math.health_factor: collateral x 1.0 / debt, +inf without debt; ltv: debt / collateral
    hf = _full(weighted * 1.0 / debt, hours) if has_debt else _full(np.inf, hours)
    ltv = _full(debt / coll, hours) if has_collateral else _full(0.0, hours)
    return RiskSeries(hf, ltv)


def _cex_risk(p: Portfolio, ms: MarketSeries, hours: slice, cash: Cash, out: RiskSeries) -> None:
    """The CEX part of `risk`: margin ratio per venue, deltas, largest position, hedge notional."""
    delta = out.delta_cex
    largest: np.ndarray | float = 0.0
    hedge: np.ndarray | float = 0.0
    for venue, acct in p.cex.items():
        equity: np.ndarray | float = cash[venue]
        notional: np.ndarray | float = 0.0
        held = False
        for asset, pos in acct.perps.items():
            size = pos.size
            delta[asset] = delta.get(asset, 0.0) + size
            if size:
                mark = ms.perp[(venue, asset)][hours]
                equity = equity + size * (mark - pos.entry_price)
                position = abs(size) * mark
                notional = notional + position
                largest = np.maximum(largest, position)
                held = True
        hedge = hedge + notional
        if acct.perps:
            out.margin_ratio[venue] = _full(equity / notional, hours) if held else _full(np.inf, hours)
        for asset, qty in acct.spot.items():
            delta[asset] = delta.get(asset, 0.0) + qty
            if qty:
                prices = ms.spot.get(asset)
                held_usd = abs(qty) * (prices[hours] if prices is not None else ms.price_usd(asset, hours))
                largest = np.maximum(largest, held_usd)
    out.largest_position_usd = _full(largest, hours)
    out.hedge_notional = _full(hedge, hours)


def onchain_eth_units(p: Portfolio, ms: MarketSeries, hours: slice) -> np.ndarray:
    """Net ETH exposure of the wallet at each hour (`risk.onchain_eth_units`)."""
    w = p.wallet
    units: np.ndarray | float = 0.0
    for token, amount in w.tokens.items():
        if token in ETH_LIKE:
            units = units + amount
        elif token in LSTS:
            units = units + amount * ms.lst_oracle[token][hours]
    for reserve, scaled in w.supply_scaled.items():
        if reserve in ETH_LIKE:
            units = units + scaled * ms.supply_index[reserve][hours]
        elif reserve in LSTS:
            units = units + scaled * ms.supply_index[reserve][hours] * ms.lst_oracle[reserve][hours]
    for reserve, scaled in w.debt_scaled.items():
        if reserve in ETH_LIKE:
            units = units - scaled * ms.borrow_index[reserve][hours]
    return _full(units, hours)


def eligible_eeth(p: Portfolio, ms: MarketSeries, hours: slice, lst: str) -> np.ndarray:
    """eETH-equivalent of the weETH held at each hour (`rewards.eligible_eeth`)."""
    w = p.wallet
    units: np.ndarray | float = w.tokens.get(lst, 0.0)
    scaled = w.supply_scaled.get(lst, 0.0)
    if scaled:
        units = units + scaled * ms.supply_index[lst][hours]
    return np.where(np.asarray(units) > 0.0, units * ms.lst_oracle[lst][hours], 0.0)


def _full(x: np.ndarray | float, hours: slice) -> np.ndarray:
    """A term that is constant over the stretch (no holding of that kind) as an array."""
    if isinstance(x, np.ndarray):
        return x
    return np.full(hours.stop - hours.start, float(x))
