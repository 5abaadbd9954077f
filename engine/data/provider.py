"""HistoricalDataProvider: requirements + window -> one aligned hourly frame (cached).

The provider is the only place that knows which column groups a set of requirements needs; the
groups know their files, spans and alignment rules. Loading is done once per run; the result is
cached on disk keyed by the inputs' content so a second run with the same data starts instantly.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import platformdirs

from engine.data import catalog
from engine.data.aligned import AlignedMarketData
from engine.data.cache import FileDigests, cache_key, load_aligned, load_window, save_aligned, save_window
from engine.data.columns import (
    AaveColumns,
    Built,
    CostColumns,
    GasColumn,
    LstColumns,
    PerpColumn,
    SpotColumn,
)
from engine.data.errors import DataFormatError, DataRangeError
from engine.data.funding import FundingColumn
from engine.data.grid import Span, fmt_ts, hourly_grid
from engine.data.provenance import SeriesProvenance
from engine.data.raw_store import RawStore
from engine.data.requirements import DataRequirements
from engine.data.rewards import EtherfiRewardSchedule, RewardSchedule

APP_NAME = "basis-workstation"


class ColumnGroup(Protocol):
    def files(self) -> list[str]: ...
    def spans(self, raw: RawStore) -> list[Span]: ...
    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built | RewardSchedule: ...


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "aligned"


def to_utc_hour_seconds(value: Any, name: str) -> int | None:
    """Epoch seconds of an hour timestamp; naive means UTC. None passes through."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: cannot parse {value!r} as a timestamp: {exc}") from exc
    if pd.isna(ts):
        raise ValueError(f"{name}: got NaT, expected a timestamp")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts != ts.floor("h"):
        raise ValueError(f"{name} must be on the hour (the grid is hourly), got {ts}")
    return int(ts.timestamp())


def describe_uncovered(start: int, end: int, avail_start: int, avail_end: int, outside: list[Span]) -> str:
    """A short multi-line message: the window the data has first, then the series that end too
    early or start too late, grouped by what they cover (file paths left out: the series name is
    what the operator recognises, and the paths made this one 1,200-character line)."""
    groups: dict[tuple[int, int], list[str]] = {}
    for span in outside:
        groups.setdefault((span.start_s, span.end_s), []).append(_PATH_NOTE.sub("", span.series))
    lines = [
        f"the data covers {fmt_ts(avail_start)}..{fmt_ts(avail_end)} UTC for this run;",
        f"the requested window {fmt_ts(start)}..{fmt_ts(end)} UTC is outside it. Series that limit it:",
    ]
    for (first, last), names in groups.items():
        lines += textwrap.wrap(f"{fmt_ts(first)}..{fmt_ts(last)} UTC: {', '.join(names)}", width=100,
                               initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)


#: " (market_data/.../file.csv)" after a series name
_PATH_NOTE = re.compile(r" \([^()]*/[^()]*\)")


def plan(req: DataRequirements) -> list[ColumnGroup]:
    """Column groups for normalized requirements (ETH spot, gas and costs always included)."""
    groups: list[ColumnGroup] = [SpotColumn(asset) for asset in req.spot]
    groups += [PerpColumn(venue, asset) for venue, asset in req.perps]
    groups += [FundingColumn(venue, asset) for venue, asset in req.funding]
    groups += [AaveColumns(reserve) for reserve in req.aave_reserves]
    groups += [LstColumns(lst) for lst in req.lsts]
    groups += [GasColumn(), CostColumns()]
    if req.etherfi_rewards:
        groups.append(EtherfiRewardSchedule(req.etherfi_rewards))
    return groups


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class HistoricalDataProvider:
    """Loads the aligned hourly frame a run needs from the shipped data directory."""

    def __init__(self, data_dir: Path, cache_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise DataFormatError(f"data directory not found: {self.data_dir}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._raw = RawStore(self.data_dir)
        self._digests = FileDigests()
        self._sha256 = FileDigests("sha256")
        self.last_load_from_cache = False

    # -- window -------------------------------------------------------------------------------

    def available_window(self, req: DataRequirements) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Intersection of the required series' coverage (first..last hour, inclusive, UTC).

        A column with fallbacks (OKX perps/funding, the LST market peg) covers what its sources
        cover together, so it does not shrink the window; its substitutions are flagged at load.
        """
        req = req.normalized()
        groups = plan(req)
        path = (
            self.cache_dir / f"window-{cache_key('window', req, None, None, self._file_digests(groups))}.json"
        )
        cached = load_window(path)
        if cached is None:
            start_s, end_s = self._common_window(self._spans(groups))
            save_window(path, start_s, end_s)
        else:
            start_s, end_s = cached
        return pd.Timestamp(start_s, unit="s", tz="UTC"), pd.Timestamp(end_s, unit="s", tz="UTC")

    def _spans(self, groups: list[ColumnGroup]) -> list[Span]:
        return [span for group in groups for span in group.spans(self._raw)]

    @staticmethod
    def _common_window(spans: list[Span]) -> tuple[int, int]:
        first = max(spans, key=lambda s: s.start_s)
        last = min(spans, key=lambda s: s.end_s)
        if first.start_s > last.end_s:
            raise DataRangeError(
                f"the required series have no common window: {first.describe()}, but {last.describe()}"
            )
        return first.start_s, last.end_s

    def _resolve_window(self, spans: list[Span], start_s: int | None, end_s: int | None) -> tuple[int, int]:
        avail_start, avail_end = self._common_window(spans)
        start = avail_start if start_s is None else start_s
        end = avail_end if end_s is None else end_s
        if start > end:
            raise DataRangeError(f"requested start {fmt_ts(start)} UTC is after the end {fmt_ts(end)} UTC")
        outside = list(dict.fromkeys(s for s in spans if start < s.start_s or end > s.end_s))
        if outside:
            raise DataRangeError(describe_uncovered(start, end, avail_start, avail_end, outside))
        return start, end

    # -- load ---------------------------------------------------------------------------------

    def _file_digests(self, groups: list[ColumnGroup]) -> dict[str, str]:
        rels = _unique([rel for g in groups for rel in g.files()] + [catalog.AAVE_RISK_PARAMS_FILE])
        return {rel: self._digests.digest(self._raw.path(rel)) for rel in rels}

    def data_files(self, req: DataRequirements) -> dict[str, str]:
        """SHA-256 of every file the requirements read, keyed by its path under the data directory
        (the shipped .gz name when that is what was read): a run's data provenance."""
        rels = _unique([rel for g in plan(req.normalized()) for rel in g.files()] + [catalog.AAVE_RISK_PARAMS_FILE])
        out: dict[str, str] = {}
        for rel in rels:
            path = self._raw.path(rel)
            try:
                name = path.relative_to(self.data_dir).as_posix()
            except ValueError:
                name = str(path)
            out[name] = self._sha256.digest(path)
        return out

    def _aligned_path(self, req: DataRequirements, groups: list[ColumnGroup], start_s: int | None,
                      end_s: int | None) -> Path:
        key = cache_key("aligned", req, None if start_s is None else str(start_s),
                        None if end_s is None else str(end_s), self._file_digests(groups))
        return self.cache_dir / f"{key}.npz"

    def data_key(self, req: DataRequirements, start: Any = None, end: Any = None) -> str:
        """Content key of the frame `load` returns for these arguments: the input files' digests, the
        window and the data code's digest (sweeps key their trials by it; it parses nothing)."""
        req = req.normalized()
        return self._aligned_path(req, plan(req), to_utc_hour_seconds(start, "start"),
                                  to_utc_hour_seconds(end, "end")).stem

    def is_cached(self, req: DataRequirements, start: Any = None, end: Any = None) -> bool:
        """Would `load` be served from the cache? (Cheap: hashes the inputs, parses nothing.) The app
        asks before a run: a cold build parses CSVs in C code that holds the GIL for long stretches,
        so it does that in a separate process and keeps its UI thread free."""
        req = req.normalized()
        path = self._aligned_path(req, plan(req), to_utc_hour_seconds(start, "start"),
                                  to_utc_hour_seconds(end, "end"))
        return path.is_file()

    def load(self, req: DataRequirements, start: Any = None, end: Any = None) -> AlignedMarketData:
        """Aligned hourly columns for `req` over [start, end] (inclusive hours; default: the
        available window). Raises DataRangeError if a required series does not cover the window."""
        req = req.normalized()
        start_s = to_utc_hour_seconds(start, "start")
        end_s = to_utc_hour_seconds(end, "end")
        if start_s is not None and end_s is not None and start_s > end_s:
            raise DataRangeError(
                f"requested start {fmt_ts(start_s)} UTC is after the end {fmt_ts(end_s)} UTC"
            )
        groups = plan(req)
        path = self._aligned_path(req, groups, start_s, end_s)
        cached = load_aligned(path)
        if cached is not None:
            self.last_load_from_cache = True
            return cached

        window = self._resolve_window(self._spans(groups), start_s, end_s)
        grid = hourly_grid(*window)
        columns: dict[str, np.ndarray] = {}
        fallbacks: list[str] = []
        notes: list[str] = []
        rewards = None
        provenance: dict[str, SeriesProvenance] = {}
        for group in groups:
            built = group.build(self._raw, grid)
            if isinstance(built, RewardSchedule):
                rewards = built
                notes += built.notes
                continue
            columns.update(built.columns)
            fallbacks += built.fallbacks
            notes += built.notes
            provenance.update(built.provenance)
            unattributed = [f for f in built.fallbacks if not any(f in p.flags for p in built.provenance.values())]
            for column in built.columns:          # a builder without counts still gets its messages listed
                if column not in provenance and unattributed and len(built.columns) == 1:
                    provenance[column] = SeriesProvenance(column, column, "hours", grid.size, flags=unattributed)
        data = AlignedMarketData(
            index=pd.to_datetime(grid, unit="s", utc=True).as_unit("ns"),
            columns=columns,
            fallbacks=_unique(fallbacks),
            notes=_unique(notes),
            gas_units=dict(self._raw.gas_units()),
            aave_risk_params=self._raw.risk_params(),
            reward_payouts=rewards.payouts if rewards else [],
            reward_benchmark=rewards.benchmark if rewards else [],
            provenance=provenance,
        )
        save_aligned(path, data)
        self.last_load_from_cache = False
        return data
