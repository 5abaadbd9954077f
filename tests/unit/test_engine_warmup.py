"""The app's cache warmer builds exactly the cache a later in-process run reads (no Qt needed)."""
from __future__ import annotations

import pandas as pd

from app.engine_warmup import CacheWarmer
from bootstrap import DATA_DIR, backtest_service
from engine.services.backtest import BacktestRequest


def test_child_process_warms_the_cache_the_run_then_hits(tmp_path):
    service = backtest_service(DATA_DIR, tmp_path)
    request = BacktestRequest(mode="eth_basis", start=pd.Timestamp("2024-06-01", tz="UTC"),
                              end=pd.Timestamp("2024-06-03 23:00", tz="UTC"))
    assert not service.data_cached(request)
    warmer = CacheWarmer()
    try:
        warmer.warm(DATA_DIR, tmp_path, request)          # a spawned process parses the CSVs
    finally:
        warmer.shutdown()
    assert service.data_cached(request)
    result = service.run(request)
    assert service.provider.last_load_from_cache
    assert result.summary["hours"] == 72
