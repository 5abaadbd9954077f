"""Parse and clean the raw data files into sorted numpy series.

Each reader reads only the columns it needs (usecols + dtype hints: the files carry many unused
columns), validates them, and returns epoch-second int64 timestamps with float64 values. Cleaning
that does not depend on the run window happens here (sorting, NaN rows, identical duplicates);
anything window-dependent (fills, fallbacks) happens in the column builders so it can be counted
per run.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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

    @property
    def first(self) -> int:
        return int(self.times[0])

    @property
    def last(self) -> int:
        return int(self.times[-1])


@dataclass(frozen=True)
class RawRows:
    """Timestamp/value rows in file order, duplicates kept (funding: conflicts need a reference)."""

    label: str
    source: str
    times: np.ndarray
    values: np.ndarray
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AaveSnapshots:
    """Daily AaveScan reserve snapshots: snapshot epoch seconds and the two normalized indices."""

    label: str
    source: str
    times: np.ndarray
    liquidity_index: np.ndarray
    borrow_index: np.ndarray
    notes: tuple[str, ...] = ()


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_header(path: Path) -> tuple[dict[str, str], int, list[str]]:
    """Leading `# Key: value` comment lines (as a dict), their count, and the CSV column names."""
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

    Returns the frame and the parsed comment-header metadata (keys lower-cased).
    """
    meta, n_comments, header = _read_header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {missing}; columns present: {header}")
    try:
        frame = pd.read_csv(
            path,
            skiprows=n_comments,
            usecols=list(columns),
            dtype=columns,
            engine="c",
            compression="gzip" if path.suffix == ".gz" else None,
        )
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{path}: cannot parse columns {list(columns)}: {exc}") from exc
    return frame, meta


def parse_utc_seconds(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """ISO-8601 timestamps (any offset; naive means UTC) -> int64 epoch seconds."""
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{path}: column {column!r} has unparsable timestamps: {exc}") from exc
    if parsed.isna().any():
        raise DataFormatError(f"{path}: column {column!r} has {int(parsed.isna().sum())} empty timestamps")
    return parsed.dt.as_unit("s").astype("int64").to_numpy()


def _require_on_hour(times: np.ndarray, path: Path, column: str) -> None:
    off = times % HOUR_S != 0
    if off.any():
        first = pd.Timestamp(int(times[off][0]), unit="s", tz="UTC")
        raise DataFormatError(
            f"{path}: column {column!r} has {int(off.sum())} timestamps not on the hour (first: {first})"
        )


def _sorted_rows(
    times: np.ndarray, values: np.ndarray, notes: list[str], what: str
) -> tuple[np.ndarray, np.ndarray]:
    if times.size and not (np.diff(times) >= 0).all():
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        notes.append(f"{what}: rows were not in time order; sorted (stable)")
    return times, values


def _drop_identical_duplicates(
    times: np.ndarray, values: np.ndarray, notes: list[str], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Drop rows repeating the previous row's timestamp AND value (e.g. Bybit's 15 doubled rows)."""
    same = np.zeros(times.size, dtype=bool)
    same[1:] = (times[1:] == times[:-1]) & (values[1:] == values[:-1])
    if same.any():
        notes.append(f"{what}: dropped {int(same.sum())} duplicate rows identical to the previous row")
        times, values = times[~same], values[~same]
    return times, values


def _keep_last_conflicts(
    times: np.ndarray, values: np.ndarray, notes: list[str], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Same timestamp, different values: keep the last occurrence in file order (newest write)."""
    keep = np.ones(times.size, dtype=bool)
    keep[:-1] = times[1:] != times[:-1]
    if not keep.all():
        notes.append(
            f"{what}: {int((~keep).sum())} timestamps had conflicting duplicate rows; "
            "kept the last occurrence"
        )
    return times[keep], values[keep]


def _clean_hourly(
    label: str, rel: str, path: Path, column: str, times: np.ndarray, values: np.ndarray, *, positive: bool
) -> TimeSeries:
    notes: list[str] = []
    what = f"{label} ({rel})"
    _require_on_hour(times, path, "timestamp")
    bad = ~np.isfinite(values) | ((values <= 0) if positive else (values < 0))
    if bad.any():
        kind = "non-positive" if positive else "negative"
        notes.append(f"{what}: dropped {int(bad.sum())} rows with empty or {kind} {column}")
        times, values = times[~bad], values[~bad]
    if times.size == 0:
        raise DataFormatError(f"{path}: no usable rows in column {column!r}")
    times, values = _sorted_rows(times, values, notes, what)
    times, values = _drop_identical_duplicates(times, values, notes, what)
    times, values = _keep_last_conflicts(times, values, notes, what)
    return TimeSeries(label, rel, times, values, tuple(notes))


def read_close(path: Path, rel: str, label: str) -> TimeSeries:
    """Hourly OHLCV file -> close prices (spot, perp)."""
    frame, _ = read_csv_columns(path, {"timestamp": "str", "close": "float64"})
    times = parse_utc_seconds(frame["timestamp"], path, "timestamp")
    return _clean_hourly(label, rel, path, "close", times, frame["close"].to_numpy(np.float64), positive=True)


def read_lst_oracle(path: Path, rel: str, label: str, lst: str) -> TimeSeries:
    """AAVE-oracle LST/ETH hourly file (with a `#` header that must say the quote is ETH)."""
    frame, meta = read_csv_columns(path, {"timestamp": "str", "oracle_price_eth": "float64"})
    quote = meta.get("quote_currency")
    if quote is not None and quote != "ETH":
        raise DataFormatError(f"{path}: header 'Quote_currency' is {quote!r}, expected 'ETH'")
    pair = meta.get("asset_pair")
    if pair is not None and pair != f"{lst}_ETH":
        raise DataFormatError(f"{path}: header 'Asset_pair' is {pair!r}, expected '{lst}_ETH'")
    times = parse_utc_seconds(frame["timestamp"], path, "timestamp")
    return _clean_hourly(
        label,
        rel,
        path,
        "oracle_price_eth",
        times,
        frame["oracle_price_eth"].to_numpy(np.float64),
        positive=True,
    )


def read_peg_market(path: Path, rel: str, label: str) -> TimeSeries:
    """peg_analysis file -> hourly market_rate (ETH per LST on the DEX pool)."""
    frame, _ = read_csv_columns(path, {"timestamp": "str", "market_rate": "float64"})
    times = parse_utc_seconds(frame["timestamp"], path, "timestamp")
    return _clean_hourly(
        label, rel, path, "market_rate", times, frame["market_rate"].to_numpy(np.float64), positive=True
    )


def read_gas_gwei(path: Path, rel: str, label: str) -> TimeSeries:
    """Hourly gas price in gwei = base_fee_gwei + priority_fee_p50_gwei (what a median tx pays)."""
    frame, _ = read_csv_columns(
        path, {"timestamp": "str", "base_fee_gwei": "float64", "priority_fee_p50_gwei": "float64"}
    )
    times = parse_utc_seconds(frame["timestamp"], path, "timestamp")
    gwei = frame["base_fee_gwei"].to_numpy(np.float64) + frame["priority_fee_p50_gwei"].to_numpy(np.float64)
    return _clean_hourly(
        label, rel, path, "base_fee_gwei + priority_fee_p50_gwei", times, gwei, positive=False
    )


def read_funding_rows(path: Path, rel: str, label: str) -> RawRows:
    """Realized funding rows (decimal per 8 h). Identical duplicates dropped; conflicts kept."""
    frame, _ = read_csv_columns(path, {"funding_timestamp": "str", "funding_rate": "float64"})
    times = parse_utc_seconds(frame["funding_timestamp"], path, "funding_timestamp")
    values = frame["funding_rate"].to_numpy(np.float64)
    notes: list[str] = []
    what = f"{label} ({rel})"
    bad = ~np.isfinite(values)
    if bad.any():
        notes.append(f"{what}: dropped {int(bad.sum())} rows with an empty funding_rate")
        times, values = times[~bad], values[~bad]
    if times.size == 0:
        raise DataFormatError(f"{path}: no usable funding rows")
    times, values = _sorted_rows(times, values, notes, what)
    times, values = _drop_identical_duplicates(times, values, notes, what)
    return RawRows(label, rel, times, values, tuple(notes))


def read_aave_snapshots(path: Path, rel: str, label: str) -> AaveSnapshots:
    """Daily AaveScan export -> snapshot times (the `timestamp` column, unix s) and indices."""
    frame, _ = read_csv_columns(
        path, {"timestamp": "int64", "liquidityIndex": "float64", "variableBorrowIndex": "float64"}
    )
    times = frame["timestamp"].to_numpy(np.int64)
    li = frame["liquidityIndex"].to_numpy(np.float64)
    bi = frame["variableBorrowIndex"].to_numpy(np.float64)
    for name, arr in (("liquidityIndex", li), ("variableBorrowIndex", bi)):
        if not (np.isfinite(arr) & (arr > 0)).all():
            raise DataFormatError(f"{path}: column {name!r} has empty or non-positive values")
        median = float(np.median(arr))
        if not 0.5 < median < 100:
            raise DataFormatError(
                f"{path}: column {name!r} median is {median:g}; expected a normalized index near 1.0 "
                "(a ray-scaled 1e27 export must be divided by 1e27 before use)"
            )
    notes: list[str] = []
    what = f"{label} ({rel})"
    order = np.argsort(times, kind="stable")
    if not (order == np.arange(times.size)).all():
        notes.append(f"{what}: rows were not in time order; sorted (stable)")
    times, li, bi = times[order], li[order], bi[order]
    keep = np.ones(times.size, dtype=bool)
    keep[:-1] = times[1:] != times[:-1]
    if not keep.all():
        notes.append(f"{what}: {int((~keep).sum())} duplicate snapshot timestamps; kept the last occurrence")
        times, li, bi = times[keep], li[keep], bi[keep]
    if times.size < 2:
        raise DataFormatError(f"{path}: need at least two daily snapshots to interpolate, found {times.size}")
    for name, arr in (("liquidityIndex", li), ("variableBorrowIndex", bi)):
        drops = int((np.diff(arr) < 0).sum())
        if drops:
            notes.append(
                f"{what}: {name} decreases between {drops} consecutive snapshots (AAVE indices "
                "should never decrease; values kept as published)"
            )
    return AaveSnapshots(label, rel, times, li, bi, tuple(notes))


def _epoch_day(values: pd.Series, path: Path, column: str) -> np.ndarray:
    seconds = parse_utc_seconds(values, path, column)
    if (seconds % DAY_S != 0).any():
        raise DataFormatError(f"{path}: column {column!r} must hold plain dates (YYYY-MM-DD)")
    return seconds


def read_json(path: Path) -> Any:
    """JSON file, optionally gzip-compressed."""
    try:
        with _open_text(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: invalid JSON: {exc}") from exc


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
