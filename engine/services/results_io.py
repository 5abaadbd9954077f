"""Write a backtest's results: summary.json, timeseries.csv, events.csv, balance_sheet.csv.

Layout: every run gets its own folder `<results>/<mode>/<run id>/`, and `<results>/<mode>/latest`
points at the newest one. `latest` is a relative symlink where the OS allows one (Linux, macOS;
Windows only with developer mode), otherwise a one-line text file holding the run id; either way it
is replaced atomically. A run never writes into a folder that already holds files unless the caller
asks for it (`overwrite`), so no earlier result is lost silently.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from engine.domain.events import EVENT_COLUMNS
from engine.domain.pnl import COMPONENTS
from engine.services.backtest import BacktestResult

RESULT_FILES = ("summary.json", "timeseries.csv", "events.csv", "balance_sheet.csv")
LATEST = "latest"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ResultsWriteError(OSError):
    """The output directory cannot be created or written, or would overwrite an earlier run."""


def timeseries_frame(result: BacktestResult) -> pd.DataFrame:
    out = result.output
    cols: dict[str, np.ndarray] = {
        "value": out.values,                        # mark-to-market: LSTs at their market rate
        "value_protocol": out.values_protocol,      # LSTs at the oracle rate (what AAVE counts)
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
        cols["lst_market_over_oracle"] = result.lst_peg
    cols["reconciliation_error"] = out.reconciliation
    frame = pd.DataFrame(cols, index=result.timestamps)
    frame.index.name = "timestamp"
    return frame


def balance_sheet_frame(result: BacktestResult) -> pd.DataFrame:
    frame = pd.DataFrame(result.balance_sheet().columns, index=result.timestamps)
    frame.index.name = "timestamp"
    return frame


def check_output_dir(out_dir: Path, overwrite: bool = False) -> None:
    """Raise ResultsWriteError when `out_dir` cannot take a run: a file is in the way, a parent is
    not writable, or it already holds files and `overwrite` was not asked for."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ResultsWriteError(f"{out_dir} is a file, not a directory")
        if any(out_dir.iterdir()) and not overwrite:
            raise ResultsWriteError(
                f"{out_dir} already holds files (an earlier run?); choose an empty or new folder, "
                "or ask to overwrite it")
        probe = out_dir
    else:
        probe = out_dir.parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise ResultsWriteError(f"{out_dir}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ResultsWriteError(f"{out_dir}: {probe} is not writable")


def write_results(result: BacktestResult, out_dir: Path, overwrite: bool = False) -> list[Path]:
    """The four result files in `out_dir` (created). A folder that already holds files is refused
    unless `overwrite`; then the four files are replaced and nothing else in it is touched."""
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = out_dir / "summary.json"
        summary.write_text(json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
        ts = out_dir / "timeseries.csv"
        timeseries_frame(result).to_csv(ts, date_format=DATE_FORMAT, float_format="%.10g")
        ev = out_dir / "events.csv"
        with ev.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EVENT_COLUMNS)
            writer.writerows(e.as_row() for e in result.events)
        bs = out_dir / "balance_sheet.csv"
        balance_sheet_frame(result).to_csv(bs, date_format=DATE_FORMAT, float_format="%.10g")
    except OSError as exc:
        raise ResultsWriteError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from exc
    return [summary, ts, ev, bs]


def run_folder(results_root: Path, mode: str, run_id: str) -> Path:
    return Path(results_root) / mode / run_id


def write_run(result: BacktestResult, results_root: Path) -> tuple[Path, str]:
    """Write into `<results_root>/<mode>/<run id>/` and point `latest` at it.

    Returns (the run folder, how `latest` points: "symlink" or "pointer file")."""
    folder = run_folder(results_root, result.summary["mode"], result.run_id)
    if folder.exists():
        raise ResultsWriteError(f"{folder} already exists; run ids are unique, so something else made it")
    write_results(result, folder)
    try:
        kind = point_latest(folder.parent, folder.name)
    except OSError as exc:
        raise ResultsWriteError(f"results written to {folder}, but {folder.parent / LATEST} could not be "
                                f"updated: {exc.strerror or exc}") from exc
    return folder, kind


def point_latest(mode_dir: Path, run_id: str) -> str:
    """Make `mode_dir/latest` name `run_id`, atomically: a relative symlink, or, where the OS refuses
    symlinks, a text file holding the run id. Returns which one it made."""
    link = mode_dir / LATEST
    if link.is_dir() and not link.is_symlink():
        raise OSError(f"{link} is a real folder; move it away so it can point at the latest run")
    tmp = mode_dir / f".{LATEST}.{os.getpid()}.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(run_id, tmp, target_is_directory=True)
        kind = "symlink"
    except (OSError, NotImplementedError):
        fd, name = tempfile.mkstemp(dir=mode_dir, prefix=f".{LATEST}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(run_id + "\n")
        tmp = Path(name)
        kind = "pointer file"
    os.replace(tmp, link)
    return kind


def resolve_latest(mode_dir: Path) -> Path | None:
    """The run folder `latest` points at (symlink or pointer file), or None."""
    link = Path(mode_dir) / LATEST
    if link.is_symlink():
        return link.resolve()
    if link.is_file():
        run_id = link.read_text().strip()
        return (link.parent / run_id) if run_id else None
    return None
