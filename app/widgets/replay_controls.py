"""Replay toolbar: start, step back, play/pause, step forward, end, speed, seek slider, position.

The transport buttons carry the app's own icons in the theme's text colour (app.icons) and never
take the keyboard focus: Space and the arrow keys are the replay's shortcuts wherever the focus is
in the panel, so a button must not swallow them (app.panels.backtest_panel).
"""
from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QToolButton, QWidget

from app import style
from app.icons import icon_size, themed_icon
from app.replay import DEFAULT_SPEED_INDEX, SPEEDS, ReplayController


class ReplayControls(QWidget):
    def __init__(self, replay: ReplayController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.replay = replay
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._icons: dict[QToolButton, str] = {}

        def button(icon: str, tip: str, slot) -> QToolButton:
            b = QToolButton(self)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            self._icons[b] = icon
            layout.addWidget(b)
            return b

        self.start_button = button("to-start", "Go to the first hour (Home)", replay.to_start)
        self.back_button = button("step-back", "Step one hour back (←; Shift+← one day)", lambda: replay.step(-1))
        self.play_button = button("play", "Play / pause (Space)", replay.toggle)
        self.forward_button = button("step-forward", "Step one hour forward (→; Shift+→ one day)",
                                     lambda: replay.step(1))
        self.end_button = button("to-end", "Go to the last hour (End)", replay.to_end)
        layout.addSpacing(6)
        layout.addWidget(QLabel("Speed", self))
        self.speed_combo = QComboBox(self)
        for label, speed in SPEEDS:
            self.speed_combo.addItem(label, speed)
        self.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
        self.speed_combo.setToolTip("Simulated hours per second of replay ([ slower, ] faster)")
        self.speed_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.speed_combo.currentIndexChanged.connect(lambda i: replay.set_speed(self.speed_combo.itemData(i)))
        layout.addWidget(self.speed_combo)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Drag to seek anywhere in the window")
        self.slider.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.slider.valueChanged.connect(self._on_slider)
        layout.addWidget(self.slider, 1)
        self.position_label = QLabel("no run yet", self)
        self.position_label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)
        self.position_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.position_label)
        replay.playing_changed.connect(self._on_playing)
        self._timestamps = None
        self.restyle()
        style.theme_changed().connect(self.restyle)
        self.setEnabled(False)

    def restyle(self) -> None:
        """Icons in the active theme's colour and at the text size's scale."""
        size = icon_size(20)
        for b, name in self._icons.items():
            b.setIconSize(size)
            b.setIcon(themed_icon("pause" if b is self.play_button and self.replay.playing else name))

    def step_speed(self, steps: int) -> None:
        """One speed slower (-1) or faster (+1)."""
        index = max(0, min(self.speed_combo.count() - 1, self.speed_combo.currentIndex() + steps))
        self.speed_combo.setCurrentIndex(index)

    def set_speed_label(self, label: str) -> bool:
        index = self.speed_combo.findText(label)
        if index >= 0:
            self.speed_combo.setCurrentIndex(index)
        return index >= 0

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
        self.play_button.setIcon(themed_icon("pause" if playing else "play"))
