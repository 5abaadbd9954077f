"""The app's headless commands: `main.py screenshot` and `main.py report`.

    python main.py screenshot --mode eth_basis --out docs/eth_basis.png [--panel backtest|config]
                              [--size 1366x768] [--theme light] [--text-size 1.3]
    python main.py report RUN_DIR [--out FILE.html]

`screenshot` renders the real main window offscreen and saves it as a PNG (docs, checks).

It runs the mode's backtest through the backtest panel (the same worker/bridge path as a click on
Run), replays it to the end at maximum speed, then grabs the whole window. It never needs a display:
QT_QPA_PLATFORM defaults to "offscreen" for this command (set it to "xcb" to use a real X server).
The window state is kept in a temporary folder, so a user's saved layout is neither used nor changed.
`report` writes one self-contained HTML report of a results folder (app.report; no Qt at all).
Only this module is imported by main.py for the subcommand list; Qt is imported when the command runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.services import AppServices

PANELS = ("backtest", "config", "lab")
#: the smallest common laptop screen; the window must stay usable there
MIN_SIZE = (1366, 768)
MAX_SIZE = (7680, 4320)           # 8K: a larger grab is a typo that would allocate gigabytes
THEMES = ("dark", "light")
TIMEOUT_S = 180


def register(subparsers: argparse._SubParsersAction, services: Callable[[], AppServices]) -> None:
    """``services`` builds the window's services (bootstrap.app_services: main.py wires it)."""
    from engine.config import MODES

    p = subparsers.add_parser("screenshot", help="save a PNG of the workstation window after running and "
                                                 "replaying a mode's backtest (works without a display)")
    p.add_argument("--mode", required=True, choices=MODES, metavar="MODE", help=f"one of: {', '.join(MODES)}")
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.add_argument("--panel", choices=PANELS, default="backtest", help="panel in front (default: backtest)")
    p.add_argument("--size", default="1600x1000",
                   help=f"window size WIDTHxHEIGHT, {MIN_SIZE[0]}x{MIN_SIZE[1]}..{MAX_SIZE[0]}x{MAX_SIZE[1]} "
                        "(default 1600x1000)")
    p.add_argument("--theme", choices=THEMES, default="dark", help="colour theme (default: dark)")
    p.add_argument("--text-size", type=float, default=1.0, metavar="FACTOR",
                   help="text size factor, as View > Text size (default 1.0)")
    p.add_argument("--start", help="first day of the backtest window, YYYY-MM-DD (default: the mode's data start)")
    p.add_argument("--end", help="last day, YYYY-MM-DD (default: the mode's data end)")
    p.add_argument("--scenario", help="lab panel: the sweep's scenario (default: steth_june2022_7pct_3d)")
    p.add_argument("--at", default="2024-12-06T15:00Z", help="lab panel: the hour the scenario starts")
    p.set_defaults(func=lambda args: run_screenshot_command(args, services))

    r = subparsers.add_parser("report", help="write one self-contained HTML report (interactive charts, metrics, "
                                             "config, provenance) of a backtest results folder")
    r.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                   help="a results folder (summary.json, timeseries.csv, events.csv), or a mode's folder "
                        "with a 'latest' entry")
    r.add_argument("--out", type=Path, help="HTML file to write (default: RUN_DIR/report.html)")
    r.set_defaults(func=run_report_command)


def run_report_command(args: argparse.Namespace) -> int:
    from app.report import REPORT_NAME, ReportError, load_run, resolve_run_dir, write_report

    try:
        folder = resolve_run_dir(args.run_dir)
        out = write_report(load_run(folder), args.out if args.out is not None else folder / REPORT_NAME)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {out} ({out.stat().st_size / 1e6:.1f} MB, opens offline)")
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1600x1000") from None
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise ValueError(f"--size {text}: must be at least {MIN_SIZE[0]}x{MIN_SIZE[1]}")
    if width > MAX_SIZE[0] or height > MAX_SIZE[1]:
        raise ValueError(f"--size {text}: must be at most {MAX_SIZE[0]}x{MAX_SIZE[1]}")
    return width, height


def run_screenshot_command(args: argparse.Namespace, services: Callable[[], AppServices]) -> int:
    try:
        size = _parse_size(args.size)
        if not 0.5 <= args.text_size <= 3.0:
            raise ValueError(f"--text-size {args.text_size:g}: must be between 0.5 and 3")
        start, end = _parse_window(args.start, args.end)
        out = Path(args.out)
        if out.suffix.lower() != ".png":
            raise ValueError(f"--out {out}: the file name must end in .png")
        out.parent.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="basis-screenshot-") as state:
        os.environ["BASIS_WORKSTATION_STATE_DIR"] = state     # never touch the user's layout/settings
        try:
            if args.panel == "lab":
                return take_lab_screenshot(services(), args.mode, out, size,
                                           args.scenario or "steth_june2022_7pct_3d", args.at,
                                           theme=args.theme, text_size=args.text_size)
            return take_screenshot(services(), args.mode, out, args.panel, size, start, end, theme=args.theme,
                                   text_size=args.text_size)
        except ScreenshotError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1


def _parse_window(start: str | None, end: str | None):
    import pandas as pd

    def day(text: str | None, flag: str):
        if text is None:
            return None
        try:
            return pd.Timestamp(text).tz_localize("UTC") if pd.Timestamp(text).tzinfo is None else pd.Timestamp(text)
        except (ValueError, TypeError):
            raise ValueError(f"{flag} {text!r} is not a date (expected YYYY-MM-DD)") from None

    first = day(start, "--start")
    last = day(end, "--end")
    if last is not None and end is not None and len(end) <= 10:
        last = last + pd.Timedelta(hours=23)
    if first is not None and last is not None and last <= first:
        raise ValueError(f"--end {end} must be after --start {start}")
    return first, last


class ScreenshotError(RuntimeError):
    """The run failed, timed out, or the image could not be written."""


def take_screenshot(services: AppServices, mode: str, out: Path, panel: str, size: tuple[int, int],
                    start=None, end=None, theme: str = "dark", text_size: float = 1.0) -> int:
    from PySide6.QtCore import QEventLoop, QTimer

    from app.bridge import BacktestSpec
    from app.main_window import MainWindow, create_application
    from app.replay import SPEEDS
    from app.style import apply_theme, has_fonts

    app = create_application([sys.argv[0]])
    apply_theme(app, theme, text_size)
    if not has_fonts():
        raise ScreenshotError("no fonts are installed, so the screenshot would have no text; install one "
                              "(Debian: apt-get install fonts-dejavu-core)")
    window = MainWindow(services, persist_layout=False, initial_mode=mode)
    window.resize(*size)
    window.show()
    panel_widget = window.backtest_panel
    panel_widget.autoplay_box.setChecked(False)
    panel_widget.set_mode(mode)
    outcome: dict[str, str] = {}
    loop = QEventLoop()

    def failed(message: str) -> None:
        outcome["error"] = message
        loop.quit()

    def loaded() -> None:
        max_speed = next(i for i, (_label, speed) in enumerate(SPEEDS) if speed is None)
        panel_widget.controls.speed_combo.setCurrentIndex(max_speed)
        panel_widget.replay.play()

    panel_widget.run_failed.connect(failed)
    panel_widget.run_loaded.connect(loaded)
    panel_widget.replay.finished.connect(loop.quit)
    QTimer.singleShot(TIMEOUT_S * 1000, lambda: failed(f"timed out after {TIMEOUT_S} s"))
    QTimer.singleShot(0, lambda: panel_widget.run(BacktestSpec(mode=mode, start=start, end=end)) or
                      (panel_widget.run_id == 0 and failed(panel_widget.error_banner.text() or "the run did not start")))
    loop.exec()
    try:
        if "error" in outcome:
            raise ScreenshotError(f"{mode}: {outcome['error']}")
        window.show_panel(panel)
        panel_widget.frames.flush()
        settle = QEventLoop()
        QTimer.singleShot(300, settle.quit)       # let layouts and the last frame paint
        settle.exec()
        if window.width() > size[0] or window.height() > size[1]:
            # The window refused to shrink: at this size it would not fit the screen.
            raise ScreenshotError(f"the window needs {window.width()}x{window.height()}; it does not fit "
                                  f"{size[0]}x{size[1]}")
        image = window.grab()
        if not image.save(str(out), "PNG"):
            raise ScreenshotError(f"cannot write {out}")
    finally:
        window.close()
    print(f"saved {out} ({image.width()}x{image.height()}, {mode}, {panel} panel)")
    return 0


def take_lab_screenshot(services: AppServices, mode: str, out: Path, size: tuple[int, int], scenario: str,
                        at: str, theme: str = "dark", text_size: float = 1.0) -> int:
    """The Lab after a sweep of the mode's default grid under `scenario`: the heatmap, a clicked cell
    and its unshocked twin replayed side by side."""
    from PySide6.QtCore import QEventLoop, QTimer

    from app.main_window import MainWindow, create_application
    from app.style import apply_theme

    apply_theme(create_application([sys.argv[0]]), theme, text_size)
    window = MainWindow(services, persist_layout=False, initial_mode=mode)
    window.resize(*size)
    window.show()
    window.show_panel("lab")
    lab = window.lab_panel
    lab.mode_combo.setCurrentIndex(lab.mode_combo.findData(mode))
    lab.scenario_combo.setCurrentIndex(lab.scenario_combo.findData(scenario))
    lab.at_edit.setText(at)
    lab.open_box.setChecked(False)
    loop = QEventLoop()
    outcome: dict[str, str] = {}

    def fail(message: str) -> None:
        outcome["error"] = message
        loop.quit()

    def swept(_job, rows, _cancelled) -> None:
        if not rows:
            return fail("the sweep produced no rows")
        x, y = lab.axes
        lab.open_cell(len(x.values) - 1, 0)

    def ran(_job, run) -> None:
        if len(lab.history) == 1:
            lab.history_table.selectRow(0)
            lab.add_twin()
        elif len(lab.history) == 2:
            lab.compare.replay.seek(lab.compare.replay.hours - 1)
            QTimer.singleShot(500, loop.quit)

    lab.runner.sweep_finished.connect(swept)
    lab.runner.run_finished.connect(ran)
    lab.runner.sweep_failed.connect(lambda _job, message: fail(message))
    lab.runner.run_failed.connect(lambda _job, message: fail(message))
    QTimer.singleShot(TIMEOUT_S * 1000, lambda: fail(f"timed out after {TIMEOUT_S} s"))
    QTimer.singleShot(0, lambda: lab.run() or fail(lab.status.text()))
    loop.exec()
    try:
        if "error" in outcome:
            raise ScreenshotError(f"lab: {outcome['error']}")
        image = window.grab()
        if not image.save(str(out), "PNG"):
            raise ScreenshotError(f"cannot write {out}")
    finally:
        window.close()
    print(f"saved {out} ({image.width()}x{image.height()}, {mode}, lab panel)")
    return 0
