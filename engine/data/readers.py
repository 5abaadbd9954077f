"""Parse and clean the raw data files into sorted numpy series.

Each reader reads only the columns it needs (usecols + dtype hints: the files carry many unused
columns), validates them (engine/data/validation.py: every rule is an error naming file and line,
or a counted cleaning step), and returns epoch-second int64 timestamps with float64 values.
Cleaning that does not depend on the run window happens here (sorting, empty rows, identical
duplicates); anything window-dependent (fills, fallbacks) happens in the column builders so it can
be counted per run.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data import validation as v
from engine.data.errors import DataFormatError

HOUR_S = 3600
DAY_S = 86400


@dataclass(frozen=True)
class TimeSeries:
    """A cleaned source series: strictly increasing epoch seconds and float64 values.

    label: short human name used in flags ("binance BTC perp").
    source: the file's path relative to the data directory (for error messages and the README).
    notes: cleaning facts about the whole file (not window-specific).
    """

    label: str
    source: str
    times: np.ndarray
    values: np.ndarray
    notes: tuple[str, ...] = ()
    cleaning: Mapping[str, int] = field(default_factory=dict)   # step -> rows affected in the file

    @property
    def first(self) -> int:
        return int(self.times[0])

    @property
    def last(self) -> int:
        return int(self.times[-1])


@dataclass(frozen=True)
class RawRows:
    """Time-sorted timestamp/value rows, conflicting duplicates kept (funding: a rule per venue
    resolves them), with each row's file line for messages."""

    label: str
    source: str
    times: np.ndarray
    values: np.ndarray
    notes: tuple[str, ...] = ()
    lines: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    cleaning: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AaveSnapshots:
    """Daily AaveScan reserve snapshots: snapshot epoch seconds and the two normalized indices."""

    label: str
    source: str
    times: np.ndarray
    liquidity_index: np.ndarray
    borrow_index: np.ndarray
    notes: tuple[str, ...] = ()
    cleaning: Mapping[str, int] = field(default_factory=dict)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_header(path: Path) -> tuple[dict[str, str], int, list[str]]:
    """Leading `# Key: value` comment lines (as a dict), their count, and the CSV column names."""
    return v.guarded_read(path, lambda: _header(path))


def _header(path: Path) -> tuple[dict[str, str], int, list[str]]:
    meta: dict[str, str] = {}
    n_comments = 0
    with _open_text(path) as fh:
        for line in fh:
            if line.startswith("#"):
                n_comments += 1
                key, sep, value = line[1:].partition(":")
                if sep:
                    meta[key.strip().lower()] = value.strip()
                continue
            return meta, n_comments, [c.strip() for c in line.rstrip("\r\n").split(",")]
    raise DataFormatError(f"{path}: no CSV header line found (file is empty or only comments)")


def read_csv_columns(path: Path, columns: dict[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read only `columns` (name -> dtype) from a CSV (optionally gzip, optionally `#` headed).

    Returns the frame and the parsed comment-header metadata (keys lower-cased). Blank lines are
    kept as empty rows, so row i is file line ``frame.attrs["first_line"] + i`` (for messages). A
    missing, truncated, corrupt or mislabelled (plain text named .gz) file is a DataFormatError
    naming it: the whole file is decompressed here, so a broken gzip stream cannot pass unseen.
    """
    meta, n_comments, header = _read_header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {missing}; columns present: {header}")

    def read() -> pd.DataFrame:
        return pd.read_csv(path, skiprows=n_comments, usecols=list(columns), dtype=columns, engine="c",
                           compression="gzip" if path.suffix == ".gz" else None, skip_blank_lines=False)

    try:
        frame = v.guarded_read(path, read)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(f"{path}: cannot parse columns {list(columns)}: {exc}") from None
    frame.attrs["first_line"] = n_comments + 2        # comments, then the header line, then rows
    return frame, meta


def parse_utc_seconds(values: pd.Series, path: Path, column: str, lines: np.ndarray | None = None) -> np.ndarray:
    """ISO-8601 timestamps (any offset; naive means UTC) -> int64 epoch seconds; a bad or empty
    timestamp is an error naming its line (``lines``: each row's file line, default row order)."""
    if lines is None:
        lines = v.line_numbers(values)
    return v.parse_times(values, lines, path, column)


def _rows(frame: pd.DataFrame, path: Path, time_column: str, values: np.ndarray, cleaning: v.Cleaning,
          extra: tuple[np.ndarray, ...] = ()) -> v.Rows:
    """Rows with parsed times and file lines; blank lines (every column empty) dropped and counted.
    ``extra``: further per-row columns carried along with the values."""
    lines = v.line_numbers(frame)
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        cleaning.add("blank lines skipped", int(blank.sum()))
        frame, values, lines = frame[~blank], values[~blank], lines[~blank]
        extra = tuple(x[~blank] for x in extra)
    times = parse_utc_seconds(frame[time_column], path, time_column, lines)
    return v.Rows(times, values, lines, extra)


def _notes(what: str, cleaning: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(f"{what}: {step}: {count}" for step, count in cleaning.items())


def _clean_hourly(label: str, rel: str, path: Path, column: str, rows: v.Rows, cleaning: v.Cleaning, *,
                  low: float, high: float, low_inclusive: bool, jump: float | None, why: str) -> TimeSeries:
    """The hourly-series rules (`_clean_hourly_rows`) as a TimeSeries."""
    rows = _clean_hourly_rows(rows, path, column, cleaning, low=low, high=high, low_inclusive=low_inclusive,
                              jump=jump, why=why)
    return TimeSeries(label, rel, rows.times, rows.values, _notes(f"{label} ({rel})", cleaning), dict(cleaning))


def _clean_hourly_rows(rows: v.Rows, path: Path, column: str, cleaning: v.Cleaning, *, low: float, high: float,
                       low_inclusive: bool, jump: float | None, why: str) -> v.Rows:
    """The hourly-series rules, in order: on the hour; empty values dropped (counted); every value
    finite and in bounds; sorted; identical repeats dropped (counted); conflicting duplicates and
    jumps beyond ``jump`` rejected. Errors name the file and line."""
    v.require_on_hour(rows, path, "timestamp")
    rows = v.drop_empty(rows, cleaning, column)
    v.require_values(rows, path, column, low=low, high=high, low_inclusive=low_inclusive, why=why)
    if rows.size == 0:
        raise DataFormatError(f"{path}: no usable rows in column {column!r}")
    rows = v.sort_by_time(rows, cleaning)
    rows = v.drop_identical_duplicates(rows, cleaning)
    v.reject_conflicting_duplicates(rows, path, column)
    if jump is not None:
        v.reject_jumps(rows, path, column, jump)
    return rows


def read_close(path: Path, rel: str, label: str) -> TimeSeries:
    """Hourly OHLCV file -> close prices (spot, perp)."""
    frame, _ = read_csv_columns(path, {"timestamp": "str", "close": "float64"})
    cleaning = v.Cleaning()
    rows = _rows(frame, path, "timestamp", frame["close"].to_numpy(np.float64), cleaning)
    return _clean_hourly(label, rel, path, "close", rows, cleaning, low=0.0, high=1e12, low_inclusive=False,
                         jump=v.PRICE_JUMP_FACTOR, why="a price must be positive")


@dataclass(frozen=True)
class Bars:
    """An hourly OHLCV file's bars: the closes (the price of the hour) and each bar's high and low on
    the same timestamps, every bar containing its open and close (engine/data/validation.py).

    The range is what happened inside the hour: a margin check against the high (a short) or the low
    (a long) sees the breach a close-only check misses. ``range_cleaning`` counts what the high/low
    rules changed (the closes' own cleaning is ``close.cleaning``)."""

    close: TimeSeries
    high: np.ndarray
    low: np.ndarray
    range_cleaning: Mapping[str, int] = field(default_factory=dict)


def read_bars(path: Path, rel: str, label: str) -> Bars:
    """Hourly OHLCV file -> closes with each bar's high and low (spot, perp)."""
    frame, _ = read_csv_columns(path, {"timestamp": "str", "open": "float64", "high": "float64",
                                       "low": "float64", "close": "float64"})
    cleaning = v.Cleaning()
    ohl = tuple(frame[c].to_numpy(np.float64) for c in ("open", "high", "low"))
    rows = _rows(frame, path, "timestamp", frame["close"].to_numpy(np.float64), cleaning, ohl)
    range_cleaning = v.Cleaning()
    opens, highs, lows = rows.extra
    high, low = v.bar_range(rows, opens, highs, lows, path, range_cleaning)
    rows = _clean_hourly_rows(v.Rows(rows.times, rows.values, rows.lines, (high, low)), path, "close", cleaning,
                              low=0.0, high=1e12, low_inclusive=False, jump=v.PRICE_JUMP_FACTOR,
                              why="a price must be positive")
    close = TimeSeries(label, rel, rows.times, rows.values, _notes(f"{label} ({rel})", cleaning), dict(cleaning))
    return Bars(close, rows.extra[0], rows.extra[1], dict(range_cleaning))


def read_lst_oracle(path: Path, rel: str, label: str, lst: str) -> TimeSeries:
    """AAVE-oracle LST/ETH hourly file (with a `#` header that must say the quote is ETH)."""
    frame, meta = read_csv_columns(path, {"timestamp": "str", "oracle_price_eth": "float64"})
    quote = meta.get("quote_currency")
    if quote is not None and quote != "ETH":
        raise DataFormatError(f"{path}: header 'Quote_currency' is {quote!r}, expected 'ETH'")
    pair = meta.get("asset_pair")
    if pair is not None and pair != f"{lst}_ETH":
        raise DataFormatError(f"{path}: header 'Asset_pair' is {pair!r}, expected '{lst}_ETH'")
    cleaning = v.Cleaning()
    rows = _rows(frame, path, "timestamp", frame["oracle_price_eth"].to_numpy(np.float64), cleaning)
    low, high = v.LST_RATE_BOUNDS
    return _clean_hourly(label, rel, path, "oracle_price_eth", rows, cleaning, low=low, high=high,
                         low_inclusive=True, jump=v.LST_JUMP_FACTOR, why="ETH per LST")


def read_peg_market(path: Path, rel: str, label: str) -> TimeSeries:
    """peg_analysis file -> hourly market_rate (ETH per LST on the DEX pool)."""
    frame, _ = read_csv_columns(path, {"timestamp": "str", "market_rate": "float64"})
    cleaning = v.Cleaning()
    rows = _rows(frame, path, "timestamp", frame["market_rate"].to_numpy(np.float64), cleaning)
    low, high = v.LST_RATE_BOUNDS
    return _clean_hourly(label, rel, path, "market_rate", rows, cleaning, low=low, high=high,
                         low_inclusive=True, jump=v.LST_JUMP_FACTOR, why="ETH per LST")


def read_gas_gwei(path: Path, rel: str, label: str) -> TimeSeries:
    """Hourly gas price in gwei = base_fee_gwei + priority_fee_p50_gwei (what a median tx pays).

    Gas legitimately jumps tenfold within hours, so it has a ceiling but no jump rule."""
    frame, _ = read_csv_columns(
        path, {"timestamp": "str", "base_fee_gwei": "float64", "priority_fee_p50_gwei": "float64"}
    )
    gwei = frame["base_fee_gwei"].to_numpy(np.float64) + frame["priority_fee_p50_gwei"].to_numpy(np.float64)
    cleaning = v.Cleaning()
    rows = _rows(frame, path, "timestamp", gwei, cleaning)
    return _clean_hourly(label, rel, path, "base_fee_gwei + priority_fee_p50_gwei", rows, cleaning, low=0.0,
                         high=v.GAS_GWEI_MAX, low_inclusive=True, jump=None, why="gwei")


def read_funding_rows(path: Path, rel: str, label: str) -> RawRows:
    """Realized funding rows (decimal per 8 h), time-sorted. Empty rates and identical duplicates
    are dropped (counted); a rate beyond FUNDING_RATE_LIMIT is an error; conflicts are kept for
    the venue's de-duplication rule (engine/data/funding.py)."""
    frame, _ = read_csv_columns(path, {"funding_timestamp": "str", "funding_rate": "float64"})
    cleaning = v.Cleaning()
    rows = _rows(frame, path, "funding_timestamp", frame["funding_rate"].to_numpy(np.float64), cleaning)
    rows = v.drop_empty(rows, cleaning, "funding_rate")
    limit = v.FUNDING_RATE_LIMIT
    v.require_values(rows, path, "funding_rate", low=-limit, high=limit,
                     why=f"a rate per 8 h beyond {limit:.0%} is {limit * 3 * 365:.0%} a year: a wrong row")
    if rows.size == 0:
        raise DataFormatError(f"{path}: no usable funding rows")
    rows = v.sort_by_time(rows, cleaning)
    rows = v.drop_identical_duplicates(rows, cleaning)
    return RawRows(label, rel, rows.times, rows.values, _notes(f"{label} ({rel})", cleaning), rows.lines,
                   dict(cleaning))


def read_aave_snapshots(path: Path, rel: str, label: str) -> AaveSnapshots:
    """Daily AaveScan export -> snapshot times (the `timestamp` column, unix s) and indices."""
    frame, _ = read_csv_columns(
        path, {"timestamp": "float64", "liquidityIndex": "float64", "variableBorrowIndex": "float64"}
    )
    blank = frame.isna().all(axis=1).to_numpy()
    frame = frame[~blank]
    lines = v.line_numbers(frame)
    raw_times = frame["timestamp"].to_numpy(np.float64)
    bad_time = ~np.isfinite(raw_times) | (raw_times != np.round(raw_times))
    if bad_time.any():
        i = int(np.flatnonzero(bad_time)[0])
        raise DataFormatError(f"{path}: line {int(lines[i])}: column 'timestamp' must be unix seconds, "
                              f"got {raw_times[i]!r}")
    times = raw_times.astype(np.int64)
    li = frame["liquidityIndex"].to_numpy(np.float64)
    bi = frame["variableBorrowIndex"].to_numpy(np.float64)
    for name, arr in (("liquidityIndex", li), ("variableBorrowIndex", bi)):
        bad = ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{path}: line {int(lines[i])}: column {name!r} has an empty or non-positive "
                                  f"value ({arr[i]!r}); {int(bad.sum())} such row(s)")
        median = float(np.median(arr))
        if not 0.5 < median < 100:
            raise DataFormatError(
                f"{path}: column {name!r} median is {median:g}; expected a normalized index near 1.0 "
                "(a ray-scaled 1e27 export must be divided by 1e27 before use)"
            )
    cleaning = v.Cleaning()
    cleaning.add("blank lines skipped", int(blank.sum()))
    order = np.argsort(times, kind="stable")
    if not (order == np.arange(times.size)).all():
        cleaning.add("rows out of time order sorted", int((order != np.arange(order.size)).sum()))
    times, li, bi, lines = times[order], li[order], bi[order], lines[order]
    repeat = np.zeros(times.size, dtype=bool)
    repeat[1:] = times[1:] == times[:-1]
    same = repeat.copy()
    same[1:] &= (li[1:] == li[:-1]) & (bi[1:] == bi[:-1])
    conflict = repeat & ~same
    if conflict.any():
        i = int(np.flatnonzero(conflict)[0])
        raise DataFormatError(f"{path}: lines {int(lines[i - 1])} and {int(lines[i])}: two snapshots at "
                              f"timestamp {int(times[i])} with different indices; remove the wrong row")
    if same.any():
        cleaning.add("duplicate rows identical to an earlier row dropped", int(same.sum()))
        times, li, bi = times[~same], li[~same], bi[~same]
    if times.size < 2:
        raise DataFormatError(f"{path}: need at least two daily snapshots to interpolate, found {times.size}")
    what = f"{label} ({rel})"
    notes = list(_notes(what, cleaning))
    for name, arr in (("liquidityIndex", li), ("variableBorrowIndex", bi)):
        drops = int((np.diff(arr) < 0).sum())
        if drops:
            notes.append(
                f"{what}: {name} decreases between {drops} consecutive snapshots (AAVE indices "
                "should never decrease; values kept as published)"
            )
    return AaveSnapshots(label, rel, times, li, bi, tuple(notes), dict(cleaning))


def _epoch_day(values: pd.Series, path: Path, column: str) -> np.ndarray:
    seconds = parse_utc_seconds(values, path, column)
    if (seconds % DAY_S != 0).any():
        raise DataFormatError(f"{path}: column {column!r} must hold plain dates (YYYY-MM-DD)")
    return seconds


def read_json(path: Path) -> Any:
    """JSON file, optionally gzip-compressed."""

    def read() -> Any:
        with _open_text(path) as fh:
            return json.load(fh)

    try:
        return v.guarded_read(path, read)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def read_gas_units(path: Path) -> dict[str, int]:
    """operation_gas_costs_summary JSON -> {operation: gas_units}."""
    doc = read_json(path)
    ops = doc.get("operation_costs") if isinstance(doc, dict) else None
    if not isinstance(ops, dict) or not ops:
        raise DataFormatError(f"{path}: missing or empty key 'operation_costs'")
    units: dict[str, int] = {}
    for op, spec in ops.items():
        value = spec.get("gas_units") if isinstance(spec, dict) else None
        if not isinstance(value, (int, float)) or value <= 0 or int(value) != value:
            raise DataFormatError(
                f"{path}: key 'operation_costs.{op}.gas_units' must be a positive integer, got {value!r}"
            )
        units[op] = int(value)
    return units


def read_risk_params(path: Path) -> dict[str, Any]:
    """aave_v3_risk_parameters.json, checked for the sections the engine reads."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataFormatError(f"{path}: expected a JSON object")
    for section in ("emode", "standard"):
        block = doc.get(section)
        if not isinstance(block, dict):
            raise DataFormatError(f"{path}: missing key {section!r}")
        for key in ("ltv_limits", "liquidation_thresholds", "liquidation_bonus"):
            if not isinstance(block.get(key), dict):
                raise DataFormatError(f"{path}: missing key '{section}.{key}'")
    if not isinstance(doc.get("reserve_factors"), dict):
        raise DataFormatError(f"{path}: missing key 'reserve_factors'")
    return doc


@dataclass(frozen=True)
class CostTable:
    """execution_costs_lookup.json: for each (pair, bucket) the daily bps on a shared date axis."""

    source: str
    days: np.ndarray  # epoch seconds of each UTC date, strictly increasing
    bps: dict[tuple[str, str], np.ndarray]  # (pair, bucket) -> float64 per day (NaN where absent)


def read_execution_costs(path: Path, rel: str) -> CostTable:
    doc = read_json(path)
    if not isinstance(doc, dict) or not doc:
        raise DataFormatError(f"{path}: expected a non-empty JSON object {{pair: {{bucket: {{date: bps}}}}}}")
    all_dates: set[str] = set()
    for pair, buckets in doc.items():
        if not isinstance(buckets, dict) or not buckets:
            raise DataFormatError(f"{path}: key {pair!r} must map size buckets to {{date: bps}}")
        for bucket, series in buckets.items():
            if not isinstance(series, dict) or not series:
                raise DataFormatError(
                    f"{path}: key '{pair}.{bucket}' must be a non-empty {{date: bps}} object"
                )
            all_dates.update(series)
    dates = sorted(all_dates)
    days = _epoch_day(pd.Series(dates), path, "date keys")
    position = {d: i for i, d in enumerate(dates)}
    bps: dict[tuple[str, str], np.ndarray] = {}
    for pair, buckets in doc.items():
        for bucket, series in buckets.items():
            arr = np.full(len(dates), np.nan)
            for date, value in series.items():
                if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                    raise DataFormatError(
                        f"{path}: key '{pair}.{bucket}.{date}' must be a non-negative number"
                    )
                arr[position[date]] = float(value)
            bps[(pair, bucket)] = arr
    return CostTable(rel, days, bps)
