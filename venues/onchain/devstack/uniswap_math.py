"""Uniswap v3 price <-> sqrtPriceX96 <-> tick conversions (v3-core TickMath conventions).

A pool prices token1 in token0 raw units: price = token1 per token0, scaled by the decimals.
``sqrtPriceX96 = sqrt(price) * 2**96``; ``tick = floor(log_1.0001(price))``; usable ticks are
multiples of the fee tier's spacing, within [MIN_TICK, MAX_TICK].
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

MIN_TICK = -887272
MAX_TICK = 887272
TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}
Q96 = 2**96


def raw_price(price_token0_in_token1: Decimal, decimals0: int, decimals1: int) -> Decimal:
    """token1 raw units per token0 raw unit."""
    return price_token0_in_token1 * Decimal(10) ** decimals1 / Decimal(10) ** decimals0


def sqrt_price_x96(price_raw: Decimal) -> int:
    with localcontext() as ctx:  # 160-bit values: more digits than the default 28
        ctx.prec = 80
        return int((price_raw.sqrt() * Q96).to_integral_value())


def price_from_sqrt_x96(sqrt_x96: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80
        return (Decimal(sqrt_x96) / Q96) ** 2


def tick_at(price_raw: Decimal) -> int:
    return math.floor(math.log(float(price_raw)) / math.log(1.0001))


def aligned_tick(tick: int, fee: int, *, up: bool) -> int:
    spacing = TICK_SPACING[fee]
    aligned = (tick // spacing + (1 if up and tick % spacing else 0)) * spacing
    low = -(MAX_TICK // spacing) * spacing
    return max(low, min(-low, aligned))
