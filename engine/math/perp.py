"""Linear perp calculators: funding on current notional, margin ratio, liquidation test."""
from __future__ import annotations

import math


def funding_payment(size: float, mark: float, rate: float) -> float:
    """Cash received by the position holder: -size x mark x rate.

    A short (size < 0) receives when the rate is positive. Uses the *current* mark notional at the
    settlement, not the entry notional (the predecessor's bug).
    """
    return -size * mark * rate


def margin_ratio(equity: float, notional: float) -> float:
    """Equity / |notional|; +inf with no position."""
    return equity / notional if notional > 0.0 else math.inf


def is_liquidatable(equity: float, notional: float, maintenance_margin_ratio: float) -> bool:
    return notional > 0.0 and equity < notional * maintenance_margin_ratio
