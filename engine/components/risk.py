"""Risk and exposure monitor: health factor, LTV, per-venue margin ratio, net delta."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.domain.market import ETH_LIKE, LSTS, MarketView
from engine.domain.params import AaveParams
from engine.domain.portfolio import CexAccount, Portfolio
from engine.math import aave as aave_math
from engine.math.perp import margin_ratio


@dataclass(slots=True)
class AaveState:
    collateral_usd: float
    weighted_collateral_usd: float   # sum(collateral x liquidation threshold)
    debt_usd: float

    @property
    def health_factor(self) -> float:
        return aave_math.health_factor(self.weighted_collateral_usd, 1.0, self.debt_usd)

    @property
    def ltv(self) -> float:
        return aave_math.ltv(self.collateral_usd, self.debt_usd)


@dataclass(slots=True)
class RiskSnapshot:
    health_factor: float                       # +inf without debt
    ltv: float
    margin_ratio: dict[str, float] = field(default_factory=dict)   # venue -> equity/notional (+inf flat)
    delta_onchain_eth: float = 0.0             # ETH exposure held on-chain (LST x rate + ETH - debt)
    delta_cex: dict[str, float] = field(default_factory=dict)      # asset -> CEX spot + perp units
    largest_position_usd: float = 0.0          # largest single CEX perp or spot notional
    hedge_notional: float = 0.0                # sum over venues of |perp size| x mark, USD


def aave_state(p: Portfolio, mv: MarketView, t: int, params: AaveParams | None) -> AaveState:
    w = p.wallet
    coll = weighted = debt = 0.0
    for reserve, scaled in w.supply_scaled.items():
        if scaled:
            usd = scaled * mv.supply_index[reserve][t] * mv.price_usd(reserve, t)
            coll += usd
            if params is not None:
                weighted += usd * params.collateral(reserve, w.emode).liquidation_threshold
    for reserve, scaled in w.debt_scaled.items():
        if scaled:
            debt += scaled * mv.borrow_index[reserve][t] * mv.price_usd(reserve, t)
    return AaveState(coll, weighted, debt)


def cex_equity(acct: CexAccount, venue: str, mv: MarketView, t: int) -> tuple[float, float]:
    """(margin equity, perp notional) of one account; spot holdings are not perp collateral."""
    equity = acct.usdt
    notional = 0.0
    for asset, pos in acct.perps.items():
        if pos.size:
            mark = mv.perp[(venue, asset)][t]
            equity += pos.unrealized(mark)
            notional += abs(pos.size) * mark
    return equity, notional


def onchain_eth_units(p: Portfolio, mv: MarketView, t: int) -> float:
    """Net ETH exposure of the wallet (incl. AAVE) in ETH units at hour t."""
    w = p.wallet
    units = 0.0
    for token, amount in w.tokens.items():
        if token in ETH_LIKE:
            units += amount
        elif token in LSTS:
            units += amount * mv.lst_oracle[token][t]
    for reserve, scaled in w.supply_scaled.items():
        if reserve in ETH_LIKE:
            units += scaled * mv.supply_index[reserve][t]
        elif reserve in LSTS:
            units += scaled * mv.supply_index[reserve][t] * mv.lst_oracle[reserve][t]
    for reserve, scaled in w.debt_scaled.items():
        if reserve in ETH_LIKE:
            units -= scaled * mv.borrow_index[reserve][t]
    return units


def snapshot(p: Portfolio, mv: MarketView, t: int, params: AaveParams | None) -> RiskSnapshot:
    a = aave_state(p, mv, t, params)
    snap = RiskSnapshot(health_factor=a.health_factor, ltv=a.ltv)
    delta = snap.delta_cex
    largest = 0.0
    for venue, acct in p.cex.items():
        # cex_equity inline: this runs every hour, and each position's notional is needed too
        equity = acct.usdt
        notional = 0.0
        for asset, pos in acct.perps.items():
            size = pos.size
            delta[asset] = delta.get(asset, 0.0) + size
            if size:
                mark = mv.perp[(venue, asset)][t]
                equity += size * (mark - pos.entry_price)
                position = abs(size) * mark
                notional += position
                if position > largest:
                    largest = position
        snap.hedge_notional += notional
        if acct.perps:
            snap.margin_ratio[venue] = margin_ratio(equity, notional)
        for asset, qty in acct.spot.items():
            delta[asset] = delta.get(asset, 0.0) + qty
            if qty:
                prices = mv.spot.get(asset)
                position = abs(qty) * (prices[t] if prices is not None else mv.price_usd(asset, t))
                if position > largest:
                    largest = position
    snap.largest_position_usd = largest
    snap.delta_onchain_eth = onchain_eth_units(p, mv, t)
    return snap


def finite_or_none(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else x
