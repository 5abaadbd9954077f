"""Uncaught exceptions go to a dialog instead of killing the app (docs/ARCHITECTURE.md, The app).

Three entry points are covered: Python code run by Qt (slots, event handlers: sys.excepthook), other
threads (threading.excepthook) and asyncio tasks/callbacks on the qasync loop (the loop's exception
handler). Exceptions from other threads are handed to the GUI thread through a queued signal.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from app.widgets.error_dialog import ErrorDialog
from venues.credentials import install_log_redaction, redact

log = logging.getLogger(__name__)


class CrashReporter(QObject):
    """Collects uncaught exceptions and shows them in one ErrorDialog."""

    #: (summary, details) — queued to the GUI thread
    reported = Signal(str, str)

    def __init__(self, parent_widget=None) -> None:
        super().__init__()
        self._parent_widget = parent_widget
        self.dialog: ErrorDialog | None = None
        self.reported.connect(self._show)
        self._restore: list[Callable[[], None]] = []

    # ---- installation -------------------------------------------------------------------------
    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> Callable[[], None]:
        """Hook sys/threading (and `loop`); returns a function that restores the previous hooks."""
        install_log_redaction()             # the log copy of a crash is masked like every record
        previous_sys, previous_thread = sys.excepthook, threading.excepthook
        sys.excepthook = self._sys_hook
        threading.excepthook = self._thread_hook
        self._restore = [lambda: setattr(sys, "excepthook", previous_sys),
                         lambda: setattr(threading, "excepthook", previous_thread)]
        if loop is not None:
            previous_loop = loop.get_exception_handler()
            loop.set_exception_handler(self._loop_hook)
            self._restore.append(lambda: loop.set_exception_handler(previous_loop))
        return self.uninstall

    def uninstall(self) -> None:
        for restore in reversed(self._restore):
            restore()
        self._restore = []

    # ---- hooks --------------------------------------------------------------------------------
    def _sys_hook(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        self.report(exc_type, exc, tb)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        where = f" in thread {args.thread.name}" if args.thread is not None else ""
        self.report(args.exc_type, args.exc_value, args.exc_traceback, where)

    def _loop_hook(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        message = context.get("message", "asyncio error")
        if exc is None:
            details = message + "\n" + "\n".join(f"{k}: {v!r}" for k, v in context.items())
            self.reported.emit(redact(message), redact(details))
            return
        self.report(type(exc), exc, exc.__traceback__, f" in an asyncio task ({message})")

    def report(self, exc_type, exc, tb, where: str = "") -> None:
        """Log the exception and show it (safe to call from any thread). The dialog, its stderr copy
        and the log record are redacted like every log line: registered secrets, and signatures and
        key headers by name (an exception text can carry a signed URL)."""
        details = redact("".join(traceback.format_exception(exc_type, exc, tb)))
        log.error("uncaught exception%s:\n%s", where, details)
        print(details, file=sys.stderr)
        self.reported.emit(redact(f"{exc_type.__name__}{where}: {exc}"), details)

    def _show(self, summary: str, details: str) -> None:
        # the one way into the dialog: masked again here, whoever emitted (its hint promises no secrets)
        summary, details = redact(summary), redact(details)
        if self.dialog is None:
            self.dialog = ErrorDialog(self._parent_widget)
        self.dialog.add_error(summary, details)
        self.dialog.show()
        self.dialog.raise_()
