"""Exit value: what the holdings would fetch if every leg were unwound at one hour's costs.

The reported value marks LSTs at their market rate but still counts positions gross; an operator
who wants out pays to get out. This computes, from the holdings and the hour's cost tables (the same
fee and slippage rules the simulated venues charge), the value after:
- closing every perp and selling every CEX spot holding (taker fee + the size's slippage bucket);
- unwinding the on-chain leg: with AAVE debt, one atomic flash-loan deleverage (the debt is repaid
  from a flash loan, the collateral withdrawn and sold, the loan repaid; flash fee and the bundle's
  gas), otherwise a withdrawal and a swap per position;
- selling every LST on the DEX at the market rate (the slippage bucket of its size plus the DEX fee);
- for a USDT share class, selling the ETH that comes out for USDT (one more swap).
USDT already on an exchange counts as it is (it is the share currency; moving it off the exchange is
not an unwind), and gas debt is settled at the ETH price it is already valued at.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.components.valuation import lst_peg_usd, value_usd
from engine.domain.market import ETH_LIKE, LSTS, MarketView
from engine.domain.numeraire import Numeraire
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.math.costs import gas_cost_eth, slippage_bps


@dataclass
class ExitValue:
    value: float                                            # share currency, after every cost below
    mark_to_market: float                                   # the value before unwinding
    costs: dict[str, float] = field(default_factory=dict)  # share currency, positive = paid
    notes: list[str] = field(default_factory=list)


def _bps(mv: MarketView, pair: str, notional: float, t: int) -> float:
    return slippage_bps(notional, *(c[t] for c in mv.cost_bps[pair]))


def exit_value(p: Portfolio, mv: MarketView, t: int, params: RunParams) -> ExitValue:
    cur = params.strategy.currency
    eth = mv.eth[t]
    w = p.wallet
    mtm_usd = value_usd(p, mv, t) + (lst_peg_usd(p, mv, t) if mv.lst_market else 0.0)
    cex_fees = dex = flash = 0.0
    gas_ops: list[str] = []
    notes: list[str] = []

    for venue, acct in p.cex.items():
        cp = params.cex[venue]
        for asset, pos in acct.perps.items():
            if pos.size:
                notional = abs(pos.size) * mv.perp[(venue, asset)][t]
                cex_fees += notional * (cp.perp_taker_bps + _bps(mv, f"{asset}USDT-PERP", notional, t)) * 1e-4
        for asset, qty in acct.spot.items():
            if qty:
                notional = abs(qty) * mv.price_usd(asset, t)
                pair = f"{asset}_USDT" if f"{asset}_USDT" in mv.cost_bps else f"{asset}USDT-PERP"
                cex_fees += notional * (cp.spot_taker_bps + _bps(mv, pair, notional, t)) * 1e-4

    swap_fee = params.swap_fee_bps
    if not math.isfinite(swap_fee):
        swap_fee = 0.0
        if any(w.tokens.get(lst) or w.supply_scaled.get(lst) for lst in LSTS) or cur == "USDT":
            notes.append("the mode configures no DEX venue: its swaps pay the slippage table, no pool fee")

    eth_out = sum(w.tokens.get(token, 0.0) for token in ("ETH", "WETH"))   # free ETH on-chain (not gas debt)
    for reserve, scaled in w.supply_scaled.items():
        if scaled and reserve in ETH_LIKE:
            eth_out += scaled * mv.supply_index[reserve][t]
    has_debt = any(scaled for scaled in w.debt_scaled.values())
    debt_eth = 0.0
    for reserve, scaled in w.debt_scaled.items():
        if scaled:
            if reserve not in ETH_LIKE:
                raise NotImplementedError(f"exit value of {reserve} debt is not modelled")
            debt_eth += scaled * mv.borrow_index[reserve][t]
    eth_out -= debt_eth

    for lst in LSTS:
        free = w.tokens.get(lst, 0.0)
        supplied = w.supply_scaled.get(lst, 0.0) * mv.supply_index[lst][t] if w.supply_scaled.get(lst) else 0.0
        units = free + supplied
        if units <= 0.0:
            continue
        market_eth = units * mv.lst_market[lst][t]
        notional = market_eth * eth
        bps = _bps(mv, f"ETH_{lst}", notional, t) + swap_fee
        dex += notional * bps * 1e-4
        eth_out += market_eth * (1.0 - bps * 1e-4)
        if supplied and not has_debt:
            gas_ops.append("COLLATERAL_WITHDRAWN")
        if not has_debt or free:
            gas_ops.append("TOKEN_SWAP")
    if has_debt:
        flash_venue: str | None = params.strategy.flash_venue
        if flash_venue is None or flash_venue not in params.flash_fee_rate:
            fees = params.flash_fee_rate
            flash_venue = min(fees, key=lambda name: fees[name]) if fees else None
        rate = params.flash_fee_rate.get(flash_venue, 0.0) if flash_venue else 0.0
        if flash_venue is None:
            notes.append("no flash-loan venue configured: the deleverage is priced as one atomic bundle "
                         "without a flash fee")
        flash += debt_eth * rate * eth
        eth_out -= debt_eth * rate
        gas_ops.append("ATOMIC_DELEVERAGE_ONE_SWAP")
    for reserve, scaled in w.supply_scaled.items():
        if scaled and reserve not in LSTS:
            gas_ops.append("COLLATERAL_WITHDRAWN")      # aUSDT / aWETH back to the wallet

    if cur == "USDT" and eth_out > 0.0:
        notional = eth_out * eth
        dex += notional * (_bps(mv, "ETH_USDT", notional, t) + swap_fee) * 1e-4
        gas_ops.append("TOKEN_SWAP")

    gas_usd = sum(gas_cost_eth(params.gas_units[op], mv.gas_gwei[t]) for op in gas_ops) * eth if gas_ops else 0.0
    costs_usd = {"cex_fees": cex_fees, "dex_swaps": dex, "flash_fees": flash, "gas": gas_usd}
    total = sum(costs_usd.values())
    num = Numeraire(cur, mv)
    return ExitValue(
        value=num.from_usd(mtm_usd - total, t),
        mark_to_market=num.from_usd(mtm_usd, t),
        costs={k: num.from_usd(v, t) for k, v in costs_usd.items()},
        notes=notes,
    )
