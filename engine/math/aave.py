"""AAVE v3 calculators: scaled balances, health factor, liquidation and deleverage sizing.

All amounts in the *debt asset's* unit (ETH for the LST/WETH loop) unless stated.
"""
from __future__ import annotations

import math


def to_scaled(amount: float, index: float) -> float:
    """Underlying amount -> scaled balance (what AAVE stores)."""
    return amount / index


def from_scaled(scaled: float, index: float) -> float:
    """Scaled balance -> underlying amount at the current index."""
    return scaled * index


def health_factor(collateral_value: float, liquidation_threshold: float, debt_value: float) -> float:
    """HF = sum(collateral x LT) / debt; +inf without debt (AAVE returns uint max)."""
    if debt_value <= 0.0:
        return math.inf
    return collateral_value * liquidation_threshold / debt_value


def ltv(collateral_value: float, debt_value: float) -> float:
    return debt_value / collateral_value if collateral_value > 0.0 else 0.0


def liquidation_repay(debt_value: float, hf: float, close_factor: float, full_liquidation_hf: float) -> float:
    """Debt a liquidator may repay: nothing at HF >= 1, close_factor x debt below 1, all of it at or below
    the full-liquidation HF (AAVE v3 LiquidationLogic: the close factor is 50 % while HF is strictly
    above CLOSE_FACTOR_HF_THRESHOLD = 0.95, 100 % from there down)."""
    if hf >= 1.0:
        return 0.0
    return debt_value if hf <= full_liquidation_hf else debt_value * close_factor


def liquidation_seized(repaid_value: float, bonus: float, collateral_value: float) -> float:
    """Collateral value seized for `repaid_value` of debt: repaid x (1 + bonus), capped by what exists."""
    return min(repaid_value * (1.0 + bonus), collateral_value)


def deleverage_withdrawal(collateral_units: float, collateral_price: float, debt_value: float,
                          liquidation_threshold: float, target_hf: float, sale_price: float) -> float:
    """Collateral units to withdraw and sell (at `sale_price` net of costs, debt units per unit) to repay
    debt so that HF returns to `target_hf`.

    Solves target_hf = (C - w)·p·LT / (D - w·s) for w, where p is the oracle price used by AAVE and s
    the realised sale price. Returns 0 when HF is already at or above target; never more than C.
    """
    c, p, d, lt, h, s = collateral_units, collateral_price, debt_value, liquidation_threshold, target_hf, sale_price
    if d <= 0.0 or c * p * lt / d >= h:
        return 0.0
    denom = p * lt - h * s
    if denom >= 0.0:  # selling cannot raise HF to target (sale far below oracle): unwind everything
        return c
    w = (c * p * lt - h * d) / denom
    return min(max(w, 0.0), c)
