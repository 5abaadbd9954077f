"""Replay toolbar: start, step back, play/pause, step forward, end, speed, seek slider, position."""
from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

from app.replay import DEFAULT_SPEED_INDEX, SPEEDS, ReplayController


class ReplayControls(QWidget):
    def __init__(self, replay: ReplayController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.replay = replay
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        icons = self.style()

        def button(icon: QStyle.StandardPixmap, tip: str, slot) -> QToolButton:
            b = QToolButton(self)
            b.setIcon(icons.standardIcon(icon))
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            layout.addWidget(b)
            return b

        SP = QStyle.StandardPixmap
        self.start_button = button(SP.SP_MediaSkipBackward, "Go to the first hour (Home)", replay.to_start)
        self.back_button = button(SP.SP_MediaSeekBackward, "Step one hour back (←)", lambda: replay.step(-1))
        self.play_button = button(SP.SP_MediaPlay, "Play / pause (Space)", replay.toggle)
        self.forward_button = button(SP.SP_MediaSeekForward, "Step one hour forward (→)", lambda: replay.step(1))
        self.end_button = button(SP.SP_MediaSkipForward, "Go to the last hour (End)", replay.to_end)
        layout.addSpacing(6)
        layout.addWidget(QLabel("Speed", self))
        self.speed_combo = QComboBox(self)
        for label, speed in SPEEDS:
            self.speed_combo.addItem(label, speed)
        self.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
        self.speed_combo.setToolTip("Simulated hours per second of replay")
        self.speed_combo.currentIndexChanged.connect(lambda i: replay.set_speed(self.speed_combo.itemData(i)))
        layout.addWidget(self.speed_combo)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Drag to seek anywhere in the window")
        self.slider.valueChanged.connect(self._on_slider)
        layout.addWidget(self.slider, 1)
        self.position_label = QLabel("no run yet", self)
        self.position_label.setMinimumWidth(250)
        self.position_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.position_label)
        replay.playing_changed.connect(self._on_playing)
        self._timestamps = None
        self.setEnabled(False)

    def set_timestamps(self, seconds) -> None:
        self._timestamps = seconds
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(seconds) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.setEnabled(len(seconds) > 1)

    def show_position(self, hour: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(hour)
        self.slider.blockSignals(False)
        if self._timestamps is not None and len(self._timestamps):
            when = datetime.fromtimestamp(float(self._timestamps[hour]), tz=UTC)
            self.position_label.setText(f"{when:%Y-%m-%d %H:%M} UTC · hour {hour:,} / {len(self._timestamps) - 1:,}")

    def _on_slider(self, value: int) -> None:
        self.replay.seek(value)

    def _on_playing(self, playing: bool) -> None:
        SP = QStyle.StandardPixmap
        self.play_button.setIcon(self.style().standardIcon(SP.SP_MediaPause if playing else SP.SP_MediaPlay))
