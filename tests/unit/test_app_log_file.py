"""The app's log file: rotating, and no registered secret in any line (tracebacks included)."""
from __future__ import annotations

import logging

from app.logging_setup import LOG_FILE, install_log_file
from venues.credentials import register_secret

SECRET = "sk-test-" + "7f3a9c" * 6


def test_the_log_file_rotates_and_never_holds_a_secret(tmp_path):
    handler = install_log_file(tmp_path, max_bytes=2_000, backups=2)
    try:
        register_secret(SECRET)
        log = logging.getLogger("engine.services.live.session")
        log.info("order sent with key %s", SECRET)
        try:
            raise RuntimeError(f"venue said: bad key {SECRET}")
        except RuntimeError:
            log.exception("tick failed")
        logging.getLogger("ccxt.base").info("third-party chatter stays out")
        handler.flush()
        first = (tmp_path / LOG_FILE).read_text()
        for i in range(60):
            log.warning("line %d of padding to make the file rotate", i)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"], "rotated, two old files kept"
    assert SECRET not in first and "order sent with key ***" in first and "bad key ***" in first
    assert "third-party chatter" not in first
    assert all(SECRET not in p.read_text() for p in tmp_path.iterdir())
    assert "line 59 of padding" in (tmp_path / LOG_FILE).read_text()
