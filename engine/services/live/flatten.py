"""Flatten every leg of a live session, on-chain legs included, in an order that stays safe.

The order, and why:

1. **The leverage loop first, in one atomic transaction** (flash loan -> repay all -> withdraw all ->
   sell -> repay the flash), simulated first and refused below the HF floor. The account goes from
   its loop straight to no debt, so the health factor never passes through a low value, and the net
   ETH exposure does not move (collateral minus debt becomes the same ETH in the wallet): the hedge
   stays right. A sequential loop (no flash venue) walks down withdrawing only what keeps HF safe.
2. **AAVE supply without debt** (pure lending, or collateral left over) is withdrawn in full.
3. **LST -> ETH, then ETH -> USDT (USDT share classes), in slices**, each slice followed at once by
   the perp reduced to the remaining on-chain exposure: the hedge is cut in step with the long leg,
   never more than one slice apart, so delta stays inside its band while both shrink.
4. **What is left on the CEXs**: perps closed reduce-only, spot sold.

Every instruction goes through the session's execution manager (the same gate, router, journal,
ledger and events as the strategy's own), so a failure stops the flatten with the book matching the
venues and the chain and the report saying what was closed and what was not.

The plan (``flatten_steps``) is also what the pre-flatten confirmation shows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from engine.components.risk import onchain_eth_units
from engine.domain.instructions import Instruction, Op
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.strategies.onchain_legs import AAVE, DEBT

SLICES = 4                  # the long leg is sold in this many slices at least, the hedge cut after each
DUST_UNITS = 1e-9
POSITION_DUST = 1e-12       # base units: far below every venue's lot size


def _supplied(p: Portfolio, mv: MarketView, t: int, reserve: str) -> float:
    return p.wallet.supply_scaled.get(reserve, 0.0) * mv.supply_index[reserve][t] if reserve in mv.supply_index \
        else 0.0


def _owed(p: Portfolio, mv: MarketView, t: int) -> float:
    w = p.wallet
    return w.debt_scaled.get(DEBT, 0.0) * mv.borrow_index[DEBT][t] if DEBT in mv.borrow_index else 0.0


def flatten_steps(p: Portfolio, mv: MarketView, t: int, params: RunParams) -> list[str]:
    """What the flatten will do, in order (for the confirmation and the dashboard)."""
    sp = params.strategy
    out = []
    if _owed(p, mv, t) > 0 and sp.lst:
        out.append(f"exit the {sp.lst}/WETH loop on AAVE " + ("in one atomic transaction (flash loan), HF never "
                                                              "below its floor" if sp.flash_venue else
                                                              "step by step, each withdrawal keeping HF safe"))
    for reserve, scaled in p.wallet.supply_scaled.items():
        if scaled > 0 and not (reserve == sp.lst and _owed(p, mv, t) > 0):
            out.append(f"withdraw all {reserve} from AAVE")
    if sp.lst and (p.wallet.tokens.get(sp.lst, 0.0) > DUST_UNITS or _owed(p, mv, t) > 0):
        out.append(f"sell {sp.lst} for ETH on Uniswap")
    hedged = any(pos.size for a in p.cex.values() for pos in a.perps.values())
    if sp.currency == "USDT" and (onchain_eth_units(p, mv, t) > DUST_UNITS or sp.lst):
        out.append(f"sell ETH for USDT in {SLICES}+ slices" + (", the perps reduced after each" if hedged else ""))
    if hedged:
        out.append("close the remaining perps reduce-only")
    if any(q > 0 for a in p.cex.values() for q in a.spot.values()):
        out.append("sell the CEX spot holdings")
    return out or ["nothing to close"]


def _reduce_hedge(p: Portfolio, mv: MarketView, t: int, params: RunParams, reason: str) -> Iterator[Instruction]:
    """Cut every short to its share of the on-chain exposure left (never adds, never flips)."""
    exposure = max(onchain_eth_units(p, mv, t), 0.0)
    shorts = {(v, a): pos.size for v, acct in p.cex.items() for a, pos in acct.perps.items() if pos.size < 0}
    total = -sum(shorts.values())
    if total <= 0:
        return
    keep = min(exposure / total, 1.0)
    for (venue, asset), size in shorts.items():
        # Rounded to 1e-10 base units: the slices' float arithmetic must not leave a residue just
        # under a venue's lot (0.000999999... of a 0.001 lot) that no order can close.
        cut = -size if keep <= 0.0 else round(-size * (1.0 - keep), 10)
        mark = mv.perp[(venue, asset)][t] if (venue, asset) in mv.perp else mv.eth[t]
        if cut > DUST_UNITS and cut * mark >= params.cex[venue].min_order_usdt:
            yield Instruction(Op.PERP_TRADE, venue, asset, cut, reason=reason)


def flatten_program(p: Portfolio, mv: MarketView, t: int, params: RunParams):
    """The flatten as one program (a generator of Instructions receiving Fills)."""
    sp = params.strategy
    reason = "flatten"
    lst = sp.lst
    # The DEX's depth limit slices the sales (a mode without a DEX venue holds nothing to sell there).
    depth = params.dex_max_order_usdt if params.dex_max_order_usdt is not None else math.inf
    # 1. the loop
    if lst and _owed(p, mv, t) > 0:
        coll, debt = _supplied(p, mv, t, lst), _owed(p, mv, t)
        venue = sp.flash_venue or "morpho"
        yield Instruction(Op.BUNDLE, venue, reason=reason, gas_op="ATOMIC_DELEVERAGE_ONE_SWAP", children=[
            Instruction(Op.FLASH_BORROW, venue, DEBT, debt),
            Instruction(Op.REPAY, AAVE, DEBT, debt),
            Instruction(Op.WITHDRAW, AAVE, lst, coll),
            Instruction(Op.SWAP, "uniswap", lst, coll, to_asset="ETH"),
            Instruction(Op.FLASH_REPAY, venue, DEBT, debt),
        ])
        yield from _reduce_hedge(p, mv, t, params, reason + " (in step with the loop exit)")
    # 2. supply without debt
    for reserve in list(p.wallet.supply_scaled):
        amount = _supplied(p, mv, t, reserve)
        if amount > DUST_UNITS and _owed(p, mv, t) <= 0:
            yield Instruction(Op.WITHDRAW, AAVE, reserve, amount, reason=reason)
    # 3. the long leg in slices, the hedge cut after each
    if lst and p.wallet.tokens.get(lst, 0.0) > DUST_UNITS:
        units = p.wallet.tokens[lst]
        price = mv.lst_market[lst][t] * mv.eth[t]
        # LST -> ETH keeps the ETH exposure: only the DEX's depth limit slices it.
        n = max(1, math.ceil(units * price / depth)) if depth < math.inf else 1
        for _ in range(n):
            left = p.wallet.tokens.get(lst, 0.0)
            if left <= DUST_UNITS:
                break
            yield Instruction(Op.SWAP, "uniswap", lst, min(left, units / n), to_asset="ETH", reason=reason)
    if sp.currency == "USDT":
        eth = max(p.wallet.tokens.get("ETH", 0.0), 0.0)
        if eth * mv.eth[t] > 1.0:
            n = max(SLICES, math.ceil(eth * mv.eth[t] / depth)) if depth < math.inf else SLICES
            for _ in range(n):
                left = max(p.wallet.tokens.get("ETH", 0.0), 0.0)
                if left * mv.eth[t] <= 1.0:
                    break
                yield Instruction(Op.SWAP, "uniswap", "ETH", min(left, eth / n), to_asset="USDT", reason=reason)
                yield from _reduce_hedge(p, mv, t, params, reason + " (in step with the long leg)")
    # 4. the CEX legs left
    for venue, acct in list(p.cex.items()):
        for asset, pos in list(acct.perps.items()):
            if abs(pos.size) <= POSITION_DUST:
                pos.size = 0.0          # float residue of the slices' arithmetic: no venue lot is that small
            elif pos.size:
                yield Instruction(Op.PERP_TRADE, venue, asset, round(-pos.size, 10) or -pos.size, reason=reason)
    for venue, acct in list(p.cex.items()):
        for asset, qty in list(acct.spot.items()):
            if qty > 0:
                yield Instruction(Op.SPOT_TRADE, venue, asset, -qty, reason=reason)
