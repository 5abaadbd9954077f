"""`python main.py report RUN_DIR`: one self-contained HTML file that renders its charts in a real
browser (Debian's headless Chromium) with the network shut off, so it opens offline."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.services.backtest import BacktestRequest
from engine.services.results_io import write_results
from tests.integration.conftest import peer_unavailable

REPO = Path(__file__).resolve().parents[2]
#: the flags that work on this kind of machine (no sandbox as root, no GPU, no background traffic)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        peer_unavailable("Chromium is not installed (Debian package chromium)")
    return found


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, backtest_service) -> Path:
    result = backtest_service.run(BacktestRequest(mode="usdt_market_neutral", start="2025-02-01", end="2025-03-15"))
    folder = tmp_path_factory.mktemp("results") / "usdt_market_neutral"
    write_results(result, folder)
    return folder


def _report(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "main.py", "report", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_report_renders_every_chart_in_headless_chromium_offline(run_dir, tmp_path):
    out = tmp_path / "umn.html"
    proc = _report([str(run_dir), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "opens offline" in proc.stdout
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", text), "plotly.js is inlined, never fetched"
    assert not re.search(r"<link[^>]+href=", text) and "cdn.plot.ly/plotly" not in text
    charts = text.count('class="plotly-graph-div"')
    assert charts == 6, "value, components, delta, health factor, margin, LST peg"

    dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=20000", "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=180, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for i in range(charts):
        start = html.index(f'id="chart-{i}"')
        end = html.find('id="chart-', start + 1)
        chart = html[start:end if end > 0 else len(html)]
        assert 'class="main-svg"' in chart, f"chart {i} was not drawn"
        assert re.search(r'class="js-line"[^>]* d="M', chart) or 'class="js-fill"' in chart, \
            f"chart {i} has no drawn trace"
    assert "Perp margin ratio per venue" in html and "binance" in html and "okx" in html
    assert "Reconciliation error" in html


def test_a_latest_pointer_and_the_default_output_name(run_dir, tmp_path):
    mode_dir = tmp_path / "results" / "usdt_market_neutral"
    (mode_dir / "20250315-abc").mkdir(parents=True)
    for name in ("summary.json", "timeseries.csv", "events.csv"):
        shutil.copy(run_dir / name, mode_dir / "20250315-abc" / name)
    (mode_dir / "latest").write_text("20250315-abc\n")          # a pointer file
    proc = _report([str(mode_dir)])
    assert proc.returncode == 0, proc.stderr
    assert (mode_dir / "20250315-abc" / "report.html").is_file()
    (mode_dir / "latest").unlink()
    (mode_dir / "latest").symlink_to("20250315-abc")           # or a symlink
    proc = _report([str(mode_dir), "--out", str(tmp_path / "via-symlink.html")])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args, message", [
    (["{tmp}/nowhere"], "no such folder"),
    (["{tmp}"], "holds no summary.json"),
    (["{run}", "--out", "{tmp}/report.txt"], "must end in .html"),
])
def test_bad_input_is_one_line_and_exit_2(run_dir, tmp_path, args, message):
    proc = _report([a.format(tmp=tmp_path, run=run_dir) for a in args])
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
