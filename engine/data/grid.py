"""Hourly-grid primitives: as-of joins with explicit fill limits, geometric interpolation, spans.

Everything works on int64 epoch seconds with numpy so one alignment of a ~12k-hour window costs
microseconds and the rules (how old a value may be, what counts as a fill) are explicit numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOUR_S = 3600


def fmt_ts(seconds: int) -> str:
    """'2024-05-12 01:00' (UTC) for messages."""
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")


def hourly_grid(start_s: int, end_s: int) -> np.ndarray:
    """Inclusive hourly grid in epoch seconds."""
    return np.arange(start_s, end_s + 1, HOUR_S, dtype=np.int64)


@dataclass(frozen=True)
class Span:
    """The hours a column can be built for: [start_s, end_s] inclusive, and what limits it."""

    series: str  # e.g. "binance BTC perp (market_data/.../binance_BTCUSDT_perp_....csv)"
    start_s: int
    end_s: int

    def describe(self) -> str:
        return f"{self.series} covers {fmt_ts(self.start_s)}..{fmt_ts(self.end_s)} UTC"


def union_span(series: str, spans: list[Span]) -> Span:
    """Span of a column with fallbacks: from the earliest to the latest source.

    Fallback sources fill the primary's holes, so a column with fallbacks only limits the window
    where none of its sources has data; holes inside are checked when the column is built.
    """
    return Span(series, min(s.start_s for s in spans), max(s.end_s for s in spans))


@dataclass(frozen=True)
class AsOf:
    """Result of an as-of join onto the grid.

    values: the latest source value at or before each hour (NaN where none within the limit).
    age_h:  how many hours old that value is (0 = exact hour); -1 where there is no value.
    """

    values: np.ndarray
    age_h: np.ndarray

    @property
    def missing(self) -> np.ndarray:
        return self.age_h < 0

    @property
    def filled(self) -> np.ndarray:
        return self.age_h > 0


def asof(times: np.ndarray, values: np.ndarray, grid_s: np.ndarray, max_age_h: int) -> AsOf:
    """Join a sorted, unique series onto the grid, accepting values at most `max_age_h` hours old."""
    idx = np.searchsorted(times, grid_s, side="right") - 1
    has = idx >= 0
    safe = np.where(has, idx, 0)
    age = np.where(has, (grid_s - times[safe]) // HOUR_S, -1)
    ok = has & (age <= max_age_h)
    return AsOf(np.where(ok, values[safe], np.nan), np.where(ok, age, -1).astype(np.int64))


def geometric_interpolation(times: np.ndarray, values: np.ndarray, grid_s: np.ndarray) -> np.ndarray:
    """Log-linear interpolation in time between consecutive snapshots.

    An AAVE index compounds, so between two snapshots it grows by a constant factor per second;
    interpolating log(index) linearly reproduces that and keeps the index monotone. At a snapshot
    time the published value is returned exactly (no exp/log round-off).
    """
    if grid_s[0] < times[0] or grid_s[-1] > times[-1]:
        raise ValueError("grid extends beyond the snapshots; check the span before interpolating")
    out = np.exp(np.interp(grid_s.astype(np.float64), times.astype(np.float64), np.log(values)))
    pos = np.searchsorted(times, grid_s)
    pos_c = np.minimum(pos, times.size - 1)
    exact = times[pos_c] == grid_s
    out[exact] = values[pos_c[exact]]
    return out


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index pairs of each run of True values."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def describe_runs(grid_s: np.ndarray, mask: np.ndarray, max_runs: int = 4, unit: str = "h") -> str:
    """'2024-08-31 16:00..2024-09-30 15:00 (720 h), ...' for the True runs of `mask` on `grid_s`.

    `unit` names what one element is (hours on the hourly grid, settlements on a funding grid).
    """
    runs = true_runs(mask)
    parts = [f"{fmt_ts(grid_s[a])}..{fmt_ts(grid_s[b])} ({b - a + 1} {unit})" for a, b in runs[:max_runs]]
    if len(runs) > max_runs:
        parts.append(f"+{len(runs) - max_runs} more")
    return ", ".join(parts)
