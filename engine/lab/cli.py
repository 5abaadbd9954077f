"""`main.py stress` and `main.py sweep`: the lab from the command line.

Bad input exits 2 with one clear message (no traceback), like `main.py backtest`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from engine.cli import UsageError, _parse_day
from engine.config import MODES, ConfigError, parse_cli_overrides
from engine.data import DataRangeError
from engine.scenarios import ScenarioError, available_scenarios, load_scenario, parse_at
from engine.services.backtest import BacktestRequest, BacktestService


def add_stress_parser(subparsers: argparse._SubParsersAction,
                      service_factory: Callable[[], BacktestService]) -> None:
    p = subparsers.add_parser("stress", help="run a mode under stress scenarios and compare with its unshocked run")
    p.add_argument("--mode", required=True, help=f"one of: {', '.join(MODES)}")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--scenario", action="append", metavar="NAME",
                       help=f"a scenario (repeatable): {', '.join(available_scenarios())}")
    which.add_argument("--all", action="store_true", help="every scenario in configs/scenarios")
    p.add_argument("--at", required=True, metavar="TIME", help="hour the shocks start, e.g. 2025-01-15T00:00Z (UTC)")
    _common_run_arguments(p)
    p.add_argument("--out", type=Path, help="folder for stress.json and stress.csv "
                                            "(default: results/stress/<mode>_at_<hour>_<now>)")
    p.set_defaults(func=lambda args: run_stress_command(args, service_factory))


def _common_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", help="first day, YYYY-MM-DD (UTC); default: the mode's data start")
    p.add_argument("--end", help="last day, YYYY-MM-DD (UTC, inclusive); default: the mode's data end")
    p.add_argument("--capital", type=float, help="initial capital in the share-class currency")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set leverage.target_ltv=0.88")


def _base_request(args: argparse.Namespace) -> BacktestRequest:
    if args.mode not in MODES:
        raise UsageError(f"unknown mode {args.mode!r} (allowed: {', '.join(MODES)})")
    if args.capital is not None and not args.capital > 0:
        raise UsageError(f"--capital must be positive, got {args.capital}")
    return BacktestRequest(mode=args.mode, start=_parse_day(args.start, "--start", False),
                           end=_parse_day(args.end, "--end", True), capital=args.capital,
                           cli_overrides=parse_cli_overrides(args.set))


def _fail(exc: Exception) -> int:
    if isinstance(exc, ConfigError):
        print(f"error: invalid configuration:\n{exc}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 2


def run_stress_command(args: argparse.Namespace, service_factory: Callable[[], BacktestService]) -> int:
    from engine.lab.stress import default_out_dir, format_report, run_stress, write_report
    try:
        request = _base_request(args)
        at = parse_at(args.at)
        names = available_scenarios() if args.all else args.scenario
        scenarios = [load_scenario(name) for name in names]
        out_dir = args.out or default_out_dir(args.mode, at)
        if (out_dir / "stress.json").exists():
            raise UsageError(f"--out {out_dir}: already holds a stress report (stress.json); choose another folder")
        report = run_stress(service_factory(), request, scenarios, at,
                            progress=lambda name: print(f"  running {name} ...", file=sys.stderr))
        paths = write_report(report, out_dir)
    except (ConfigError, UsageError, ScenarioError, DataRangeError, ValueError, OSError) as exc:
        return _fail(exc)
    print(format_report(report))
    print(f"report written to {paths[0]} and {paths[1]}")
    return 0


def add_sweep_parser(subparsers: argparse._SubParsersAction,
                     service_factory: Callable[[], BacktestService]) -> None:
    """Registered here; defined in engine.lab.sweep_cli (kept apart: it is the larger command)."""
    from engine.lab.sweep_cli import add_sweep_arguments
    add_sweep_arguments(subparsers, service_factory)
