"""Wiring in one place (DESIGN §2): which venue implementations back the engine's ports.

main.py (headless commands) and the app both build their services here, so a backtest in the GUI and
on the command line run exactly the same code.
"""
from __future__ import annotations

from pathlib import Path

from engine.data import HistoricalDataProvider
from engine.services.backtest import BacktestService
from venues.simulated.venue import ExecutionRejected, SimulatedVenues

REPO_ROOT = Path(__file__).resolve().parent
DATA_DIR = REPO_ROOT / "data"


def backtest_service(data_dir: Path = DATA_DIR, cache_dir: Path | None = None) -> BacktestService:
    provider = HistoricalDataProvider(data_dir, cache_dir)
    return BacktestService(provider, SimulatedVenues, ExecutionRejected)
