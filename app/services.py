"""The services the window runs on, built once by bootstrap (the one place that wires venue
implementations into engine services) and handed to `MainWindow`: the app never builds its own."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.controllers.venues import VenueAccess
from engine.services.backtest import BacktestService
from engine.services.live import LiveTradingService


@dataclass(frozen=True)
class AppServices:
    backtest: BacktestService
    live: LiveTradingService
    venues: VenueAccess
    #: builds a BacktestService in a Lab worker process (picklable: spawned workers and Ray actors)
    lab_worker_factory: Callable[[], BacktestService]
