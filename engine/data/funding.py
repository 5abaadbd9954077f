"""funding.{venue}.{asset}: realized funding (decimal per 8 h) at 00/08/16 UTC, 0.0 at other hours.

Cleaning rules (see data/README.md); every step is counted in the series' provenance:
- Rows off the 00/08/16 UTC settlement grid are dropped (none in the shipped data).
- Conflicting duplicates (same settlement, different rates) follow the venue's rule in
  DUPLICATE_RULES. OKX has 210 per asset, 2025-03-29 to 2025-06-09, and its rule keeps the value
  closest to the mean of the reference venues' rates at that settlement (Binance/Bybit). The
  rejected OKX values average about -0.023 % per 8 h while Binance/Bybit average +0.003 to
  +0.004 %, so one row of a pair is usually far from the market; and file order is mixed (the kept
  value is the last row in 107 of 210 BTC pairs), so "keep first/last" would keep the implausible
  row about half the time. With no reference rate at that settlement the last occurrence is kept.
  On eth_basis over its full window the rule books about 770 USDT more funding than keeping the
  last row would. Binance and Bybit have no conflicting duplicates; one appearing there is an
  error naming the file and lines, since nothing says which row is right.
- A settlement the venue does not have is taken from the next fallback venue and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data import catalog
from engine.data.columns import Built
from engine.data.errors import DataFormatError, DataRangeError
from engine.data.provenance import SeriesProvenance
from engine.data.grid import HOUR_S, Span, describe_runs, fmt_ts, union_span
from engine.data.raw_store import RawStore
from engine.data.readers import RawRows

SETTLEMENT_EVERY_H = 8
#: How each venue's conflicting duplicate settlements are resolved (see the module docstring).
CLOSEST_TO_REFERENCE, REJECT = "closest to the reference venues' mean rate", "error"
DUPLICATE_RULES: dict[str, str] = {"okx": CLOSEST_TO_REFERENCE, "binance": REJECT, "bybit": REJECT}
# The last settlement row also covers the 7 following hours (their funding is 0 by definition).
SETTLEMENT_TAIL_S = (SETTLEMENT_EVERY_H - 1) * HOUR_S


def is_settlement(times_s: np.ndarray) -> np.ndarray:
    """True at 00:00, 08:00 and 16:00 UTC exactly."""
    return (times_s % (SETTLEMENT_EVERY_H * HOUR_S)) == 0


@dataclass(frozen=True)
class ResolvedFunding:
    """One venue's settlements, unique and sorted, plus the settlements that had conflicts."""

    label: str
    source: str
    times: np.ndarray
    values: np.ndarray
    conflict_times: np.ndarray
    notes: tuple[str, ...]
    cleaning: dict[str, int]


def _unique_rows(rows: RawRows) -> tuple[np.ndarray, np.ndarray]:
    """Settlements that appear exactly once in the file (used as a conflict-free reference)."""
    times, first, counts = np.unique(rows.times, return_index=True, return_counts=True)
    single = counts == 1
    return times[single], rows.values[first[single]]


def _reference_rate(t: int, references: list[tuple[np.ndarray, np.ndarray]]) -> float:
    rates = []
    for times, values in references:
        i = int(np.searchsorted(times, t))
        if i < times.size and times[i] == t:
            rates.append(float(values[i]))
    return float(np.mean(rates)) if rates else float("nan")


def resolve_venue(raw: RawStore, venue: str, asset: str) -> ResolvedFunding:
    """The venue's de-duplicated settlements (computed once per RawStore)."""
    return raw.derived(("funding", venue, asset), lambda: _resolve_venue(raw, venue, asset))


def _resolve_venue(raw: RawStore, venue: str, asset: str) -> ResolvedFunding:
    rows = raw.funding(venue, asset)
    notes = list(rows.notes)
    cleaning = dict(rows.cleaning)
    what = f"{rows.label} ({rows.source})"
    on_grid = is_settlement(rows.times)
    times, values = rows.times[on_grid], rows.values[on_grid]
    lines = rows.lines[on_grid] if rows.lines.size else np.zeros(times.size, dtype=np.int64)
    if not on_grid.all():
        cleaning["rows not at a 00/08/16 UTC settlement dropped"] = int((~on_grid).sum())
        notes.append(f"{what}: dropped {int((~on_grid).sum())} rows not at a 00/08/16 UTC settlement")
    uniq, first, counts = np.unique(times, return_index=True, return_counts=True)
    out = values[first].copy()
    conflicted = np.flatnonzero(counts > 1)
    rule = DUPLICATE_RULES.get(venue, REJECT)
    if conflicted.size and rule == REJECT:
        k = int(conflicted[0])
        group = slice(first[k], first[k] + counts[k])
        raise DataFormatError(
            f"{raw.path(rows.source)}: lines {', '.join(str(int(n)) for n in lines[group])}: conflicting "
            f"{venue} funding rates {', '.join(repr(float(x)) for x in values[group])} for the settlement at "
            f"{fmt_ts(int(uniq[k]))} UTC ({conflicted.size} such settlement(s)); {venue} has no "
            "de-duplication rule, so remove the wrong row")
    if conflicted.size:
        ref_venues = catalog.FUNDING_FALLBACK[venue]
        references = [_unique_rows(raw.funding(v, asset)) for v in ref_venues]
        no_reference = 0
        for k in conflicted.tolist():
            t = int(uniq[k])
            candidates = values[
                first[k] : first[k] + counts[k]
            ]  # rows are time-sorted, so a group is contiguous
            ref = _reference_rate(t, references)
            if np.isnan(ref):
                no_reference += 1
                out[k] = candidates[-1]
            else:
                out[k] = candidates[int(np.argmin(np.abs(candidates - ref)))]
        notes.append(
            f"{what}: {conflicted.size} settlements have conflicting duplicate rows; kept the value "
            f"closest to the {'/'.join(ref_venues)} mean rate at that settlement"
            + (f" ({no_reference} without a reference rate kept the last occurrence)" if no_reference else "")
        )
        cleaning[f"conflicting duplicate settlements: kept the value closest to the {'/'.join(ref_venues)} "
                 "mean rate"] = int(conflicted.size - no_reference)
        if no_reference:
            cleaning["conflicting duplicate settlements without a reference rate: kept the last row"] = no_reference
    return ResolvedFunding(rows.label, rows.source, uniq, out, uniq[conflicted], tuple(notes),
                           {k: n for k, n in cleaning.items() if n})


class FundingColumn:
    def __init__(self, venue: str, asset: str) -> None:
        self.venue, self.asset = venue, asset
        self.chain = (venue,) + catalog.FUNDING_FALLBACK[venue]

    def files(self) -> list[str]:
        return [catalog.FUNDING_FILES[(v, self.asset)] for v in self.chain]

    def spans(self, raw: RawStore) -> list[Span]:
        spans = []
        for v in self.chain:
            res = resolve_venue(raw, v, self.asset)
            spans.append(
                Span(f"{res.label} ({res.source})", int(res.times[0]), int(res.times[-1]) + SETTLEMENT_TAIL_S)
            )
        if len(spans) == 1:
            return spans
        return [
            union_span(f"{self.venue} {self.asset} funding (with {'/'.join(self.chain[1:])} fallback)", spans)
        ]

    def build(self, raw: RawStore, grid_s: np.ndarray) -> Built:
        built = Built()
        settle_idx = np.flatnonzero(is_settlement(grid_s))
        settle_t = grid_s[settle_idx]
        rates = np.full(settle_t.size, np.nan)
        column = f"funding.{self.venue}.{self.asset}"
        prov = built.provenance[column] = SeriesProvenance(column, f"{self.venue} {self.asset} funding",
                                                           "settlements", int(settle_t.size))
        for position, venue in enumerate(self.chain):
            missing = np.isnan(rates)
            if not missing.any():
                break
            res = resolve_venue(raw, venue, self.asset)
            pos = np.minimum(np.searchsorted(res.times, settle_t), res.times.size - 1)
            found = missing & (res.times[pos] == settle_t)
            rates[found] = res.values[pos[found]]
            if position == 0:
                built.notes.extend(res.notes)
                prov.clean(res.cleaning)
                in_window = res.conflict_times[
                    (res.conflict_times >= grid_s[0]) & (res.conflict_times <= grid_s[-1])
                ]
                if in_window.size:
                    built.flag(prov,
                        f"{self.venue} {self.asset} funding: {in_window.size} of {settle_t.size} "
                        "settlements had conflicting duplicate rows in the source "
                        f"({res.conflict_times.size} in the file); kept the "
                        f"value closest to the {'/'.join(self.chain[1:])} mean rate at that settlement"
                    )
            elif found.any():
                prov.substitute(f"{venue} rate", int(found.sum()))
                prov.clean(res.cleaning, f"{venue} rate")
                built.flag(prov,
                    f"{self.venue} {self.asset} funding: {int(found.sum())} of {settle_t.size} "
                    "settlements use the "
                    f"{venue} rate (no {self.venue} settlement at "
                    f"{describe_runs(settle_t, found, unit='settlements')})"
                )
        still = np.isnan(rates)
        if still.any():
            raise DataRangeError(
                f"{self.venue} {self.asset} funding: no rate from {'/'.join(self.chain)} for "
                f"{int(still.sum())} settlements of the requested window "
                f"{fmt_ts(grid_s[0])}..{fmt_ts(grid_s[-1])} UTC: "
                f"{describe_runs(settle_t, still, unit='settlements')}"
            )
        values = np.zeros(grid_s.size, dtype=np.float64)
        values[settle_idx] = rates
        built.columns[column] = values
        return built
