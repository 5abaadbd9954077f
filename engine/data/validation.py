"""Row-level validation of the raw data files: every rule is an error naming file and line, or a
counted cleaning step.

A data file can be replaced, truncated or hand-edited, and a wrong value changes results without
anyone noticing (one funding rate of 5.0 turned a 7 % APR into 1541 %). So each series passes the
same checks on load. Rows keep their file line numbers through sorting and de-duplication, so an
error points at the line to fix.

Errors (the file cannot be used as it is):
- a timestamp that does not parse, or is not on the hour;
- a value that is infinite, not positive where it must be, or outside the series' sanity bounds;
- a price that jumps by more than its bound from one row to the next (a bad tick: a 100x close), or
  a bar's high or low that far beyond its open and close;
- two rows with the same timestamp and different prices (which one is right cannot be known).

Counted cleaning steps (reported per series in the results' ``data_fallbacks``):
- blank lines and rows with an empty value are dropped (the hour then takes a substitute, counted);
- a bar whose high is below the larger of its open and close is raised to it, one whose low is above
  the smaller lowered to it, and an empty high or low takes that value: a bar always contains its
  open and close;
- rows out of time order are sorted;
- rows repeating another row exactly (Bybit has 15) are dropped.

Funding rates have their own rule for conflicting duplicates (engine/data/funding.py).
"""
from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.errors import DataFormatError

HOUR_S = 3600

# ---- sanity bounds (stated in data/README.md) ----------------------------------------------------
#: An hourly CEX close more than 1.5x (or less than 1/1.5) the previous close is a bad tick. The
#: largest move in the shipped data is 13 % (ETH, 2024-08-05); a 100x print is a corrupt row.
PRICE_JUMP_FACTOR = 1.5
#: ETH per LST (AAVE oracle, DEX peg): 1.04..1.22 in the data; outside 0.5..2 the file is wrong.
LST_RATE_BOUNDS = (0.5, 2.0)
#: An LST rate moving more than 20 % in an hour (stETH's June 2022 depeg was 7 % over days).
LST_JUMP_FACTOR = 1.2
#: |funding rate| per 8 h settlement. Venue caps for BTC/ETH are 0.3-2 %; the data's largest is
#: 0.12 %. 3 % per 8 h is 3,285 % a year: a rate beyond it is a wrong row, not a market.
FUNDING_RATE_LIMIT = 0.03
#: Gas price ceiling in gwei (the data peaks at 844).
GAS_GWEI_MAX = 10_000.0
#: A bar's high more than 1.5x the larger of its open and close (or its low below the smaller divided
#: by 1.5) is a bad tick, the same bound as a close-to-close jump: the longest wick in the data is
#: ETH's low of 2024-08-05, 19 % under its open. A 100x high would liquidate every short.
WICK_FACTOR = PRICE_JUMP_FACTOR


class Cleaning(dict):
    """Cleaning step -> number of rows it affected in one file (only steps that did something)."""

    def add(self, step: str, count: int) -> None:
        if count:
            self[step] = self.get(step, 0) + int(count)


@dataclass
class Rows:
    """Parallel arrays of one file's rows: epoch seconds, values, 1-based file line numbers, and
    any further per-row columns (a bar's high and low) that travel with the rows through sorting and
    de-duplication."""

    times: np.ndarray
    values: np.ndarray
    lines: np.ndarray
    extra: tuple[np.ndarray, ...] = ()

    def keep(self, mask: np.ndarray) -> Rows:
        return Rows(self.times[mask], self.values[mask], self.lines[mask], tuple(x[mask] for x in self.extra))

    def take(self, order: np.ndarray) -> Rows:
        return Rows(self.times[order], self.values[order], self.lines[order], tuple(x[order] for x in self.extra))

    @property
    def size(self) -> int:
        return int(self.times.size)


# ---- reading ---------------------------------------------------------------------------------------
def read_failure(path: Path, exc: BaseException) -> DataFormatError:
    """A DataFormatError naming the file for whatever went wrong while reading its bytes."""
    if isinstance(exc, gzip.BadGzipFile) and "Not a gzipped file" in str(exc):
        return DataFormatError(f"{path}: the file is named .gz but is not gzip-compressed "
                               "(compress it with gzip, or drop the .gz suffix)")
    if isinstance(exc, EOFError):
        return DataFormatError(f"{path}: the file is truncated (the gzip stream ends early: {exc}); "
                               "restore it from the data pack")
    if isinstance(exc, (gzip.BadGzipFile, zlib.error)):
        return DataFormatError(f"{path}: the file is corrupt (gzip: {exc}); restore it from the data pack")
    if isinstance(exc, UnicodeDecodeError):
        return DataFormatError(f"{path}: the file is not UTF-8 text ({exc.reason} at byte {exc.start})")
    if isinstance(exc, pd.errors.EmptyDataError):
        return DataFormatError(f"{path}: the file is empty")
    if isinstance(exc, pd.errors.ParserError):
        return DataFormatError(f"{path}: malformed CSV ({exc})")
    if isinstance(exc, OSError):
        return DataFormatError(f"{path}: cannot read the file ({exc.strerror or exc})")
    return DataFormatError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})")


READ_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError)


def guarded_read(path: Path, read: Callable[[], Any]) -> Any:
    """``read()``, with every decompression/decoding/IO failure turned into a DataFormatError."""
    try:
        return read()
    except READ_ERRORS as exc:
        raise read_failure(path, exc) from None


def line_numbers(frame: pd.DataFrame | pd.Series) -> np.ndarray:
    """1-based file line of each row: the reader records the first data line in ``attrs`` and rows
    keep their positional index label through filtering."""
    return frame.attrs.get("first_line", 2) + frame.index.to_numpy(dtype=np.int64)


def parse_times(values: pd.Series, lines: np.ndarray, path: Path, column: str) -> np.ndarray:
    """ISO-8601 timestamps (any offset; naive means UTC) -> int64 epoch seconds, or an error naming
    the first bad line."""
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
        bad = parsed.isna().to_numpy()
    except (ValueError, TypeError, OverflowError):
        parsed = None
        bad = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce").isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        text = values.iloc[i]
        what = "is empty" if text is None or (isinstance(text, float) and math.isnan(text)) else \
            f"{str(text)[:40]!r} is not a timestamp"
        raise DataFormatError(f"{path}: line {int(lines[i])}: column {column!r} {what} "
                              f"({int(bad.sum())} such row(s) in the file)")
    assert parsed is not None
    return parsed.dt.as_unit("s").astype("int64").to_numpy()


# ---- rules -----------------------------------------------------------------------------------------
def _at(rows: Rows, i: int) -> str:
    return pd.Timestamp(int(rows.times[i]), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")


def require_on_hour(rows: Rows, path: Path, column: str) -> None:
    off = rows.times % HOUR_S != 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        at = pd.Timestamp(int(rows.times[i]), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
        raise DataFormatError(f"{path}: line {int(rows.lines[i])}: {column} {at} is not on the hour "
                              f"({int(off.sum())} such row(s); the grid is hourly)")


def drop_empty(rows: Rows, cleaning: Cleaning, column: str) -> Rows:
    empty = np.isnan(rows.values)
    cleaning.add(f"rows with an empty {column} dropped", int(empty.sum()))
    return rows.keep(~empty) if empty.any() else rows


def require_values(rows: Rows, path: Path, column: str, *, low: float, high: float,
                   low_inclusive: bool = True, why: str = "") -> None:
    """Every value finite and within [low, high] (or (low, high] when not ``low_inclusive``)."""
    v = rows.values
    ok = np.isfinite(v) & (v <= high) & ((v >= low) if low_inclusive else (v > low))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        bracket = "[" if low_inclusive else "("
        raise DataFormatError(
            f"{path}: line {int(rows.lines[i])}: {column} {float(v[i])!r} at {_at(rows, i)} is outside "
            f"{bracket}{low:g}, {high:g}]{' (' + why + ')' if why else ''}; {int((~ok).sum())} such row(s)")


def sort_by_time(rows: Rows, cleaning: Cleaning) -> Rows:
    if rows.size and not (np.diff(rows.times) >= 0).all():
        order = np.argsort(rows.times, kind="stable")
        cleaning.add("rows out of time order sorted", int((order != np.arange(order.size)).sum()))
        return rows.take(order)
    return rows


def drop_identical_duplicates(rows: Rows, cleaning: Cleaning) -> Rows:
    """Drop rows repeating an earlier row's timestamp and value exactly (the first one stays)."""
    if rows.size < 2 or not (rows.times[1:] == rows.times[:-1]).any():   # time-sorted: repeats are adjacent
        return rows
    columns = {"t": rows.times, "v": rows.values} | {f"x{i}": x for i, x in enumerate(rows.extra)}
    same = pd.DataFrame(columns).duplicated(keep="first").to_numpy()
    cleaning.add("duplicate rows identical to an earlier row dropped", int(same.sum()))
    return rows.keep(~same)


def reject_conflicting_duplicates(rows: Rows, path: Path, column: str) -> None:
    """Same timestamp, different values (after identical repeats were dropped): an error."""
    clash = np.flatnonzero(rows.times[1:] == rows.times[:-1])
    if clash.size:
        i = int(clash[0])
        if rows.values[i] == rows.values[i + 1]:       # same close, another column differs (a bar's high/low)
            raise DataFormatError(
                f"{path}: lines {int(rows.lines[i])} and {int(rows.lines[i + 1])}: two rows for {_at(rows, i)} with the "
                f"same {column} {float(rows.values[i])!r} but a different high or low; which one is right cannot "
                f"be known, so remove the wrong row ({clash.size} such timestamp(s))")
        raise DataFormatError(
            f"{path}: lines {int(rows.lines[i])} and {int(rows.lines[i + 1])}: two rows for {_at(rows, i)} with "
            f"different {column} ({float(rows.values[i])!r} and {float(rows.values[i + 1])!r}); which one is right cannot be "
            f"known, so remove the wrong row ({clash.size} such timestamp(s))")


def reject_jumps(rows: Rows, path: Path, column: str, factor: float) -> None:
    """Consecutive values (time-sorted, unique, positive) may not differ by more than ``factor``."""
    if rows.size < 2:
        return
    ratio = rows.values[1:] / rows.values[:-1]
    bad = (ratio > factor) | (ratio < 1.0 / factor)
    if bad.any():
        i = int(np.flatnonzero(bad)[0]) + 1
        raise DataFormatError(
            f"{path}: line {int(rows.lines[i])}: {column} {float(rows.values[i])!r} at {_at(rows, i)} is "
            f"{ratio[i - 1]:.3g}x the previous row's {float(rows.values[i - 1])!r} (line {int(rows.lines[i - 1])}, "
            f"{_at(rows, i - 1)}); a move beyond x{factor:g} between rows is taken for a bad tick "
            f"({int(bad.sum())} such row(s))")


def bar_range(rows: Rows, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, path: Path,
              cleaning: Cleaning) -> tuple[np.ndarray, np.ndarray]:
    """A bar's high and low made to contain its open and close (counted), and checked for bad ticks.

    ``rows.values`` are the closes; an empty open counts as the close. Rows without a close are
    left alone (they are dropped as empty rows). Returns the cleaned (high, low)."""
    close = rows.values
    has_close = ~np.isnan(close)
    open_ = np.where(np.isnan(opens), close, opens)
    top, bottom = np.fmax(open_, close), np.fmin(open_, close)
    high, low = highs.copy(), lows.copy()
    empty = has_close & (np.isnan(high) | np.isnan(low))
    cleaning.add("bars with an empty high or low given their open/close", int(empty.sum()))
    high = np.where(np.isnan(high), top, high)
    low = np.where(np.isnan(low), bottom, low)
    for name, values in (("high", high), ("low", low)):
        bad = has_close & ~(np.isfinite(values) & (values > 0.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{path}: line {int(rows.lines[i])}: {name} {float(values[i])!r} at {_at(rows, i)} "
                                  f"is not a positive price; {int(bad.sum())} such row(s)")
    raised = has_close & (high < top)
    lowered = has_close & (low > bottom)
    cleaning.add("bars with a high below max(open, close) raised to it", int(raised.sum()))
    cleaning.add("bars with a low above min(open, close) lowered to it", int(lowered.sum()))
    high = np.where(raised, top, high)
    low = np.where(lowered, bottom, low)
    for name, beyond, edge, values in (("high", high > top * WICK_FACTOR, top, high),
                                       ("low", low < bottom / WICK_FACTOR, bottom, low)):
        bad = has_close & beyond
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"{path}: line {int(rows.lines[i])}: {name} {float(values[i])!r} at {_at(rows, i)} is "
                f"{values[i] / edge[i]:.3g}x the bar's {'max' if name == 'high' else 'min'}(open, close) "
                f"{float(edge[i])!r}; a wick beyond x{WICK_FACTOR:g} is taken for a bad tick ({int(bad.sum())} such row(s))")
    return high, low
