"""Live P&L chart: cumulative P&L by component and in total since the session started.

Points are appended to preallocated float64 arrays (capacity doubles when full, so an append is
O(1) amortised); curves are drawn with clip-to-view and peak downsampling and no antialiasing, at the
dashboard's bounded frame rate. A component appears in the legend once it moved.

The time axis reads clock times (UTC, HH:MM:SS at the finest): a session a few ticks old spans a few
seconds, where pyqtgraph's date axis would fall to its millisecond level and label the ticks
"54.500"; the view also never zooms below a minute.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app import style
from app.widgets.charts import NumberAxis
from engine.domain.pnl import COMPONENTS

INITIAL_CAPACITY = 1024
TOTAL = "total"
#: the narrowest time span shown (seconds)
MIN_SPAN_S = 60.0


class ClockAxis(pg.DateAxisItem):
    """UTC clock times; the finest labels are HH:MM:SS (no sub-second "54.500" labels)."""

    def __init__(self) -> None:
        super().__init__(orientation="bottom", utcOffset=0)
        finest = min(self.zoomLevels)
        if len(self.zoomLevels) > 1:
            del self.zoomLevels[finest]          # the millisecond level ("%S.%f" labels)


class LivePnlChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(self, axisItems={"bottom": ClockAxis(), "left": NumberAxis("left")})
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("left", "cumulative P&L")
        self.plot.setLabel("bottom", "time (UTC)")
        self.item = self.plot.getPlotItem()
        self.item.vb.setLimits(minXRange=MIN_SPAN_S)
        self.item.setClipToView(True)
        self.item.setDownsampling(auto=True, mode="peak")
        self.item.addLine(y=0.0, pen=pg.mkPen(style.TRIGGER_LINE, width=1, style=pg.QtCore.Qt.PenStyle.DotLine))
        self.legend = self.item.addLegend(offset=(8, 8), labelTextColor=style.CHART_FOREGROUND,
                                          brush=pg.mkBrush(style.CHART_BACKGROUND), pen=pg.mkPen(style.BORDER))
        layout.addWidget(self.plot)
        self.currency = "USDT"
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.x = np.empty(INITIAL_CAPACITY, dtype=np.float64)
        self.ys = np.empty((len(COMPONENTS) + 1, INITIAL_CAPACITY), dtype=np.float64)
        self.count = 0
        self._seen = 0
        self._young = True
        self.source: object | None = None
        style.theme_changed().connect(self.restyle)

    def restyle(self) -> None:
        """The active theme's colours (the curves are rebuilt with them on the next redraw)."""
        self.plot.setBackground(style.CHART_BACKGROUND)
        for side in ("left", "bottom"):
            axis = self.item.getAxis(side)
            axis.setPen(style.CHART_FOREGROUND)
            axis.setTextPen(style.CHART_FOREGROUND)
        self.legend.setBrush(pg.mkBrush(style.CHART_BACKGROUND))
        self.legend.setPen(pg.mkPen(style.BORDER))
        self.legend.setLabelTextColor(style.CHART_FOREGROUND)
        for curve in self.curves.values():
            self.item.removeItem(curve)
            self.legend.removeItem(curve)
        self.curves = {}
        self.redraw()

    def reset(self, source: object | None = None, currency: str = "USDT") -> None:
        for curve in self.curves.values():
            self.item.removeItem(curve)
            self.legend.removeItem(curve)
        self.curves = {}
        self.count = 0
        self._young = True
        self.source = source
        self.currency = currency
        self.plot.setLabel("left", f"cumulative P&L ({currency})")

    def append(self, at: float, pnl: float, components: tuple[float, ...]) -> None:
        if self.count == self.x.size:
            self.x = np.concatenate([self.x, np.empty_like(self.x)])
            self.ys = np.concatenate([self.ys, np.empty_like(self.ys)], axis=1)
        i = self.count
        self.x[i] = at
        self.ys[:-1, i] = components
        self.ys[-1, i] = pnl
        # A non-finite point is a gap, never an infinity handed to pyqtgraph's auto-range.
        column = self.ys[:, i]
        column[~np.isfinite(column)] = np.nan
        self.count += 1

    def sync(self, source: object, history, currency: str, ticks: int) -> None:
        """Catch up with a session's tick history (TickRecords of its snapshot; `ticks` counts every
        tick, including ones the bounded history has dropped). ``source`` names the session."""
        if source != self.source:
            self.reset(source, currency)
            for rec in history:
                self.append(rec.at, rec.pnl, rec.components)
            self._seen = ticks
        else:
            new = min(ticks - self._seen, len(history))
            if new > 0:
                for rec in list(history)[-new:]:
                    self.append(rec.at, rec.pnl, rec.components)
                self._seen = ticks
        self.redraw()

    def redraw(self) -> None:
        n = self.count
        if n == 0:
            return
        x = self.x[:n]
        young = x[-1] - x[0] < MIN_SPAN_S
        if young:
            # A young session: show the last minute, so the axis labels are clock times.
            self.item.setXRange(x[-1] - MIN_SPAN_S, x[-1], padding=0.02)
        elif self._young:
            self.item.enableAutoRange(axis="x")     # once: a zoom the operator makes later stays
        self._young = young
        for i, name in enumerate((*COMPONENTS, TOTAL)):
            y = self.ys[i, :n]
            if name not in self.curves:
                if name != TOTAL and not np.any(np.abs(y) > 1e-12):
                    continue                      # a component that never moved stays out of the legend
                color = style.SERIES["pnl_total"] if name == TOTAL else style.COMPONENT_COLORS.get(name, style.TEXT)
                pen = pg.mkPen(color, width=2 if name == TOTAL else 1)
                self.curves[name] = self.item.plot(name=name.replace("_", " "), pen=pen, connect="finite")
            self.curves[name].setData(x, y)

    def drawn_points(self, name: str = TOTAL) -> int:
        curve = self.curves.get(name)
        if curve is None or curve.xData is None:
            return 0
        return len(curve.xData)
