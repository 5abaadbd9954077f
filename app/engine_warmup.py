"""Build the engine's data cache in a child process.

A first run parses the shipped CSVs with pandas' C parser, which holds Python's GIL for long
stretches: on the worker *thread* that froze the UI for 0.5-1 s. Parsing in a separate process
(spawned: no Qt state is forked) keeps the UI thread's GIL free; the worker thread then loads the
warm cache in milliseconds. Warm runs skip the child entirely.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from engine.services.backtest import BacktestRequest


def warm(data_dir: Path, cache_dir: Path, request: BacktestRequest) -> None:
    """Child process: the window and the aligned frame of `request`, written to the shared cache."""
    from engine.data import HistoricalDataProvider
    from engine.services.backtest import BacktestService
    from engine.services.run_params import build_run_params, data_requirements

    service = BacktestService(HistoricalDataProvider(data_dir, cache_dir), world_factory=None,
                              rejected_exc=RuntimeError)
    resolved, params, _, _ = service.prepare(request)
    service.provider.available_window(data_requirements(build_run_params(resolved, request.capital)))


class CacheWarmer:
    """One spawned worker process, started on first need and reused."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def warm(self, data_dir: Path, cache_dir: Path, request: BacktestRequest) -> None:
        """Blocks the calling (worker) thread until the child has written the cache; waiting on
        the future releases the GIL. Errors re-raise here with their original type."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._pool.submit(warm, data_dir, cache_dir, request).result()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
