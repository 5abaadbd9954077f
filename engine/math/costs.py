"""Execution-cost and gas calculators."""
from __future__ import annotations

import math

BUCKET_NOTIONALS = (10_000.0, 100_000.0, 1_000_000.0)
_LOG_BUCKETS = tuple(math.log10(b) for b in BUCKET_NOTIONALS)


def slippage_bps(notional_usd: float, bps_10k: float, bps_100k: float, bps_1m: float) -> float:
    """Bps for a trade of `notional_usd`: the 10k bucket below 10k, the 1m bucket above 1m, and linear
    in log10(notional) between buckets (size impact grows with the order of magnitude)."""
    n = abs(notional_usd)
    if n <= BUCKET_NOTIONALS[0]:
        return bps_10k
    if n >= BUCKET_NOTIONALS[2]:
        return bps_1m
    x = math.log10(n)
    if x <= _LOG_BUCKETS[1]:
        w = (x - _LOG_BUCKETS[0]) / (_LOG_BUCKETS[1] - _LOG_BUCKETS[0])
        return bps_10k + w * (bps_100k - bps_10k)
    w = (x - _LOG_BUCKETS[1]) / (_LOG_BUCKETS[2] - _LOG_BUCKETS[1])
    return bps_100k + w * (bps_1m - bps_100k)


def gas_cost_eth(gas_units: int, gas_price_gwei: float) -> float:
    """ETH burned: units x (base fee + priority fee) in gwei x 1e-9."""
    return gas_units * gas_price_gwei * 1e-9
