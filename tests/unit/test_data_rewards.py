"""The ether.fi reward seeds as payouts: amounts, dates and prices checked against the raw files
(read here with pandas, independently of engine/data/rewards.py), and the rules for what the pack
does not say (a date without a pool price, a text range, a duplicated top-up)."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data import DataFormatError, catalog
from engine.data.grid import hourly_grid
from engine.data.raw_store import RawStore
from engine.data.rewards import EtherfiRewardSchedule, conservative_amount
from engine.domain.rewards import ETHFI_SEASON, ETHFI_TOPUP, EIGEN_WEEKLY, REWARD_KINDS

DATA = Path(__file__).resolve().parents[2] / "data"
START = pd.Timestamp("2024-05-12 01:00", tz="UTC")
END = pd.Timestamp("2025-09-18 23:00", tz="UTC")


def raw(rel: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{rel}.gz")


@pytest.fixture(scope="module")
def schedule():
    grid = hourly_grid(int(START.timestamp()), int(END.timestamp()))
    return EtherfiRewardSchedule(REWARD_KINDS).build(RawStore(DATA), grid)


def hour_of(ts: str) -> int:
    return int((pd.Timestamp(ts, tz="UTC") - START) / pd.Timedelta(hours=1))


def test_every_eigen_week_is_paid_on_its_date_at_the_pool_close(schedule):
    eigen = [p for p in schedule.payouts if p.kind == EIGEN_WEEKLY]
    weeks = raw(catalog.EIGEN_DISTRIBUTIONS_FILE)
    assert len(eigen) == len(weeks) == 44
    pool = raw(catalog.REWARD_POOL_FILES["EIGEN"]).set_index("timestamp")["close"]
    processed = raw(catalog.ETHERFI_REWARDS_FILE).query("reward_type == 'EIGEN_via_KING'")
    paid_on = dict(zip(processed["period_start"] + processed["period_end"], processed["payout_date"], strict=False))
    for payout, (_, row) in zip(eigen, weeks.iterrows(), strict=True):
        assert payout.label == f"EIGEN week {row.staking_period_start}..{row.staking_period_end}"
        assert payout.period_start_hour == hour_of(row.staking_period_start)
        assert payout.period_end_hour == hour_of(row.staking_period_end) + 23
        payout_day = paid_on[row.staking_period_start + row.staking_period_end]
        assert payout.payout_hour == hour_of(payout_day) + 23
        at = int(pd.Timestamp(payout_day, tz="UTC").timestamp()) + 23 * 3600
        assert payout.price_eth == pool[at]                   # the pool's own close, never a fixed price
        assert payout.via_king and payout.pool_fee_bps == 30.0
    # one distribution week per record, except the first (six weeks: its counts say 1.2312 EIGEN/eETH)
    first = weeks.iloc[0]
    assert eigen[0].per_eeth == pytest.approx(6 * first.eigen_per_eeth_weekly)
    assert eigen[0].per_eeth == pytest.approx(first.eigen_earned / (first.eth_restaked + first.eth_not_restaked),
                                              rel=1e-3)
    assert [p.per_eeth for p in eigen[1:]] == weeks["eigen_per_eeth_weekly"].iloc[1:].tolist()
    assert "weekly average over 6 weeks" in eigen[0].note


def test_ethfi_topups_are_paid_on_their_own_dates_not_with_the_week(schedule):
    topups = [p for p in schedule.payouts if p.kind == ETHFI_TOPUP]
    rows = raw(catalog.ETHFI_TOPUPS_FILE)
    assert [p.payout_hour for p in topups] == [hour_of(d) + 23 for d in rows["top_up_date"]]
    assert [p.per_eeth for p in topups] == rows["ethfi_per_eeth_distributed"].tolist()
    first = topups[0]                  # staking 2024-08-15..2024-10-05, paid 13 days later
    assert first.payout_hour - first.period_end_hour == 13 * 24


def test_seasonal_drops_take_the_conservative_end_and_skip_the_repeated_topups(schedule):
    seasons = {p.label: p for p in schedule.payouts if p.kind == ETHFI_SEASON}
    # Season 1 paid 2024-03-18, before the window; the five "Top-Up" rows are the top-ups file's
    assert sorted(seasons) == ["ETHFI Season 2", "ETHFI Season 3", "ETHFI Season 4 (Base)", "ETHFI Season 5 (Base)"]
    assert [seasons[k].per_eeth for k in sorted(seasons)] == [3.0, 6.0, 1.0, 1.0]
    assert seasons["ETHFI Season 2"].period_start_hour < 0      # began before the window: those hours held nothing
    assert any("Season 3" in n and "conservative (low) end, 6" in n for n in schedule.notes)
    assert any("'Top-Up' rows repeat the top-ups file" in n for n in schedule.notes)
    assert any("Season 1" in n and "outside the window" in n for n in schedule.notes)
    assert any("EIGEN weekly records end" in n and "2025-08-02" in n for n in schedule.notes)
    assert not seasons["ETHFI Season 3"].via_king


@pytest.mark.parametrize("text, low", [("~5–15", 5.0), ("~1–3", 1.0), ("0.248", 0.248), ("~6-15", 6.0)])
def test_conservative_amount(text, low):
    amount, note = conservative_amount(text, "ETHFI per eETH")
    assert amount == low
    assert (note == "") == (text == "0.248")


def test_benchmark_is_defillamas_reward_column_inside_the_window(schedule):
    bench = raw(catalog.DEFILLAMA_EETH_APY_FILE).dropna(subset=["Reward"])
    inside = bench[(bench["Timestamp"] >= START.normalize().timestamp()) & (bench["Timestamp"] <= END.timestamp())]
    assert schedule.benchmark == list(zip(inside["Timestamp"].tolist(), inside["Reward"].tolist(), strict=True))


def _copy_reward_files(target: Path) -> None:
    for rel in EtherfiRewardSchedule(REWARD_KINDS).files():
        dest = target / f"{rel}.gz"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / f"{rel}.gz", dest)


def _rewrite(path: Path, edit) -> None:
    frame = pd.read_csv(path)
    with gzip.open(path, "wt") as fh:
        edit(frame).to_csv(fh, index=False)


def test_a_date_without_a_pool_price_is_reported_and_has_no_price(tmp_path):
    _copy_reward_files(tmp_path)
    day = pd.Timestamp("2024-10-12", tz="UTC").timestamp()
    _rewrite(tmp_path / f"{catalog.REWARD_POOL_FILES['EIGEN']}.gz",
             lambda f: f[(f["timestamp"] < day) | (f["timestamp"] >= day + 86400)])
    grid = hourly_grid(int(START.timestamp()), int(END.timestamp()))
    schedule = EtherfiRewardSchedule((EIGEN_WEEKLY,)).build(RawStore(tmp_path), grid)
    payouts = schedule.payouts
    assert any(n.startswith("etherfi rewards: EIGEN week 2024-10-06..2024-10-12 is not paid: no EIGEN/WETH pool "
                            "close on 2024-10-12") for n in schedule.notes)
    missing = next(p for p in payouts if p.label == "EIGEN week 2024-10-06..2024-10-12")
    assert missing.price_eth is None
    assert "no EIGEN/WETH pool close on 2024-10-12" in missing.price_source
    # the day before and after keep their own prices: nothing is carried over from another date
    assert all(p.price_eth is not None for p in payouts if p is not missing)


def test_a_topup_row_in_the_seasonal_file_must_be_in_the_topups_file(tmp_path):
    _copy_reward_files(tmp_path)
    _rewrite(tmp_path / f"{catalog.SEASONAL_DROPS_FILE}.gz",
             lambda f: f.assign(reward_per_eeth=np.where(f["event"] == "Top-Up #2", "0.5", f["reward_per_eeth"])))
    grid = hourly_grid(int(START.timestamp()), int(END.timestamp()))
    with pytest.raises(DataFormatError, match="Top-Up #2.*matches no row"):
        EtherfiRewardSchedule(REWARD_KINDS).build(RawStore(tmp_path), grid)
