"""Coalesce redraw requests to at most one frame per interval (charts redraw at most 30 times a second).

Seeking with the slider can fire hundreds of signals a second; each only marks the view dirty. The
first request after a quiet period draws at once (no added latency for a single step or click); the
following ones wait for the interval to pass, then one frame draws the latest state.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer


class FrameScheduler(QObject):
    def __init__(self, draw: Callable[[], None], interval_ms: int = 33, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._draw = draw
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._fire)
        self._since_last = QElapsedTimer()
        self.frames = 0

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def request(self) -> None:
        if self._timer.isActive():
            return
        wait = 0
        if self._since_last.isValid():
            wait = max(0, self.interval_ms - int(self._since_last.elapsed()))
        self._timer.start(wait)

    def flush(self) -> None:
        """Draw now if a frame is pending (tests, export)."""
        if self._timer.isActive():
            self._timer.stop()
            self._fire()

    def _fire(self) -> None:
        self._since_last.restart()
        self.frames += 1
        self._draw()
