"""Growing the market-neutral long leg with its perp hedge inside the delta band at every step.

The long leg is bought on-chain (USDT -> ETH swaps) and hedged with ETH perp shorts on several
venues. Bought in one swap and hedged afterwards, the whole leg is unhedged until the last short
fills: seconds on loopback, minutes against a real chain and real venues, and for good if a perp
order is refused. Instead the two legs leapfrog, each leading the other by at most one *lead*:

    perps:  short up to (on-chain exposure + lead)      net delta falls to -lead
    swap:   buy ETH up to (the hedge + lead)            net delta rises to +lead
    perps, swap, ... until the USDT is spent; a last perp step hedges what was bought.

Net delta is the on-chain ETH exposure plus the perp sizes (what the strategy's delta-drift check
measures). After every instruction it lies within [-lead, +lead]: a perp step moves it down
monotonically venue by venue, a swap moves it up, and each of them moves 2 x lead. So a long leg of
L USDT takes about L / (2 x lead) swaps and one perp step more.

The lead is BAND_SHARE of the delta band (`rebalancing.delta_drift_trigger` x the long leg): the
rest of the band absorbs lot rounding and the prices moving while a live program runs. The swap's
cost never pushes the net past the band: it only makes the long smaller than the USDT spent, which
moves the net towards the hedge. Every perp step must reach each venue's `min_order_usdt` (a short
below it is not sent), so the lead is at least MIN_ORDER_CUSHION x the largest min_order_usdt /
allocation; where that is above BAND_SHARE of the band (a small account) the legs lead by that
much instead, and every instruction's reason says so. A lead is never more than one order a venue
or the DEX takes (its depth limit).

Why the perps lead (short before the swap, not after): the CEX orders are the ones a venue refuses
(margin, its own checks, an outage), and a refusal stops the program. With the perps ahead, a
refused short stops it before the on-chain leg grows past the hedge, so no step ever adds exposure
the hedge does not already cover to within the lead; a swap that reverts leaves the account short
by at most the lead. The perp refusal must therefore stop the program here (`hedge_to` with
`skip_refused=False`): skipping the venue and swapping on would leave its share unhedged.
"""
from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

from engine.components.risk import onchain_eth_units
from engine.domain.instructions import Fill, Instruction, Op
from engine.domain.params import RunParams
from engine.math.costs import slippage_bps
from engine.strategies.base import StrategyContext
from engine.strategies.hedge import DUST_USD, hedge_to, net_delta_units

#: Share of the delta band one leg may lead the other by.
BAND_SHARE = 0.9
#: A perp step of one lead must clear each venue's min_order_usdt with this margin (the perp marks
#: differ a little from the spot price the step is sized at, and the swap's cost shortens it).
MIN_ORDER_CUSHION = 1.05


@dataclass(frozen=True, slots=True)
class Tranches:
    """How a long leg of `long_usd` is built (see the module docstring)."""

    long_usd: float
    band_usd: float          # the delta band: delta_drift_trigger x the long leg
    lead_usd: float          # how far one leg may lead the other
    swaps: int               # swaps the long leg takes (each spends 2 x lead)
    floor_binds: bool        # the venues' order floors set the lead (it is above BAND_SHARE of the band)

    @property
    def note(self) -> str:
        """What the instructions' reasons say about the plan."""
        if self.floor_binds:
            return (f" (tranche: each leg leads by {self.lead_usd:,.0f} USDT, above the delta band "
                    f"{self.band_usd:,.0f} USDT: the venues' min_order_usdt need it)")
        return f" (tranche: each leg leads by at most {self.lead_usd:,.0f} USDT, delta band {self.band_usd:,.0f} USDT)"


def plan_tranches(params: RunParams, long_usd: float) -> Tranches:
    """The lead and the number of swaps for a long leg of `long_usd` USDT."""
    sp = params.strategy
    band = sp.delta_drift_trigger * long_usd
    venues = [(v, w) for v, w in sp.allocation.items() if w > 0.0]
    floor = MIN_ORDER_CUSHION * max((params.cex[v].min_order_usdt / w for v, w in venues), default=0.0)
    lead = max(BAND_SHARE * band, floor)
    # One step is at most one order a venue (its share of 2 x lead) or the DEX (2 x lead) takes.
    depth = [params.cex[v].max_order_usdt / w for v, w in venues]
    if params.dex_max_order_usdt is not None:
        depth.append(params.dex_max_order_usdt)
    if depth:
        lead = min(lead, min(depth) * (1.0 - 1e-9) / 2.0)
    swaps = math.ceil(long_usd / (2.0 * lead)) if long_usd > DUST_USD and lead > 0.0 else 0
    return Tranches(long_usd, band, lead, swaps, lead > BAND_SHARE * band * (1.0 + 1e-12))


def grow_hedged_long(ctx: StrategyContext, usdt: float, band_long_usd: float, reason: str
                     ) -> Generator[Instruction, Fill, float]:
    """Spend `usdt` of the wallet's USDT on ETH with the perps leading (see the module docstring),
    the band that of a long leg of `band_long_usd`. Returns the ETH bought (left in the wallet for
    the caller to stake or loop; the caller hedges what that changes). A refused perp order stops
    the program before the next swap."""
    plan = plan_tranches(ctx.params, band_long_usd)
    if usdt <= DUST_USD or plan.swaps == 0:
        return 0.0
    price = ctx.eth
    lead = plan.lead_usd / price
    why = reason + plan.note
    pool = ctx.market.cost_bps["ETH_USDT"]
    fee_bps = ctx.params.swap_fee_bps
    swap_usd = min(usdt, 2.0 * plan.lead_usd)
    swap_rate = 1.0 - (slippage_bps(swap_usd, *(c[ctx.t] for c in pool)) + fee_bps) * 1e-4
    left, bought = usdt, 0.0
    # Each round spends 2 x lead (the first one too), so the plan's swaps bound the rounds; the
    # bound on this budget only stops a program whose steps stopped making progress (a bug).
    for _ in range(math.ceil(usdt / (2.0 * plan.lead_usd)) + 2):
        exposure = onchain_eth_units(ctx.portfolio, ctx.market, ctx.t)
        ahead = left * swap_rate / price if left > DUST_USD else 0.0    # ETH the USDT left still buys
        yield from hedge_to(ctx, exposure + min(lead, ahead), why, skip_refused=False)
        if left <= DUST_USD:
            return bought
        # net = exposure - hedge: bring the long up to hedge + lead
        amount = min(left, (lead - net_delta_units(ctx)) * price)
        if left - amount <= DUST_USD:
            amount = left                   # no dust left behind for a swap of its own
        if amount <= DUST_USD:
            break
        fill = yield Instruction(Op.SWAP, "uniswap", "USDT", amount, to_asset="ETH", reason=why)
        left -= fill.amount_in
        bought += fill.amount_out
    raise RuntimeError(f"{reason}: the banded build of the long leg stopped making progress with "
                       f"{left:,.2f} USDT left (lead {plan.lead_usd:,.2f} USDT)")
