"""Perp hedge sizing and margin funding shared by the hedged modes."""
from __future__ import annotations

import math

from engine.components.risk import cex_equity, onchain_eth_units
from engine.domain.instructions import Instruction, Op
from engine.domain.refusals import MarginRefused
from engine.strategies.base import Program, StrategyContext
from engine.strategies.capacity import margin_target

DUST_USD = 10.0   # on-chain amounts below this are not worth a transaction's gas


def clamp_order(units: float, price: float, max_order_usdt: float) -> float:
    """`units` cut to a venue's depth limit (one order per leg per hour; the rest waits an hour)."""
    cap = max_order_usdt * (1.0 - 1e-12) / price       # a hair under, so rounding never trips the venue
    return units if abs(units) <= cap else math.copysign(cap, units)


def hedge_to(ctx: StrategyContext, exposure_units: float, reason: str, *, skip_refused: bool = True) -> Program:
    """Set each venue's perp to -allocation x exposure (short what is held long), within the tighter
    of the mode's and the exchange's position limit and one depth-limited order per venue.

    A venue that refuses the order for lack of initial margin is skipped (the manager logs the
    refusal); the others still hedge, and the next check sends a margin rebalance to that venue.
    With ``skip_refused=False`` the refusal stops the program instead: a caller about to add
    exposure that this hedge must cover first (engine.strategies.banded_growth)."""
    sp = ctx.params.strategy
    asset = sp.underlying or "ETH"
    for venue, weight in sp.allocation.items():
        if weight <= 0.0:
            continue
        cp = ctx.params.cex[venue]
        acct = ctx.portfolio.account(venue)
        mark = ctx.market.perp[(venue, asset)][ctx.t]
        current = acct.perps[asset].size if asset in acct.perps else 0.0
        target = -weight * exposure_units
        limit = min(sp.max_position_usdt, cp.max_position_usdt) / mark
        if abs(target) > limit:
            target = math.copysign(limit, target)
        delta = clamp_order(target - current, mark, cp.max_order_usdt)
        if abs(delta) * mark >= cp.min_order_usdt:
            try:
                yield Instruction(Op.PERP_TRADE, venue, asset, delta, reason=reason)
            except MarginRefused:
                if not skip_refused:
                    raise


def net_delta_units(ctx: StrategyContext) -> float:
    """Net exposure to the underlying in its units: on-chain holdings plus every CEX account's spot
    and perps (what the delta-drift check measures)."""
    asset = ctx.params.strategy.underlying or "ETH"
    net = onchain_eth_units(ctx.portfolio, ctx.market, ctx.t) if asset == "ETH" else 0.0
    for acct in ctx.portfolio.cex.values():
        net += acct.spot.get(asset, 0.0)
        pos = acct.perps.get(asset)
        if pos is not None:
            net += pos.size
    return net


def margin_targets(ctx: StrategyContext, long_notional_usd: float) -> dict[str, float]:
    """Equity each perp venue should hold for a hedge of `long_notional_usd`: the margin target on
    its share, at least the venue's min_order_usdt where margin arrives by transfer."""
    sp = ctx.params.strategy
    return {v: margin_target(ctx.params, v, long_notional_usd) for v, w in sp.allocation.items() if w > 0}


def venue_equity(ctx: StrategyContext, venue: str) -> float:
    acct = ctx.portfolio.account(venue)
    return cex_equity(acct, venue, ctx.market, ctx.t)[0]


def venue_notional(ctx: StrategyContext, venue: str) -> float:
    acct = ctx.portfolio.account(venue)
    return cex_equity(acct, venue, ctx.market, ctx.t)[1]


def _margin_wants(ctx: StrategyContext, long_notional_usd: float, source: str
                  ) -> list[tuple[float, str, float, bool]]:
    """Each venue below its margin target, as (equity / hedge, venue, shortfall, needed), where
    `needed` means its equity is below `margin_ratio_trigger` of the hedge it carries or is about to
    carry (an account being opened, or one in danger). The source venue is left out."""
    sp = ctx.params.strategy
    out = []
    for venue, target in margin_targets(ctx, long_notional_usd).items():
        if venue == source:
            continue
        equity, notional = cex_equity(ctx.portfolio.account(venue), venue, ctx.market, ctx.t)
        shortfall = target - equity
        if shortfall <= 0.0:
            continue
        hedge = max(notional, sp.allocation[venue] * long_notional_usd)
        needed = equity < sp.margin_ratio_trigger * hedge
        out.append((equity / hedge if hedge > 0.0 else 0.0, venue, shortfall, needed))
    return out


def margin_cash_needed(ctx: StrategyContext, long_notional_usd: float, source: str) -> float:
    """USDT that `source` must send now for the venues that need margin (see fund_margins): each
    one's shortfall, at least its min_order_usdt. A rebalance raises at least this much."""
    return sum(max(shortfall, ctx.params.cex[venue].min_order_usdt)
               for _, venue, shortfall, needed in _margin_wants(ctx, long_notional_usd, source) if needed)


def fund_margins(ctx: StrategyContext, long_notional_usd: float, source: str, available: float,
                 reason: str) -> Program:
    """Move up to `available` USDT from `source` to the venues below their margin target (for a hedge
    of `long_notional_usd`), in proportion to their shortfall.

    A shortfall at or below the venue's min_order_usdt is not worth a transfer, unless the venue
    needs it: its equity is below `margin_ratio_trigger` of the hedge it carries or is about to
    carry (an account being opened, or one in danger). Such a top-up is rounded up to the floor when
    the source has it, and its reason says so: sending less than the floor is not an option, and
    sending nothing leaves the account to be liquidated. The venues most in danger are served first.
    Surplus elsewhere stays until a venue passes the margin ceiling (see collect_surplus): moving it
    on every small move would cost fees both ways."""
    asset = ctx.params.strategy.underlying or "ETH"
    wanted = [w for w in _margin_wants(ctx, long_notional_usd, source)
              if w[3] or w[2] > ctx.params.cex[w[1]].min_order_usdt]
    total = sum(w[2] for w in wanted)
    if total <= 0.0 or available <= DUST_USD:
        return
    scale = min(1.0, available / total)
    left = available
    for _, venue, shortfall, needed in sorted(wanted):
        floor = ctx.params.cex[venue].min_order_usdt
        amount, note = min(shortfall * scale, left), ""
        if amount <= floor and not needed:
            continue
        if amount < floor:
            if left < floor:
                continue
            note = (f" (rounded up to {venue}'s min_order_usdt {floor:g} from the {amount:.2f} USDT "
                    f"shortfall of its {asset} hedge margin)")
            amount = floor
        left -= amount
        yield Instruction(Op.TRANSFER, source, "USDT", amount, to_venue=venue, reason=reason + note)


def collect_surplus(ctx: StrategyContext, targets: dict[str, float], dest: str, reason: str) -> Program:
    """Send each venue's equity above its target to `dest` (the spot venue or the wallet); the
    destination venue itself only realises its surplus into cash.

    Unrealised perp profit counts as equity but cannot be withdrawn, so when the cash alone does not
    cover the surplus the position is closed and reopened at the mark first: that realises the
    profit into cash for the price of two taker fees on the notional."""
    sp = ctx.params.strategy
    asset = sp.underlying or "ETH"
    for venue, target in targets.items():
        surplus = venue_equity(ctx, venue) - target
        floor = ctx.params.cex[venue].min_order_usdt
        if surplus <= floor:
            continue
        acct = ctx.portfolio.account(venue)
        pos = acct.perps.get(asset)
        if acct.usdt < surplus and pos is not None and pos.size:
            size = pos.size
            yield Instruction(Op.PERP_TRADE, venue, asset, -size, reason=reason + " (realise P&L)")
            yield Instruction(Op.PERP_TRADE, venue, asset, size, reason=reason + " (reopen)")
        amount = min(surplus, ctx.portfolio.account(venue).usdt)
        if venue != dest and amount > floor:
            yield Instruction(Op.TRANSFER, venue, "USDT", amount, to_venue=dest, reason=reason)
