"""Sweeps: the three backends agree, workers load data once, and an interrupted sweep resumes
without recomputing anything (Ctrl-C and kill -9 of the real command)."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.lab.executors import SweepExecutor
from engine.lab.grid import parse_axes
from engine.lab.store import TrialStore
from engine.lab.sweep import plan_trials, run_sweep
from tests.conftest import REPO_ROOT

WINDOW = ("2025-01-01T00:00:00Z", "2025-01-31T23:00:00Z")
METRICS = ("apr", "max_drawdown", "final_value", "liquidations", "rebalances", "pnl.funding", "reconciliation_error")


@pytest.fixture(scope="module")
def factory(cache_dir):
    from bootstrap import DATA_DIR, backtest_service
    return functools.partial(backtest_service, DATA_DIR, cache_dir)


def _plan(service, grid=("hedge.margin_ratio_target=0.35,0.4", "rebalancing.delta_drift_trigger=0.02,0.05")):
    return plan_trials(service, "eth_basis", parse_axes(list(grid)), [None], None, {}, *WINDOW)


def _sweep(tmp_path, name, backend, factory, workers=None):
    service = factory()
    planned = _plan(service)
    store = TrialStore(tmp_path / name)
    started = time.perf_counter()
    result = run_sweep(planned, store, SweepExecutor(backend, factory, workers), table_dir=tmp_path / name)
    return result, time.perf_counter() - started


def test_serial_sweep_writes_the_table_and_a_rerun_computes_nothing(tmp_path, factory):
    result, _ = _sweep(tmp_path, "s", "serial", factory)
    assert result.computed == 4 and result.cached == 0
    frame = pd.read_parquet(tmp_path / "s" / "results.parquet")
    csv = pd.read_csv(tmp_path / "s" / "results.csv")
    assert list(frame.columns) == list(csv.columns)
    assert frame[["hedge.margin_ratio_target", "rebalancing.delta_drift_trigger"]].values.tolist() == \
        [[0.35, 0.02], [0.35, 0.05], [0.4, 0.02], [0.4, 0.05]]
    assert (frame["status"] == "ok").all() and frame["apr"].notna().all()
    assert {"apr", "sharpe", "max_drawdown", "min_margin_ratio", "liquidations", "pnl.funding",
            "reconciliation_error", "trial"} <= set(frame.columns)
    assert (frame["reconciliation_error"] < 0.01).all()
    assert frame["worker_data_loads"].max() == 1        # one worker, one data set: loaded once
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "s" / "trials").glob("*.json")}
    again, _ = _sweep(tmp_path, "s", "serial", factory)
    assert again.computed == 0 and again.cached == 4
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "s" / "trials").glob("*.json")}


@pytest.mark.parametrize("mode", ["eth_leveraged", "btc_basis"])
def test_a_mode_with_or_without_cex_venues_writes_its_table(tmp_path, factory, mode):
    """Per-venue summary figures become one column each; a mode with no CEX has none (an empty
    per-venue mapping once made the Parquet writer fail and the Lab wait forever)."""
    service = factory()
    key = "leverage.target_ltv=0.9,0.91" if mode == "eth_leveraged" else "hedge.margin_ratio_target=0.35,0.4"
    planned = plan_trials(service, mode, parse_axes([key]), [None], None, {}, *WINDOW)
    result = run_sweep(planned, TrialStore(tmp_path / mode), SweepExecutor("serial", factory, None),
                       table_dir=tmp_path / mode)
    frame = pd.read_parquet(tmp_path / mode / "results.parquet")
    assert result.computed == 2 and (frame["status"] == "ok").all()
    venue_columns = {c for c in frame.columns if c.startswith("min_margin_ratio_at_check.")}
    venues = () if mode == "eth_leveraged" else ("binance", "bybit", "okx")
    expected = {f"min_margin_ratio_at_check.{v}" for v in venues}
    assert venue_columns == expected
    assert all(frame[c].dtype.kind == "f" for c in venue_columns)


def test_process_pool_and_ray_give_the_serial_numbers(tmp_path, factory):
    serial, t_serial = _sweep(tmp_path, "serial", "serial", factory)
    process, t_process = _sweep(tmp_path, "process", "process", factory, workers=2)
    ray_result, t_ray = _sweep(tmp_path, "ray", "ray", factory, workers=2)
    print(f"4 trials: serial {t_serial:.2f} s, process x2 {t_process:.2f} s, ray x2 {t_ray:.2f} s")
    base = serial.frame().set_index("trial")
    for other in (process, ray_result):
        frame = other.frame().set_index("trial")
        assert other.computed == 4
        pd.testing.assert_frame_equal(frame.loc[base.index, list(METRICS)], base[list(METRICS)])
        # every worker loaded the one data set once, however many trials it ran
        assert (frame.groupby("worker_pid")["worker_data_loads"].max() == 1).all()
        assert os.getpid() not in set(frame["worker_pid"])          # ran in the workers, not here


def _cli_args(out: Path) -> list[str]:
    return [sys.executable, "main.py", "sweep", "--mode", "eth_basis", "--start", "2025-01-01", "--end", "2025-02-15",
            "--grid", "hedge.margin_ratio_target=0.35,0.4,0.45,0.5,0.55,0.6",
            "--grid", "rebalancing.delta_drift_trigger=0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08,0.09,0.1",
            "--out", str(out), "--no-progress"]


def _cli(out: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(_cli_args(out), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _stored(out: Path) -> list[Path]:
    return sorted((out / "trials").glob("*.json")) if (out / "trials").is_dir() else []


def _interrupt_after(out: Path, cache: Path, at_least: int, sig: int) -> subprocess.CompletedProcess:
    proc = _cli(out, cache)
    deadline = time.monotonic() + 120
    while len(_stored(out)) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep stored nothing in time"
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_an_interrupted_sweep_resumes_and_recomputes_nothing(tmp_path):
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    first = _interrupt_after(out, cache, 3, signal.SIGINT)              # Ctrl-C
    assert first.returncode == 130, first.stderr
    assert "interrupted" in first.stderr and "run the same command again to resume" in first.stderr
    after_ctrl_c = len(_stored(out))
    assert 3 <= after_ctrl_c < 60
    second = _interrupt_after(out, cache, after_ctrl_c + 3, signal.SIGKILL)   # kill -9: no cleanup at all
    assert second.returncode == -signal.SIGKILL
    survivors = {p: p.stat().st_mtime_ns for p in _stored(out)}
    assert after_ctrl_c + 3 <= len(survivors) < 60

    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    args = _cli_args(out)
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"60 trials: {60 - len(survivors)} computed, {len(survivors)} from the store" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in survivors} == survivors      # nothing recomputed
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 60 and (table["status"] == "ok").all() and table["trial"].is_unique
    again = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert "60 trials: 0 computed, 60 from the store" in again.stdout


def test_optuna_search_resumes_from_its_journal_and_retries_trials_left_running(tmp_path, monkeypatch, capsys):
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    import main as entry
    from engine.lab.optuna_search import open_study

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "optuna"
    args = ["sweep", "--mode", "eth_basis", "--start", "2025-01-01", "--end", "2025-01-31",
            "--grid", "hedge.margin_ratio_target=0.35..0.7", "--grid", "rebalancing.delta_drift_trigger=0.02,0.05",
            "--optuna", "3", "--objective", "apr", "--out", str(out), "--no-progress"]
    assert entry.main(args) == 0
    first = capsys.readouterr()
    assert "0 trials done, 3 to run" in first.err and "best of 3 trials: apr =" in first.out
    # a search killed mid-batch leaves a trial RUNNING in the journal
    name = first.err.split("optuna study ")[1].split(" ")[0]
    study = open_study(out, name, "maximize")
    stale = study.ask({"hedge.margin_ratio_target": FloatDistribution(0.35, 0.7),
                       "rebalancing.delta_drift_trigger": CategoricalDistribution([0.02, 0.05])})
    args[args.index("3")] = "5"
    assert entry.main(args) == 0
    second = capsys.readouterr()
    assert "3 trials done, 2 to run" in second.err
    trials = open_study(out, name, "maximize").get_trials(deepcopy=False)
    assert trials[stale.number].state.name == "FAIL"
    retried = [t for t in trials[stale.number + 1:] if t.params == stale.params]
    assert retried and retried[0].state.name == "COMPLETE"           # the stale values ran again first
    table = pd.read_csv(out / "results.csv")
    assert set(table["state"]) <= {"COMPLETE", "FAIL"} and (table["state"] == "COMPLETE").sum() == 5
