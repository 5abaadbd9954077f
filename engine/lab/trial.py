"""One sweep trial: a backtest with config overrides and an optional scenario, as a plain record.

`run_trial` is the task every executor backend runs (in this process, a process pool or Ray
actors). Each worker builds its backtest service once (`init_worker`) and keeps the aligned data
it loaded in memory, so a worker loads each distinct data set once, not once per trial.
"""
from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from engine.config import ConfigError
from engine.data import DataRangeError, HistoricalDataProvider
from engine.domain.pnl import COMPONENTS
from engine.lab.keys import code_digest
from engine.scenarios import Scenario, ScenarioError
from engine.services.backtest import BacktestRequest, BacktestService

#: Summary keys that are not metrics (lists, nested objects, labels) and stay out of the table.
NON_METRIC_KEYS = frozenset({"pnl_components", "data_fallbacks", "config_warnings", "scenario"})


@dataclass(frozen=True)
class TrialSpec:
    mode: str
    overrides: dict[str, Any] = field(default_factory=dict)
    scenario: Scenario | None = None
    at: str | None = None                  # ISO hour the scenario starts
    start: str | None = None
    end: str | None = None
    capital: float | None = None

    def request(self) -> BacktestRequest:
        import pandas as pd
        return BacktestRequest(mode=self.mode, start=pd.Timestamp(self.start) if self.start else None,
                               end=pd.Timestamp(self.end) if self.end else None, capital=self.capital,
                               cli_overrides=dict(self.overrides), scenario=self.scenario,
                               scenario_at=self.at if self.scenario is not None else None)


class MemoProvider:
    """The historical provider with the aligned frames kept in memory (one worker, many trials)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._frames: dict[tuple, Any] = {}
        self.loads = 0

    def load(self, req, start=None, end=None):
        key = (req.normalized(), str(start), str(end))
        if key not in self._frames:
            self._frames[key] = self._inner.load(req, start, end)
            self.loads += 1
        return self._frames[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class WorkerState:
    def __init__(self, service_factory: Callable[[], BacktestService]) -> None:
        self.service = service_factory()
        self.provider = MemoProvider(self.service.provider)
        self.service.provider = cast(HistoricalDataProvider, self.provider)   # the memo answers as the provider
        self.trials = 0


_WORKER: WorkerState | None = None


def init_worker(service_factory: Callable[[], BacktestService]) -> str:
    """Build this process's service once; returns the code digest so the driver can check that every
    worker runs the code it keyed the trials with."""
    global _WORKER
    if _WORKER is None:
        _WORKER = WorkerState(service_factory)
    return code_digest()


def worker_stats() -> dict[str, int]:
    w = _WORKER
    return {"trials": w.trials if w else 0, "data_loads": w.provider.loads if w else 0}


def run_trial(spec: TrialSpec) -> dict[str, Any]:
    """Run one trial in this worker; never raises for a bad trial (its record says why)."""
    if _WORKER is None:
        raise RuntimeError("init_worker(service_factory) must run in this process before run_trial")
    _WORKER.trials += 1
    started = time.perf_counter()
    cpu_started = time.thread_time()
    try:
        result = _WORKER.service.run(spec.request())
    except (ConfigError, DataRangeError, ScenarioError, ValueError) as exc:
        return error_record(str(exc), time.perf_counter() - started)
    except Exception as exc:      # an engine bug: keep the sweep going, keep the traceback
        return error_record(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", time.perf_counter() - started)
    record = ok_record(result.summary, time.perf_counter() - started)
    # CPU time of the trial: on a shared machine the wall time says more about the neighbours
    record["trial_cpu_seconds"] = time.thread_time() - cpu_started
    # which worker ran it and how many data sets that worker has loaded so far (each at most once)
    record["worker_pid"] = os.getpid()
    record["worker_data_loads"] = _WORKER.provider.loads
    return record


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def error_record(message: str, seconds: float = 0.0) -> dict[str, Any]:
    return {"status": "error", "error": message, "trial_seconds": seconds}


def ok_record(summary: dict[str, Any], seconds: float) -> dict[str, Any]:
    record: dict[str, Any] = {"status": "ok", "error": "", "trial_seconds": seconds}
    for key, value in summary.items():
        if key in NON_METRIC_KEYS:
            continue
        if isinstance(value, dict):
            # per-venue figures (min_margin_ratio, min_margin_ratio_at_check, ...) become one column each:
            # a table cell holds a number, and a mode without those venues has no such columns (an empty
            # struct cannot be written to Parquet)
            for sub, item in value.items():
                record[f"{key}.{sub}"] = _finite_or_none(item)
            continue
        record[key] = _finite_or_none(value)
    for name in COMPONENTS:
        record[f"pnl.{name}"] = summary["pnl_components"][name]
    record["data_fallback_count"] = len(summary["data_fallbacks"])
    scenario = summary.get("scenario")
    record["scenario_warnings"] = "; ".join(scenario["warnings"]) if scenario else ""
    return record
