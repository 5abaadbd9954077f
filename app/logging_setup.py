"""The app's log file: rotating, in the platformdirs user log dir, every line redacted.

`python main.py` (the desktop app) writes what the engine, the venue adapters and the app log at
INFO and above to ``basis-workstation.log`` there (on Linux ``~/.local/state/basis-workstation/log``),
rotating at 2 MB with five old files kept. Each formatted line — tracebacks included — goes
through `venues.credentials.redact`, which masks every secret the process has registered (API
keys, secrets, passphrases, RPC URLs), on top of the log-record redaction the credentials module
installs for every logger.
"""
from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import platformdirs

from app import APP_NAME
from venues.credentials import redact

LOG_FILE = "basis-workstation.log"
MAX_BYTES = 2_000_000
BACKUPS = 5
#: Loggers whose INFO lines go to the file (third-party libraries log at WARNING and above only).
OUR_LOGGERS = ("engine", "venues", "app", "bootstrap", "__main__")


class RedactingFormatter(logging.Formatter):
    """A formatter whose output never holds a registered secret."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class OursAndWarnings(logging.Filter):
    """INFO and above from the workstation's own loggers, WARNING and above from any other (ccxt,
    web3 and aiohttp are chatty at INFO), whatever levels other code set on the loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return record.levelno >= logging.INFO and record.name.split(".")[0] in OUR_LOGGERS


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME))


def install_log_file(folder: Path | None = None, *, max_bytes: int = MAX_BYTES,
                     backups: int = BACKUPS) -> logging.Handler:
    """Attach the rotating, redacted file handler to the root logger; returns it (remove it with
    ``logging.getLogger().removeHandler``). ``folder`` defaults to the user log dir."""
    folder = log_dir() if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(folder / LOG_FILE, maxBytes=max_bytes, backupCount=backups,
                                                   encoding="utf-8")
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    handler.addFilter(OursAndWarnings())
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    return handler
