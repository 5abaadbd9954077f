"""Run metrics from the hourly value series (docs/ARCHITECTURE.md, Accounting)."""
from __future__ import annotations

import math

import numpy as np

HOURS_PER_YEAR = 8760.0


def apr(initial: float, final: float, hours: int) -> float:
    """Simple annualised return."""
    return (final / initial - 1.0) * HOURS_PER_YEAR / hours if hours > 0 else 0.0


def apy(initial: float, final: float, hours: int) -> float:
    """Compounded annualised return."""
    if hours <= 0 or final <= 0.0:
        return -1.0 if final <= 0.0 else 0.0
    return (final / initial) ** (HOURS_PER_YEAR / hours) - 1.0


def hourly_returns(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[1:] / v[:-1] - 1.0 if v.size > 1 else np.zeros(0)


def volatility(values: np.ndarray) -> float:
    r = hourly_returns(values)
    return float(np.std(r, ddof=1) * math.sqrt(HOURS_PER_YEAR)) if r.size > 1 else 0.0


def sharpe(values: np.ndarray, risk_free_apr: float = 0.0) -> float | None:
    """Annualised mean excess hourly return over annualised volatility; None when volatility is 0."""
    r = hourly_returns(values)
    if r.size < 2:
        return None
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return None
    excess = float(np.mean(r)) - risk_free_apr / HOURS_PER_YEAR
    return excess / sd * math.sqrt(HOURS_PER_YEAR)


def max_drawdown(values: np.ndarray) -> float:
    """Largest peak-to-trough fall as a positive fraction of the peak."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(v)
    return float(np.max((peaks - v) / peaks))
