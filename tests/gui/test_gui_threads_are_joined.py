"""A GUI test session joins every thread it started: work handed to the qasync loop's default executor
(asyncio.to_thread) used to run on qasync's QThread pool, which nothing shut down (the test loop is
never closed), and Qt printed "QThread: Destroyed while thread '' is still running" at exit."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_gui_session_that_used_to_thread_exits_with_no_running_qthread():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/gui/qthread_probe.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    assert "QThread" not in done.stdout + done.stderr, done.stderr[-2000:]
