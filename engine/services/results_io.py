"""Write a backtest's results: summary.json, timeseries.csv, events.csv (the CLI and app export)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from engine.domain.events import EVENT_COLUMNS
from engine.domain.pnl import COMPONENTS
from engine.services.backtest import BacktestResult


class ResultsWriteError(OSError):
    """The output directory cannot be created or written."""


def timeseries_frame(result: BacktestResult) -> pd.DataFrame:
    out = result.output
    cols: dict[str, np.ndarray] = {
        "value": out.values,
        "pnl_cumulative": out.values - out.initial_value,
    }
    for i, name in enumerate(COMPONENTS):
        cols[f"pnl.{name}"] = out.components[:, i]
    cols["net_delta_onchain_eth"] = out.delta_onchain
    cols["net_delta_cex"] = out.delta_cex
    cols["net_delta"] = out.delta_onchain + out.delta_cex
    cols["health_factor"] = out.health_factor
    cols["ltv"] = out.ltv
    for venue, arr in out.margin_ratio.items():
        cols[f"margin_ratio.{venue}"] = arr
    cols["hedge_notional_usd"] = out.hedge_notional
    cols["eth_price"] = result.eth_price
    if result.lst_peg is not None:
        cols["lst_peg"] = result.lst_peg
    cols["reconciliation_error"] = out.reconciliation
    frame = pd.DataFrame(cols, index=result.timestamps)
    frame.index.name = "timestamp"
    return frame


def write_results(result: BacktestResult, out_dir: Path) -> list[Path]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = out_dir / "summary.json"
        summary.write_text(json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
        ts = out_dir / "timeseries.csv"
        timeseries_frame(result).to_csv(ts, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.10g")
        ev = out_dir / "events.csv"
        with ev.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EVENT_COLUMNS)
            writer.writerows(e.as_row() for e in result.events)
    except OSError as exc:
        raise ResultsWriteError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from exc
    return [summary, ts, ev]
