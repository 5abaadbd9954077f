"""Full-window runs on the shipped data: rewards paid on their dates at pool prices (recomputed here
from the raw files), the LST peg in the mark-to-market value and its drawdown, exit value, daily
Sharpe, and the balance sheet adding up to the value every hour."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.config import MODES
from engine.data import catalog
from engine.services.backtest import BacktestRequest
from tests.conftest import REPO_ROOT

RAW = REPO_ROOT / "data"


def raw(rel: str, **kw) -> pd.DataFrame:
    return pd.read_csv(RAW / f"{rel}.gz", **kw)


@pytest.mark.parametrize("mode", MODES)
def test_balance_sheet_adds_up_to_the_value_every_hour(full_runs, mode):
    r = full_runs[mode]
    sheet = r.balance_sheet().columns
    scale = 1e-9 * max(1.0, abs(r.output.initial_value))
    np.testing.assert_allclose(sheet["total.value"], r.output.values, rtol=0, atol=scale * 100)
    np.testing.assert_allclose(sheet["total_protocol.value"], r.output.values_protocol, rtol=0, atol=scale * 100)
    holdings = [k for k in sheet if k.endswith(".units")]
    assert holdings, "a run holds something"
    assert all(f"{k[:-6]}.value" in sheet for k in holdings)


@pytest.mark.parametrize("mode", MODES)
def test_exit_value_is_below_the_marked_value_by_the_cost_of_unwinding(full_runs, mode):
    s = full_runs[mode].summary
    costs = s["exit_costs"]
    assert all(v >= 0.0 for v in costs.values())
    assert sum(costs.values()) > 0.0
    assert s["exit_value"] == pytest.approx(s["final_value"] - sum(costs.values()), rel=1e-12)
    if full_runs[mode].params.strategy.lst is None:
        assert s["final_value"] == s["final_value_protocol"] and s["pnl_components"]["lst_peg"] == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_volatility_and_sharpe_come_from_daily_closes(full_runs, mode):
    r = full_runs[mode]
    s = r.summary
    frame = pd.Series(r.output.values, index=r.timestamps)
    daily = np.concatenate([[s["initial_value"]], frame.groupby(frame.index.floor("D")).last().to_numpy()])
    returns = daily[1:] / daily[:-1] - 1
    assert s["volatility"] == pytest.approx(np.std(returns, ddof=1) * math.sqrt(365), rel=1e-9)
    if s["sharpe"] is not None:
        assert s["sharpe"] == pytest.approx(np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(365), rel=1e-9)


def test_the_levered_loop_draws_down_on_the_weeth_discount_of_august_2024(full_runs):
    r = full_runs["eth_leveraged"]
    s = r.summary
    assert s["max_drawdown"] > 0.04                 # ~10x weETH against WETH debt: the ~0.5 % discount, levered
    assert s["max_drawdown_protocol"] < 0.01        # the oracle never saw it
    values = r.output.values
    trough = int(np.argmax(np.maximum.accumulate(values) - values))
    assert pd.Timestamp("2024-08-04", tz="UTC") <= r.timestamps[trough] <= pd.Timestamp("2024-08-09", tz="UTC")
    assert s["final_value"] != s["final_value_protocol"]


def test_staking_only_rewards_are_paid_on_their_dates_at_the_raw_pool_price(full_runs):
    """The first EIGEN distribution recomputed from the raw files: 6 weeks x 0.205 EIGEN per eETH on
    the weETH held (at the oracle rate) over 2024-08-15..2024-10-05, priced at the EIGEN/WETH close
    of 2024-10-05 23:00, less the 10k bucket + 0.3 % pool fee, less KING unwrap + swap gas."""
    r = full_runs["eth_staking_only"]
    s = r.summary
    payments = [e for e in r.events if e.type == "REWARD_PAYMENT"]
    assert len(payments) == s["rewards"]["paid"] > 40
    assert all(e.timestamp.endswith("T23:00:00Z") for e in payments)
    booked = r.output.components[:, list(r.cumulative_components()).index("rewards")]
    assert set(np.flatnonzero(booked)) == {e.hour for e in payments}           # nothing smoothed in between
    assert s["pnl_components"]["rewards"] == pytest.approx(s["rewards"]["net_value"], rel=1e-12)

    stake = next(e for e in r.events if e.type == "stake")
    oracle = raw(catalog.LST_ORACLE_FILES["weETH"], comment="#")
    oracle = oracle.set_index(pd.to_datetime(oracle["timestamp"], utc=True))["oracle_price_eth"]
    period = oracle["2024-08-15 00:00":"2024-10-05 23:00"]
    assert len(period) == 52 * 24
    eligible = stake.amount_out * period.mean()
    pool = raw(catalog.REWARD_POOL_FILES["EIGEN"]).set_index("timestamp")["close"]
    price = pool[int(pd.Timestamp("2024-10-05 23:00", tz="UTC").timestamp())]
    gas = raw(catalog.GAS_PRICES_FILE)
    gas = gas.set_index(pd.to_datetime(gas["timestamp"], utc=True))
    gwei = gas.loc[pd.Timestamp("2024-10-05 23:00", tz="UTC"), ["base_fee_gwei", "priority_fee_p50_gwei"]].sum()
    tokens = 6 * 0.205 * eligible
    net = tokens * price * (1 - (10 + 30) * 1e-4) - (150_000 + 180_000) * gwei * 1e-9
    first = payments[0]
    assert first.timestamp == "2024-10-05T23:00:00Z" and first.asset == "EIGEN"
    assert first.amount == pytest.approx(tokens, rel=1e-9)
    assert first.price == price
    assert booked[first.hour] == pytest.approx(net, rel=1e-9)


def test_reward_apy_by_quarter_tracks_defillama_where_both_have_a_full_quarter(full_runs):
    rows = {q["quarter"]: q for q in full_runs["eth_staking_only"].summary["rewards"]["by_quarter"]}
    for quarter in ("2025Q1", "2025Q2"):
        row = rows[quarter]
        assert row["defillama_days"] >= 80
        assert row["reward_apy_accrued"] == pytest.approx(row["defillama_reward_apy"], rel=0.15), row


def test_wsteth_earns_no_rewards(backtest_service):
    r = backtest_service.run(BacktestRequest(
        mode="eth_staking_only", start=pd.Timestamp("2024-10-01", tz="UTC"), end=pd.Timestamp("2024-10-31 23:00", tz="UTC"),
        cli_overrides={"staking.lst_type": "wstETH", "staking.rewards_mode": "base_only"}))
    assert r.summary["pnl_components"]["rewards"] == 0.0
    assert not [e for e in r.events if e.type == "REWARD_PAYMENT"]
    assert r.summary["rewards"] == {"mode": "base_only"}


def test_seasonal_mode_adds_the_airdrops_on_top_of_the_king_distributions(backtest_service, full_runs):
    base = full_runs["eth_staking_only"].summary["rewards"]
    seasonal = backtest_service.run(BacktestRequest(
        mode="eth_staking_only", cli_overrides={"staking.rewards_mode": "base_eigen_seasonal"})).summary["rewards"]
    labels = {p["label"] for p in seasonal["payments"]} - {p["label"] for p in base["payments"]}
    assert labels == {"ETHFI Season 2", "ETHFI Season 3", "ETHFI Season 4 (Base)", "ETHFI Season 5 (Base)"}
    assert seasonal["net_value"] > base["net_value"]


def test_a_payout_without_a_pool_price_is_excluded_and_said_so(tmp_path):
    """Remove the EIGEN pool's closes of 2024-10-12 from a copy of the data: that week is reported
    and not paid, the weeks around it are paid at their own prices."""
    import gzip
    import shutil

    from bootstrap import backtest_service as make

    data = tmp_path / "data"
    shutil.copytree(RAW, data)
    pool_file = data / f"{catalog.REWARD_POOL_FILES['EIGEN']}.gz"
    pool = pd.read_csv(pool_file)
    day = pd.Timestamp("2024-10-12", tz="UTC").timestamp()
    with gzip.open(pool_file, "wt") as fh:
        pool[(pool["timestamp"] < day) | (pool["timestamp"] >= day + 86400)].to_csv(fh, index=False)
    r = make(data, tmp_path / "cache").run(BacktestRequest(
        mode="eth_staking_only", start=pd.Timestamp("2024-10-01", tz="UTC"),
        end=pd.Timestamp("2024-10-25 23:00", tz="UTC")))
    rewards = r.summary["rewards"]
    assert rewards["excluded"] == 1
    (reason,) = rewards["excluded_reasons"]
    assert reason.startswith("EIGEN week 2024-10-06..2024-10-12") and "no EIGEN/WETH pool close on 2024-10-12" in reason
    paid = {e.timestamp[:10] for e in r.events if e.type == "REWARD_PAYMENT"}
    assert "2024-10-12" not in paid and {"2024-10-05", "2024-10-19"} <= paid
    assert r.summary["reconciliation_error"] < 0.01
