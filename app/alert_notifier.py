"""Desktop side of an alert: a system-tray message and a sound, plus the status bar.

The tray icon is shown while the app runs (where the desktop has a tray; ``QSystemTrayIcon``
queues the message on the platform's notification service). The sound is a ``QSoundEffect`` when
QtMultimedia is installed (``pyside6-essentials`` does not ship it) and ``QApplication.beep()``
otherwise; Settings › Alerts can mute it. Critical alerts use the tray's critical icon and stay on
screen longer. Everything here runs on the UI thread from a queued Qt signal, after the engine's
raiser returned: it can never slow the engine or the emergency stop.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from engine.services.live.alerts import Alert, Severity

log = logging.getLogger(__name__)

SOUND_FILE = Path(__file__).resolve().parent.parent / "resources" / "sounds" / "alert.wav"
CRITICAL_MS = 15000
WARNING_MS = 8000
SHOWN_LIMIT = 50


def _sound_player() -> Callable[[], None]:
    """The best sound the installation can make: QSoundEffect on the bundled WAV, or the system beep."""
    try:
        from PySide6.QtCore import QUrl
        from PySide6.QtMultimedia import QSoundEffect  # type: ignore[import-not-found]
    except ImportError:
        return QApplication.beep
    if not SOUND_FILE.exists():
        return QApplication.beep
    effect = QSoundEffect()
    effect.setSource(QUrl.fromLocalFile(str(SOUND_FILE)))
    effect.setVolume(0.8)
    return effect.play


class AlertNotifier:
    """Shows every alert it is given. ``desktop``/``sound`` follow the operator's settings."""

    def __init__(self, icon: QIcon, parent: QWidget | None = None,
                 status: Callable[[str, int], None] | None = None) -> None:
        self.tray = QSystemTrayIcon(icon, parent)
        self.tray.setToolTip("Basis Workstation")
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray.show()
        self.status = status
        self.desktop = True
        self.sound = True
        self._play = _sound_player()
        self.shown: deque[tuple[str, str]] = deque(maxlen=SHOWN_LIMIT)   # (title, text) sent to the tray
        self.sounds = 0

    @property
    def sound_backend(self) -> str:
        return "beep" if self._play is QApplication.beep else "QSoundEffect"

    def notify(self, alert: Alert) -> None:
        critical = alert.level is Severity.CRITICAL
        text = alert.text()
        if self.desktop:
            icon = QSystemTrayIcon.MessageIcon.Critical if critical else QSystemTrayIcon.MessageIcon.Warning
            self.tray.showMessage(alert.title, text, icon, CRITICAL_MS if critical else WARNING_MS)
            self.shown.append((alert.title, text))
        if self.sound:
            try:
                self._play()
                self.sounds += 1
            except Exception:                 # no audio device: the message still shows
                log.exception("alert sound failed")
        if self.status is not None:
            self.status(f"ALERT {text}", CRITICAL_MS if critical else WARNING_MS)
