"""Lab panel: sweep a mode's settings (one or two grid axes) under a scenario, see the result as a
heatmap, open any cell in the backtest replay, and replay two runs (a cell and its stressed twin,
or two cells) on the same axes.

All engine work runs on the LabRunner's worker thread (a process pool by default); the panel only
reacts to its signals. The sweep store is kept per mode in the user data folder, so rerunning a
sweep (or one the app was closed during) only computes the cells that are missing.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.lab_runner import FullRun, LabRunner, SweepRequest, describe
from app.panels.backtest_panel import prepare_view
from app.settings import user_lab_dir
from app.widgets.compare_charts import CompareCharts, compare_series
from app.widgets.heatmap import HeatmapView
from engine.config import MODES
from engine.lab.grid import Axis, GridError, parse_axis
from engine.lab.sweep import NO_SCENARIO, SweepProgress
from engine.lab.trial import TrialSpec
from engine.scenarios import ScenarioError, available_scenarios, load_scenario, parse_at

#: (label, summary key, cell format, lower is better)
METRICS = (("APR", "apr", "{:.2%}", False), ("max drawdown", "max_drawdown", "{:.2%}", True),
           ("min health factor", "min_health_factor", "{:.4f}", False),
           ("liquidations", "liquidations", "{:.0f}", True), ("Sharpe (daily)", "sharpe", "{:.2f}", False))
#: keys offered for the axes (any dotted key `--set` takes can be typed)
AXIS_KEYS = ("leverage.target_ltv", "rebalancing.hf_floor", "rebalancing.hf_target", "hedge.margin_ratio_target",
             "rebalancing.margin_ratio_trigger", "rebalancing.margin_ratio_ceiling", "rebalancing.delta_drift_trigger")
#: a sensible first grid per mode
DEFAULT_AXES = {
    "eth_leveraged": (("leverage.target_ltv", "0.86,0.88,0.9,0.92"), ("rebalancing.hf_floor", "1.012,1.015,1.02")),
    "usdt_market_neutral": (("leverage.target_ltv", "0.86,0.88,0.9"), ("hedge.margin_ratio_target", "0.25,0.3,0.4")),
}
FALLBACK_AXES = (("hedge.margin_ratio_target", "0.25,0.3,0.4,0.5"), ("rebalancing.margin_ratio_trigger", "0.13,0.15,0.18"))
DEFAULT_AT = "2024-12-06T15:00Z"
HISTORY_CAP = 20


class LabPanel(QWidget):
    #: a finished run to show in the backtest replay (FullRun; .prepared = (PreparedView, CompareSeries))
    open_in_replay = Signal(object)
    status_message = Signal(str)

    def __init__(self, runner: LabRunner, store_root: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.store_root = store_root
        self.sweep_job = 0
        self.axes: tuple[Axis, Axis | None] | None = None
        self.sweep_context: dict[str, Any] = {}
        self.cells: dict[tuple[int, int], dict[str, Any]] = {}
        self.history: list[FullRun] = []
        self._run_jobs: set[int] = set()
        self._open_jobs: set[int] = set()          # runs to show in the replay when they finish
        self._build()
        self._connect()
        self._mode_changed()

    # ---- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 4)
        grid = QGridLayout()
        grid.addWidget(QLabel("Mode"), 0, 0)
        self.mode_combo = QComboBox(self)
        for mode in MODES:
            self.mode_combo.addItem(mode, mode)
        self.mode_combo.setCurrentIndex(self.mode_combo.findData("eth_leveraged"))
        grid.addWidget(self.mode_combo, 0, 1)
        grid.addWidget(QLabel("Scenario"), 0, 2)
        self.scenario_combo = QComboBox(self)
        self.scenario_combo.addItem("none (unshocked)", NO_SCENARIO)
        for name in available_scenarios():
            self.scenario_combo.addItem(name, name)
        grid.addWidget(self.scenario_combo, 0, 3)
        grid.addWidget(QLabel("at (UTC)"), 0, 4)
        self.at_edit = QLineEdit(DEFAULT_AT, self)
        self.at_edit.setToolTip("Hour the scenario's shocks start, e.g. 2024-12-06T15:00Z")
        grid.addWidget(self.at_edit, 0, 5)
        grid.addWidget(QLabel("Window"), 0, 6)
        self.start_edit = QLineEdit(self)
        self.start_edit.setPlaceholderText("data start")
        self.end_edit = QLineEdit(self)
        self.end_edit.setPlaceholderText("data end")
        for edit in (self.start_edit, self.end_edit):
            edit.setToolTip("UTC day YYYY-MM-DD (empty: the mode's whole data window)")
            edit.setMaximumWidth(110)
        window = QHBoxLayout()
        window.addWidget(self.start_edit)
        window.addWidget(QLabel("→"))
        window.addWidget(self.end_edit)
        window.addStretch(1)
        grid.addLayout(window, 0, 7)

        self.axis_keys: list[QComboBox] = []
        self.axis_values: list[QLineEdit] = []
        for row, name in ((1, "X axis"), (2, "Y axis")):
            grid.addWidget(QLabel(name), row, 0)
            key = QComboBox(self)
            key.setEditable(True)
            key.addItems(([""] if row == 2 else []) + list(AXIS_KEYS))
            key.setToolTip("A dotted config key, as --set takes it" + (" (empty: one axis)" if row == 2 else ""))
            values = QLineEdit(self)
            values.setToolTip("Comma-separated values, e.g. 0.86,0.88,0.9")
            grid.addWidget(key, row, 1, 1, 2)
            grid.addWidget(values, row, 3, 1, 3)
            self.axis_keys.append(key)
            self.axis_values.append(values)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Backend"))
        self.backend_combo = QComboBox(self)
        for backend in ("process", "serial", "ray"):
            self.backend_combo.addItem(backend, backend)
        self.backend_combo.setToolTip("process: a pool of worker processes; serial: this app's worker thread; "
                                      "ray: Ray workers on this machine")
        controls.addWidget(self.backend_combo)
        controls.addWidget(QLabel("Workers"))
        self.workers_spin = QSpinBox(self)
        self.workers_spin.setRange(1, max(1, (os.cpu_count() or 1) * 2))
        self.workers_spin.setValue(max(1, min(2, os.cpu_count() or 1)))
        controls.addWidget(self.workers_spin)
        self.run_button = QPushButton("Run sweep", self)
        self.run_button.setObjectName("primary")
        controls.addWidget(self.run_button)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        controls.addWidget(self.cancel_button)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(180)
        controls.addWidget(self.progress)
        self.eta_label = QLabel("", self)
        self.eta_label.setObjectName("dim")
        controls.addWidget(self.eta_label, 1)
        grid.addLayout(controls, 1, 6, 2, 2)
        outer.addLayout(grid)
        self.status = QLabel("Choose a mode, one or two axes and a scenario, then Run sweep.", self)
        self.status.setObjectName("dim")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.status)

        top = QSplitter(Qt.Orientation.Horizontal, self)
        left = QWidget(top)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        metric_row = QHBoxLayout()
        metric_row.addWidget(QLabel("Colour by"))
        self.metric_combo = QComboBox(left)
        for label, key, fmt, reverse in METRICS:
            self.metric_combo.addItem(label, (key, fmt, reverse))
        metric_row.addWidget(self.metric_combo)
        self.open_box = QCheckBox("Open a clicked cell in the backtest replay", left)
        self.open_box.setChecked(True)
        metric_row.addWidget(self.open_box)
        metric_row.addStretch(1)
        left_layout.addLayout(metric_row)
        self.heatmap = HeatmapView(left)
        left_layout.addWidget(self.heatmap, 1)
        top.addWidget(left)

        right = QWidget(top)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(QLabel("Run history (clicked cells and twins; select two to compare)"))
        self.history_table = QTableWidget(0, 5, right)
        self.history_table.setHorizontalHeaderLabels(["run", "APR", "min HF", "liq.", "max DD"])
        self.history_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.history_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.horizontalHeader().setStretchLastSection(False)
        self.history_table.setColumnWidth(0, 300)
        for col in range(1, 5):
            self.history_table.setColumnWidth(col, 68)
        right_layout.addWidget(self.history_table, 1)
        buttons = QHBoxLayout()
        self.twin_button = QPushButton("Add stressed twin", right)
        self.twin_button.setToolTip("Run the selected run's config again with the scenario switched: shocked runs "
                                    "get their unshocked twin, unshocked ones the scenario chosen above")
        self.compare_button = QPushButton("Compare selected", right)
        self.replay_button = QPushButton("Open in replay", right)
        for b in (self.twin_button, self.compare_button, self.replay_button):
            buttons.addWidget(b)
        right_layout.addLayout(buttons)
        top.addWidget(right)
        top.setSizes([760, 560])

        body = QSplitter(Qt.Orientation.Vertical, self)
        body.addWidget(top)
        self.compare = CompareCharts(body)
        body.addWidget(self.compare)
        body.setSizes([340, 580])
        outer.addWidget(body, 1)

    def _connect(self) -> None:
        r = self.runner
        r.sweep_progress.connect(self._on_progress)
        r.sweep_finished.connect(self._on_sweep_finished)
        r.sweep_failed.connect(self._on_sweep_failed)
        r.run_finished.connect(self._on_run_finished)
        r.run_failed.connect(self._on_run_failed)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(self.cancel)
        self.metric_combo.currentIndexChanged.connect(self._redraw)
        self.heatmap.cell_clicked.connect(self.open_cell)
        self.twin_button.clicked.connect(self.add_twin)
        self.compare_button.clicked.connect(self.compare_selected)
        self.replay_button.clicked.connect(self.replay_selected)

    def _mode_changed(self) -> None:
        for (key, values), key_box, values_edit in zip(DEFAULT_AXES.get(self.mode, FALLBACK_AXES),
                                                        self.axis_keys, self.axis_values):
            key_box.setCurrentText(key)
            values_edit.setText(values)

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    # ---- sweeps -------------------------------------------------------------------------------
    def _axes(self) -> tuple[Axis, Axis | None]:
        parsed: list[Axis | None] = []
        for key_box, values_edit in zip(self.axis_keys, self.axis_values):
            key, values = key_box.currentText().strip(), values_edit.text().strip()
            if not key and not values:
                parsed.append(None)
                continue
            parsed.append(parse_axis(f"{key}={values}"))
        if parsed[0] is None:
            raise GridError("the X axis needs a key and values")
        if parsed[1] is not None and parsed[1].key == parsed[0].key:
            raise GridError(f"both axes are {parsed[0].key}")
        return parsed[0], parsed[1]

    def _window(self) -> tuple[str | None, str | None]:
        import pandas as pd
        out = []
        for edit, hour in ((self.start_edit, 0), (self.end_edit, 23)):
            text = edit.text().strip()
            if not text:
                out.append(None)
                continue
            try:
                day = pd.Timestamp(text).tz_localize("UTC").floor("D") + pd.Timedelta(hours=hour)
            except (ValueError, TypeError):
                raise ValueError(f"window {text!r} is not a day (YYYY-MM-DD)") from None
            out.append(day.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return out[0], out[1]

    def _scenario(self):
        name = self.scenario_combo.currentData()
        if name == NO_SCENARIO:
            return None, None
        return load_scenario(name), parse_at(self.at_edit.text().strip()).strftime("%Y-%m-%dT%H:%M:%SZ")

    def run(self) -> int:
        """Start a sweep of the controls' grid; returns its job number (0: it could not start)."""
        if self.runner.busy:
            self._status("The Lab is busy; cancel the running job first.")
            return 0
        try:
            x, y = self._axes()
            scenario, at = self._scenario()
            start, end = self._window()
        except (GridError, ScenarioError, ValueError) as exc:
            self._status(f"Cannot run: {exc}")
            return 0
        axes = (x,) + ((y,) if y is not None else ())
        store = (self.store_root or user_lab_dir()) / self.mode
        self.axes = (x, y)
        self.sweep_context = {"mode": self.mode, "scenario": scenario, "at": at, "start": start, "end": end}
        self.cells = {}
        self.heatmap.set_grid(x.key, [_label(v) for v in x.values], y.key if y else "",
                              [_label(v) for v in y.values] if y else [])
        self._redraw()
        request = SweepRequest(self.mode, axes, scenario, at, start, end, self.backend_combo.currentData(),
                               self.workers_spin.value(), store)
        self.sweep_job = self.runner.start_sweep(request)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.eta_label.setText("planning…")
        n = len(x.values) * (len(y.values) if y else 1)
        self._status(f"Sweeping {self.mode}: {n} cells, {scenario.name if scenario else 'unshocked'}, "
                     f"{request.backend} backend x{request.workers}; finished cells are kept in {store}")
        return self.sweep_job

    def cancel(self) -> None:
        self.runner.cancel()
        self.eta_label.setText("cancelling: running trials finish, no new ones start…")

    def _cell_of(self, labels: dict[str, Any]) -> tuple[int, int] | None:
        x, y = self.axes
        try:
            ix = list(x.values).index(labels[x.key])
            iy = list(y.values).index(labels[y.key]) if y is not None else 0
        except (KeyError, ValueError):
            return None
        return ix, iy

    def _on_progress(self, job: int, p: SweepProgress) -> None:
        if job != self.sweep_job:
            return
        if p.total:
            self.progress.setValue(int(1000 * p.done / p.total))
        eta = p.eta_s
        self.eta_label.setText(f"{p.done}/{p.total} trials · {p.cached} from the store · {p.elapsed_s:.0f} s"
                               + (f" · ETA {eta:.0f} s" if eta is not None and p.done < p.total else ""))
        if p.record is not None and p.trial is not None:
            cell = self._cell_of(p.trial.labels)
            if cell is not None:
                self.cells[cell] = p.record
                self._redraw()

    def _on_sweep_finished(self, job: int, rows: list[dict[str, Any]], cancelled: bool) -> None:
        if job != self.sweep_job:
            return
        for row in rows:
            cell = self._cell_of(row)
            if cell is not None:
                self.cells[cell] = row
        self._redraw()
        self._sweep_ended()
        self.progress.setValue(1000 if not cancelled else self.progress.value())
        errors = [r for r in rows if r.get("status") != "ok"]
        self._status(f"Sweep {'cancelled' if cancelled else 'done'}: {len(rows)} cells with results"
                     + (f", {len(errors)} invalid or failed (grey; hover the status of a click)" if errors else "")
                     + ". Click a cell to open it.")

    def _on_sweep_failed(self, job: int, message: str) -> None:
        if job == self.sweep_job:
            self._sweep_ended()
            self._status(f"Sweep failed: {message.splitlines()[0]}")
            self.status.setToolTip(message)

    def _sweep_ended(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _redraw(self) -> None:
        if self.axes is None:
            return
        key, fmt, reverse = self.metric_combo.currentData()
        x, y = self.axes
        values = np.full((len(x.values), len(y.values) if y else 1), np.nan)
        for (ix, iy), record in self.cells.items():
            v = record.get(key) if record.get("status") == "ok" else None
            values[ix, iy] = float(v) if isinstance(v, (int, float)) and v is not None and math.isfinite(v) else np.nan
        scenario = self.sweep_context.get("scenario")
        title = f"{self.sweep_context.get('mode')} · {self.metric_combo.currentText()} · " \
                f"{scenario.name + ' at ' + self.sweep_context['at'] if scenario else 'unshocked'}"
        self.heatmap.set_values(values, title, fmt, reverse)

    # ---- cells and history ----------------------------------------------------------------------
    def cell_spec(self, ix: int, iy: int) -> tuple[TrialSpec, dict[str, Any]]:
        x, y = self.axes
        overrides = {x.key: x.values[ix]}
        if y is not None:
            overrides[y.key] = y.values[iy]
        ctx = self.sweep_context
        scenario = ctx["scenario"]
        spec = TrialSpec(mode=ctx["mode"], overrides=overrides, scenario=scenario,
                         at=ctx["at"] if scenario else None, start=ctx["start"], end=ctx["end"])
        return spec, {**overrides, "scenario": scenario.name if scenario else NO_SCENARIO}

    def open_cell(self, ix: int, iy: int) -> int:
        """Run the cell's full backtest; it joins the history (and opens in the replay if chosen)."""
        if self.axes is None:
            return 0
        record = self.cells.get((ix, iy))
        if record is not None and record.get("status") != "ok":
            self._status(f"This cell has no result: {record.get('error', '').splitlines()[0]}")
            self.status.setToolTip(record.get("error", ""))
            return 0
        spec, labels = self.cell_spec(ix, iy)
        return self._start_run(spec, labels, None, open_after=self.open_box.isChecked())

    def _start_run(self, spec: TrialSpec, labels: dict[str, Any], twin_of: int | None, open_after: bool) -> int:
        label = describe(spec.mode, labels)
        job = self.runner.start_run(label, spec, labels, twin_of,
                                    prepare=lambda result: (prepare_view(result), compare_series(result, label)))
        self._run_jobs.add(job)
        if open_after:
            self._open_jobs.add(job)
        self._status(f"Running {label}…")
        return job

    def _on_run_finished(self, job: int, run: FullRun) -> None:
        if job not in self._run_jobs:
            return
        self._run_jobs.discard(job)
        self.history.append(run)
        if len(self.history) > HISTORY_CAP:
            self.history.pop(0)
        self._refresh_history()
        s = run.result.summary
        self._status(f"{run.label}: APR {s['apr']:.2%}, max drawdown {s['max_drawdown']:.2%}, "
                     f"{s['liquidations']} liquidations")
        if run.twin_of is not None and run.twin_of < len(self.history):
            self.compare_runs(self.history[run.twin_of], run)
        if job in self._open_jobs:
            self._open_jobs.discard(job)
            self.open_in_replay.emit(run)

    def _on_run_failed(self, job: int, message: str) -> None:
        if job in self._run_jobs:
            self._run_jobs.discard(job)
            self._status(f"Run failed: {message}")

    def _refresh_history(self) -> None:
        table = self.history_table
        table.setRowCount(len(self.history))
        for row, run in enumerate(self.history):
            s = run.result.summary
            hf = s["min_health_factor"]
            cells = [run.label, f"{s['apr']:.2%}", "–" if hf is None else f"{hf:.4f}", str(s["liquidations"]),
                     f"{s['max_drawdown']:.2%}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setToolTip(text)
                table.setItem(row, col, item)

    def selected_history(self) -> list[int]:
        return sorted({index.row() for index in self.history_table.selectionModel().selectedRows()})

    def add_twin(self) -> int:
        rows = self.selected_history()
        if len(rows) != 1:
            self._status("Select one run in the history to add its twin.")
            return 0
        source = self.history[rows[0]]
        spec = source.spec
        labels = dict(source.labels)
        if spec.scenario is not None:
            twin = TrialSpec(spec.mode, dict(spec.overrides), None, None, spec.start, spec.end, spec.capital)
            labels["scenario"] = NO_SCENARIO
        else:
            try:
                scenario, at = self._scenario()
            except (ScenarioError, ValueError) as exc:
                self._status(f"Cannot run the twin: {exc}")
                return 0
            if scenario is None:
                self._status("Choose a scenario above for the stressed twin of an unshocked run.")
                return 0
            twin = TrialSpec(spec.mode, dict(spec.overrides), scenario, at, spec.start, spec.end, spec.capital)
            labels["scenario"] = scenario.name
        return self._start_run(twin, labels, rows[0], open_after=False)

    def compare_selected(self) -> None:
        rows = self.selected_history()
        if len(rows) != 2:
            self._status("Select exactly two runs in the history to compare them.")
            return
        self.compare_runs(self.history[rows[0]], self.history[rows[1]])

    def compare_runs(self, a: FullRun, b: FullRun) -> None:
        self.compare.set_runs(a.prepared[1], b.prepared[1])
        self._status(f"Comparing {a.label}  vs  {b.label}. Play to replay both on the same axes.")

    def replay_selected(self) -> None:
        rows = self.selected_history()
        if len(rows) != 1:
            self._status("Select one run in the history to open it in the replay.")
            return
        self.open_in_replay.emit(self.history[rows[0]])

    # ---- messages -----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.status.setText(text)
        self.status_message.emit(text)

    def shutdown(self) -> None:
        self.compare.replay.pause()
        self.runner.shutdown()


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


__all__ = ["LabPanel"]
