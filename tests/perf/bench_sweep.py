"""Sweep throughput: the same grid on the serial, process-pool and Ray backends (not a pass/fail test).

    python tests/perf/bench_sweep.py [--mode usdt_market_neutral] [--trials 100] [--workers 2]
                                     [--backends serial,process,ray]

Each backend gets a fresh trial store (nothing cached), the same grid of `--trials` configurations
over the mode's full window, and a warm aligned-data cache. Prints wall seconds, trials per second
and the mean engine time per trial.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bootstrap import DATA_DIR, backtest_service
from engine.lab.executors import SweepExecutor
from engine.lab.grid import Axis
from engine.lab.store import TrialStore
from engine.lab.sweep import plan_trials, run_sweep


def grid(mode: str, trials: int) -> list[Axis]:
    side = math.ceil(math.sqrt(trials))
    if mode in ("eth_leveraged", "usdt_market_neutral"):
        ltv = [round(0.80 + 0.11 * i / (side - 1), 4) for i in range(side)]
        other = ("rebalancing.hf_target", [round(1.03 + 0.05 * i / (side - 1), 4) for i in range(side)])
        return [Axis("leverage.target_ltv", tuple(ltv)), Axis(other[0], tuple(other[1]))]
    margin = [round(0.35 + 0.5 * i / (side - 1), 4) for i in range(side)]
    drift = [round(0.01 + 0.09 * i / (side - 1), 4) for i in range(side)]
    return [Axis("hedge.margin_ratio_target", tuple(margin)), Axis("rebalancing.delta_drift_trigger", tuple(drift))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="usdt_market_neutral")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="serial,process,ray")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        factory = functools.partial(backtest_service, DATA_DIR, Path(tmp) / "cache")
        service = factory()
        planned = plan_trials(service, args.mode, grid(args.mode, args.trials), [None], None)[: args.trials]
        service.run(planned[0].spec.request())        # warm the aligned-data cache (a cold build is not timed)
        print(f"{args.mode}: {len(planned)} trials over the full window, {args.workers} workers")
        for backend in args.backends.split(","):
            store = TrialStore(Path(tmp) / backend)
            executor = SweepExecutor(backend, factory, None if backend == "serial" else args.workers)
            started = time.perf_counter()
            result = run_sweep(planned, store, executor)
            wall = time.perf_counter() - started
            ok = [r for r in result.rows if r["status"] == "ok"]
            engine = sum(r["engine_seconds"] for r in ok) / max(len(ok), 1)
            per_trial = sum(r["trial_seconds"] for r in ok) / max(len(ok), 1)
            cpu = sum(r["trial_cpu_seconds"] for r in ok) / max(len(ok), 1)
            print(f"  {backend:8s} {wall:7.1f} s  {len(planned) / wall:6.2f} trials/s  "
                  f"{len(ok)} ok  mean engine {engine:.3f} s, mean trial {per_trial:.3f} s wall / {cpu:.3f} s CPU")
        print(f"  (load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores when done)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
