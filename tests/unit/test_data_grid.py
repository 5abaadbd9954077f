"""Grid primitives on small synthetic series: fill limits, geometric interpolation, run descriptions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.data.columns import Built, aligned_with_ffill, checked_asof
from engine.data.errors import DataRangeError
from engine.data.grid import (
    HOUR_S,
    Span,
    asof,
    describe_runs,
    geometric_interpolation,
    hourly_grid,
    true_runs,
    union_span,
)
from engine.data.readers import TimeSeries

T0 = 1_717_200_000  # 2024-06-01 00:00 UTC


def hours(*offsets: int) -> np.ndarray:
    return np.array([T0 + h * HOUR_S for h in offsets], dtype=np.int64)


def test_hourly_grid_is_inclusive() -> None:
    grid = hourly_grid(T0, T0 + 3 * HOUR_S)
    assert grid.tolist() == hours(0, 1, 2, 3).tolist()


def test_asof_reports_age_and_respects_the_limit() -> None:
    joined = asof(hours(0, 1, 5), np.array([10.0, 11.0, 15.0]), hourly_grid(T0, T0 + 6 * HOUR_S), max_age_h=2)
    assert joined.age_h.tolist() == [0, 0, 1, 2, -1, 0, 1]
    np.testing.assert_array_equal(joined.values, [10.0, 11.0, 11.0, 11.0, np.nan, 15.0, 15.0])
    assert joined.missing.tolist() == [False, False, False, False, True, False, False]
    assert joined.filled.sum() == 3


def test_asof_before_first_value_is_missing() -> None:
    joined = asof(hours(2), np.array([1.0]), hourly_grid(T0, T0 + 2 * HOUR_S), max_age_h=24)
    assert joined.missing.tolist() == [True, True, False]


def _series(times: np.ndarray, values: list[float]) -> TimeSeries:
    return TimeSeries("test close", "test/file.csv", times, np.array(values, dtype=np.float64))


def test_gap_longer_than_fill_limit_raises_with_the_gap_described() -> None:
    series = _series(hours(0, 30), [1.0, 2.0])
    with pytest.raises(DataRangeError) as info:
        checked_asof(series, hourly_grid(T0, T0 + 30 * HOUR_S), 24)
    message = str(info.value)
    assert "test close (test/file.csv)" in message
    assert "no value within 24 h for 5 hours" in message
    assert "2024-06-02 01:00..2024-06-02 05:00 (5 h)" in message


def test_short_gap_is_filled_and_flagged() -> None:
    built = Built()
    values = aligned_with_ffill(_series(hours(0, 3), [1.0, 4.0]), hourly_grid(T0, T0 + 3 * HOUR_S), 24, built)
    assert values.tolist() == [1.0, 1.0, 1.0, 4.0]
    assert len(built.fallbacks) == 1
    assert "2 of 4 hours forward-filled" in built.fallbacks[0]
    assert "2024-06-01 01:00..2024-06-01 02:00 (2 h)" in built.fallbacks[0]


def test_geometric_interpolation_by_hand() -> None:
    times = np.array([T0, T0 + 24 * HOUR_S, T0 + 48 * HOUR_S], dtype=np.int64)
    values = np.array([1.0, 1.21, 1.21])
    grid = hourly_grid(T0, T0 + 48 * HOUR_S)
    out = geometric_interpolation(times, values, grid)
    assert out[0] == 1.0 and out[24] == 1.21 and out[48] == 1.21
    assert out[12] == pytest.approx(1.1, rel=1e-15)  # sqrt(1 * 1.21)
    assert out[6] == pytest.approx(1.21**0.25, rel=1e-15)
    assert (np.diff(out) >= 0).all()
    assert out[30] == 1.21  # flat between equal snapshots
    # linear interpolation would give 1.105 at midday; geometric must not
    assert not math.isclose(out[12], 1.105, rel_tol=1e-6)


def test_geometric_interpolation_refuses_to_extrapolate() -> None:
    times = np.array([T0, T0 + 24 * HOUR_S], dtype=np.int64)
    with pytest.raises(ValueError, match="beyond the snapshots"):
        geometric_interpolation(times, np.array([1.0, 1.1]), hourly_grid(T0, T0 + 25 * HOUR_S))


def test_runs_and_their_description() -> None:
    mask = np.array([False, True, True, False, True, False, True, True, True])
    assert true_runs(mask) == [(1, 2), (4, 4), (6, 8)]
    grid = hourly_grid(T0, T0 + 8 * HOUR_S)
    assert describe_runs(grid, mask, max_runs=2) == (
        "2024-06-01 01:00..2024-06-01 02:00 (2 h), 2024-06-01 04:00..2024-06-01 04:00 (1 h), +1 more"
    )
    assert true_runs(np.zeros(3, dtype=bool)) == []


def test_union_span_takes_the_widest_cover() -> None:
    span = union_span("okx", [Span("a", 10, 20), Span("b", 5, 15)])
    assert (span.start_s, span.end_s) == (5, 20)
