"""HTML report benchmark (run by hand, not part of the test suite):

    QT_QPA_PLATFORM=offscreen python tests/perf/bench_report.py [--modes m1,m2]

Per mode, over its full data window: the headless report (`load_run` + `build_report` of a results
folder: seconds and file size), then the app's "HTML report…" on the loaded run while a probe QTimer
fires every 5 ms (measured first, so the headless run's garbage is not collected on the UI thread
meanwhile): how long the report took and the largest event-loop stall meanwhile (the report
is built outside the UI process; the UI must keep drawing), twice: the first one starts the report
process. Also the offscreen charts.png render (on the UI thread: an explicit export).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

PROBE_MS = 5
IDLE_BEFORE_REPORT_MS = 2000


def bench(services, mode: str, folder: Path) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from app.bridge import BacktestSpec
    from app.main_window import MainWindow
    from app.report import build_report, load_run
    from engine.services.results_io import write_results

    window = MainWindow(services, persist_layout=False, initial_mode=mode)
    window.resize(1600, 1000)
    window.show()
    panel = window.backtest_panel
    panel.autoplay_box.setChecked(False)
    loop = QEventLoop()
    panel.run_loaded.connect(loop.quit)
    panel.run(BacktestSpec(mode=mode))
    loop.exec()
    # As a person would: the run is on screen a moment before the report is asked for (loading it
    # into the charts, their first paint and the idle plot building are not the report's stall).
    idle = QEventLoop()
    QTimer.singleShot(IDLE_BEFORE_REPORT_MS, idle.quit)
    idle.exec()

    results = []
    for attempt in range(2):          # the first one starts the report process
        clock = QElapsedTimer()
        gaps: list[int] = []
        last = [0]

        def probe() -> None:
            now = clock.elapsed()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(PROBE_MS)
        timer.timeout.connect(probe)
        done = QEventLoop()
        panel.report_written.connect(done.quit)
        panel.report_failed.connect(done.quit)
        clock.start()
        timer.start()
        started = time.perf_counter()
        panel.export_report(folder / f"{mode}-{attempt}.html")
        done.exec()
        results.append((time.perf_counter() - started, max(gaps) - PROBE_MS if gaps else float("nan")))
        timer.stop()
        panel.report_written.disconnect(done.quit)
        panel.report_failed.disconnect(done.quit)
    run_dir = folder / mode
    write_results(panel.result, run_dir)
    started = time.perf_counter()
    html_text = build_report(load_run(run_dir))
    headless_s = time.perf_counter() - started
    size_mb = len(html_text.encode()) / 1e6

    started = time.perf_counter()
    panel.charts.save_png(folder / f"{mode}.png")
    png_s = time.perf_counter() - started

    window.close()
    del html_text
    gc.collect()                       # the headless build's garbage, before the next mode's window
    return {"mode": mode, "headless_s": headless_s, "size_mb": size_mb, "app": results,
            "png_s": png_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="usdt_market_neutral,btc_basis,eth_leveraged")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as out:
        os.environ["BASIS_WORKSTATION_STATE_DIR"] = state
        from app.main_window import create_application

        from bootstrap import app_services

        create_application([sys.argv[0]])
        services = app_services()
        print(f"{'mode':32} {'headless':>9} {'size':>8} {'app, 1st':>9} {'stall':>7} {'app, 2nd':>9} {'stall':>7}"
              f" {'charts.png':>11}")
        for mode in args.modes.split(","):
            r = bench(services, mode, Path(out))
            (first_s, first_stall), (second_s, second_stall) = r["app"]
            print(f"{r['mode']:32} {r['headless_s']:8.2f}s {r['size_mb']:6.1f}MB {first_s:8.2f}s {first_stall:4.0f} ms "
                  f"{second_s:8.2f}s {second_stall:4.0f} ms {r['png_s']:10.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
