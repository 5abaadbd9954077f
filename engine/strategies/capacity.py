"""How much a hedged mode can deploy, and how little: the limits that bound its legs.

A hedged mode (USDT share class) holds one long leg L (spot on a CEX in the basis modes, on-chain
ETH/LST in the market-neutral ones) and a perp short of `allocation[v] x L` on each venue v, funded
with `margin_ratio_target x` its notional. Capital C buys L = C / (1 + m).

Upper bound (capacity). Every leg must fit the limits that also bind live:
  - `risk.max_position_usdt` (the mode's risk limit on any one CEX spot/perp notional) and the
    venue's own `max_position_usdt` (exchange position limit), with CAPACITY_HEADROOM so that a
    price rise does not carry a freshly sized leg straight over the limit;
  - the venue's depth limit `max_order_usdt` on each entry order (the spot buy or the on-chain
    entry swap carries all of L; each perp short carries allocation x L).
The entry is one order per leg (spreading it over hours is not modelled), so L is capped at the
smallest of these. Capital above what the capped legs need stays idle in the share currency and
earns nothing: an operator asking "what does 1e9 earn here" gets the honest answer that the limits
let the mode deploy only a few million, plus a warning naming the limit that binds. Refusing the
run instead would hide that figure; silently deploying past the limits would report returns no
venue would let the operator earn.

Margin floors. A perp venue funded by a transfer (every perp venue but the basis modes' spot venue,
whose own cash is its margin) holds at least its `min_order_usdt`: a transfer is not an order, but an
operator topping up a margin account sends at least that much rather than nothing, so a small
account's margin target is max(margin_ratio_target x its share of the long, min_order_usdt), and the
long leg a value V supports solves V = L x (1 + entry cost) + sum of the margin targets at L. For a
large account every target is the plain m x allocation x L and L = V / (1 + m).

Lower bound (minimum capital). Every entry order must reach its venue's `min_order_usdt`, the size
below which the strategy does not send an order: the spot buy (basis modes) and each perp short
(allocation x L). Below that the hedge cannot be built, so the run is an error naming the minimum
capital (the capital whose long leg, after the margin floors, makes the smallest leg reach its floor)
instead of a silently unhedged result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.domain.params import RunParams

#: Legs are sized to this share of a position limit; a leg that grows past the limit itself (a price
#: rise) is trimmed back to the headroom by the next rebalance.
CAPACITY_HEADROOM = 0.9
#: Entry fees and slippage make the legs a little smaller than the formula: the minimum capital keeps
#: this margin so the smallest order still clears its floor.
MIN_CAPITAL_COST_MARGIN = 1.02


class CapitalTooSmall(ValueError):
    """The capital cannot build the mode's positions; the message names the minimum that works."""


@dataclass(frozen=True, slots=True)
class Capacity:
    long_usd: float          # largest long leg (USD) entry sizing may use (headroom applied)
    position_usd: float      # largest long leg the position limits allow outright (a rebalance trims past it)
    binding: str             # the limit that sets long_usd, in words


def hedged_capacity(params: RunParams) -> Capacity:
    """The long-leg capacity of a hedged mode (see the module docstring)."""
    sp = params.strategy
    asset = sp.underlying or "ETH"
    sized: list[tuple[float, str]] = []
    positions: list[float] = []

    def leg(weight: float, venue: str, what: str) -> None:
        cp = params.cex[venue]
        if sp.max_position_usdt <= cp.max_position_usdt:
            limit, name = sp.max_position_usdt, f"risk.max_position_usdt {sp.max_position_usdt:,.0f}"
        else:
            limit, name = cp.max_position_usdt, f"{venue} max_position_usdt {cp.max_position_usdt:,.0f}"
        share = "" if weight == 1.0 else f" ({weight:.0%} of the long)"
        positions.append(limit / weight)
        sized.append((limit * CAPACITY_HEADROOM / weight,
                      f"{name} x {CAPACITY_HEADROOM:g} headroom on the {venue} {what}{share}"))
        sized.append((cp.max_order_usdt / weight,
                      f"{venue} depth limit max_order_usdt {cp.max_order_usdt:,.0f} on the {what} entry order{share}"))

    for venue, weight in sp.allocation.items():
        if weight > 0.0:
            leg(weight, venue, f"{asset} perp short")
    if sp.spot_venue:
        leg(1.0, sp.spot_venue, f"{asset} spot leg")
    elif params.dex_max_order_usdt is not None:
        sized.append((params.dex_max_order_usdt,
                      f"uniswap depth limit max_order_usdt {params.dex_max_order_usdt:,.0f} on the entry swap"))
    long_usd, binding = min(sized, key=lambda s: s[0])
    return Capacity(long_usd, min(positions, default=math.inf), binding)


def capacity_warning(params: RunParams) -> str | None:
    """A warning when the capital is more than the capped legs can use, else None."""
    sp = params.strategy
    if not sp.hedge or sp.currency != "USDT":
        return None
    cap = hedged_capacity(params)
    usable = cap.long_usd * (1.0 + sp.margin_ratio_target)
    if sp.capital <= usable:
        return None
    return (f"capital {sp.capital:,.0f} USDT is more than {sp.mode} can deploy: the long leg is capped at "
            f"{cap.long_usd:,.0f} USDT by {cap.binding}; with its margin that uses about {usable:,.0f} USDT "
            f"and the other {sp.capital - usable:,.0f} USDT stays idle, earning nothing")


def margin_target(params: RunParams, venue: str, long_usd: float) -> float:
    """Equity perp venue `venue` should hold for a long leg of `long_usd`: its share of the hedge x
    the margin target, and at least the venue's floor where the margin arrives by transfer."""
    sp = params.strategy
    target = sp.margin_ratio_target * sp.allocation.get(venue, 0.0) * long_usd
    if venue != sp.spot_venue:
        target = max(target, params.cex[venue].min_order_usdt)
    return target


def long_for_value(params: RunParams, value_usd: float, cost_rate: float = 0.0) -> float:
    """The long leg L that a value V supports: V = L x (1 + cost_rate) + the venues' margin targets
    at L (see the module docstring). Piecewise linear and increasing in L, so it is solved exactly:
    start with the venues whose floor binds at the plain sizing and add any that bind at the smaller
    L, until the set is stable (at most one pass per venue). Never negative."""
    sp = params.strategy
    m = sp.margin_ratio_target
    venues = [v for v, w in sp.allocation.items() if w > 0.0]
    floored: set[str] = set()
    long_usd = value_usd / (1.0 + cost_rate + m * sum(sp.allocation[v] for v in venues))
    for _ in range(len(venues) + 1):
        now = {v for v in venues if v != sp.spot_venue
               and m * sp.allocation[v] * long_usd < params.cex[v].min_order_usdt}
        if now == floored:
            break
        floored = now
        plain = sum(sp.allocation[v] for v in venues if v not in floored)
        fixed = sum(params.cex[v].min_order_usdt for v in floored)
        long_usd = (value_usd - fixed) / (1.0 + cost_rate + m * plain)
    return max(long_usd, 0.0)


def hedged_minimum_capital(params: RunParams, cost_fraction: float = 0.0, fixed_cost_usd: float = 0.0
                           ) -> tuple[float, str]:
    """(minimum capital in USDT, the entry order that sets it) for a hedged mode's entry.

    `cost_fraction` and `fixed_cost_usd` are what the entry loses between the long leg's USDT and the
    exposure the perps hedge (market-neutral modes: the swap's cost, the flash-loan fee and the
    entry's gas, which a USDT share class owes in ETH): the hedge is sized on what is left, so every
    short is allocation x (L x (1 - cost_fraction) - fixed_cost_usd). Without them (no market yet:
    the live service's first check) the figure is the floor before costs."""
    sp = params.strategy
    asset = sp.underlying or "ETH"
    needs: list[tuple[float, str]] = []      # (smallest long leg the order needs, the order in words)
    for venue, weight in sp.allocation.items():
        if weight <= 0.0:
            continue
        floor = params.cex[venue].min_order_usdt
        why = f"the {venue} {asset} perp short ({weight:.0%} of the long) would be under {venue}'s min_order_usdt {floor:g}"
        needs.append(((floor / weight + fixed_cost_usd) / (1.0 - cost_fraction), why))
    if sp.spot_venue:
        floor = params.cex[sp.spot_venue].min_order_usdt
        needs.append((floor, f"the {sp.spot_venue} {asset} spot buy would be under its min_order_usdt {floor:g}"))
    long_usd, why = max(needs, key=lambda n: n[0])
    need = long_usd + sum(margin_target(params, v, long_usd) for v, w in sp.allocation.items() if w > 0.0)
    return _round_up(need * MIN_CAPITAL_COST_MARGIN), why


def check_hedged_capital(params: RunParams, cost_fraction: float = 0.0, fixed_cost_usd: float = 0.0,
                         costs: str = "") -> None:
    """Raise CapitalTooSmall when a hedged mode's capital cannot reach every entry order's floor
    (`costs` says which entry costs the figure includes, for the message)."""
    sp = params.strategy
    if not sp.hedge:
        return
    minimum, why = hedged_minimum_capital(params, cost_fraction, fixed_cost_usd)
    if sp.capital < minimum:
        raise CapitalTooSmall(f"capital {sp.capital:,.6g} {sp.currency} is too small for {sp.mode}: {why}, "
                              f"so the hedge could not be built; the minimum capital is {minimum:,.0f} {sp.currency}"
                              + (f" ({costs})" if costs else ""))


def _round_up(x: float, digits: int = 2) -> float:
    """Round up to `digits` significant digits (1,666.7 -> 1,700)."""
    if x <= 0.0:
        return 0.0
    scale = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.ceil(x / scale - 1e-9) * scale
