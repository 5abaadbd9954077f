"""The dialog an uncaught exception opens: what happened, and details the operator can copy.

It is non-modal (shown with show(), never exec(), which nests an event loop) and collects further
errors while it is open instead of stacking a dialog per exception.
"""
from __future__ import annotations

import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app import APP_TITLE


class ErrorDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_TITLE}: unexpected error")
        self.setModal(False)
        self.resize(760, 460)
        layout = QVBoxLayout(self)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        hint = QLabel("The workstation keeps running. Copy the details below into a bug report; "
                      "they contain the traceback and versions, never keys or secrets.", self)
        hint.setObjectName("dim")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        layout.addWidget(self.details, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.copy_button = QPushButton("Copy details", self)
        self.copy_button.clicked.connect(self.copy_details)
        buttons.addWidget(self.copy_button)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.count = 0

    def add_error(self, summary: str, details: str) -> None:
        """Show one more error (the first one's summary stays on top)."""
        self.count += 1
        if self.count == 1:
            self.summary.setText(f"<b>{_escape(summary)}</b>")
            header = (f"{APP_TITLE} · Python {platform.python_version()} · PySide6 {pyside_version} · "
                      f"{platform.platform()}\n")
            self.details.setPlainText(header)
        else:
            self.summary.setText(f"<b>{self.count} errors</b> (latest: {_escape(summary)})")
        self.details.appendPlainText(f"\n--- error {self.count} ---\n{details.rstrip()}")

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details.toPlainText())

    def closeEvent(self, event) -> None:
        self.count = 0
        super().closeEvent(event)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
