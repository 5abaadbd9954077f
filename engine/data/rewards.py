"""ether.fi reward seeds -> the payouts of one run (EIGEN weekly, ETHFI top-ups, ETHFI seasons).

The data pack publishes ether.fi's reward history as records, not as a yield:
- `eigen_distributions_raw.csv`: KING weekly EIGEN distributions, EIGEN per eETH per staking week
  (with the raw counts: EIGEN earned, eETH restaked / not restaked);
- `ethfi_topups_raw.csv`: ETHFI ether.fi added to those distributions, per eETH, with its date;
- `seasonal_drops.csv`: the seasonal ETHFI airdrops, per eETH as text ranges ("~6–15");
- `etherfi_seasonal_rewards_*.csv` (the pack's processed file): the payout date of every EIGEN week;
- the Uniswap v3 EIGEN/WETH and ETHFI/WETH hourly pools: the token prices at payout;
- DeFiLlama's eETH reward APY (a benchmark the run compares its own reward yield with).

This module parses them (each file at most once per provider, through RawStore.derived) and
resolves, for a run's grid, each payout's hours and its pool price on the payout date. Reading the
rules here rather than in the engine keeps every data decision in the data layer and in
data/README.md; the engine only pays what it is given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data import catalog
from engine.data.errors import DataFormatError
from engine.data.grid import HOUR_S, Span, fmt_ts
from engine.data.raw_store import RawStore
from engine.data.readers import DAY_S, parse_utc_seconds, read_csv_columns
from engine.domain.rewards import EIGEN_WEEKLY, ETHFI_SEASON, ETHFI_TOPUP, REWARD_KINDS, RewardPayout

#: A payout is paid at the last hour of its payout date: the records give a date, not a time, and
#: the last hour is the latest the payment can have arrived that day. It also lets an EIGEN week,
#: whose payout date is the last day of its staking week, finish that day before paying.
PAYOUT_HOUR_OF_DAY = 23

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: Every statement about the rewards starts with this, so a reader (the app) can pick them out.
NOTE_PREFIX = "etherfi rewards: "


@dataclass(frozen=True)
class RewardRecord:
    """One published distribution, before it meets a run's grid (UTC dates as epoch seconds)."""

    kind: str
    token: str
    label: str
    period_start_day: int
    period_end_day: int        # inclusive
    payout_day: int
    per_eeth: float
    via_king: bool
    note: str = ""


@dataclass(frozen=True)
class PoolPrices:
    """Hourly closes of a Uniswap v3 reward-token/WETH pool: ETH per token, and the pool's fee."""

    token: str
    source: str
    times: np.ndarray
    close_eth: np.ndarray
    fee_bps: float


@dataclass
class RewardSchedule:
    """What the provider hands the run: the payouts on its grid plus everything said about them."""

    payouts: list[RewardPayout] = field(default_factory=list)
    benchmark: list[tuple[int, float]] = field(default_factory=list)   # (UTC day, DeFiLlama reward APY %)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ files
def files_for(kinds: tuple[str, ...]) -> list[str]:
    """The catalog files a set of reward kinds reads (for the cache key and the run's provenance)."""
    files: list[str] = []
    if EIGEN_WEEKLY in kinds:
        files += [catalog.EIGEN_DISTRIBUTIONS_FILE, catalog.ETHERFI_REWARDS_FILE, catalog.REWARD_POOL_FILES["EIGEN"]]
    if ETHFI_TOPUP in kinds or ETHFI_SEASON in kinds:
        files += [catalog.ETHFI_TOPUPS_FILE, catalog.REWARD_POOL_FILES["ETHFI"]]
    if ETHFI_SEASON in kinds:
        files.append(catalog.SEASONAL_DROPS_FILE)
    if kinds:
        files.append(catalog.DEFILLAMA_EETH_APY_FILE)
    return list(dict.fromkeys(files))


def _dates(values: pd.Series, path: Path, column: str) -> np.ndarray:
    seconds = parse_utc_seconds(values.astype(str).str.strip(), path, column)
    if (seconds % DAY_S != 0).any():
        raise DataFormatError(f"{path}: column {column!r} must hold plain dates (YYYY-MM-DD)")
    return seconds


def _day(seconds: int) -> str:
    return fmt_ts(seconds)[:10]


# ---------------------------------------------------------------------------------------- readers
def read_eigen_weeks(path: Path, payout_path: Path) -> tuple[list[RewardRecord], list[str]]:
    """KING weekly EIGEN records; payout dates from the pack's processed rewards file.

    The published `eigen_per_eeth_weekly` is per distribution week. A record covering several weeks
    (the first one, 2024-08-15..2024-10-05) carries the weekly average, so the number of weeks it
    pays is read from its own counts: eigen_earned / (eth_restaked + eth_not_restaked) divided by
    the weekly figure, rounded (6 for that record; 1 for every other). That reproduces the EIGEN the
    counts say was distributed and never stretches a weekly figure over more days than were paid.
    """
    frame, _ = read_csv_columns(path, {
        "staking_period_start": "str", "staking_period_end": "str", "eigen_earned": "float64",
        "eth_restaked": "float64", "eth_not_restaked": "float64", "eigen_per_eeth_weekly": "float64"})
    starts = _dates(frame["staking_period_start"], path, "staking_period_start")
    ends = _dates(frame["staking_period_end"], path, "staking_period_end")
    weekly = frame["eigen_per_eeth_weekly"].to_numpy(np.float64)
    eeth = frame["eth_restaked"].to_numpy(np.float64) + frame["eth_not_restaked"].to_numpy(np.float64)
    earned = frame["eigen_earned"].to_numpy(np.float64)
    if not (np.isfinite(weekly).all() and (weekly > 0).all() and (eeth > 0).all() and (earned >= 0).all()):
        raise DataFormatError(f"{path}: every row needs a positive eigen_per_eeth_weekly and eETH counts")
    if (ends < starts).any():
        raise DataFormatError(f"{path}: a row has staking_period_end before staking_period_start")
    payouts = _eigen_payout_days(payout_path)
    records: list[RewardRecord] = []
    notes: list[str] = []
    for s, e, w, per_count in zip(starts.tolist(), ends.tolist(), weekly.tolist(), (earned / eeth).tolist(),
                                  strict=True):
        payout = payouts.get((s, e))
        if payout is None:
            raise DataFormatError(
                f"{payout_path}: no EIGEN_via_KING row for the staking period {_day(s)}..{_day(e)} of {path.name}, "
                "so its payout date is unknown")
        weeks = max(1, round(per_count / w))
        note = ""
        if weeks > 1:
            note = (f"published {w:g} EIGEN/eETH is a weekly average over {weeks} weeks "
                    f"(counts: {per_count:.4f} EIGEN/eETH in total)")
            notes.append(f"{NOTE_PREFIX}EIGEN {_day(s)}..{_day(e)}: {note}")
        records.append(RewardRecord(EIGEN_WEEKLY, "EIGEN", f"EIGEN week {_day(s)}..{_day(e)}", s, e, payout,
                                    w * weeks, via_king=True, note=note))
    return records, notes


def _eigen_payout_days(path: Path) -> dict[tuple[int, int], int]:
    frame, _ = read_csv_columns(path, {"period_start": "str", "period_end": "str", "payout_date": "str",
                                       "reward_type": "str"})
    eigen = frame[frame["reward_type"] == "EIGEN_via_KING"]
    if eigen.empty:
        raise DataFormatError(f"{path}: no rows with reward_type == 'EIGEN_via_KING'")
    starts = _dates(eigen["period_start"], path, "period_start")
    ends = _dates(eigen["period_end"], path, "period_end")
    paid = _dates(eigen["payout_date"], path, "payout_date")
    if (paid < ends).any():
        raise DataFormatError(f"{path}: an EIGEN_via_KING row is paid before its period ends")
    return {(int(s), int(e)): int(p) for s, e, p in zip(starts, ends, paid, strict=True)}


def read_ethfi_topups(path: Path) -> list[RewardRecord]:
    frame, _ = read_csv_columns(path, {"top_up_date": "str", "staking_period_start": "str",
                                       "staking_period_end": "str", "ethfi_per_eeth_distributed": "float64"})
    starts = _dates(frame["staking_period_start"], path, "staking_period_start")
    ends = _dates(frame["staking_period_end"], path, "staking_period_end")
    paid = _dates(frame["top_up_date"], path, "top_up_date")
    per = frame["ethfi_per_eeth_distributed"].to_numpy(np.float64)
    if not (np.isfinite(per).all() and (per >= 0).all()):
        raise DataFormatError(f"{path}: column 'ethfi_per_eeth_distributed' needs finite, non-negative values")
    if ((ends < starts) | (paid < ends)).any():
        raise DataFormatError(f"{path}: a top-up ends before it starts or is paid before its period ends")
    return [RewardRecord(ETHFI_TOPUP, "ETHFI", f"ETHFI top-up {_day(p)} ({_day(s)}..{_day(e)})", s, e, p, x,
                         via_king=True)
            for s, e, p, x in zip(starts.tolist(), ends.tolist(), paid.tolist(), per.tolist(), strict=True)]


def conservative_amount(text: str, unit: str) -> tuple[float, str]:
    """'~6–15' -> (6.0, a note saying the low end of the published range is used); '0.248' -> (0.248, '')."""
    raw = str(text).strip()
    numbers = _NUMBER.findall(raw)
    if not numbers:
        raise ValueError(f"no number in {text!r}")
    low = min(float(x) for x in numbers)
    if numbers == [raw]:
        return low, ""
    return low, f'published as "{raw}" {unit}; the conservative (low) end, {low:g}, is used'


def read_seasonal_drops(path: Path, topups: list[RewardRecord]) -> tuple[list[RewardRecord], list[str]]:
    """The seasonal ETHFI airdrops. The file also lists the KING top-ups ("Top-Up #n"); those are the
    top-ups file's payments, so they are checked against it and not paid twice."""
    frame, _ = read_csv_columns(path, {"start_date": "str", "end_date": "str", "payout_date": "str",
                                       "event": "str", "reward_token": "str", "reward_per_eeth": "str"})
    starts = _dates(frame["start_date"], path, "start_date")
    ends = _dates(frame["end_date"], path, "end_date")
    paid = _dates(frame["payout_date"], path, "payout_date")
    known = {(t.period_start_day, t.period_end_day, t.payout_day): t for t in topups}
    records: list[RewardRecord] = []
    notes: list[str] = []
    duplicates = 0
    for s, e, p, event, token, text in zip(starts.tolist(), ends.tolist(), paid.tolist(), frame["event"],
                                           frame["reward_token"], frame["reward_per_eeth"], strict=True):
        event = str(event).strip()
        if token != "ETHFI":
            raise DataFormatError(f"{path}: event {event!r} pays {token!r}; only ETHFI drops are modelled")
        try:
            amount, how = conservative_amount(text, "ETHFI per eETH")
        except ValueError:
            raise DataFormatError(f"{path}: event {event!r}: reward_per_eeth {text!r} holds no number") from None
        if event.lower().startswith("top-up"):
            match = known.get((s, e, p))
            if match is None or not math.isclose(match.per_eeth, amount, rel_tol=1e-9):
                raise DataFormatError(
                    f"{path}: {event!r} ({_day(s)}..{_day(e)}, paid {_day(p)}, {text}) matches no row of "
                    f"{catalog.ETHFI_TOPUPS_FILE}; a top-up must be listed there")
            duplicates += 1
            continue
        if e < s or p < e:
            raise DataFormatError(f"{path}: event {event!r} ends before it starts or is paid before it ends")
        if how:
            notes.append(f"{NOTE_PREFIX}{event}: {how}")
        records.append(RewardRecord(ETHFI_SEASON, "ETHFI", f"ETHFI {event}", s, e, p, amount, via_king=False,
                                    note=how))
    if duplicates:
        notes.append(f"{NOTE_PREFIX}seasonal drops: {duplicates} 'Top-Up' rows repeat the top-ups file and are "
                     "paid once, from it")
    return records, notes


def read_pool_prices(path: Path, rel: str, token: str) -> PoolPrices:
    """GeckoTerminal export of a Uniswap v3 pool: `timestamp` (unix s), `close` in WETH per token,
    and `fee_tier` ("0.3%")."""
    frame, _ = read_csv_columns(path, {"timestamp": "int64", "close": "float64", "fee_tier": "str",
                                       "base_token": "str", "quote_token": "str"})
    bases = set(frame["base_token"]) | set(frame["quote_token"])
    if bases != {token, "WETH"}:
        raise DataFormatError(f"{path}: expected a {token}/WETH pool, the file is {sorted(bases)}")
    if set(frame["base_token"]) != {token}:
        raise DataFormatError(f"{path}: expected {token} as the base token (close in WETH per {token})")
    tiers = set(frame["fee_tier"].str.strip())
    if len(tiers) != 1 or not next(iter(tiers)).endswith("%"):
        raise DataFormatError(f"{path}: column 'fee_tier' must hold one percentage, got {sorted(tiers)}")
    fee_bps = float(next(iter(tiers)).rstrip("%")) * 100.0
    times = frame["timestamp"].to_numpy(np.int64)
    close = frame["close"].to_numpy(np.float64)
    ok = np.isfinite(close) & (close > 0)
    times, close = times[ok], close[ok]
    if (times % HOUR_S != 0).any():
        raise DataFormatError(f"{path}: column 'timestamp' has times not on the hour")
    order = np.argsort(times, kind="stable")
    times, close = times[order], close[order]
    keep = np.ones(times.size, dtype=bool)
    keep[:-1] = times[1:] != times[:-1]          # a repeated hour: the last row in file order
    if times.size == 0:
        raise DataFormatError(f"{path}: no usable close prices")
    return PoolPrices(token, rel, times[keep], close[keep], fee_bps)


def read_defillama_reward_apy(path: Path) -> list[tuple[int, float]]:
    """DeFiLlama's eETH chart export: (UTC day, reward APY in %) for the days it has a value."""
    frame, _ = read_csv_columns(path, {"Timestamp": "int64", "Reward": "float64"})
    days = frame["Timestamp"].to_numpy(np.int64)
    reward = frame["Reward"].to_numpy(np.float64)
    if (days % DAY_S != 0).any():
        raise DataFormatError(f"{path}: column 'Timestamp' must hold UTC midnights")
    ok = np.isfinite(reward)
    return list(zip(days[ok].tolist(), reward[ok].tolist(), strict=True))


# --------------------------------------------------------------------------------------- grouping
class EtherfiRewardSchedule:
    """The reward payouts of a set of kinds on a run's grid. Rewards do not limit the window (a run
    outside the records simply has no payouts); payouts outside the window are left out and said so."""

    def __init__(self, kinds: tuple[str, ...]) -> None:
        unknown = [k for k in kinds if k not in REWARD_KINDS]
        if unknown:
            raise ValueError(f"unknown reward kinds {unknown} (allowed: {', '.join(REWARD_KINDS)})")
        self.kinds = kinds

    def files(self) -> list[str]:
        return files_for(self.kinds)

    def spans(self, raw: RawStore) -> list[Span]:
        self._records(raw)     # parse now so a broken file fails in available_window too
        return []

    def _records(self, raw: RawStore) -> tuple[list[RewardRecord], list[str]]:
        def parse() -> tuple[list[RewardRecord], list[str]]:
            records: list[RewardRecord] = []
            notes: list[str] = []
            if EIGEN_WEEKLY in self.kinds:
                eigen, eigen_notes = read_eigen_weeks(raw.path(catalog.EIGEN_DISTRIBUTIONS_FILE),
                                                      raw.path(catalog.ETHERFI_REWARDS_FILE))
                records += eigen
                notes += eigen_notes
            topups = read_ethfi_topups(raw.path(catalog.ETHFI_TOPUPS_FILE)) \
                if ETHFI_TOPUP in self.kinds or ETHFI_SEASON in self.kinds else []
            if ETHFI_TOPUP in self.kinds:
                records += topups
            if ETHFI_SEASON in self.kinds:
                seasons, season_notes = read_seasonal_drops(raw.path(catalog.SEASONAL_DROPS_FILE), topups)
                records += seasons
                notes += season_notes
            return records, notes
        return raw.derived(("etherfi_rewards", *self.kinds), parse)

    def _pool(self, raw: RawStore, token: str) -> PoolPrices:
        rel = catalog.REWARD_POOL_FILES[token]
        return raw.derived(("reward_pool", token), lambda: read_pool_prices(raw.path(rel), rel, token))

    def build(self, raw: RawStore, grid_s: np.ndarray) -> RewardSchedule:
        records, file_notes = self._records(raw)
        start, end = int(grid_s[0]), int(grid_s[-1])
        schedule = RewardSchedule(notes=list(file_notes))
        outside: list[str] = []
        for rec in sorted(records, key=lambda r: (r.payout_day, r.kind)):
            payout_s = rec.payout_day + PAYOUT_HOUR_OF_DAY * HOUR_S
            if not start <= payout_s <= end:
                outside.append(f"{rec.label} (paid {_day(rec.payout_day)})")
                continue
            price, source = self._price(raw, rec.token, rec.payout_day, payout_s)
            if price is None:
                schedule.notes.append(f"{NOTE_PREFIX}{rec.label} is not paid: {source}")
            schedule.payouts.append(RewardPayout(
                kind=rec.kind, token=rec.token, label=rec.label,
                period_start_hour=(rec.period_start_day - start) // HOUR_S,
                period_end_hour=(rec.period_end_day + DAY_S - HOUR_S - start) // HOUR_S,
                payout_hour=(payout_s - start) // HOUR_S,
                per_eeth=rec.per_eeth, price_eth=price, price_source=source,
                pool_fee_bps=self._pool(raw, rec.token).fee_bps, via_king=rec.via_king, note=rec.note,
            ))
        if outside:
            schedule.notes.append(
                f"{NOTE_PREFIX}{len(outside)} payouts fall outside the window "
                f"{_day(start)}..{_day(end)} and are not part of this run: " + "; ".join(outside[:4])
                + (f"; +{len(outside) - 4} more" if len(outside) > 4 else ""))
        names = {EIGEN_WEEKLY: "EIGEN weekly", ETHFI_TOPUP: "ETHFI top-up", ETHFI_SEASON: "ETHFI seasonal"}
        for kind in self.kinds:
            ends = [r.period_end_day for r in records if r.kind == kind]
            if ends and end > max(ends) + DAY_S:
                schedule.notes.append(
                    f"{NOTE_PREFIX}the {names[kind]} records end with the staking period to "
                    f"{_day(max(ends))}; the pack has no later ones, so staking after it earns none in this run")
        first_day, last_day = start - start % DAY_S, end - end % DAY_S
        benchmark = raw.derived(("defillama_eeth",), lambda: read_defillama_reward_apy(
            raw.path(catalog.DEFILLAMA_EETH_APY_FILE)))
        schedule.benchmark = [(d, v) for d, v in benchmark if first_day <= d <= last_day]
        return schedule

    def _price(self, raw: RawStore, token: str, day_s: int, at_s: int) -> tuple[float | None, str]:
        """The pool's close at the payout hour, else its latest close earlier that UTC date; None when
        the date has no close (the payout is then reported and not paid, never priced from elsewhere)."""
        pool = self._pool(raw, token)
        i = int(np.searchsorted(pool.times, at_s, side="right")) - 1
        if i >= 0 and pool.times[i] >= day_s:
            when = "" if pool.times[i] == at_s else f" (latest close that day: {fmt_ts(int(pool.times[i]))})"
            return float(pool.close_eth[i]), f"{pool.source} close {fmt_ts(at_s)} UTC{when}"
        return None, (f"no {token}/WETH pool close on {_day(day_s)} in {pool.source} "
                      f"(the file covers {fmt_ts(int(pool.times[0]))}..{fmt_ts(int(pool.times[-1]))} UTC)")
