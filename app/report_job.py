"""Build an HTML report from the app without stalling the UI.

Building a report of a full window takes about a second of Python (plotly figures, JSON, and an
80 ms pandas call that builds the events frame): on a thread of the app's process it held the GIL
long enough to stall the UI by up to ~190 ms. So a daemon thread only takes the parts the report
needs from the result (the timeseries frame, the events as plain per-column lists: Python that
yields the GIL often), and a spawned child process (no Qt state is forked) builds and writes the
report at a lower CPU priority; waiting for it releases the GIL. The outcome comes back
as a queued signal. The child stays up for the next report.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

#: how much lower the report process's CPU priority is than the app's
CHILD_NICENESS = 10
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _write_in_child(parts: dict, source: str, path: Path) -> str:
    from app.report import record_from_parts, write_report

    return str(write_report(record_from_parts(parts, source), path))


def _lower_priority() -> None:
    """The child yields the CPU to the UI: on a 2-core machine its start-up imports (pandas,
    plotly; ~3 s of CPU) otherwise compete with the UI thread for a core."""
    try:
        os.nice(CHILD_NICENESS)
    except (AttributeError, OSError):     # no nice() on this platform, or not allowed: run as is
        pass


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_lower_priority)
        return _pool


def shutdown() -> None:
    """Stop the child process (the app is closing)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


class ReportJob(QObject):
    """One report: `start` returns at once; `done(ok, path or message)` follows on the UI thread."""

    done = Signal(bool, str)

    def start(self, result, path: Path, source: str) -> None:
        threading.Thread(target=self._work, args=(result, Path(path), source), name="html-report",
                         daemon=True).start()

    def _work(self, result, path: Path, source: str) -> None:
        from concurrent.futures.process import BrokenProcessPool

        from app.report import ReportError, record_parts

        try:
            parts = record_parts(result)
            written = _executor().submit(_write_in_child, parts, source, path).result()
        except (ReportError, OSError, ValueError) as exc:
            self.done.emit(False, str(exc))
        except BrokenProcessPool:
            shutdown()
            self.done.emit(False, "the report process stopped unexpectedly; try again")
        else:
            self.done.emit(True, written)
