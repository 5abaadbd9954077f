"""Column builders: turn parsed sources into aligned float64 columns plus flags.

One small class per column group. Each says which files it reads (for the cache key), which spans
limit the window, and how to build its columns on a given grid. Fill limits are module constants so
the rules are visible in one place (and in data/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.data import catalog
from engine.data.errors import DataFormatError, DataRangeError
from engine.data.grid import (
    HOUR_S,
    AsOf,
    Span,
    asof,
    describe_runs,
    fmt_ts,
    geometric_interpolation,
    union_span,
)
from engine.data.provenance import SeriesProvenance
from engine.data.raw_store import RawStore
from engine.data.readers import DAY_S, Bars, TimeSeries

# Hourly prices (CEX closes, gas, oracle): a value may be carried forward at most this many hours.
# Binance's 24-hour holes leave 23 missing hours, so 24 h fills them; anything longer is an error.
PRICE_FILL_LIMIT_H = 24
# The LST market peg (peg_analysis) may be carried forward this long before the oracle takes over.
PEG_FILL_LIMIT_H = 24
# Execution-cost lookups are daily: an hour uses its own UTC date's value, never an older one.
COST_FILL_LIMIT_H = 23
# Daily AAVE snapshots further apart than this are interpolated but reported in the notes.
AAVE_SNAPSHOT_GAP_NOTE_S = 2 * DAY_S


@dataclass
class Built:
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, SeriesProvenance] = field(default_factory=dict)

    def flag(self, prov: SeriesProvenance, message: str) -> None:
        """A substitution message, both in the run's flat list and in its series' provenance."""
        self.fallbacks.append(message)
        prov.flags.append(message)


def series_name(series: TimeSeries) -> str:
    return f"{series.label} ({series.source})"


def series_span(series: TimeSeries) -> Span:
    return Span(series_name(series), series.first, series.last)


def checked_asof(series: TimeSeries, grid_s: np.ndarray, limit_h: int) -> AsOf:
    """As-of join with a forward-fill limit; hours with no value within the limit raise DataRangeError."""
    joined = asof(series.times, series.values, grid_s, limit_h)
    if joined.missing.any():
        raise DataRangeError(
            f"{series_name(series)} has no value within {limit_h} h for {int(joined.missing.sum())} "
            f"hours of the requested window {fmt_ts(grid_s[0])}..{fmt_ts(grid_s[-1])} UTC: "
            f"{describe_runs(grid_s, joined.missing)}; "
            f"the file covers {fmt_ts(series.first)}..{fmt_ts(series.last)} UTC"
        )
    return joined


def aligned_with_ffill(series: TimeSeries, grid_s: np.ndarray, limit_h: int, built: Built,
                       prov: SeriesProvenance | None = None) -> np.ndarray:
    """checked_asof, recording forward-filled hours in built.fallbacks/prov and file notes in built.notes."""
    if prov is None:
        prov = SeriesProvenance(series.label, series.label, "hours", int(grid_s.size))
    joined = checked_asof(series, grid_s, limit_h)
    filled = joined.filled
    prov.clean(dict(series.cleaning))
    if filled.any():
        prov.forward_filled += int(filled.sum())
        built.flag(prov,
            f"{series.label}: {int(filled.sum())} of {grid_s.size} hours forward-filled from the last "
            "earlier value "
            f"(oldest {int(joined.age_h.max())} h; fill limit {limit_h} h) at {describe_runs(grid_s, filled)}"
        )
    built.notes.extend(series.notes)
    return joined.values


class SpotColumn:
    """spot.{asset}: the primary venue's hourly close; its holes take another venue's close for the
    same hour, and only hours no venue has are carried forward (up to PRICE_FILL_LIMIT_H).
    spot_high.{asset} / spot_low.{asset}: the same hour's bar range from the same source."""

    def __init__(self, asset: str) -> None:
        self.asset = asset

    def files(self) -> list[str]:
        return [catalog.SPOT_FILES[self.asset]] + [rel for _, rel in catalog.SPOT_FALLBACK_FILES[self.asset]]

    def spans(self, raw: RawStore) -> list[Span]:
        return [series_span(raw.spot(self.asset))]

    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built:
        built = Built()
        own = raw.spot_bars(self.asset)
        labels = [f"{label} close" for label, _ in catalog.SPOT_FALLBACK_FILES[self.asset]]
        others: list[tuple[str, Bars | None]] = list(zip(labels, raw.spot_fallback_bars(self.asset)))
        column = f"spot.{self.asset}"
        prov = built.provenance[column] = SeriesProvenance(column, catalog.SPOT_SOURCES[self.asset], "hours",
                                                           grid_s.size)
        close, high, low = fill_from_venues(own, catalog.SPOT_SOURCES[self.asset], others, grid_s, built, prov)
        built.columns[column] = close
        built.columns[f"spot_high.{self.asset}"] = high
        built.columns[f"spot_low.{self.asset}"] = low
        return built


class PerpColumn:
    """perp.{venue}.{asset}: the venue's hourly close; missing venue hours use the fallback venue.
    perp_high.{venue}.{asset} / perp_low.{venue}.{asset}: the same hour's bar range, from the
    source the close came from (the liquidation check's intra-hour marks).

    Venues without a fallback (Binance, Bybit) forward-fill short holes; a venue with a fallback (OKX)
    takes the fallback venue's close for every hour it lacks, because a real price from another
    venue is closer to the truth than an OKX price that is days or weeks stale.
    """

    def __init__(self, venue: str, asset: str) -> None:
        self.venue, self.asset = venue, asset
        self.fallback_venues = catalog.PERP_FALLBACK[venue]

    def files(self) -> list[str]:
        own = catalog.PERP_FILES.get((self.venue, self.asset))
        fallback = [catalog.PERP_FILES[(v, self.asset)] for v in self.fallback_venues]
        return ([own] if own else []) + fallback

    def spans(self, raw: RawStore) -> list[Span]:
        own = raw.perp(self.venue, self.asset)
        if not self.fallback_venues:
            if own is None:
                raise DataFormatError(f"no perp price file for {self.venue} {self.asset} in the catalog")
            return [series_span(own)]
        spans = []
        for v in self.fallback_venues:
            fallback = raw.perp(v, self.asset)
            if fallback is None:
                raise DataFormatError(f"no perp price file for {v} {self.asset} (a fallback of {self.venue}) "
                                      "in the catalog")
            spans.append(series_span(fallback))
        if own is not None:
            spans.append(series_span(own))
        label = f"{self.venue} {self.asset} perp (with {'/'.join(self.fallback_venues)} fallback)"
        return [union_span(label, spans)]

    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built:
        built = Built()
        own = raw.perp_bars(self.venue, self.asset)
        others = [(f"{v} {self.asset} perp close", raw.perp_bars(v, self.asset)) for v in self.fallback_venues]
        key = f"{self.venue}.{self.asset}"
        column = f"perp.{key}"
        label = f"{self.venue} {self.asset} perp"
        prov = built.provenance[column] = SeriesProvenance(column, label, "hours", grid_s.size)
        close, high, low = fill_from_venues(own, label, others, grid_s, built, prov)
        built.columns[column] = close
        built.columns[f"perp_high.{key}"] = high
        built.columns[f"perp_low.{key}"] = low
        return built


def fill_from_venues(own: Bars | None, own_label: str, others: Sequence[tuple[str, Bars | None]],
                     grid_s: np.ndarray, built: Built, prov: SeriesProvenance
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(close, high, low) on the grid. Own closes where they exist; each remaining hour takes the
    first other venue's close for that same hour; hours no venue has are carried forward from the
    last close (own, else the first other venue), up to PRICE_FILL_LIMIT_H. Every substitution is
    counted in `built.fallbacks` and `prov`.

    The high and low of an hour come from the bar its close came from; a carried-forward hour has no
    bar, so its high and low are the carried close (no intra-hour move is known)."""
    n = grid_s.size

    def on_grid(bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        times = bars.close.times
        return (asof(times, bars.close.values, grid_s, 0).values, asof(times, bars.high, grid_s, 0).values,
                asof(times, bars.low, grid_s, 0).values)

    if own is not None:
        values, high, low = on_grid(own)
        built.notes.extend(own.close.notes)
        prov.clean(dict(own.close.cleaning))
        prov.clean(dict(own.range_cleaning))
    else:
        values, high, low = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for label, bars in others:
        missing = np.isnan(values)
        if not missing.any() or bars is None:
            continue
        same_hour, same_high, same_low = on_grid(bars)
        use = missing & ~np.isnan(same_hour)
        if use.any():
            values = np.where(use, same_hour, values)
            high = np.where(use, same_high, high)
            low = np.where(use, same_low, low)
            prov.substitute(label, int(use.sum()))
            prov.clean(dict(bars.close.cleaning), label)
            prov.clean(dict(bars.range_cleaning), label)
            why = (f"the data pack has no {own_label} prices" if own is None
                   else f"no {own_label} close at {describe_runs(grid_s, missing)}")
            built.flag(prov, f"{own_label}: {int(use.sum())} of {n} hours use the {label} ({why})")
    missing = np.isnan(values)
    if missing.any():
        base = own if own is not None else next(b for _, b in others if b is not None)
        carried = checked_asof(base.close, grid_s, PRICE_FILL_LIMIT_H)
        values = np.where(missing, carried.values, values)
        high = np.where(missing, values, high)
        low = np.where(missing, values, low)
        prov.forward_filled += int(missing.sum())
        built.flag(prov,
            f"{own_label}: {int(missing.sum())} of {n} hours carry the last {series_name(base.close)} forward "
            f"(no venue has a close at {describe_runs(grid_s, missing)}; fill limit {PRICE_FILL_LIMIT_H} h)")
    return values, high, low


class AaveColumns:
    """aave.{reserve}.liquidity_index / .borrow_index, geometric between daily snapshots."""

    def __init__(self, reserve: str) -> None:
        self.reserve = reserve

    def files(self) -> list[str]:
        return [catalog.AAVE_RATE_FILES[self.reserve]]

    def spans(self, raw: RawStore) -> list[Span]:
        snap = raw.aave(self.reserve)
        return [Span(f"{snap.label} ({snap.source})", int(snap.times[0]), int(snap.times[-1]))]

    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built:
        snap = raw.aave(self.reserve)
        built = Built(notes=list(snap.notes))
        for kind in ("liquidity_index", "borrow_index"):
            column = f"aave.{self.reserve}.{kind}"
            built.provenance[column] = SeriesProvenance(column, f"AAVE {self.reserve} {kind.replace('_', ' ')}",
                                                        "hours", grid_s.size, cleaning=dict(snap.cleaning))
        built.columns[f"aave.{self.reserve}.liquidity_index"] = geometric_interpolation(
            snap.times, snap.liquidity_index, grid_s
        )
        built.columns[f"aave.{self.reserve}.borrow_index"] = geometric_interpolation(
            snap.times, snap.borrow_index, grid_s
        )
        lo = max(int(np.searchsorted(snap.times, grid_s[0], side="right")) - 1, 0)
        hi = int(np.searchsorted(snap.times, grid_s[-1], side="left"))
        gaps = np.diff(snap.times[lo : hi + 1])
        wide = gaps > AAVE_SNAPSHOT_GAP_NOTE_S
        if wide.any():
            built.notes.append(
                f"{snap.label}: {int(wide.sum())} snapshot gaps longer than 2 days inside the window "
                f"(longest {int(gaps.max() // 3600)} h) were interpolated geometrically"
            )
        return built


class LstColumns:
    """lst.{lst}.oracle (AAVE oracle ETH per LST) and lst.{lst}.market (DEX peg, oracle where absent)."""

    def __init__(self, lst: str) -> None:
        self.lst = lst

    def files(self) -> list[str]:
        return [catalog.LST_ORACLE_FILES[self.lst], catalog.LST_PEG_FILES[self.lst]]

    def spans(self, raw: RawStore) -> list[Span]:
        oracle = series_span(raw.lst_oracle(self.lst))
        peg = series_span(raw.lst_peg(self.lst))
        return [oracle, union_span(f"{self.lst} market peg (with AAVE oracle fallback)", [peg, oracle])]

    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built:
        built = Built()
        oracle_column, market_column = f"lst.{self.lst}.oracle", f"lst.{self.lst}.market"
        oracle_prov = built.provenance[oracle_column] = SeriesProvenance(
            oracle_column, f"{self.lst}/ETH AAVE oracle", "hours", grid_s.size)
        market_prov = built.provenance[market_column] = SeriesProvenance(
            market_column, f"{self.lst} market peg", "hours", grid_s.size)
        oracle = aligned_with_ffill(raw.lst_oracle(self.lst), grid_s, PRICE_FILL_LIMIT_H, built, oracle_prov)
        peg = raw.lst_peg(self.lst)
        built.notes.extend(peg.notes)
        market_prov.clean(dict(peg.cleaning))
        joined = asof(peg.times, peg.values, grid_s, PEG_FILL_LIMIT_H)
        missing = joined.missing
        market = np.where(missing, oracle, joined.values)
        if missing.any():
            market_prov.substitute("AAVE oracle rate", int(missing.sum()))
            built.flag(market_prov,
                f"{self.lst} market peg: {int(missing.sum())} of {grid_s.size} hours use the AAVE "
                f"oracle rate (no peg_analysis market_rate within {PEG_FILL_LIMIT_H} h at "
                f"{describe_runs(grid_s, missing)}; "
                f"the peg file starts {fmt_ts(peg.first)} UTC)"
            )
        filled = joined.filled
        if filled.any():
            market_prov.forward_filled += int(filled.sum())
            built.flag(market_prov,
                f"{self.lst} market peg: {int(filled.sum())} of {grid_s.size} hours forward-filled "
                f"(fill limit {PEG_FILL_LIMIT_H} h) at {describe_runs(grid_s, filled)}"
            )
        built.columns[f"lst.{self.lst}.oracle"] = oracle
        built.columns[f"lst.{self.lst}.market"] = market
        return built


class GasColumn:
    def files(self) -> list[str]:
        return [catalog.GAS_PRICES_FILE, catalog.GAS_UNITS_FILE]

    def spans(self, raw: RawStore) -> list[Span]:
        return [series_span(raw.gas())]

    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built:
        built = Built()
        prov = built.provenance["gas.gwei"] = SeriesProvenance("gas.gwei", "gas price", "hours", grid_s.size)
        built.columns["gas.gwei"] = aligned_with_ffill(raw.gas(), grid_s, PRICE_FILL_LIMIT_H, built, prov)
        return built


class CostColumns:
    """cost_bps.{pair}.{bucket}: the day's bps for every hour of that UTC date."""

    def files(self) -> list[str]:
        return [catalog.EXECUTION_COSTS_FILE]

    def spans(self, raw: RawStore) -> list[Span]:
        table = raw.execution_costs()
        spans = []
        for (pair, bucket), bps in table.bps.items():
            present = np.flatnonzero(~np.isnan(bps))
            spans.append(
                Span(
                    f"execution cost {pair} {bucket} ({table.source})",
                    int(table.days[present[0]]),
                    int(table.days[present[-1]]) + DAY_S - HOUR_S,
                )
            )
        return list(dict.fromkeys([max(spans, key=lambda s: s.start_s), min(spans, key=lambda s: s.end_s)]))

    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built:
        table = raw.execution_costs()
        built = Built()
        for (pair, bucket), bps in table.bps.items():
            ok = ~np.isnan(bps)
            joined = asof(table.days[ok], bps[ok], grid_s, COST_FILL_LIMIT_H)
            if joined.missing.any():
                raise DataRangeError(
                    f"execution cost {pair} {bucket} ({table.source}) has no value for the UTC dates of "
                    f"{describe_runs(grid_s, joined.missing)} in the requested window "
                    f"{fmt_ts(grid_s[0])}..{fmt_ts(grid_s[-1])} UTC"
                )
            built.columns[f"cost_bps.{pair}.{bucket}"] = joined.values
        return built
