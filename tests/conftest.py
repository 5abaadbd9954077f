"""Shared fixtures: one backtest service per session with its cache in a temp dir, so tests never
depend on (or write to) the developer's user cache."""
from __future__ import annotations

import faulthandler
import os
import sys
import threading
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXIT_GRACE_S = 60.0


def pytest_unconfigure(config) -> None:
    """Bound the interpreter's exit. It joins every non-daemon thread before exiting, so one stuck
    worker (a blocking call that never returns) hangs the run forever after the last test passed,
    which is how a CI run once timed out. A daemon watchdog keeps running during that join: if the
    process is still alive after the grace period, it prints every thread's stack and exits non-zero."""
    def overdue() -> None:
        sys.__stderr__.write(f"\ntests/conftest.py: the test process did not exit within {EXIT_GRACE_S:g} s "
                             "after the session ended; a thread is stuck (stacks below)\n")
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        sys.__stderr__.flush()
        os._exit(3)

    watchdog = threading.Timer(EXIT_GRACE_S, overdue)
    watchdog.daemon = True
    watchdog.start()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("aligned-cache")


@pytest.fixture(scope="session")
def backtest_service(cache_dir):
    from bootstrap import DATA_DIR, backtest_service as make
    return make(DATA_DIR, cache_dir)


@pytest.fixture(scope="session")
def full_runs(backtest_service):
    """Every mode over its full data window, run once per session and shared by the e2e tests."""
    from engine.config import MODES
    from engine.services.backtest import BacktestRequest
    return {mode: backtest_service.run(BacktestRequest(mode=mode)) for mode in MODES}
