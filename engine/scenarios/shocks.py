"""Apply a scenario to the aligned market data: vectorised numpy on copies of the affected columns.

The shipped arrays are read-only and may be shared with other runs through the data cache, so every
changed column is a fresh array and the unchanged ones are shared as they are. Indices stay
consistent with the rates they imply: an overridden AAVE rate is integrated into the index hour by
hour from the shock's start on, and the index keeps its own growth from that new level afterwards.
"""
from __future__ import annotations

import dataclasses

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.data.aligned import AlignedMarketData
from engine.scenarios.models import (
    AaveRateShock,
    FundingShock,
    GasShock,
    LstRateShock,
    OutageShock,
    PriceShock,
    Scenario,
    _Shaped,
)

HOURS_PER_YEAR = 8760.0            # AAVE's rates are per 365-day year
SETTLEMENTS_PER_YEAR = 3 * 365.0   # funding settles at 00/08/16 UTC
OUTAGE_PREFIX = "outage."


class ScenarioError(ValueError):
    """The scenario cannot be applied to this run (bad --at, or it changes nothing the run reads)."""


@dataclass(frozen=True)
class AppliedShock:
    index: int
    kind: str
    columns: tuple[str, ...]           # columns this shock changed (empty: nothing of the run's)
    first_hour: int                    # first hour it affects (grid index)
    last_hour: int                     # last hour it affects (inclusive)
    summary: str                       # one line for tables and logs


@dataclass
class ShockedMarket:
    data: AlignedMarketData
    scenario: Scenario
    at: pd.Timestamp
    at_hour: int
    applied: list[AppliedShock]
    warnings: list[str] = field(default_factory=list)

    @property
    def changed_columns(self) -> list[str]:
        return sorted({c for a in self.applied for c in a.columns})

    def describe(self) -> dict[str, Any]:
        """The scenario as summary.json records it."""
        return {
            "name": self.scenario.name,
            "description": self.scenario.description,
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "at_hour": self.at_hour,
            "shocks": [{"kind": a.kind, "summary": a.summary, "columns": list(a.columns),
                        "first_hour": a.first_hour, "last_hour": a.last_hour} for a in self.applied],
            "warnings": list(self.warnings),
            "definition": self.scenario.digest_payload(),
        }


def parse_at(value: Any, flag: str = "--at") -> pd.Timestamp:
    """An hour on the UTC grid ('2025-01-15', '2025-01-15T08:00Z'); naive means UTC."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ScenarioError(f"{flag} {value!r} is not a time (expected e.g. 2025-01-15T08:00Z)") from None
    if pd.isna(ts):
        raise ScenarioError(f"{flag} is empty (expected e.g. 2025-01-15T08:00Z)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts != ts.floor("h"):
        raise ScenarioError(f"{flag} {value} is not on the hour (the grid is hourly)")
    return ts


def shape(n: int, start: int, shock: _Shaped) -> np.ndarray:
    """s(t) in [0, 1] for every hour of the grid (see engine.scenarios.models)."""
    j = np.arange(n, dtype=np.float64) - start
    up = np.clip((j + 1.0) / shock.ramp_len, 0.0, 1.0)
    if shock.hold_hours is None:
        return up
    recover_from = shock.ramp_len - 1 + shock.hold_hours          # first hour below the full level
    r = shock.recovery_hours or 0
    down = (j < recover_from).astype(np.float64) if r == 0 else \
        np.clip((recover_from + r - 1.0 - j) / r, 0.0, 1.0)
    return np.minimum(up, down)


def apply_scenario(data: AlignedMarketData, scenario: Scenario, at: Any,
                   venues: Iterable[str] | None = None) -> ShockedMarket:
    """A copy of `data` with the scenario's shocks applied from the hour `at` on.

    `venues`: the venues the run trades on (outages of other venues change nothing and say so).
    Raises ScenarioError if `at` is not an hour of the run after its first (the entry), or if the
    scenario changes no series the run reads."""
    at_ts = parse_at(at)
    index = data.index
    n = len(index)
    pos = int(index.searchsorted(at_ts))
    first, last = index[0].strftime("%Y-%m-%dT%H:%MZ"), index[-1].strftime("%Y-%m-%dT%H:%MZ")
    if pos >= n or index[pos] != at_ts:
        raise ScenarioError(f"--at {at_ts:%Y-%m-%dT%H:%MZ} is outside the run's window {first}..{last} UTC")
    if pos == 0:
        raise ScenarioError(f"--at {at_ts:%Y-%m-%dT%H:%MZ} is the run's first hour (the entry); "
                            f"choose a later hour in {first}..{last} UTC")
    cols: dict[str, np.ndarray] = dict(data.columns)
    owned: set[str] = set()

    def writable(name: str) -> np.ndarray:
        if name not in owned:
            cols[name] = np.array(cols[name], dtype=np.float64, copy=True)
            owned.add(name)
        return cols[name]

    run_venues = set(venues) if venues is not None else None
    applied: list[AppliedShock] = []
    warnings: list[str] = []
    for i, shock in enumerate(scenario.shocks):
        start = pos + shock.start_hours
        span = shock.span_hours
        end = n if span is None else start + span          # exclusive
        label = f"shock {i} ({shock.kind})"
        if start >= n:
            warnings.append(f"{label} starts {shock.start_hours} h after --at, after the run's last hour {last}: "
                            "it changes nothing")
            applied.append(AppliedShock(i, shock.kind, (), start, start, _describe(shock) + " (after the run)"))
            continue
        if end > n:
            warnings.append(f"{label} lasts until {end - n} h after the run's last hour {last}: cut there")
            end = n
        changed = _apply_one(shock, cols, writable, data, start, end, run_venues)
        applied.append(AppliedShock(i, shock.kind, tuple(changed), start, end - 1, _describe(shock)))
    if not any(a.columns for a in applied):
        wanted = "; ".join(a.summary for a in applied)
        raise ScenarioError(f"scenario {scenario.name!r} changes nothing this run reads ({wanted}); the run reads: "
                            f"{', '.join(sorted(c for c in data.columns if not c.startswith('cost_bps.')))}")
    # Everything but the shocked columns (reward payouts, provenance, gas units...) carries over as it is.
    shocked = dataclasses.replace(data, index=index, columns=cols)
    return ShockedMarket(shocked, scenario, at_ts, pos, applied, warnings)


def _apply_one(shock, cols: dict[str, np.ndarray], writable, data: AlignedMarketData, start: int, end: int,
               run_venues: set[str] | None) -> list[str]:
    n = len(data.index)
    if isinstance(shock, (PriceShock, LstRateShock)):
        factor = 1.0 + shock.change * shape(n, start, shock)
        if isinstance(shock, PriceShock):
            names = [f"spot.{shock.asset}"] + sorted(c for c in cols if c.startswith("perp.")
                                                      and c.endswith(f".{shock.asset}"))
            ranges = _bar_range_columns(names, cols)
        else:
            names = [f"lst.{lst}.{rate}" for lst in shock.lsts for rate in shock.rates]
            ranges = []
        names = [c for c in names if c in cols]
        for name in names:
            writable(name)[:] *= factor
        if ranges:
            # The shocked path inside hour t runs from the previous close (factor f[t-1]) to this
            # close (f[t]): the bar still contains both, so the high scales by the larger factor and
            # the low by the smaller (an at-once crash keeps the hour's pre-shock high and takes
            # the low down with the close; a rally lifts the high with it).
            before = np.concatenate([factor[:1], factor[:-1]])
            up, down = np.maximum(before, factor), np.minimum(before, factor)
            for high, low in ranges:
                writable(high)[:] *= up
                writable(low)[:] *= down
            names += [c for pair in ranges for c in pair]
        return names
    if isinstance(shock, FundingShock):
        names = [c for c in (f"funding.{v}.{a}" for v in shock.venues for a in shock.assets) if c in cols]
        settle = np.zeros(n, dtype=bool)
        settle[start:end] = data.is_funding_hour[start:end]
        for name in names:
            writable(name)[settle] = shock.apr / SETTLEMENTS_PER_YEAR
        return names
    if isinstance(shock, AaveRateShock):
        suffix = "liquidity_index" if shock.side == "supply" else "borrow_index"
        name = f"aave.{shock.reserve}.{suffix}"
        if name not in cols:
            return []
        col = writable(name)
        growth = np.diff(np.log(col[start - 1:]))                     # growth into hours start..n-1
        growth[: end - start] = math.log1p(shock.apr / HOURS_PER_YEAR)
        col[start:] = col[start - 1] * np.exp(np.cumsum(growth))
        return [name]
    if isinstance(shock, GasShock):
        writable("gas.gwei")[start:end] = shock.gwei
        return ["gas.gwei"]
    if isinstance(shock, OutageShock):
        names = []
        for venue in shock.venues:
            if run_venues is not None and venue not in run_venues:
                continue
            name = OUTAGE_PREFIX + venue
            if name not in cols:
                cols[name] = np.zeros(n, dtype=np.float64)
                writable(name)
            writable(name)[start:end] = 1.0
            names.append(name)
        return names
    raise TypeError(f"unknown shock {type(shock).__name__}")   # pragma: no cover - models are closed


def _bar_range_columns(price_columns: list[str], cols: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """(high, low) column pairs of the spot/perp price columns that have a bar range."""
    out = []
    for name in price_columns:
        kind, rest = name.split(".", 1)
        pair = (f"{kind}_high.{rest}", f"{kind}_low.{rest}")
        if pair[0] in cols and pair[1] in cols:
            out.append(pair)
    return out


def _describe(shock) -> str:
    at = f"+{shock.start_hours} h" if shock.start_hours else "at --at"
    if isinstance(shock, (PriceShock, LstRateShock)):
        what = f"{shock.asset} price" if isinstance(shock, PriceShock) else \
            f"{'/'.join(shock.lsts)} {'+'.join(shock.rates)} rate"
        how = "at once" if shock.ramp_hours <= 1 else f"over {shock.ramp_hours} h"
        back = "no recovery" if shock.hold_hours is None else \
            f"held {shock.hold_hours} h, back {'at once' if not shock.recovery_hours else f'over {shock.recovery_hours} h'}"
        return f"{what} {shock.change:+.2%} {how} {at}, {back}"
    if isinstance(shock, FundingShock):
        return (f"funding {shock.apr:+.0%} APR on {'/'.join(shock.venues)} {'/'.join(shock.assets)} "
                f"for {shock.duration_hours} h {at}")
    if isinstance(shock, AaveRateShock):
        return f"AAVE {shock.reserve} {shock.side} rate {shock.apr:.2%} APR for {shock.duration_hours} h {at}"
    if isinstance(shock, GasShock):
        return f"gas {shock.gwei:g} gwei for {shock.duration_hours} h {at}"
    return f"outage of {'/'.join(shock.venues)} for {shock.duration_hours} h {at}"
