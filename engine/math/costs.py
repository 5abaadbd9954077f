"""Execution-cost and gas calculators."""
from __future__ import annotations

import math

BUCKET_NOTIONALS = (10_000.0, 100_000.0, 1_000_000.0)
_LOG_BUCKETS = tuple(math.log10(b) for b in BUCKET_NOTIONALS)


def slippage_bps(notional_usd: float, bps_10k: float, bps_100k: float, bps_1m: float) -> float:
    """Bps for a trade of `notional_usd`: the 10k bucket below 10k, linear in log10(notional) between
    buckets (size impact grows with the order of magnitude), and square-root impact beyond the 1m
    bucket: bps_1m x sqrt(notional / 1m). The square-root law is the standard empirical model of
    market impact (cost per unit grows with the square root of size relative to the book); holding the
    1m figure flat instead would price a 1e9 order like a 1e6 one. Orders beyond a venue's depth
    limit never get here: the venue refuses them."""
    n = abs(notional_usd)
    if n <= BUCKET_NOTIONALS[0]:
        return bps_10k
    if n >= BUCKET_NOTIONALS[2]:
        return bps_1m * math.sqrt(n / BUCKET_NOTIONALS[2])
    x = math.log10(n)
    if x <= _LOG_BUCKETS[1]:
        w = (x - _LOG_BUCKETS[0]) / (_LOG_BUCKETS[1] - _LOG_BUCKETS[0])
        return bps_10k + w * (bps_100k - bps_10k)
    w = (x - _LOG_BUCKETS[1]) / (_LOG_BUCKETS[2] - _LOG_BUCKETS[1])
    return bps_100k + w * (bps_1m - bps_100k)


def gas_cost_eth(gas_units: int, gas_price_gwei: float) -> float:
    """ETH burned: units x (base fee + priority fee) in gwei x 1e-9."""
    return gas_units * gas_price_gwei * 1e-9
