"""Basis Workstation desktop app (PySide6 + pyqtgraph + qasync): a view and controller on engine services.

Nothing under `app` is imported by the headless commands except `app.cli` (the `screenshot` and
`report` commands) and `app.report` (the HTML report, Qt-free), so the engine and the CLI keep
working on machines without a display or Qt.
"""

APP_NAME = "basis-workstation"
ORGANIZATION = "Basis Workstation"
APP_TITLE = "Basis Workstation"
