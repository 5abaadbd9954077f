"""Two runs replayed together on the same axes: a run and its stressed twin, or two grid cells.

Four plots share one UTC time axis: return on the initial value (%, so runs in different
currencies compare), AAVE health factor, the lowest perp margin ratio across venues, and the price
of the hedged asset. Run A is drawn solid, run B dashed in a second colour; one playhead moves
through both, and each run is drawn up to it, so the two paths unfold side by side.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app import style
from app.frame_scheduler import FrameScheduler
from app.replay import ReplayController
from app.widgets.replay_controls import ReplayControls
from engine.services.backtest import BacktestResult

RUN_COLORS = ("#4c9aff", "#ff8c42")
PLOTS = (("return", "Return on initial value (%)"), ("hf", "AAVE health factor"),
         ("margin", "Lowest perp margin ratio (equity / notional)"), ("price", "Price of the hedged asset (USD)"))


@dataclass
class CompareSeries:
    """What the comparison draws of one run (numpy only; built off the UI thread)."""

    label: str
    x: np.ndarray
    ys: dict[str, np.ndarray | None]


def compare_series(result: BacktestResult, label: str) -> CompareSeries:
    out = result.output
    x = np.asarray(result.timestamps.asi8 // 1_000_000_000, dtype=np.float64)
    margins = [a for a in out.margin_ratio.values() if np.any(np.isfinite(a))]
    hf = np.array(out.health_factor, dtype=np.float64)
    return CompareSeries(label, x, {
        "return": (np.asarray(out.values) / out.initial_value - 1.0) * 100.0,
        "hf": hf if np.any(np.isfinite(hf)) else None,
        "margin": np.fmin.reduce(margins) if margins else None,
        "price": np.array(result.underlying_price, dtype=np.float64),
    })


class CompareCharts(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.legend = QLabel("Select two runs in the history and press Compare.", self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.legend)
        self.replay = ReplayController(self)
        self.controls = ReplayControls(self.replay, self)
        layout.addWidget(self.controls)
        self.graphics = pg.GraphicsLayoutWidget(self)
        layout.addWidget(self.graphics, 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, list[pg.PlotDataItem]] = {}
        self.playheads: list[pg.InfiniteLine] = []
        first = None
        for row, (name, title) in enumerate(PLOTS):
            plot = self.graphics.addPlot(row=row, col=0,
                                         axisItems={"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0)})
            plot.setTitle(title, size="8pt", justify="left")
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.vb.setMouseEnabled(x=True, y=False)
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            curves = []
            for i, color in enumerate(RUN_COLORS):
                pen = pg.mkPen(color, width=1.6, style=Qt.PenStyle.SolidLine if i == 0 else Qt.PenStyle.DashLine)
                curve = plot.plot(pen=pen)
                curve.setClipToView(True)
                curve.setDownsampling(auto=True, method="peak")
                curves.append(curve)
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen(style.SERIES["playhead"], width=1))
            plot.addItem(line, ignoreBounds=True)
            self.playheads.append(line)
            self.plots[name] = plot
            self.curves[name] = curves
        self.runs: list[CompareSeries] = []
        self.frames = FrameScheduler(self._draw, parent=self)
        self.replay.playhead_changed.connect(lambda _h: self.frames.request())

    def set_runs(self, a: CompareSeries, b: CompareSeries) -> None:
        """Compare two runs; the playhead walks run A's hours (B is drawn up to the same time)."""
        self.runs = [a, b]
        swatch = [f"<span style='color:{c}'>{'━━' if i == 0 else '╍╍'}</span> {run.label}"
                  for i, (c, run) in enumerate(zip(RUN_COLORS, self.runs))]
        self.legend.setText(" &nbsp;&nbsp; ".join(swatch))
        lo = min(float(r.x[0]) for r in self.runs)
        hi = max(float(r.x[-1]) for r in self.runs)
        for name, plot in self.plots.items():
            present = [r.ys[name] for r in self.runs if r.ys[name] is not None]
            plot.setVisible(bool(present))
            if present:
                finite = np.concatenate([y[np.isfinite(y)] for y in present])
                if finite.size:
                    span = max(float(finite.max() - finite.min()), 1e-9)
                    plot.setYRange(float(finite.min()) - 0.05 * span, float(finite.max()) + 0.05 * span, padding=0)
            plot.setXRange(lo, hi, padding=0.01)
        self.controls.set_timestamps(a.x)
        self.replay.set_length(len(a.x))
        self.replay.seek(len(a.x) - 1)          # show both runs in full first; Play replays them
        self.frames.request()
        self.frames.flush()

    def drawn_points(self) -> dict[str, list[int]]:
        """Per plot, how many points of each run are drawn (tests)."""
        return {name: [0 if c.xData is None else len(c.xData) for c in curves]
                for name, curves in self.curves.items()}

    def _draw(self) -> None:
        if not self.runs:
            return
        hour = self.replay.playhead
        at = float(self.runs[0].x[hour])
        for line in self.playheads:
            line.setValue(at)
        for i, run in enumerate(self.runs):
            k = int(np.searchsorted(run.x, at, side="right"))
            for name, curves in self.curves.items():
                y = run.ys[name]
                if y is None:
                    curves[i].setData([], [])
                else:
                    curves[i].setData(run.x[:k], y[:k], connect="finite")
        self.controls.show_position(hour)
