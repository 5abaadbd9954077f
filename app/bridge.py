"""The one QObject between the backtest service and the widgets.

Backtests are CPU-bound (0.2-0.6 s plus a cold data load), so they run on one worker thread; every
result reaches the UI as a queued Qt signal, which is how a plain Python thread hands work to the GUI
thread safely. Each run carries a number so a late message from a cancelled run is ignored.

A mode edited in the config editor is run exactly as written: its YAML goes into a private copy of
the configuration folder (modes/<mode>.yaml plus the shipped share classes and venues), which the
engine loads like any other. An override file could not express a removed key (overrides merge), and
the editor's text has already passed the same validation the engine runs.
"""
from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PySide6.QtCore import QObject, Signal

from app.engine_warmup import CacheWarmer
from engine.config import CONFIG_ROOT, ConfigError, load_config, validate_yaml_text
from engine.data import DataRangeError
from engine.services.backtest import BacktestRequest, BacktestResult, BacktestService
from engine.services.run_params import build_run_params, data_requirements
from engine.services.simulation import Cancelled


@dataclass(frozen=True)
class BacktestSpec:
    """What the operator asked for in the backtest panel."""

    mode: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    capital: float | None = None
    #: The mode's YAML from the config editor; None runs the shipped configs/modes/<mode>.yaml.
    draft_text: str | None = None
    #: Shown in status lines and exports: "shipped default" or the edited file's name.
    source_label: str = "shipped default"


@dataclass
class BacktestOutcome:
    """A finished run, plus whatever the caller's `prepare` built from it on the worker thread."""

    result: BacktestResult
    spec: BacktestSpec
    prepared: Any = None
    seconds: float = 0.0


class DraftConfigRoot:
    """A private configuration folder for running edited modes (deleted with the bridge)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="basis-workstation-config-")
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def materialize(self, mode: str, text: str) -> Path:
        """A fresh root holding `text` as modes/<mode>.yaml next to the shipped venues/share classes."""
        with self._lock:
            root = Path(self._dir.name) / f"run-{next(self._counter)}"
        (root / "modes").mkdir(parents=True)
        for folder in ("venues", "share_classes"):
            shutil.copytree(CONFIG_ROOT / folder, root / folder)
        (root / "modes" / f"{mode}.yaml").write_text(text, encoding="utf-8")
        return root

    @staticmethod
    def discard(root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)

    def cleanup(self) -> None:
        self._dir.cleanup()


class EngineBridge(QObject):
    """Runs engine services off the UI thread and reports through typed signals."""

    #: (run id, spec)
    backtest_started = Signal(int, object)
    #: (run id, hours done, hours total)
    backtest_progress = Signal(int, int, int)
    #: (run id, BacktestOutcome)
    backtest_finished = Signal(int, object)
    #: (run id, short title, full message)
    backtest_failed = Signal(int, str, str)
    #: (run id, message)
    backtest_cancelled = Signal(int, str)
    #: (request key, first hour, last hour) of a mode's data window
    window_ready = Signal(str, object, object)
    window_failed = Signal(str, str)
    #: A live trading session started (True) or ended (False); the config editor locks while True.
    live_session_changed = Signal(bool)

    def __init__(self, service: BacktestService, parent: QObject | None = None) -> None:
        """``service``: the app's one BacktestService (built by bootstrap)."""
        super().__init__(parent)
        self._service = service
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-worker")
        self._drafts = DraftConfigRoot()
        self._warmer = CacheWarmer()
        self._run_ids = itertools.count(1)
        self._current_run = 0
        self._cancel = threading.Event()
        self._future: Future | None = None
        self.live_session_active = False
        self.live_session_changed.connect(self._on_live_session)

    # ---- backtest -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def start_backtest(self, spec: BacktestSpec, prepare: Callable[[BacktestResult], Any] | None = None) -> int:
        """Queue a backtest; returns its run id. Only one runs at a time.

        `prepare(result)` runs on the worker thread after the engine (plain Python/numpy, no Qt),
        so turning a result into what the widgets draw does not stall the UI."""
        if self.running:
            raise RuntimeError("a backtest is already running; cancel it first")
        if spec.draft_text is not None:
            self._check_draft(spec)
        run_id = next(self._run_ids)
        self._current_run = run_id
        self._cancel = threading.Event()
        cancel = self._cancel
        self.backtest_started.emit(run_id, spec)
        self._future = self._executor.submit(self._run, run_id, spec, cancel, prepare)
        return run_id

    def cancel_backtest(self) -> None:
        self._cancel.set()

    def _check_draft(self, spec: BacktestSpec) -> None:
        """Contradictions never reach the engine: the editor text is validated again here."""
        validate_yaml_text(spec.mode, spec.draft_text, file=spec.source_label)

    def _run(self, run_id: int, spec: BacktestSpec, cancel: threading.Event,
             prepare: Callable[[BacktestResult], Any] | None) -> None:
        root: Path | None = None
        started = time.perf_counter()
        try:
            if spec.draft_text is not None:
                root = self._drafts.materialize(spec.mode, spec.draft_text)
            request = BacktestRequest(mode=spec.mode, start=spec.start, end=spec.end, capital=spec.capital,
                                      config_root=root)
            self._ensure_warm(request)
            result = self.service().run(
                request,
                progress=lambda done, total: self.backtest_progress.emit(run_id, done, total),
                should_cancel=cancel.is_set,
            )
            if cancel.is_set():
                raise Cancelled("cancelled")
            prepared = prepare(result) if prepare is not None else None
        except Cancelled as exc:
            self.backtest_cancelled.emit(run_id, str(exc))
        except ConfigError as exc:
            self.backtest_failed.emit(run_id, "Invalid configuration", str(exc))
        except DataRangeError as exc:
            self.backtest_failed.emit(run_id, "Window not covered by the data", str(exc))
        except ValueError as exc:
            self.backtest_failed.emit(run_id, "Cannot run this backtest", str(exc))
        except Exception as exc:  # an engine bug: report it with the traceback, keep the app alive
            details = "".join(traceback.format_exception(exc))
            self.backtest_failed.emit(run_id, f"Backtest crashed: {type(exc).__name__}: {exc}", details)
        else:
            self.backtest_finished.emit(run_id, BacktestOutcome(result, spec, prepared, time.perf_counter() - started))
        finally:
            if root is not None:
                self._drafts.discard(root)

    def _ensure_warm(self, request: BacktestRequest) -> None:
        """Cold data cache: build it in a child process (see app.engine_warmup) so the CSV parsing
        cannot hold the GIL against the UI thread."""
        service = self.service()
        if service.data_cached(request):
            return
        self._warmer.warm(service.provider.data_dir, service.provider.cache_dir, request)

    def service(self) -> BacktestService:
        return self._service

    # ---- data window ----------------------------------------------------------------------------
    def request_window(self, key: str, mode: str, draft_text: str | None = None) -> None:
        """Find the data window of a mode (as configured) off the UI thread; answers window_ready."""
        self._executor.submit(self._window, key, mode, draft_text)

    def _window(self, key: str, mode: str, draft_text: str | None) -> None:
        try:
            if draft_text is not None:
                resolved = validate_yaml_text(mode, draft_text, file=f"{mode}.yaml")
            else:
                resolved = load_config(mode)
            params = build_run_params(resolved)
            request = BacktestRequest(mode=mode, config_root=None)
            if draft_text is None and not self.service().data_cached(request):
                self._warmer.warm(self.service().provider.data_dir, self.service().provider.cache_dir, request)
            start, end = self.service().provider.available_window(data_requirements(params))
        except (ConfigError, ValueError) as exc:
            self.window_failed.emit(key, str(exc))
        except Exception as exc:
            self.window_failed.emit(key, f"{type(exc).__name__}: {exc}")
        else:
            self.window_ready.emit(key, start, end)

    # ---- live session ---------------------------------------------------------------------------
    def _on_live_session(self, active: bool) -> None:
        self.live_session_active = active

    # ---- lifetime -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel a running backtest and free the worker (called when the window closes)."""
        self._cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._warmer.shutdown()
        self._drafts.cleanup()
