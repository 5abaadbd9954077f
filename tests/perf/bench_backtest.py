"""Backtest benchmark (run by hand, not part of pass/fail):

    python tests/perf/bench_backtest.py [--modes m1,m2] [--repeat 7] [--stepwise]

For every mode over its full data window it prints the aligned-data load time cold (empty cache) and
warm (cache hit), and the engine time: CPU seconds of the simulation thread and wall seconds, each
the best of --repeat runs, and simulated hours per CPU second. The machine is shared: wall time
counts the neighbours' work too, so CPU time is the figure to compare (and even that grows a little
when the other cores are busy; take the best of several runs).

`events` is the time to build the run's event objects the first time they are read (deferred: a
sweep never reads them, the CLI's export and the app do). `--stepwise` steps every hour, the
reference the closed-form quiet stretches are tested against (what the engine did before them).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bootstrap import DATA_DIR, backtest_service  # noqa: E402
from engine.config import MODES  # noqa: E402
from engine.services.backtest import BacktestRequest  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--stepwise", action="store_true", help="step every hour (the reference path)")
    args = ap.parse_args()
    print(f"{'mode':32} {'hours':>6} {'cold load':>9} {'warm load':>9} {'engine CPU':>10} {'wall':>7} "
          f"{'hours/CPU s':>11} {'events':>7} {'recon err':>9}")
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as cache:
            service = backtest_service(DATA_DIR, Path(cache))
            req = BacktestRequest(mode=mode)
            t0 = time.perf_counter()
            service.prepare(req)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            service.prepare(req)
            warm = time.perf_counter() - t0
            cpu = wall = events = float("inf")
            for _ in range(args.repeat):
                result = service.run(req, stepwise=args.stepwise)
                cpu = min(cpu, result.summary["engine_cpu_seconds"])
                wall = min(wall, result.summary["engine_seconds"])
                t0 = time.thread_time()
                len(result.events)                  # the log's length needs no event built
                result.output.events.events         # building them does
                events = min(events, time.thread_time() - t0)
            hours = result.summary["hours"]
            print(f"{mode:32} {hours:6d} {cold:8.3f}s {warm:8.3f}s {cpu:9.4f}s {wall:6.3f}s {hours / cpu:11,.0f} "
                  f"{events:6.3f}s {result.summary['reconciliation_error']:9.1e}")
    print(f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores when done"
          f"{'; stepwise' if args.stepwise else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
