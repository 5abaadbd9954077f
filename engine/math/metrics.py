"""Run metrics from the value series: returns and drawdown from the hourly mark-to-market values,
volatility and Sharpe from daily closes."""
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


DAYS_PER_YEAR = 365.0


def daily_closes(values: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The last value of each UTC day (`day[i]` is the day number of hour i); a partial last day
    contributes its latest value."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    d = np.asarray(day)
    last = np.flatnonzero(d[1:] != d[:-1])
    return v[np.append(last, v.size - 1)]


def daily_returns(daily: np.ndarray) -> np.ndarray:
    v = np.asarray(daily, dtype=np.float64)
    return v[1:] / v[:-1] - 1.0 if v.size > 1 else np.zeros(0)


def volatility(daily: np.ndarray) -> float:
    """Annualised volatility of DAILY returns. Daily, not hourly: the AAVE indices, LST oracles and
    cost tables are daily data interpolated to the hour, so hourly returns carry no information
    below a day and an hourly figure would understate the risk (and inflate the Sharpe)."""
    r = daily_returns(daily)
    return float(np.std(r, ddof=1) * math.sqrt(DAYS_PER_YEAR)) if r.size > 1 else 0.0


def sharpe(daily: np.ndarray, risk_free_apr: float = 0.0) -> float | None:
    """Annualised mean excess daily return over the annualised daily volatility; None when the
    volatility is 0 (a value that never moves has no meaningful ratio)."""
    r = daily_returns(daily)
    if r.size < 2:
        return None
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return None
    excess = float(np.mean(r)) - risk_free_apr / DAYS_PER_YEAR
    return excess / sd * math.sqrt(DAYS_PER_YEAR)


def max_drawdown(values: np.ndarray) -> float:
    """Largest peak-to-trough fall as a positive fraction of the peak."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(v)
    return float(np.max((peaks - v) / peaks))
