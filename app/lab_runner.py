"""The Lab's engine work, off the UI thread: sweeps and the full runs behind heatmap cells.

One worker thread drives everything; a sweep on the process backend spends it waiting for worker
processes (no GIL held against the UI), the serial backend runs trials on it directly. Results
reach the UI as queued Qt signals; each job has a number so a late message from a cancelled or
superseded job is ignored, like the backtest bridge does.
"""
from __future__ import annotations

import itertools
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.lab.executors import SweepExecutor
from engine.lab.grid import Axis
from engine.lab.store import TrialStore
from engine.lab.sweep import NO_SCENARIO, plan_trials, run_sweep
from engine.lab.trial import MemoProvider, TrialSpec
from engine.scenarios import Scenario
from engine.services.backtest import BacktestResult, BacktestService


@dataclass(frozen=True)
class SweepRequest:
    mode: str
    axes: tuple[Axis, ...]
    scenario: Scenario | None
    at: str | None
    start: str | None = None
    end: str | None = None
    backend: str = "process"
    workers: int | None = 2
    store_dir: Path | None = None


@dataclass
class FullRun:
    """A finished run for the history, the replay and the comparison."""

    label: str
    spec: TrialSpec
    labels: dict[str, Any]
    result: BacktestResult
    prepared: Any = None
    twin_of: int | None = None          # history index of the run this one is the twin of
    extra: dict[str, Any] = field(default_factory=dict)


class LabRunner(QObject):
    #: (job, SweepProgress)
    sweep_progress = Signal(int, object)
    #: (job, rows, cancelled)
    sweep_finished = Signal(int, object, bool)
    #: (job, message)
    sweep_failed = Signal(int, str)
    #: (job, FullRun)
    run_finished = Signal(int, object)
    #: (job, message)
    run_failed = Signal(int, str)

    def __init__(self, worker_factory: Callable[[], BacktestService], parent: QObject | None = None) -> None:
        """``worker_factory``: a picklable service factory (spawned workers and Ray actors rebuild the
        service from it; bootstrap makes it)."""
        super().__init__(parent)
        self.worker_factory = worker_factory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-worker")
        self._jobs = itertools.count(1)
        self._cancel = threading.Event()
        self._service: BacktestService | None = None
        self._futures: list[Future] = []

    @property
    def busy(self) -> bool:
        self._futures = [f for f in self._futures if not f.done()]
        return bool(self._futures)

    def service(self) -> BacktestService:
        """The Lab's own service (its data kept in memory: clicking cells of one sweep loads once)."""
        if self._service is None:
            self._service = self.worker_factory()
            self._service.provider = MemoProvider(self._service.provider)
        return self._service

    # ---- sweeps ---------------------------------------------------------------------------------
    def start_sweep(self, request: SweepRequest) -> int:
        job = next(self._jobs)
        self._cancel = threading.Event()
        self._futures.append(self._executor.submit(self._sweep, job, request, self._cancel))
        return job

    def cancel(self) -> None:
        self._cancel.set()

    def _sweep(self, job: int, request: SweepRequest, cancel: threading.Event) -> None:
        try:
            service = self.service()
            scenarios = [request.scenario]
            planned = plan_trials(service, request.mode, list(request.axes), scenarios, request.at, {},
                                  request.start, request.end)
            store = TrialStore(request.store_dir)
            executor = SweepExecutor(request.backend, self.worker_factory, request.workers)
            result = run_sweep(planned, store, executor,
                               progress=lambda p: self.sweep_progress.emit(job, p),
                               should_stop=cancel.is_set, table_dir=request.store_dir)
        except Exception as exc:  # a bug in the engine: report it in the panel, keep the app alive
            self.sweep_failed.emit(job, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        else:
            self.sweep_finished.emit(job, result.rows, result.cancelled)

    # ---- full runs ------------------------------------------------------------------------------
    def start_run(self, label: str, spec: TrialSpec, labels: dict[str, Any], twin_of: int | None = None,
                  prepare: Callable[[BacktestResult], Any] | None = None) -> int:
        job = next(self._jobs)
        self._futures.append(self._executor.submit(self._run, job, label, spec, labels, twin_of, prepare))
        return job

    def _run(self, job: int, label: str, spec: TrialSpec, labels: dict[str, Any], twin_of: int | None,
             prepare: Callable[[BacktestResult], Any] | None) -> None:
        try:
            result = self.service().run(spec.request())
            prepared = prepare(result) if prepare is not None else None
        except Exception as exc:  # a bug in the engine: report it in the panel, keep the app alive
            self.run_failed.emit(job, f"{type(exc).__name__}: {exc}")
        else:
            self.run_finished.emit(job, FullRun(label, spec, labels, result, prepared, twin_of))

    def shutdown(self) -> None:
        self._cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=True)


def describe(mode: str, labels: dict[str, Any]) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in labels.items() if k != "scenario"]
    scenario = labels.get("scenario", NO_SCENARIO)
    return f"{mode} · {', '.join(parts) or 'shipped config'} · {scenario if scenario != NO_SCENARIO else 'unshocked'}"
