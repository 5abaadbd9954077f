"""`main.py sweep`: a grid of config overrides x scenarios, or an Optuna search, on a chosen backend.

    python main.py sweep --mode eth_leveraged --grid leverage.target_ltv=0.86,0.88,0.9 \\
        --grid rebalancing.hf_floor=1.01,1.015 --scenario none --scenario steth_june2022_7pct_3d \\
        --at 2024-12-06T15:00Z --backend process --workers 2

Results: DIR/trials/<key>.json (one per trial, the resume store), DIR/results.parquet and
DIR/results.csv (every summary metric plus the grid values). Rerunning the same command computes
nothing; an interrupted one computes only what is missing.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from engine.config import MODES, ConfigError, parse_cli_overrides
from engine.data import DataRangeError
from engine.lab.executors import BACKENDS, ExecutorError, SweepExecutor
from engine.lab.grid import GridError, parse_axes
from engine.lab.store import TrialStore
from engine.scenarios import ScenarioError, available_scenarios, load_scenario, parse_at
from engine.services.backtest import BacktestService

OBJECTIVES = {"apr": "maximize", "apy": "maximize", "sharpe": "maximize", "total_return": "maximize",
              "pnl": "maximize", "min_health_factor": "maximize", "max_drawdown": "minimize",
              "liquidations": "minimize", "volatility": "minimize"}


def add_sweep_arguments(subparsers: argparse._SubParsersAction,
                        service_factory: Callable[[], BacktestService]) -> None:
    p = subparsers.add_parser("sweep", help="run a grid (or an Optuna search) of config overrides x scenarios")
    p.add_argument("--mode", required=True, help=f"one of: {', '.join(MODES)}")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="an axis of config values (the dotted keys --set takes); repeatable. "
                        "With --optuna also KEY=LO..HI (a range)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help=f"scenario axis (repeatable; 'none' = unshocked): {', '.join(available_scenarios())}")
    p.add_argument("--at", metavar="TIME", help="hour the scenarios start, e.g. 2024-12-06T15:00Z (UTC)")
    p.add_argument("--start", help="first day, YYYY-MM-DD (UTC); default: the mode's data start")
    p.add_argument("--end", help="last day, YYYY-MM-DD (UTC, inclusive); default: the mode's data end")
    p.add_argument("--capital", type=float, help="initial capital in the share-class currency")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a fixed override for every trial (the grid wins on the same key)")
    p.add_argument("--backend", choices=BACKENDS, default="serial", help="where trials run (default: serial)")
    p.add_argument("--workers", type=int, help="worker processes / Ray actors (default: the CPU count)")
    p.add_argument("--address", metavar="RAY_ADDRESS", help="a Ray cluster to run on (ray backend)")
    p.add_argument("--optuna", type=int, metavar="N", help="an Optuna search of N trials over the axes instead of the grid")
    p.add_argument("--objective", choices=list(OBJECTIVES), help="the metric Optuna optimizes (with --optuna)")
    p.add_argument("--out", type=Path, help="results folder (default: results/sweeps/<mode>); reused to resume")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    p.set_defaults(func=lambda args: run_sweep_command(args, service_factory))


def iso(ts) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if ts is not None else None


def run_sweep_command(args: argparse.Namespace, service_factory: Callable[[], BacktestService]) -> int:
    from engine.cli import UsageError, _parse_day
    from engine.lab.sweep import NO_SCENARIO, plan_trials, run_sweep
    try:
        if args.mode not in MODES:
            raise UsageError(f"unknown mode {args.mode!r} (allowed: {', '.join(MODES)})")
        if args.optuna is None and args.objective is not None:
            raise UsageError("--objective is for --optuna searches")
        if args.optuna is not None and (args.optuna < 1 or args.objective is None):
            raise UsageError("--optuna N needs N >= 1 and --objective METRIC")
        axes = parse_axes(args.grid, allow_range=args.optuna is not None)
        if not axes:
            raise UsageError("give at least one --grid KEY=V1,V2,...")
        names = args.scenario or [NO_SCENARIO]
        scenarios = [None if n == NO_SCENARIO else load_scenario(n) for n in names]
        if any(s is not None for s in scenarios) and args.at is None:
            raise UsageError("scenarios need --at TIME (the hour they start)")
        at = parse_at(args.at).strftime("%Y-%m-%dT%H:%M:%SZ") if args.at else None
        start = _parse_day(args.start, "--start", False)
        end = _parse_day(args.end, "--end", True)
        base = parse_cli_overrides(args.set)
        out = args.out or Path("results") / "sweeps" / args.mode
        executor = SweepExecutor(args.backend, service_factory, args.workers, args.address)
        service = service_factory()
        if args.optuna is not None:
            from engine.lab.optuna_search import run_optuna
            return run_optuna(args, service, executor, axes, scenarios, at, base, iso(start), iso(end), out)
        planned = plan_trials(service, args.mode, axes, scenarios, at, base, iso(start), iso(end), args.capital)
        store = TrialStore(out)
    except (ConfigError, UsageError, GridError, ScenarioError, DataRangeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar = ProgressBar(enabled=not args.no_progress, label=f"sweep {args.mode}")
    try:
        result = run_sweep(planned, store, executor, progress=bar.update, table_dir=out)
    except KeyboardInterrupt:
        bar.close()
        finished = len(store.keys() & {p.key for p in planned})
        print(f"\ninterrupted: {finished} of {len(planned)} trials are stored in {out}/trials; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    except ExecutorError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    errors = sum(1 for r in result.rows if r["status"] != "ok")
    print(f"{len(planned)} trials: {result.computed} computed, {result.cached} from the store, "
          f"{result.invalid} invalid configurations, {errors} with errors in all; "
          f"{result.seconds:.1f} s on {args.backend}" + (f" x{args.workers}" if args.workers else ""))
    print(f"results: {result.files[0]} and {result.files[1]}" if result.files else "no results")
    return 0


class ProgressBar:
    """tqdm on stderr: trials done, rate and ETA; the cached trials are reported, not counted."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self._bar = None

    def update(self, p) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm
            print(f"{self.label}: {p.cached} trials from the store, {p.invalid} invalid configurations, "
                  f"{p.total} to run", file=sys.stderr)
            self._bar = tqdm(total=p.total, unit="trial", file=sys.stderr, dynamic_ncols=True)
            return
        self._bar.update(p.done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
