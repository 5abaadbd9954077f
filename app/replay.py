"""Replay clock: where the playhead is, whether it moves, and how fast (no widgets here).

Speeds are in simulated hours per wall-clock second and the advance is computed from the real time
elapsed since the last tick, so a slow frame never slows the replay down, it only makes it coarser.
"Max" is frame-based instead: every tick advances 1/MAX_FRAMES of the window, so a full replay takes
MAX_FRAMES frames (about 5 s at 30 frames/s) whatever the window length, and its duration measures
how long the frames really take (tests/perf/bench_replay.py).
"""
from __future__ import annotations

import math

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal

#: Tick interval of the replay clock (~30 Hz; the charts never redraw faster than this).
FRAME_MS = 33
#: Ticks a full replay takes at "Max".
MAX_FRAMES = 150
#: (label, hours per second; None = Max)
SPEEDS: tuple[tuple[str, float | None], ...] = (
    ("1× · 1 hour/s", 1.0),
    ("6 hours/s", 6.0),
    ("1 day/s", 24.0),
    ("1 week/s", 168.0),
    ("1 month/s", 720.0),
    ("Max (≈5 s)", None),
)
DEFAULT_SPEED_INDEX = 4


class ReplayController(QObject):
    """Playhead over `hours` hourly steps: play/pause, step, seek, speed."""

    #: new playhead hour
    playhead_changed = Signal(int)
    #: True while playing
    playing_changed = Signal(bool)
    #: reached the last hour while playing
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.hours = 0
        self.playhead = 0
        self.speed: float | None = SPEEDS[DEFAULT_SPEED_INDEX][1]
        self._carry = 0.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self._tick)
        self._clock = QElapsedTimer()

    # ---- state --------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def at_end(self) -> bool:
        return self.hours > 0 and self.playhead >= self.hours - 1

    def set_length(self, hours: int) -> None:
        """A new run: stop and put the playhead at its first hour."""
        self.pause()
        self.hours = max(0, int(hours))
        self.playhead = 0
        self.playhead_changed.emit(0)

    def set_speed(self, hours_per_second: float | None) -> None:
        """Hours per second, or None for Max."""
        if hours_per_second is not None and not hours_per_second > 0:
            raise ValueError(f"speed must be positive hours per second or None (max), got {hours_per_second}")
        self.speed = hours_per_second
        self._carry = 0.0

    # ---- commands -----------------------------------------------------------------------------
    def play(self) -> None:
        if self.hours < 2 or self.playing:
            return
        if self.at_end:
            self.seek(0)
        self._carry = 0.0
        self._clock.start()
        self._timer.start()
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.playing_changed.emit(False)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def step(self, delta: int) -> None:
        """Move by whole hours (pauses: stepping is for looking closely)."""
        self.pause()
        self.seek(self.playhead + int(delta))

    def seek(self, hour: int) -> None:
        if self.hours == 0:
            return
        hour = max(0, min(int(hour), self.hours - 1))
        if hour != self.playhead:
            self.playhead = hour
            self.playhead_changed.emit(hour)

    def to_start(self) -> None:
        self.seek(0)

    def to_end(self) -> None:
        self.pause()
        self.seek(self.hours - 1)

    # ---- clock --------------------------------------------------------------------------------
    def _tick(self) -> None:
        elapsed = self._clock.restart() / 1000.0
        if self.speed is None:
            advance = max(1, math.ceil(self.hours / MAX_FRAMES))
        else:
            self._carry += self.speed * elapsed
            advance = int(self._carry)
            self._carry -= advance
        if advance:
            self.seek(self.playhead + advance)
        if self.at_end:
            self.pause()
            self.finished.emit()
