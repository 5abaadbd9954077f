"""`main.py screenshot` on a fresh process (offscreen), and Qt staying out of the headless commands."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")      # a fresh machine: no aligned-data cache yet
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env.pop("BASIS_WORKSTATION_STATE_DIR", None)
    return env


def test_screenshot_command_writes_a_full_window_png(tmp_path):
    out = tmp_path / "shots" / "eth_leveraged.png"
    proc = subprocess.run(
        [sys.executable, "main.py", "screenshot", "--mode", "eth_leveraged", "--out", str(out),
         "--panel", "backtest", "--start", "2025-06-01", "--end", "2025-06-30"],
        cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    from PySide6.QtGui import QImage
    image = QImage(str(out))
    assert image.width() >= 1280 and image.height() >= 800
    assert "saved" in proc.stdout
    assert not (tmp_path / "config" / "basis-workstation" / "workstation.ini").exists(), \
        "the screenshot must not save a layout into the user's settings"


def test_screenshot_command_rejects_bad_arguments(tmp_path):
    proc = subprocess.run([sys.executable, "main.py", "screenshot", "--mode", "eth_basis", "--out",
                           str(tmp_path / "x.png"), "--size", "800x600"],
                          cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "at least 1366x768" in proc.stderr


def test_headless_commands_do_not_import_qt(tmp_path):
    code = "import sys, main; main.build_parser(); print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
