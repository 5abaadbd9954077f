"""The safety toolbar's content bound to the live controller: the e-stop button and shortcut press
the controller's emergency stop; the badge and the progress line follow the sessions and presses."""
from __future__ import annotations

from PySide6.QtGui import QAction

from app.controllers.live import LiveController
from app.widgets.estop import SafetyBar


def bind_safety_bar(bar: SafetyBar, action: QAction, controller: LiveController) -> None:
    """Connect the button, the keyboard action and the bar's readouts to ``controller``."""
    bar.button.clicked.connect(lambda: controller.emergency_stop("button"))
    action.triggered.connect(lambda: controller.emergency_stop("keyboard"))

    def sessions() -> None:
        bar.show_sessions([(s.badge.text, f"{s.mode} {s.execution}/{s.environment} {s.badge.text}")
                           for s in controller.active_snapshots()])

    def progress() -> None:
        press = controller.last_press
        if press is not None:
            bar.show_press(press.halted_ms, list(controller.cancel_rows.values()), press.error, press.note)

    controller.session_updated.connect(lambda _snapshot: sessions())
    controller.sessions_changed.connect(sessions)
    controller.estop_pressed.connect(lambda _press: (sessions(), progress()))
    controller.cancel_progress.connect(lambda _row: progress())
    controller.estop_finished.connect(lambda _press: progress())
    sessions()
