"""Backtest replay panel: choose a config and a window, run it off the UI thread, then replay it.

Run: the engine works on the bridge's worker thread; the panel shows progress and can cancel.
Replay: the ReplayController moves the playhead; every change only requests a frame, and the
FrameScheduler draws at most ~30 frames a second (charts, event log, metrics, slider) from
preallocated arrays. Export writes the engine's result files plus a PNG of the charts; Report writes
one self-contained HTML report (app.report), built outside the UI thread (app.report_job).

The replay keys (Space, arrows, Home/End, [ and ]) are shortcuts of the whole panel, so they work
wherever its focus is (a checkbox or a button never swallows Space); a text field keeps the keys it
edits with (Qt gives a focused line edit those keys first).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import report_job
from app.bridge import BacktestOutcome, BacktestSpec, EngineBridge
from app.chart_data import ChartData, build_chart_data
from app.frame_scheduler import FrameScheduler
from app.panels.config_panel import DraftSnapshot
from app.replay import FRAME_MS, ReplayController
from app.report_job import ReportJob
from app.widgets.banner import show_banner
from app.widgets.charts import ChartStack
from app.widgets.event_log import EventLogView
from app.widgets.event_model import EventIndex, index_events
from app.widgets.metrics import MetricsView
from app.widgets.replay_controls import ReplayControls
from engine.config import MODES, ConfigError, check_capital_text
from engine.data.rewards import NOTE_PREFIX as REWARD_NOTE_PREFIX
from engine.services.backtest import BacktestResult
from engine.services.results_io import write_results

SOURCE_SHIPPED = "shipped"
SOURCE_EDITOR = "editor"
#: (label, days; None = the whole data window, 0 = custom dates)
WINDOW_PRESETS = (("Full data window", None), ("Last 365 days", 365), ("Last 90 days", 90),
                  ("Last 30 days", 30), ("Last 7 days", 7), ("Custom dates", 0))
CHARTS_PNG = "charts.png"
#: hours one Shift+arrow step moves
DAY_STEP = 24
#: While playing, the event log and metrics follow every TABLE_EVERY-th frame (~7 times a second).
TABLE_EVERY = 4


def _qdate(ts: pd.Timestamp) -> QDate:
    return QDate(ts.year, ts.month, ts.day)


def _day(date: QDate) -> pd.Timestamp:
    return pd.Timestamp(year=date.year(), month=date.month(), day=date.day(), tz="UTC")


class BacktestPanel(QWidget):
    """Run + replay of one backtest at a time."""

    #: a run finished and is loaded for replay
    run_loaded = Signal()
    #: a run failed or was cancelled (message)
    run_failed = Signal(str)
    status_message = Signal(str)
    #: the mode picker changed (the main window keeps the Config panel on the same mode)
    mode_changed = Signal(str)
    #: an HTML report was written (path) or failed (message)
    report_written = Signal(str)
    report_failed = Signal(str)

    def __init__(self, bridge: EngineBridge, draft_provider: Callable[[str], DraftSnapshot | None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.draft_provider = draft_provider
        self.result: BacktestResult | None = None
        self.spec: BacktestSpec | None = None
        self.chart_data: ChartData | None = None
        self.run_id = 0
        self._run_started = 0.0
        self._window: tuple[pd.Timestamp, pd.Timestamp] | None = None
        self._pending_run = False
        self._window_key = ""
        self.replay = ReplayController(self)
        self._frame_count = 0
        self._tables_timer = QTimer(self)
        self._tables_timer.setSingleShot(True)
        self._tables_timer.setInterval(FRAME_MS // 2)
        self._tables_timer.timeout.connect(self._update_tables)
        #: hour the event log and metrics last showed
        self.tables_hour = -1
        self.frames = FrameScheduler(self._draw_frame, parent=self)
        self._report_job: ReportJob | None = None
        self._build()
        self._connect()
        self._request_window()

    # ---- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 4)
        outer.setSpacing(4)

        # Two rows that fit a 1366 px screen: what to run, then what to do with it.
        bar = QGridLayout()
        bar.setHorizontalSpacing(6)
        bar.setVerticalSpacing(4)
        what = QHBoxLayout()
        what.addWidget(QLabel("Mode"))
        self.mode_combo = QComboBox(self)
        for mode in MODES:
            self.mode_combo.addItem(mode, mode)
        self.mode_combo.setToolTip("Strategy mode (the Config panel follows the same mode)")
        what.addWidget(self.mode_combo)
        what.addWidget(QLabel("Config"))
        self.source_combo = QComboBox(self)
        self.source_combo.addItem("shipped default", SOURCE_SHIPPED)
        self.source_combo.addItem("config editor version", SOURCE_EDITOR)
        self.source_combo.setToolTip("Run the shipped configs/modes file, or the version open in the Config panel")
        what.addWidget(self.source_combo)
        what.addWidget(QLabel("Window"))
        self.window_combo = QComboBox(self)
        for label, days in WINDOW_PRESETS:
            self.window_combo.addItem(label, days)
        self.window_combo.setToolTip("The hours to run: the mode's whole data window, the last N days, or custom dates")
        what.addWidget(self.window_combo)
        self.start_edit = QDateEdit(self)
        self.end_edit = QDateEdit(self)
        for edit in (self.start_edit, self.end_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setToolTip("UTC day (the end day is included)")
        what.addWidget(self.start_edit)
        what.addWidget(QLabel("→"))
        what.addWidget(self.end_edit)
        what.addWidget(QLabel("Capital"))
        self.capital_edit = QLineEdit(self)
        self.capital_edit.setPlaceholderText("share-class default")
        self.capital_edit.setMaximumWidth(140)
        self.capital_edit.setToolTip("Starting capital in the share-class currency (empty: the share class default)")
        what.addWidget(self.capital_edit)
        what.addStretch(1)
        bar.addLayout(what, 0, 0)

        act = QHBoxLayout()
        self.run_button = QPushButton("Run", self)
        self.run_button.setObjectName("primary")
        self.run_button.setToolTip("Run the backtest (Ctrl+R)")
        act.addWidget(self.run_button)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Stop the running backtest (Esc); the previous result stays on screen")
        act.addWidget(self.cancel_button)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(140)
        act.addWidget(self.progress)
        self.autoplay_box = QCheckBox("Play when done", self)
        self.autoplay_box.setChecked(True)
        self.autoplay_box.setToolTip("Start the replay as soon as the run is loaded")
        act.addWidget(self.autoplay_box)
        act.addStretch(1)
        self._chart_options = (act, act.count() - 1)
        self.export_button = QPushButton("Export…", self)
        self.export_button.setEnabled(False)
        self.export_button.setToolTip("Write summary.json, timeseries.csv, events.csv, balance_sheet.csv and "
                                      "charts.png to a new folder named after the run")
        act.addWidget(self.export_button)
        self.report_button = QPushButton("HTML report…", self)
        self.report_button.setEnabled(False)
        self.report_button.setToolTip("Export one self-contained HTML report of this run (interactive charts, "
                                      "metrics, config, provenance; opens offline in any browser)")
        act.addWidget(self.report_button)
        bar.addLayout(act, 1, 0)
        outer.addLayout(bar)
        # Focus stays with the fields that need typing; buttons and the checkbox are used by mouse
        # or shortcut, so Space after a click on Run still plays/pauses instead of toggling them.
        for widget in (self.run_button, self.cancel_button, self.export_button, self.report_button,
                       self.autoplay_box):
            widget.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        for combo, chars in ((self.mode_combo, 22), (self.source_combo, 16), (self.window_combo, 14)):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(chars)

        self.status = QLabel("Choose a mode and window, then Run.", self)
        self.status.setObjectName("dim")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setWordWrap(False)
        outer.addWidget(self.status)
        self.error_banner = QLabel(self)
        self.error_banner.setObjectName("banner")
        self.error_banner.setWordWrap(True)
        self.error_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_banner.hide()
        outer.addWidget(self.error_banner)

        self.controls = ReplayControls(self.replay, self)
        outer.addWidget(self.controls)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.charts = ChartStack(splitter)
        splitter.addWidget(self.charts)
        # The charts' own option sits with the run's actions, so the readout gets the full width.
        row, at = self._chart_options
        row.insertWidget(at, self.charts.combine_box)
        right = QSplitter(Qt.Orientation.Vertical, splitter)
        self.metrics = MetricsView(right)
        right.addWidget(self.metrics)
        self.events = EventLogView(parent=right)
        right.addWidget(self.events)
        right.setSizes([340, 460])
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([1000, 600])
        self.splitter = splitter
        outer.addWidget(splitter, 1)

    def _connect(self) -> None:
        b = self.bridge
        b.backtest_progress.connect(self._on_progress)
        b.backtest_finished.connect(self._on_finished)
        b.backtest_failed.connect(self._on_failed)
        b.backtest_cancelled.connect(self._on_cancelled)
        b.window_ready.connect(self._on_window)
        b.window_failed.connect(self._on_window_failed)
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self.open_export_dialog)
        self.report_button.clicked.connect(self.open_report_dialog)
        self.mode_combo.currentIndexChanged.connect(self._request_window)
        self.mode_combo.currentIndexChanged.connect(lambda _i: self.mode_changed.emit(self.mode))
        self.source_combo.currentIndexChanged.connect(self._request_window)
        self.window_combo.currentIndexChanged.connect(self._apply_preset)
        self.start_edit.dateChanged.connect(self._dates_edited)
        self.end_edit.dateChanged.connect(self._dates_edited)
        self.replay.playhead_changed.connect(lambda _hour: self.frames.request())
        self.replay.playing_changed.connect(lambda _playing: self.frames.request())   # catch the tables up
        self.charts.seek_requested.connect(self._seek_from_view)
        self.events.seek_requested.connect(self._seek_from_view)
        self.charts.combine_box.toggled.connect(self._combine_toggled)
        self.shortcuts: dict[str, QShortcut] = {}
        for keys, text, slot in (
                ("Space", "Play / pause the replay", self.replay.toggle),
                ("Left", "Step one hour back", lambda: self.replay.step(-1)),
                ("Right", "Step one hour forward", lambda: self.replay.step(1)),
                ("Shift+Left", "Step one day back", lambda: self.replay.step(-DAY_STEP)),
                ("Shift+Right", "Step one day forward", lambda: self.replay.step(DAY_STEP)),
                ("Home", "Go to the first hour", self.replay.to_start),
                ("End", "Go to the last hour", self.replay.to_end),
                ("[", "Replay slower", lambda: self.controls.step_speed(-1)),
                ("]", "Replay faster", lambda: self.controls.step_speed(1)),
                ("Ctrl+R", "Run the backtest", lambda: self.run()),
                ("Escape", "Cancel the running backtest", self.cancel)):
            # The whole panel, not just the charts: wherever the focus is in it, the keys work.
            shortcut = QShortcut(QKeySequence(keys), self, activated=slot)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.setWhatsThis(text)
            self.shortcuts[keys] = shortcut

    # ---- configuration of the run -------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def set_mode(self, mode: str, source: str = SOURCE_SHIPPED) -> None:
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))
        self.source_combo.setCurrentIndex(self.source_combo.findData(source))

    def set_window_preset(self, days: int | None) -> None:
        index = self.window_combo.findData(days)
        if index < 0:
            raise ValueError(f"no window preset of {days!r} days (have: {[d for _, d in WINDOW_PRESETS]})")
        self.window_combo.setCurrentIndex(index)
        self._apply_preset()

    def _draft(self) -> DraftSnapshot | None:
        if self.source_combo.currentData() != SOURCE_EDITOR or self.draft_provider is None:
            return None
        return self.draft_provider(self.mode)

    def config_draft_changed(self, mode: str) -> None:
        """The config editor's draft of ``mode`` changed: a run of the editor's version needs its window again."""
        if self.mode == mode and self.source_combo.currentData() == SOURCE_EDITOR:
            self._request_window()

    def _request_window(self) -> None:
        draft = self._draft()
        if draft is not None and not draft.valid:
            self._window = None
            return
        text = draft.text if draft is not None else None
        self._window_key = f"{self.mode}|{hash(text)}"
        self.bridge.request_window(self._window_key, self.mode, text)

    def _on_window(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> None:
        if key != self._window_key:
            return
        self._window = (start, end)
        for edit in (self.start_edit, self.end_edit):
            edit.blockSignals(True)
            edit.setDateRange(_qdate(start), _qdate(end))
            edit.blockSignals(False)
        self._apply_preset()
        if self._pending_run:
            self._pending_run = False
            self.run()

    def _on_window_failed(self, key: str, message: str) -> None:
        if key == self._window_key:
            self._window = None
            self._pending_run = False
            self._show_error(f"Cannot find the data window of {self.mode}", message)

    def _apply_preset(self) -> None:
        days = self.window_combo.currentData()
        if self._window is None or days == 0:
            return
        start, end = self._window
        first = start if days is None else max(start, end - pd.Timedelta(days=days) + pd.Timedelta(hours=1))
        for edit, ts in ((self.start_edit, first), (self.end_edit, end)):
            edit.blockSignals(True)
            edit.setDate(_qdate(ts))
            edit.blockSignals(False)

    def _dates_edited(self) -> None:
        custom = self.window_combo.findData(0)
        if self.window_combo.currentIndex() != custom:
            self.window_combo.blockSignals(True)
            self.window_combo.setCurrentIndex(custom)
            self.window_combo.blockSignals(False)

    def current_spec(self) -> BacktestSpec:
        """The run the controls describe (raises ValueError for bad input, ConfigError for a bad draft)."""
        draft = self._draft_for_run()
        capital_text = self.capital_edit.text()
        # inf, nan, negative and absurd values stop here (the run would chart infinities); the share
        # class's own bound is checked again by the engine when the run starts.
        capital = check_capital_text(capital_text, None, "capital") if capital_text.strip() else None
        start = end = None
        if self._window is not None:
            lo, hi = self._window
            start = max(lo, _day(self.start_edit.date()))
            end = min(hi, _day(self.end_edit.date()) + pd.Timedelta(hours=23))
            if end <= start:
                raise ValueError("the end date must be after the start date")
            if start == lo and end == hi:
                start = end = None      # the whole window: let the engine pick it (and share its data cache)
        return BacktestSpec(mode=self.mode, start=start, end=end, capital=capital,
                            draft_text=draft.text if draft else None,
                            source_label=draft.label if draft else "shipped default")

    def _draft_for_run(self) -> DraftSnapshot | None:
        """The editor's version when that is the chosen source (ValueError if it cannot be run)."""
        if self.source_combo.currentData() != SOURCE_EDITOR:
            return None
        draft = self.draft_provider(self.mode) if self.draft_provider else None
        if draft is None:
            raise ValueError(f"{self.mode} is not open in the Config panel; open it there or run the shipped default")
        if not draft.valid:
            raise ValueError(f"the Config panel's version of {self.mode} has {draft.problems} problem(s); "
                             "fix them there before running it")
        return draft

    # ---- running ------------------------------------------------------------------------------
    def run(self, spec: BacktestSpec | None = None) -> int:
        """Start a backtest (the controls' settings unless `spec` is given); returns the run id, 0 if it
        could not start (the reason is shown), or -1 if it starts once the data window is known."""
        if self.bridge.running:
            return 0
        if spec is None and self._window is None and self.window_combo.currentData() is not None:
            try:
                self._draft_for_run()
            except ValueError as exc:
                self._show_error("Cannot run", str(exc))
                return 0
            # The chosen preset needs the mode's data window, which is still being read: run when it arrives.
            self._pending_run = True
            self._request_window()
            self._status(f"Reading the data window of {self.mode}…")
            return -1
        try:
            spec = spec or self.current_spec()
            self.replay.pause()
            self.run_id = self.bridge.start_backtest(spec, prepare=prepare_view)
        except (ValueError, ConfigError) as exc:
            self._show_error("Cannot run", str(exc))
            return 0
        self._run_started = time.perf_counter()
        self.charts.hold_prebuild(True)
        if self.chart_data is not None:
            self.charts.set_notice(f"Running {spec.mode}… the charts below still show the previous run "
                                   f"({self.chart_data.mode}) until it finishes.")
        self.error_banner.hide()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        window = "full data window" if spec.start is None and spec.end is None else \
            f"{spec.start or '…'} → {spec.end or '…'}"
        self._status(f"Running {spec.mode} ({spec.source_label}, {window})…")
        return self.run_id

    def cancel(self) -> None:
        if self.bridge.running:
            self.bridge.cancel_backtest()
            self._status("Cancelling…")

    def _on_progress(self, run_id: int, done: int, total: int) -> None:
        if run_id == self.run_id and total > 0:
            self.progress.setValue(int(1000 * done / total))

    def _run_ended(self) -> None:
        self.charts.hold_prebuild(False)
        self.charts.set_notice("")
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_failed(self, run_id: int, title: str, message: str) -> None:
        if run_id != self.run_id:
            return
        self._run_ended()
        self.progress.setValue(0)
        self._show_error(title, message)
        self.run_failed.emit(f"{title}: {message}")

    def _on_cancelled(self, run_id: int, message: str) -> None:
        if run_id != self.run_id:
            return
        self._run_ended()
        self.progress.setValue(0)
        self._status(f"Run cancelled ({message}). The previous result, if any, is still shown.")
        self.run_failed.emit(f"cancelled: {message}")

    def _on_finished(self, run_id: int, outcome: BacktestOutcome) -> None:
        if run_id != self.run_id:
            return
        result, spec = outcome.result, outcome.spec
        self._run_ended()
        self.progress.setValue(1000)
        self.load_result(result, spec, outcome.prepared)
        s = result.summary
        wall = time.perf_counter() - self._run_started
        notes = [f"config warning: {w}" for w in result.config_warnings] + \
                [f"data fallback: {f}" for p in s["data_fallbacks"].values() for f in p["flags"]] + \
                [n for n in s["data_notes"] if n.startswith(REWARD_NOTE_PREFIX)]
        extra = f" · {len(notes)} note(s) on the data and config (hover here)" if notes else ""
        self._status(f"{s['mode']} ({spec.source_label}) · {s['start'][:16]} → {s['end'][:16]} UTC · {s['hours']:,} hours · "
                     f"engine {s['engine_seconds']:.2f} s, total {wall:.2f} s · {s['events']:,} events{extra}")
        self.status.setToolTip("\n\n".join(notes))
        warnings = s.get("data_warnings") or []
        if warnings:        # a series mostly made of another venue's data: say so where the charts are
            show_banner(self.error_banner, "<b>Substitute data</b><br>" + "<br>".join(_html(w) for w in warnings),
                        "warnBanner")
        if self.autoplay_box.isChecked():
            self.replay.play()

    def load_result(self, result: BacktestResult, spec: BacktestSpec | None = None,
                    prepared: PreparedView | None = None) -> None:
        """Show a finished result: charts, events and metrics, playhead at the first hour."""
        prepared = prepared or prepare_view(result)
        self.result = result
        self.spec = spec
        self.chart_data = prepared.chart_data
        self.charts.set_data(self.chart_data)
        self.events.set_events(prepared.events)
        self.metrics.metrics.set_result(result)
        self.tables_hour = -1
        self.controls.set_timestamps(self.chart_data.x)
        self.export_button.setEnabled(True)
        self.report_button.setEnabled(True)
        self.replay.set_length(self.chart_data.hours)
        self.frames.request()
        self.frames.flush()
        self.run_loaded.emit()

    def _combine_toggled(self, on: bool) -> None:
        if self.result is None:
            return
        self.chart_data = build_chart_data(self.result, combine_price_legs=on)
        self.charts.set_data(self.chart_data)
        self.charts.render(self.replay.playhead)

    # ---- replay frames ------------------------------------------------------------------------
    def _seek_from_view(self, hour: int) -> None:
        self.replay.pause()
        self.replay.seek(hour)

    def _draw_frame(self) -> None:
        """One frame: charts and position every time; the event log and metrics (whose repaint costs
        as much as all the charts) every TABLE_EVERY frames while playing, and always when paused."""
        if self.chart_data is None:
            return
        hour = self.replay.playhead
        self.charts.render(hour)
        self.controls.show_position(hour)
        self._frame_count += 1
        if not self.replay.playing or self.replay.at_end:
            self._update_tables()
        elif self._frame_count % TABLE_EVERY == 0 and not self._tables_timer.isActive():
            # Half a frame later, so the tables and the charts repaint in separate event-loop turns
            # (one paint of both would be the longest stall of the replay).
            self._tables_timer.start()

    def _update_tables(self) -> None:
        self._tables_timer.stop()
        hour = self.replay.playhead
        if hour != self.tables_hour:
            self.events.set_playhead(hour)
            self.metrics.metrics.set_playhead(hour)
            self.tables_hour = hour

    # ---- export -------------------------------------------------------------------------------
    def open_export_dialog(self) -> None:
        if self.result is None:
            return
        dialog = QFileDialog(self, "Export run to folder")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda name: self.export_to(Path(name) / self._export_name()))
        dialog.open()

    def _export_name(self) -> str:
        """One folder per run (its id), like the command line's results/<mode>/<run id>/."""
        return f"{self.result.summary['mode']}_{self.result.run_id}"

    def export_to(self, folder: Path) -> list[Path]:
        """summary.json, timeseries.csv, events.csv, balance_sheet.csv (engine) + charts.png of the
        whole run. A folder that already holds files is refused: an export never overwrites."""
        if self.result is None:
            raise RuntimeError("no backtest result to export; run one first")
        folder = Path(folder)
        try:
            paths = write_results(self.result, folder)
            # The whole run, drawn by an offscreen chart stack at print size: the on-screen charts,
            # their playhead and the readout stay as they are.
            paths.append(self.charts.save_png(folder / CHARTS_PNG))
        except OSError as exc:
            self._show_error("Export failed", str(exc))
            return []
        self._status(f"Exported {len(paths)} files to {folder}")
        return paths

    # ---- HTML report --------------------------------------------------------------------------
    def open_report_dialog(self) -> None:
        if self.result is None:
            return
        dialog = QFileDialog(self, "Export HTML report", f"{self._export_name()}.html", "HTML files (*.html)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("html")
        dialog.fileSelected.connect(lambda name: self.export_report(Path(name)))
        dialog.open()

    def export_report(self, path: Path) -> bool:
        """Write the report of the run on screen to `path`, built off the UI thread and out of its
        process (app.report_job); `report_written` or `report_failed` follows. False if one is being built."""
        if self.result is None:
            raise RuntimeError("no backtest result to report; run one first")
        if self._report_job is not None:
            self._status("An HTML report is already being written…")
            return False
        result = self.result
        label = self.spec.source_label if self.spec is not None else "shipped default"
        self._report_job = ReportJob(self)
        self._report_job.done.connect(self._report_done)
        self.report_button.setEnabled(False)
        self._status(f"Writing the HTML report to {path}…")
        self._report_job.start(result, Path(path), f"the workstation ({label}, not saved as a results folder)")
        return True

    def _report_done(self, ok: bool, text: str) -> None:
        self._report_job = None
        self.report_button.setEnabled(self.result is not None)
        if ok:
            self._status(f"HTML report written to {text}")
            self.report_written.emit(text)
        else:
            self._show_error("HTML report failed", text)
            self.report_failed.emit(text)

    # ---- messages -----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.status.setText(text)
        self.status_message.emit(text)

    def _show_error(self, title: str, message: str) -> None:
        show_banner(self.error_banner, f"<b>{title}</b><br>{_html(message)}", "banner")
        self._status(title)

    def shutdown(self) -> None:
        self.replay.pause()
        report_job.shutdown()


@dataclass
class PreparedView:
    """What the panel draws, derived from a result on the worker thread (no Qt objects)."""

    chart_data: ChartData
    events: EventIndex


def prepare_view(result: BacktestResult) -> PreparedView:
    return PreparedView(build_chart_data(result), index_events(result.events))


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")


__all__ = ["SOURCE_EDITOR", "SOURCE_SHIPPED", "BacktestPanel"]
