"""Backtest benchmark (run by hand, not part of pass/fail):

    python tests/perf/bench_backtest.py [--modes m1,m2] [--repeat 3]

For every mode over its full data window it prints the aligned-data load time cold (empty cache) and
warm (cache hit), and the engine time and simulated hours per second (best of --repeat runs).
"""
from __future__ import annotations

import argparse
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
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'mode':34} {'hours':>6} {'cold load':>10} {'warm load':>10} {'engine':>9} {'hours/s':>10} {'recon err':>10}")
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
            best = None
            for _ in range(args.repeat):
                result = service.run(req)
                secs = result.summary["engine_seconds"]
                best = secs if best is None else min(best, secs)
            hours = result.summary["hours"]
            print(f"{mode:34} {hours:6d} {cold:9.3f}s {warm:9.3f}s {best:8.3f}s {hours / best:10,.0f} "
                  f"{result.summary['reconciliation_error']:10.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
