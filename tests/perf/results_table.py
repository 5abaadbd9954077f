"""Print the README's results tables: every mode with its shipped config, on the common window
(2024-05-12 01:00 .. 2025-09-18 23:00, the hours every mode has data for) and on each mode's full window.

Why a script and not hand-edited numbers: the table is the operator's first look at what the engine
claims, so it must come from the engine as it is, on the shipped data, with one command:

    python tests/perf/results_table.py            # both tables, markdown, to stdout

It runs the backtests in-process through the same service the CLI uses (results are not written).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from bootstrap import backtest_service  # noqa: E402
from engine.services.backtest import BacktestRequest  # noqa: E402

MODES = ("pure_lending", "btc_basis", "eth_basis", "eth_staking_only", "eth_leveraged",
         "usdt_market_neutral_no_leverage", "usdt_market_neutral")
COMMON_WINDOW = (pd.Timestamp("2024-05-12 01:00", tz="UTC"), pd.Timestamp("2025-09-18 23:00", tz="UTC"))
PRICE_MOVES = ("spot_price", "perp_mtm")      # the hedged price move, shown as one number


def _amount(value: float, currency: str) -> str:
    return f"{value:+,.2f}" if currency == "ETH" else f"{value:+,.0f}"


def _components(components: dict[str, float], currency: str) -> str:
    floor = 0.005 if currency == "ETH" else 0.5
    shown = sorted(((k, v) for k, v in components.items() if k not in PRICE_MOVES and abs(v) >= floor),
                   key=lambda kv: -abs(kv[1]))
    text = ", ".join(f"{k} {_amount(v, currency)}" for k, v in shown)
    moves = sum(components.get(k, 0.0) for k in PRICE_MOVES)
    if any(abs(components.get(k, 0.0)) >= floor for k in PRICE_MOVES):
        text += f"; spot+perp {_amount(moves, currency)}"
    return text


def _row(summary: dict) -> str:
    ccy = summary["currency"]
    window = f"{summary['start'][:10]} .. {summary['end'][:10]}"
    return (f"| {summary['mode']} | {window} | {ccy} | {summary['apr']:.2%} | "
            f"{_components(summary['pnl_components'], ccy)} | {summary['max_drawdown']:.2%} | "
            f"{summary['rebalances']} / {summary['liquidations']} | {summary['reconciliation_error']:.0e} |")


HEADER = ("| mode | window | ccy | APR | P&L components | max DD (mark-to-market) | rebalances / liquidations "
          "| recon. error |\n|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("common", "full"), help="print one table")
    args = parser.parse_args(argv)
    service = backtest_service(ROOT / "data")
    windows = {"common": COMMON_WINDOW, "full": (None, None)}
    for name, (start, end) in windows.items():
        if args.only and name != args.only:
            continue
        print(f"\n{name} window\n\n{HEADER}")
        for mode in MODES:
            result = service.run(BacktestRequest(mode=mode, start=start, end=end))
            print(_row(result.summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
