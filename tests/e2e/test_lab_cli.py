"""The lab commands from the shell: scenario backtests, stress reports and sweeps; bad input exits 2
with one clear line and no traceback."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.e2e.test_cli import run_cli

WINDOW = ("--start", "2024-12-01", "--end", "2025-01-31")


def test_backtest_with_a_scenario_records_it_in_the_summary(tmp_path, cache_dir):
    out = tmp_path / "run"
    proc = run_cli("backtest", "--mode", "eth_leveraged", *WINDOW, "--scenario", "oracle_capo_misprice_2_85pct",
                   "--at", "2025-01-15T00:00Z", "--set", "leverage.target_ltv=0.925", "--out", str(out),
                   cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert "scenario                   oracle_capo_misprice_2_85pct at 2025-01-15T00:00:00Z" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["liquidations"] == 1 and summary["scenario"]["at"] == "2025-01-15T00:00:00Z"
    assert summary["scenario"]["shocks"][0]["columns"] == ["lst.weETH.oracle"]
    assert summary["reconciliation_error"] < 0.01


@pytest.mark.parametrize("args, message", [
    (("--scenario", "eth_crash_30pct_4h", "--at", "2026-01-01T00:00Z"), "outside the run's window"),
    (("--scenario", "eth_crash_30pct_4h"), "needs --at TIME"),
    (("--at", "2025-01-15T00:00Z"), "--at needs --scenario"),
    (("--scenario", "no_such", "--at", "2025-01-15T00:00Z"), "unknown scenario 'no_such' (allowed: "),
    (("--scenario", "eth_crash_30pct_4h", "--at", "2025-01-15T00:30Z"), "not on the hour"),
    (("--scenario", "eth_borrow_rate_12pct_7d", "--at", "2025-01-15T00:00Z"), "changes nothing this run reads"),
])
def test_bad_scenario_input_exits_2_with_one_clear_line(tmp_path, cache_dir, args, message):
    proc = run_cli("backtest", "--mode", "eth_basis", *WINDOW, *args, "--out", str(tmp_path / "x"),
                   cache_dir=cache_dir)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")


def test_stress_prints_the_table_and_writes_json_and_csv(tmp_path, cache_dir):
    out = tmp_path / "stress"
    args = ("stress", "--mode", "eth_leveraged", *WINDOW, "--scenario", "oracle_capo_misprice_2_85pct",
            "--scenario", "funding_minus_50apr_14d", "--at", "2025-01-15T00:00Z",
            "--set", "leverage.target_ltv=0.925", "--out", str(out))
    proc = run_cli(*args, cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    capo = next(line for line in lines if line.startswith("oracle_capo_misprice_2_85pct"))
    assert "1 on aave_v3 (first +0 h)" in capo
    assert "not applicable" in next(line for line in lines if line.startswith("funding_minus_50apr_14d"))
    report = json.loads((out / "stress.json").read_text())
    assert report["overrides"] == {"leverage.target_ltv": 0.925}
    row = next(r for r in report["rows"] if r["scenario"] == "oracle_capo_misprice_2_85pct")
    assert row["shocked"]["liquidations"][0]["venue"] == "aave_v3" and row["pnl_diff"]["liquidation"] < 0
    table = pd.read_csv(out / "stress.csv")
    assert list(table["scenario"]) == ["(unshocked)", "oracle_capo_misprice_2_85pct", "funding_minus_50apr_14d"]
    again = run_cli(*args, cache_dir=cache_dir)
    assert again.returncode == 2 and "already holds a stress report" in again.stderr


@pytest.mark.parametrize("args, message", [
    (("--grid", "leverage.target_ltv"), "expected key=v1,v2"),
    (("--grid", "leverage.target_ltv=0.8..0.9"), "needs --optuna"),
    (("--grid", "leverage.target_ltv=0.8,0.9", "--scenario", "eth_crash_30pct_4h"), "scenarios need --at"),
    (("--grid", "leverage.target_ltv=0.8,0.9", "--optuna", "5"), "--optuna N needs N >= 1 and --objective"),
    (("--grid", "leverage.target_ltv=0.8,0.9", "--backend", "serial", "--address", "x:1"), "--address is for"),
    ((), "at least one --grid"),
])
def test_bad_sweep_input_exits_2_with_one_clear_line(tmp_path, cache_dir, args, message):
    proc = run_cli("sweep", "--mode", "eth_leveraged", *WINDOW, *args, "--out", str(tmp_path / "s"),
                   cache_dir=cache_dir)
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr and "Traceback" not in proc.stderr
