"""`main.py backtest`: run one mode headless, print a summary table, write the results directory.

Each run gets its own folder, `results/<mode>/<run id>/`, with `results/<mode>/latest` pointing at
the newest (see engine/services/results_io.py). `--out DIR` names the run folder itself instead: it
must be new or empty, so a second run can never overwrite the first by accident; `--overwrite` says
it may (the result files are replaced, nothing else in the folder is touched).

Bad input (unknown mode, dates outside the data, malformed or contradictory YAML, unwritable output)
exits non-zero with one clear message and no traceback.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from engine.config import MODES, ConfigError, parse_cli_overrides
from engine.data import DataRangeError
from engine.domain.pnl import COMPONENTS
from engine.services.backtest import BacktestRequest, BacktestResult, BacktestService
from engine.services.results_io import (
    LATEST,
    RESULT_FILES,
    ResultsWriteError,
    check_output_dir,
    write_results,
    write_run,
)

RESULTS_ROOT = Path("results")


class UsageError(ValueError):
    """Bad command-line input."""


def add_backtest_parser(subparsers: argparse._SubParsersAction,
                        service_factory: Callable[[], BacktestService]) -> None:
    p = subparsers.add_parser("backtest", help="run a backtest headless on the shipped historical data")
    p.add_argument("--mode", required=True, help=f"one of: {', '.join(MODES)}")
    p.add_argument("--start", help="first day, YYYY-MM-DD (UTC); default: the mode's data start")
    p.add_argument("--end", help="last day, YYYY-MM-DD (UTC, inclusive); default: the mode's data end")
    p.add_argument("--capital", type=float, help="initial capital in the share-class currency")
    p.add_argument("--config", type=Path, help="override YAML deep-merged over the mode file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set hedge.margin_ratio_target=0.3 (wins over --config)")
    p.add_argument("--out", type=Path,
                   help="write this run's files into DIR itself (DIR must be new or empty, see --overwrite); "
                        "default: ./results/<mode>/<run id>/ with ./results/<mode>/latest pointing at it")
    p.add_argument("--overwrite", action="store_true",
                   help="with --out: replace the result files in a folder that already holds files")
    add_scenario_arguments(p)
    p.set_defaults(func=lambda args: run_backtest_command(args, service_factory))


def add_scenario_arguments(p: argparse.ArgumentParser) -> None:
    from engine.scenarios import available_scenarios
    p.add_argument("--scenario", metavar="NAME",
                   help=f"stress scenario from configs/scenarios ({', '.join(available_scenarios())})")
    p.add_argument("--at", metavar="TIME", help="hour the scenario starts, e.g. 2025-01-15T00:00Z (UTC)")


def _parse_day(text: str | None, flag: str, end: bool) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        day = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise UsageError(f"{flag} {text!r} is not a date (expected YYYY-MM-DD)") from None
    if day.tzinfo is None:
        day = day.tz_localize("UTC")
    if end and len(text) <= 10:
        day = day + pd.Timedelta(hours=23)     # an end day includes its last hour
    return day


def run_backtest_command(args: argparse.Namespace, service_factory: Callable[[], BacktestService]) -> int:
    try:
        if args.mode not in MODES:
            raise UsageError(f"unknown mode {args.mode!r} (allowed: {', '.join(MODES)})")
        if args.capital is not None and not (math.isfinite(args.capital) and args.capital > 0):
            # The share class's own upper bound is checked with the config (engine.config.capital),
            # still before anything is run or written.
            raise UsageError(f"--capital must be positive and finite, got {args.capital:g}")
        if args.config is not None:
            _check_config_file(args.config)
        scenario, at = scenario_from_args(args)
        request = BacktestRequest(
            mode=args.mode, start=_parse_day(args.start, "--start", False),
            end=_parse_day(args.end, "--end", True), capital=args.capital,
            override_file=args.config, cli_overrides=parse_cli_overrides(args.set),
            scenario=scenario, scenario_at=at,
        )
        if request.start is not None and request.end is not None and request.end < request.start:
            raise UsageError(f"--end {args.end} is before --start {args.start}")
        if args.overwrite and args.out is None:
            raise UsageError("--overwrite applies to --out DIR only (default run folders are never reused)")
        if args.out is not None:
            try:
                check_output_dir(args.out, args.overwrite)
            except ResultsWriteError as exc:
                hint = "" if args.overwrite or not args.out.is_dir() else " (--overwrite replaces its result files)"
                raise UsageError(f"--out {exc}{hint}") from None
        else:
            check_output_dir(RESULTS_ROOT / args.mode, overwrite=True)   # a folder of earlier runs: writable?
        result = service_factory().run(request, on_data=_warn_substitutes)
        if args.out is not None:
            write_results(result, args.out, overwrite=args.overwrite)
            out_dir, latest = args.out, ""
        else:
            out_dir, kind = write_run(result, RESULTS_ROOT)
            latest = f"; {RESULTS_ROOT / args.mode / LATEST} points at it ({kind})"
    except ConfigError as exc:
        print(f"error: {exc.describe()}", file=sys.stderr)
        return 2
    except (UsageError, DataRangeError, ResultsWriteError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in result.config_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for reason in result.summary["rewards"].get("excluded_reasons", []):
        print(f"warning: reward excluded: {reason}", file=sys.stderr)
    for warning in (result.summary.get("scenario") or {}).get("warnings", []):
        print(f"warning: scenario: {warning}", file=sys.stderr)
    print(format_summary(result))
    print(f"results written to {out_dir}/ ({', '.join(RESULT_FILES)}){latest}")
    return 0


def _warn_substitutes(data) -> None:
    for warning in data.substitute_warnings():
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def _series_line(p: dict) -> str:
    parts = [f"{n:,} {source}" for source, n in p["substitutes"].items()]
    if p["forward_filled"]:
        parts.append(f"{p['forward_filled']:,} forward-filled")
    text = f"{p['series']}: {p['own']:,} of {p['total']:,} {p['unit']} own"
    if parts:
        text += f"; substitutes {', '.join(parts)} ({p['substitute_share']:.1%})"
    if p["cleaning"]:
        text += "; cleaning: " + ", ".join(f"{step} {n:,}" for step, n in p["cleaning"].items())
    return text


def _check_config_file(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"--config {path}: is a folder; give the override YAML file inside it")
    if not path.exists():
        raise UsageError(f"--config {path}: no such file")
    if not path.is_file():
        raise UsageError(f"--config {path}: not a regular file (a device, pipe or socket)")


def scenario_from_args(args: argparse.Namespace):
    """(Scenario, --at hour) from --scenario/--at, or (None, None); either alone is a usage error."""
    from engine.scenarios import load_scenario, parse_at
    if args.scenario is None and args.at is None:
        return None, None
    if args.scenario is None:
        raise UsageError("--at needs --scenario NAME (the hour a scenario starts)")
    if args.at is None:
        raise UsageError(f"--scenario {args.scenario} needs --at TIME (the hour it starts, e.g. 2025-01-15T00:00Z)")
    return load_scenario(args.scenario), parse_at(args.at)



def format_summary(result: BacktestResult) -> str:
    s = result.summary
    cur = s["currency"]
    dp = 2 if cur == "USDT" else 6

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x * 100:.2f}%"

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:,.{dp}f} {cur}"

    def opt(x: float | None, fmt: str = "{:.4f}") -> str:
        return "n/a" if x is None else fmt.format(x)

    rows = [
        ("mode", f"{s['mode']} ({s['share_class']}, {cur})"),
        *([("scenario", f"{s['scenario']['name']} at {s['scenario']['at']}")] if s.get("scenario") else []),
        ("window", f"{s['start']} .. {s['end']} ({s['hours']} h)"),
        ("run id", s["run_id"]),
        ("initial value", num(s["initial_value"])),
        ("final value", f"{num(s['final_value'])} (LSTs at market; at the oracle: "
                        f"{num(s['final_value_protocol'])})"),
        ("exit value", f"{num(s['exit_value'])} (after unwinding every leg at the last hour's costs)"),
        ("P&L", num(s["pnl"])),
        ("APR / APY", f"{pct(s['apr'])} / {pct(s['apy'])}"),
        ("volatility / Sharpe", f"{pct(s['volatility'])} / {opt(s['sharpe'], '{:.2f}')}"),
        ("max drawdown", f"{pct(s['max_drawdown'])} (LSTs at the oracle: {pct(s['max_drawdown_protocol'])})"),
        ("min health factor", opt(s["min_health_factor"])),
        ("min margin ratio", opt(s["min_margin_ratio"]) + _at_check(s.get("min_margin_ratio_at_check") or {})),
        ("liquidations / rebalances", f"{s['liquidations']} / {s['rebalances']}"),
        ("reconciliation error", f"{s['reconciliation_error']:.3g} {cur}"),
        ("engine time", f"{s['engine_seconds']:.3f} s, {s['engine_cpu_seconds']:.3f} s CPU "
                        f"({s['hours_per_second']:,.0f} h/s)"),
    ]
    rewards = s["rewards"]
    if "paid" in rewards:
        text = (f"{rewards['mode']}: {rewards['paid']} payments, net {num(rewards['net_value'])} "
                f"(gross {num(rewards['gross_value'])}, sale cost {num(rewards['sale_cost'])}, "
                f"gas {num(rewards['gas'])}); {rewards['excluded']} excluded, {rewards['unclaimed']} unclaimed")
        rows.append(("rewards", text))
    rows += [(f"  pnl.{k}", num(s["pnl_components"][k])) for k in COMPONENTS if s["pnl_components"][k]]
    rows += [("data", _series_line(p)) for p in s["data_fallbacks"].values() if p["substituted"] or p["cleaning"]]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _at_check(lows: dict[str, float]) -> str:
    """The per-venue minimum before each hour's rebalance, beside the after-rebalance figure."""
    if not lows:
        return ""
    return " after rebalancing; before: " + ", ".join(f"{v} {x:.4f}" for v, x in lows.items())
