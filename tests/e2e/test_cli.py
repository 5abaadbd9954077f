"""The headless CLI: a good run writes the three files; bad input exits non-zero with one clear
message and no traceback."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from engine.domain.pnl import COMPONENTS
from tests.conftest import REPO_ROOT

SUMMARY_KEYS = {
    "mode", "share_class", "currency", "start", "end", "hours", "initial_value", "final_value", "pnl",
    "pnl_components", "reconciliation_error", "apr", "apy", "volatility", "sharpe", "max_drawdown",
    "min_health_factor", "min_margin_ratio", "liquidations", "rebalances", "hedge_notional_avg",
    "data_fallbacks", "engine_seconds", "final_value_protocol", "exit_value", "exit_costs", "rewards",
    "run_id", "config", "overrides", "data_files", "code_version",
}


def run_cli(*args: str, cache_dir, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_dir))
    return subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_backtest_writes_summary_timeseries_and_events(tmp_path, cache_dir):
    out = tmp_path / "run"
    proc = run_cli("backtest", "--mode", "eth_basis", "--start", "2024-06-01", "--end", "2024-06-30",
                   "--capital", "250000", "--out", str(out), cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert "reconciliation error" in proc.stdout and "APR / APY" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert set(summary["pnl_components"]) == set(COMPONENTS)
    assert summary["start"] == "2024-06-01T00:00:00Z" and summary["end"] == "2024-06-30T23:00:00Z"
    assert summary["hours"] == 30 * 24 and summary["initial_value"] == 250000
    assert summary["min_health_factor"] is None and summary["min_margin_ratio"] > 0.05
    ts = pd.read_csv(out / "timeseries.csv")
    assert len(ts) == 720
    for col in ["value", "net_delta", "health_factor", "margin_ratio.binance", "margin_ratio.okx"] + [
            f"pnl.{c}" for c in COMPONENTS]:
        assert col in ts.columns
    # the file's components sum to the file's value change, hour by hour
    change = ts["value"].diff().iloc[1:]
    parts = ts[[f"pnl.{c}" for c in COMPONENTS]].sum(axis=1).iloc[1:]
    assert (change - parts).abs().max() < 0.01
    with (out / "events.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["order"]) for r in rows] == list(range(len(rows)))
    assert {"spot_trade", "perp_trade", "transfer", "funding"} <= {r["type"] for r in rows}
    sheet = pd.read_csv(out / "balance_sheet.csv")
    assert len(sheet) == 720 and (sheet["total.value"] - ts["value"]).abs().max() < 1e-6
    for column in ("bybit.spot.ETH.units", "binance.perp.ETH.units", "okx.USDT.value"):
        assert column in sheet.columns


def test_each_run_gets_its_own_folder_and_latest_points_at_the_newest(tmp_path, cache_dir):
    args = ("backtest", "--mode", "pure_lending", "--start", "2024-06-01", "--end", "2024-06-02")
    first = run_cli(*args, cache_dir=cache_dir, cwd=tmp_path)
    second = run_cli(*args, "--set", "rebalancing.enabled=true", cache_dir=cache_dir, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    mode_dir = tmp_path / "results" / "pure_lending"
    runs = sorted(p for p in mode_dir.iterdir() if p.name != "latest")
    assert len(runs) == 2                                        # nothing overwritten
    for run in runs:
        assert {p.name for p in run.iterdir()} == {"summary.json", "timeseries.csv", "events.csv",
                                                   "balance_sheet.csv"}
        assert json.loads((run / "summary.json").read_text())["run_id"] == run.name
    newest = json.loads((mode_dir / "latest" / "summary.json").read_text())
    assert (mode_dir / "latest").is_symlink()
    assert newest["overrides"]["set"] == {"rebalancing.enabled": True}
    assert newest["config"]["mode"]["rebalancing"]["enabled"] is True       # the effective config
    assert f"results/pure_lending/{newest['run_id']}/" in second.stdout and "(symlink)" in second.stdout


def test_out_names_the_run_folder_and_refuses_to_overwrite_unless_asked(tmp_path, cache_dir):
    out = tmp_path / "mine"
    args = ("backtest", "--mode", "pure_lending", "--start", "2024-06-01", "--end", "2024-06-02", "--out", str(out))
    assert run_cli(*args, cache_dir=cache_dir).returncode == 0
    first = json.loads((out / "summary.json").read_text())["run_id"]
    again = run_cli(*args, cache_dir=cache_dir)
    assert again.returncode == 2 and "already holds files" in again.stderr and "--overwrite" in again.stderr
    assert json.loads((out / "summary.json").read_text())["run_id"] == first
    forced = run_cli(*args, "--overwrite", cache_dir=cache_dir)
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "summary.json").read_text())["run_id"] != first


def test_summary_records_data_hashes_and_code_version(tmp_path, cache_dir):
    import hashlib
    out = tmp_path / "run"
    proc = run_cli("backtest", "--mode", "eth_staking_only", "--start", "2024-10-01", "--end", "2024-10-14",
                   "--out", str(out), cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    files = summary["data_files"]
    assert "market_data/spot_prices/protocol_tokens/uniswapv3_EIGENWETH_1h_2024-10-05_2025-09-27.csv.gz" in files
    for rel, digest in files.items():
        assert hashlib.sha256((REPO_ROOT / "data" / rel).read_bytes()).hexdigest() == digest, rel
    assert summary["code_version"]["source"] in ("git", "package")
    assert summary["config"]["mode"]["staking"]["rewards_mode"] == "base_eigen"
    assert summary["overrides"]["start"] == "2024-10-01T00:00:00Z"
    with (out / "events.csv").open() as fh:
        assert "REWARD_PAYMENT" in {r["type"] for r in csv.DictReader(fh)}


def test_config_override_file_and_set_flag(tmp_path, cache_dir):
    override = tmp_path / "o.yaml"
    override.write_text("hedge:\n  margin_ratio_target: 0.4\n")
    out = tmp_path / "run"
    proc = run_cli("backtest", "--mode", "eth_basis", "--start", "2024-06-01", "--end", "2024-06-02",
                   "--config", str(override), "--set", "hedge.allocation.binance=1.0",
                   "--set", "hedge.allocation.bybit=0", "--set", "hedge.allocation.okx=0",
                   "--out", str(out), cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    ts = pd.read_csv(out / "timeseries.csv")
    assert "margin_ratio.okx" not in ts.columns               # all the hedge went to binance
    assert ts["margin_ratio.binance"].iloc[0] == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize("args, needle", [
    (["--mode", "no_such_mode"], "unknown mode 'no_such_mode'"),
    (["--mode", "eth_basis", "--start", "2019-01-01"], "2019-01-01"),
    (["--mode", "eth_basis", "--end", "2031-01-01"], "2031-01-01"),
    (["--mode", "eth_basis", "--start", "not-a-date"], "is not a date"),
    (["--mode", "eth_basis", "--start", "2024-06-02", "--end", "2024-06-01"], "is before --start"),
    (["--mode", "eth_basis", "--capital", "-5"], "--capital must be positive and finite, got -5"),
    (["--mode", "eth_basis", "--set", "hedge.allocation.binance=0.9"], "hedge.allocation"),
    (["--mode", "eth_basis", "--set", "hedge.bogus_key=1"], "bogus_key"),
])
def test_bad_input_is_one_clear_message(args, needle, tmp_path, cache_dir):
    proc = run_cli("backtest", *args, "--out", str(tmp_path / "o"), cache_dir=cache_dir)
    assert proc.returncode != 0
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "o" / "summary.json").exists()


@pytest.mark.parametrize("capital, needle", [
    ("inf", "--capital must be positive and finite, got inf"),
    ("nan", "--capital must be positive and finite, got nan"),
    ("-inf", "--capital must be positive and finite, got -inf"),
    ("1e30", "above the largest accepted capital 10,000,000,000 USDT"),
    ("1", "the minimum capital is 580 USDT"),
    ("200", "the minimum capital is 580 USDT"),
])
def test_unusable_capital_is_refused_before_any_output_exists(capital, needle, tmp_path, cache_dir):
    out = tmp_path / "o"
    proc = run_cli("backtest", "--mode", "eth_basis", f"--capital={capital}", "--out", str(out), cache_dir=cache_dir)
    assert proc.returncode == 2, proc.stdout
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()                                 # no empty results folder left behind


def test_a_stake_too_small_for_its_gas_is_refused(tmp_path, cache_dir):
    """eth_leveraged with 0.0001 ETH used to stake -0.0446 ETH; now the entry refuses the capital."""
    proc = run_cli("backtest", "--mode", "eth_leveraged", "--capital", "0.0001", "--out", str(tmp_path / "o"),
                   cache_dir=cache_dir)
    assert proc.returncode == 2 and "too small for eth_leveraged" in proc.stderr and "minimum capital" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_malformed_and_contradictory_yaml(tmp_path, cache_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hedge: [unclosed\n")
    proc = run_cli("backtest", "--mode", "eth_basis", "--config", str(bad), cache_dir=cache_dir)
    assert proc.returncode != 0 and "bad.yaml" in proc.stderr and "Traceback" not in proc.stderr
    contra = tmp_path / "contra.yaml"
    contra.write_text("hedge:\n  enabled: false\n")       # USDT class + staking needs the hedge
    proc = run_cli("backtest", "--mode", "usdt_market_neutral", "--config", str(contra), cache_dir=cache_dir)
    assert proc.returncode != 0 and "hedge.enabled" in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_output_directory(tmp_path, cache_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("backtest", "--mode", "pure_lending", "--out", str(blocker / "sub"), cache_dir=cache_dir)
    assert proc.returncode != 0 and "is a file" in proc.stderr and "Traceback" not in proc.stderr
