"""Shared fixtures: one backtest service per session with its cache in a temp dir, so tests never
depend on (or write to) the developer's user cache."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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
