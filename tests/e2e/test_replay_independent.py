"""Independent replay: every mode's events.csv, replayed through a ledger written in the test
(tests/e2e/replay_ledger.py: pandas over the raw data files, no engine code), reproduces every hourly
value of its timeseries.csv, and its final holdings are the balance sheet's.

The runs are full windows written by the real result writer, plus two that exercise the event types
the shipped runs do not: CEX liquidations (basis without rebalancing through the Q1 2024 rally) and a
flash loan with a fee (Instadapp instead of Morpho). The tolerance is 1e-6 relative; what is left is
the 10 significant digits timeseries.csv is written with (about 5e-10).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.services.backtest import BacktestRequest
from engine.services.results_io import write_results
from tests.e2e.replay_ledger import ETH_LIKE, RawPrices, ReplayLedger, replay

TOLERANCE = 1e-6
MODES = ("pure_lending", "btc_basis", "eth_basis", "eth_staking_only", "eth_leveraged",
         "usdt_market_neutral_no_leverage", "usdt_market_neutral")
EXTRA = {
    "eth_basis_liquidated": BacktestRequest(
        mode="eth_basis", capital=50_000.0, start=pd.Timestamp("2024-01-01", tz="UTC"),
        end=pd.Timestamp("2024-04-30 23:00", tz="UTC"),
        cli_overrides={"rebalancing.enabled": False, "hedge.margin_ratio_target": 0.21,
                       "rebalancing.margin_ratio_trigger": 0.07, "risk.margin_ratio_floor": 0.06}),
    "eth_leveraged_instadapp": BacktestRequest(
        mode="eth_leveraged", start=pd.Timestamp("2024-06-01", tz="UTC"), end=pd.Timestamp("2024-09-30 23:00", tz="UTC"),
        cli_overrides={"leverage.flash_venue": "instadapp"}),
}


@pytest.fixture(scope="module")
def written(full_runs, backtest_service, tmp_path_factory):
    """Each run's result folder, written by the result writer the CLI uses."""
    root = tmp_path_factory.mktemp("replay")
    runs = dict(full_runs)
    runs.update({name: backtest_service.run(req) for name, req in EXTRA.items()})
    for name, result in runs.items():
        write_results(result, root / name)
    return root


@pytest.mark.parametrize("name", MODES + tuple(EXTRA))
def test_events_replay_every_hourly_value(written, name):
    frame, unknown = replay(written / name)
    assert not unknown, f"event types the replay does not know: {unknown}"
    for engine, replayed in (("engine", "replay"), ("engine_protocol", "replay_protocol")):
        rel = ((frame[replayed] - frame[engine]).abs() / frame[engine].abs()).to_numpy()
        worst = int(np.argmax(rel))
        print(f"{name} {engine}: max relative error {rel[worst]:.3g} at {frame.timestamp[worst]}")
        assert rel[worst] < TOLERANCE, (name, engine, frame.iloc[max(worst - 2, 0):worst + 3])


def test_the_extra_runs_exercise_what_the_shipped_ones_do_not(written):
    liquidated = pd.read_csv(written / "eth_basis_liquidated" / "events.csv")
    assert (liquidated.type == "liquidation").sum() >= 1
    flash = pd.read_csv(written / "eth_leveraged_instadapp" / "events.csv")
    repay = flash[flash.type == "flash_repay"]
    assert len(repay) and (repay.amount_out > repay.amount).all()          # principal + Instadapp's fee


@pytest.mark.parametrize("name", MODES + tuple(EXTRA))
def test_the_replayed_holdings_are_the_balance_sheet(written, name):
    """Unit by unit at the last hour: wallet tokens, AAVE balances, CEX spot and perp sizes, and each
    CEX account's equity (cash + perp P&L: the replay books a perp as its fills' cash, the engine as
    realised cash + entry price, so only their sum is comparable)."""
    run = written / name
    sheet = pd.read_csv(run / "balance_sheet.csv").iloc[-1]
    ts = pd.read_csv(run / "timeseries.csv")
    grid = pd.DatetimeIndex(pd.to_datetime(ts["timestamp"], utc=True))
    ledger = ReplayLedger(RawPrices(grid))
    for e in pd.read_csv(run / "events.csv").sort_values("order").itertuples(index=False):
        ledger.apply(e)
    t = len(grid) - 1

    def units(key: str) -> float:
        return float(sheet.get(key + ".units", 0.0))

    eth_like = sum(units(f"wallet.{tok}") for tok in ETH_LIKE)
    assert ledger.tokens["ETH"] == pytest.approx(eth_like, rel=1e-8, abs=1e-9)
    for token, amount in ledger.tokens.items():
        if token != "ETH":
            assert amount == pytest.approx(units(f"wallet.{token}"), rel=1e-8, abs=1e-6), token
    for reserve, scaled in ledger.supply.items():
        held = scaled * ledger.px.index(reserve, "liquidityIndex")[t]
        assert held == pytest.approx(units(f"aave_v3.supply.{reserve}"), rel=1e-8, abs=1e-9), reserve
    for reserve, scaled in ledger.debt.items():
        owed = scaled * ledger.px.index(reserve, "variableBorrowIndex")[t]
        assert -owed == pytest.approx(units(f"aave_v3.debt.{reserve}"), rel=1e-8, abs=1e-9), reserve
    for venue, acct in ledger.cex.items():
        for asset, qty in acct.spot.items():
            assert qty == pytest.approx(units(f"{venue}.spot.{asset}"), rel=1e-8, abs=1e-9)
        equity = acct.usdt
        for asset, size in acct.perp_size.items():
            assert size == pytest.approx(units(f"{venue}.perp.{asset}"), rel=1e-8, abs=1e-9), (venue, asset)
            equity += size * ledger.px.perp(venue, asset)[t] + acct.perp_cash[asset]
        engine_equity = float(sheet.get(f"{venue}.USDT.value", 0.0)) + sum(
            float(sheet[k]) for k in sheet.index if k.startswith(f"{venue}.perp.") and k.endswith(".value"))
        assert equity == pytest.approx(engine_equity, rel=1e-8, abs=1e-4), venue
    summary = json.loads((run / "summary.json").read_text())
    assert summary["events"] == len(pd.read_csv(run / "events.csv"))
