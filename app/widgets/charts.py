"""Replay charts: a stack of pyqtgraph plots sharing one UTC time axis, with a playhead and crosshair.

Plots: portfolio value (left axis) with cumulative P&L on the right axis; P&L by component (stacked);
net delta (on-chain vs CEX); AAVE health factor with its liquidation line; margin ratio per venue
with warning/liquidation lines; LST peg. Plots that do not apply to a mode (no debt, no hedge, no
LST) are left out. Each plot's title carries its legend, so no legend box hides the data, and the
reference lines are labelled on the plot's right axis, outside the data, in the lines' colours.

Series that can coincide exactly (the venues' margin ratios, when every venue holds the same share
of the hedge) differ by line width as well as colour, widest underneath: lying on top of each other
they read as one line with three coloured layers (3, 2 and 1 px), and none is shifted off its true
value to make room. (Dash patterns were tried: over the min/max envelope of a decimated curve they turn into
speckle.) Their legend shows each venue's value at the playhead (or the hovered hour).

`render(k)` draws hours 0..k. The caller limits how often (<= 30 Hz, app.frame_scheduler). Each
frame hands pyqtgraph about two points per pixel column from app.decimate (clip to the visible hours
plus min/max downsampling precomputed per zoom level), and antialiasing is off
(app.style.configure_pyqtgraph), so a frame's cost does not grow with the window length.

The readout line above the charts names the run it describes (mode and currency), follows the
playhead unless the mouse is over a plot, and lets go of a hovered hour when the mouse leaves the
charts or another run is loaded: it never shows a previous run's numbers or a stale hour.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QPen
from PySide6.QtWidgets import QApplication, QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app import style
from app.chart_data import ChartData, Threshold, hour_at
from app.decimate import PeakDecimator
from app.widgets.stacked_area import StackedAreaItem, blend
from app.widgets.view_grid import ViewGrid

#: width of the left and right axis columns at text size 1.0 (scaled with it)
AXIS_WIDTH = 80
TITLE_PT = 8.0
LINE_STYLES = {"danger": Qt.PenStyle.DashLine, "warning": Qt.PenStyle.DashLine, "trigger": Qt.PenStyle.DotLine}
#: per venue: pen style, width and legend mark; drawn widest first, so where the lines coincide
#: each one still shows as a 1 px layer of its colour beside the next (without antialiasing a
#: 3 px line adds a pixel on each side of the 1 px one, a 2 px line one on one side). Wider pens
#: were clearer but cost ~8 ms a full repaint of a window of zig-zags; these cost ~2 ms.
VENUE_LINES: dict[str, tuple[Qt.PenStyle, int, str]] = {
    "binance": (Qt.PenStyle.SolidLine, 3, "wide"),
    "bybit": (Qt.PenStyle.SolidLine, 2, "medium"),
    "okx": (Qt.PenStyle.SolidLine, 1, "thin"),
}
_EXTRA_VENUE_LINES = ((Qt.PenStyle.DashLine, 1, "dash"), (Qt.PenStyle.DotLine, 1, "dot"))
#: smallest plot height in pixels before the stack scrolls instead of squeezing further
MIN_PLOT_HEIGHT = 70
#: size of the exported chart image (width x height per plot row); the width is at least 1600 px
EXPORT_WIDTH = 1800
EXPORT_ROW_HEIGHT = 230


def line_color(kind: str) -> str:
    return {"danger": style.DANGER_LINE, "warning": style.WARNING_LINE, "trigger": style.TRIGGER_LINE}[kind]


def venue_line(venue: str, index: int) -> tuple[Qt.PenStyle, int, str]:
    return VENUE_LINES.get(venue, _EXTRA_VENUE_LINES[index % len(_EXTRA_VENUE_LINES)])


def format_number(value: float | None, decimals: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:,.{decimals}f}"


def format_pct(value: float) -> str:
    """A margin ratio already in percent; a venue without a perp shows as flat."""
    return "flat" if not math.isfinite(value) else f"{value:.1f} %"


def currency_decimals(currency: str) -> int:
    return 2 if currency == "USDT" else 4


class NumberAxis(pg.AxisItem):
    """Plain numbers with thousands separators (no SI prefixes: '101,500' reads better than '101.5 k').

    `offset` shifts the labels (value - offset) and puts the ticks on round numbers of the shifted
    scale: the value chart's right axis reads the same curve as cumulative P&L.
    """

    def __init__(self, orientation: str, offset: float = 0.0, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.offset = offset
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal: float, maxVal: float, size: float):
        levels = super().tickValues(minVal - self.offset, maxVal - self.offset, size)
        return [(spacing, [v + self.offset for v in values]) for spacing, values in levels]

    def tickStrings(self, values, scale, spacing):
        decimals = max(0, min(6, -int(math.floor(math.log10(spacing))) if spacing > 0 else 0))
        return [f"{(v - self.offset) * scale:,.{decimals}f}" for v in values]


class ThresholdAxis(pg.AxisItem):
    """A right axis that names the plot's reference lines beside them, in their colours.

    The labels live in the axis column, outside the data area, so they never cover a curve and are
    never clipped by the plot's edge; labels of lines closer than a text line are pushed apart
    (each keeps a tick at its line's true height)."""

    def __init__(self) -> None:
        super().__init__("right")
        self.enableAutoSIPrefix(False)
        self.marks: list[tuple[float, str, str]] = []     # (value, text, colour)

    def set_marks(self, marks: list[tuple[float, str, str]]) -> None:
        self.marks = list(marks)
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float):
        return []                                          # no numbers: the left axis has them

    def label_positions(self, height: float, line: float) -> list[tuple[float, float, str, str]]:
        """(true y, label y, text, colour) of the marks inside the range, labels at least `line`
        pixels apart and inside [0, height]: laid out top-down, then pulled back up from the bottom."""
        low, high = self.range
        if not high > low:
            return []
        placed = sorted(((height * (high - v) / (high - low), text, color) for v, text, color in self.marks
                         if low <= v <= high), key=lambda m: m[0])
        out: list[list] = []
        for y, text, color in placed:
            label = max(y, line / 2, out[-1][1] + line if out else -math.inf)
            out.append([y, label, text, color])
        for i in range(len(out) - 1, -1, -1):
            limit = height - line / 2 if i == len(out) - 1 else out[i + 1][1] - line
            out[i][1] = min(out[i][1], limit)
        return [tuple(m) for m in out]

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):
        super().drawPicture(p, axisSpec, [], [])
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        metrics = QFontMetricsF(p.font())
        bounds = self.mapRectFromParent(self.geometry())
        line = metrics.height()
        tick = 5.0
        width = bounds.width() - tick - 3
        for y, label_y, text, color in self.label_positions(bounds.height(), line):
            pen = QPen(QColor(color))
            pen.setCosmetic(True)
            p.setPen(pen)
            top = bounds.top()
            p.drawLine(QPointF(bounds.left(), top + y), QPointF(bounds.left() + tick, top + label_y))
            rect = QRectF(bounds.left() + tick + 2, top + label_y - line / 2, width, line)
            p.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                       metrics.elidedText(text, Qt.TextElideMode.ElideRight, width))


@dataclass
class _Legend:
    """One entry of a plot's title legend; with `values`, it also shows the series at the hour."""

    color: str
    label: str
    kind: str = "line"
    values: np.ndarray | None = None
    fmt: Callable[[float], str] | None = None

    def html(self, hour: int | None) -> str:
        text = self.label
        if self.values is not None and hour is not None and self.fmt is not None:
            text += f" <b>{self.fmt(float(self.values[hour]))}</b>"
        return _swatch(self.color, text, self.kind)


@dataclass
class _Plot:
    """One plot, its curves (drawn from a shared decimator) and its title legend."""

    item: pg.PlotItem
    title: str
    curves: list[tuple[pg.PlotCurveItem, int]] = field(default_factory=list)   # (curve, index into ys)
    ys: list[np.ndarray] = field(default_factory=list)
    #: stacked areas and the indices (into ys) of their boundaries
    areas: list[tuple[StackedAreaItem, list[int]]] = field(default_factory=list)
    legend: list[_Legend] = field(default_factory=list)
    #: a remark after the legend (what the y range leaves out)
    note: str = ""
    #: values the y range always includes (reference lines)
    anchors: list[float] = field(default_factory=list)
    decimator: PeakDecimator | None = None
    #: put the legend on its own line under the title (long legends)
    wrap_legend: bool = False
    #: smallest y span shown, so float noise (a hedged delta of 1e-16) is not blown up to full height
    min_span: float = 0.0
    #: a fixed y range (the margin band) instead of fitting the data
    fixed_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    title_html: str = ""

    @property
    def live_legend(self) -> bool:
        return any(entry.values is not None for entry in self.legend)

    def compose_title(self, hour: int | None) -> str:
        legend = " &nbsp; ".join(entry.html(hour) for entry in self.legend)
        note = f" &nbsp;<span style='color:{style.TEXT_DIM}'>{self.note}</span>" if self.note else ""
        return (f"<span style='color:{style.TEXT}; font-weight:600'>{self.title}</span>"
                f"{'<br>' if self.wrap_legend else '&nbsp;&nbsp;&nbsp;'}{legend}{note}")

    def fit_y(self) -> None:
        """Fit the y range to everything the run will draw in the visible hours (not only the part
        played so far): the axes stay still during a replay (no rescaling jumps, and no axis repaint
        per frame), and the chart fills in towards its final shape."""
        if self.fixed_range is not None:
            lo, hi = self.fixed_range
            pad = 0.04 * (hi - lo)
            self.y_range = (lo - pad, hi + pad)
            self.item.setYRange(*self.y_range, padding=0)
            return
        ys = self.decimator.visible_series()
        finite = [y[np.isfinite(y)] for y in ys]
        finite = [y for y in finite if y.size]
        if not finite:
            return
        anchors = [a for a in self.anchors if math.isfinite(a)]
        lo = min([float(y.min()) for y in finite] + anchors)
        hi = max([float(y.max()) for y in finite] + anchors)
        span = hi - lo
        if not math.isfinite(span):         # finite values near the float limits: nothing sane to show
            return
        minimum = max(self.min_span, abs(hi) * 1e-6, 1e-12)
        if span < minimum:
            centre = (hi + lo) / 2
            lo, hi, span = centre - minimum / 2, centre + minimum / 2, minimum
        pad = 0.06 * span
        self.y_range = (lo - pad, hi + pad)
        self.item.setYRange(*self.y_range, padding=0)


def _set_title(item: pg.PlotItem, html: str) -> None:
    """A left-aligned title that never widens the plot: pyqtgraph makes a title's text width the
    plot's minimum width, and a long legend would push every plot past the window's right edge."""
    item.setTitle(html, size=f"{style.scaled_pt(TITLE_PT)}pt", justify="left")
    label = item.titleLabel
    height = label.minimumHeight()
    label.updateMin = lambda: None
    label.setMinimumWidth(0)
    label.setMinimumHeight(height)
    label.setMaximumHeight(height)


def _update_title(item: pg.PlotItem, html: str) -> None:
    """New title text without a layout pass (the title's size is fixed by _set_title)."""
    item.titleLabel.setText(html, size=f"{style.scaled_pt(TITLE_PT)}pt", justify="left")


SWATCHES = {"line": "━", "wide": "▬", "medium": "━", "thin": "─", "fill": "■", "dash": "╍╍", "dot": "┅┅",
            "marker": "▲", "cross": "✕", "rule": "╌"}


def _swatch(color: str, text: str, kind: str = "line") -> str:
    return f"<span style='color:{color}'>{SWATCHES[kind]}</span>&nbsp;<span style='color:{style.TEXT}'>{text}</span>"


#: every plot a result can have, in layout order
PLOT_NAMES = ("value", "pnl", "delta", "hf", "margin", "peg")
#: what each plot's right axis column holds: cumulative P&L (value plot), reference-line labels,
#: or nothing (the column is still reserved, so all x axes line up)
RIGHT_AXES = {"value": "pnl", "hf": "thresholds", "margin": "thresholds", "peg": "thresholds"}
RIGHT_AXIS_PLOTS = frozenset(name for name, kind in RIGHT_AXES.items() if kind == "pnl")
#: let the window appear before building plots in the background
PREBUILD_DELAY_MS = 400


class ChartStack(QWidget):
    """All replay charts of one result.

    `for_export=True` builds the plots alone (no readout, no controls, no mouse tracking): the
    offscreen layout that `render_image` draws the exported charts.png from."""

    #: hour clicked on a chart
    seek_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None, for_export: bool = False) -> None:
        super().__init__(parent)
        self.for_export = for_export
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 4, 0)
        self.readout = QLabel(self.IDLE_TEXT, self)
        self.readout.setObjectName("readout")
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setWordWrap(True)
        self.readout.setMinimumHeight(34)
        top.addWidget(self.readout, 1)
        self.combine_box = QCheckBox("Net spot + perp price moves", self)
        self.combine_box.setToolTip("In hedged modes the spot and perp legs move by large, opposite amounts;\n"
                                    "showing their sum as one band keeps the yield components readable.")
        self.combine_box.hide()
        top.addWidget(self.combine_box)
        layout.addLayout(top)
        if for_export:
            self.readout.setObjectName("exportTitle")
            self.readout.setMinimumHeight(0)
            self.readout.setContentsMargins(8, 6, 8, 2)
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.ci.setSpacing(0)
        self.graphics.ci.setContentsMargins(2, 2, 6, 2)
        layout.addWidget(self.graphics, 1)

        self.data: ChartData | None = None
        self.plots: dict[str, _Plot] = {}
        #: every PlotItem built so far, by plot name, reused by later runs (see _new_plot)
        self._items: dict[str, pg.PlotItem] = {}
        #: plot names in layout order, and whether the current set_data rebuilds the layout
        self._rows: list[str] = []
        self._relayout = True
        self._playheads: list[pg.InfiniteLine] = []
        self._crosshairs: list[pg.InfiniteLine] = []
        self._markers: list[tuple[pg.ScatterPlotItem, np.ndarray, np.ndarray, np.ndarray]] = []
        self._marker_counts: list[int] = []
        self.rendered_hour = -1
        self.hover_hour: int | None = None
        self._mouse_inside = False
        #: shown before the readout while a run is under way (the charts still show the last one)
        self.notice = ""
        # Zooming/panning/resizing changes which hours are visible and how many pixels they get.
        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(30)
        self._view_timer.timeout.connect(self._view_changed)
        # Build the plots while the app is idle, one per event-loop turn, so that loading the
        # first run does not pay for their construction in one block (see _new_plot).
        self._prebuild_held = False
        self._prebuild_timer = QTimer(self)
        self._prebuild_timer.setSingleShot(True)
        self._prebuild_timer.timeout.connect(self._prebuild_one)
        if not for_export:
            self._mouse_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30,
                                               slot=self._on_mouse_moved)
            self.graphics.scene().sigMouseClicked.connect(self._on_mouse_clicked)
            self.graphics.viewport().installEventFilter(self)
            self._prebuild_timer.start(PREBUILD_DELAY_MS)
        style.theme_changed().connect(self.restyle)

    IDLE_TEXT = ("Run a backtest to see its charts. Hover a chart to read the values at that hour; "
                 "click to move the playhead there.")

    # ---- building -----------------------------------------------------------------------------
    def set_data(self, data: ChartData) -> None:
        """Rebuild the plots for a new result; nothing is drawn until render()."""
        self.data = data
        present = {"hf": data.health_factor is not None, "margin": bool(data.margin_pct),
                   "peg": data.lst_peg is not None}
        names = [name for name in PLOT_NAMES if present.get(name, True)]
        # The same plots in the same rows (a rerun, or another mode of the same shape): the layout
        # stays as it is and only the contents change.
        self._relayout = names != self._rows
        if self._relayout:
            self.graphics.clear()
            for item in self._items.values():
                self._park(item)
        self._rows = names
        self.plots.clear()
        self._playheads.clear()
        self._crosshairs.clear()
        self._markers.clear()
        self._marker_counts.clear()
        self.rendered_hour = -1
        self.hover_hour = None                  # a hovered hour belongs to the run it was read from
        self.notice = ""
        self.combine_box.setVisible(data.delta_cex is not None and not self.for_export)
        self.combine_box.blockSignals(True)
        self.combine_box.setChecked(data.combined_price)
        self.combine_box.blockSignals(False)

        self._value_plot(data)
        self._pnl_plot(data)
        self._delta_plot(data)
        if data.health_factor is not None:
            plot = self._new_plot("hf", "AAVE health factor", "HF", 2)
            plot.min_span = 0.05
            self._curve(plot, data.health_factor, style.SERIES["hf"], "collateral × liq. threshold / debt")
            self._thresholds(plot, data.hf_thresholds)
        if data.margin_pct:
            self._margin_plot(data)
        if data.lst_peg is not None:
            plot = self._new_plot("peg", f"{data.lst} peg", "ratio", 2)
            plot.min_span = 0.002
            self._curve(plot, data.lst_peg, style.SERIES["peg"], f"{data.lst} market price / oracle rate")
            self._thresholds(plot, [Threshold(1.0, "at peg (1.000)", "trigger", "at peg")])
        if list(self.plots) != names:
            raise RuntimeError(f"chart rows {list(self.plots)} differ from the layout plan {names}")
        self._finish()
        self._show_readout(0)

    def _new_plot(self, name: str, title: str, y_label: str, stretch: int,
                  right_offset: float | None = None) -> _Plot:
        """The next row: the PlotItem built for `name` by an earlier run, emptied, or a new one.

        Building a pyqtgraph PlotItem (axes, view box, context menus) costs ~20 ms on the UI thread,
        six of them over 100 ms; reusing them makes loading a run of the same mode, or of any mode
        after the first few, a matter of swapping curves."""
        row = len(self.plots)
        item = self._items.get(name)
        if item is None:
            item = self._items[name] = self._build_plot_item(name)
        else:
            item.clear()                       # the previous run's curves, lines and markers
        if (right_offset is not None) != (name in RIGHT_AXIS_PLOTS):
            raise ValueError(f"plot {name!r}: a right-axis offset is given exactly for {sorted(RIGHT_AXIS_PLOTS)}")
        if right_offset is not None:
            right = item.getAxis("right")
            right.offset = right_offset
            right.picture = None               # the labels depend on the offset: redraw them
            right.update()
        if RIGHT_AXES.get(name) == "thresholds":
            item.getAxis("right").set_marks([])
        if self._relayout:
            item.show()
            self.graphics.addItem(item, row=row, col=0)
            self.graphics.ci.layout.setRowStretchFactor(row, stretch)
        item.setLabel("left", y_label)
        item.showAxis("bottom")
        item.setLabel("bottom", None)
        item.setXLink(next(iter(self.plots.values())).item if self.plots else None)
        playhead = pg.InfiniteLine(angle=90, pen=pg.mkPen(style.SERIES["playhead"], width=1))
        playhead.setZValue(40)
        playhead.setVisible(not self.for_export)
        item.addItem(playhead, ignoreBounds=True)
        self._playheads.append(playhead)
        cross = pg.InfiniteLine(angle=90, pen=pg.mkPen(style.SERIES["crosshair"], width=1, style=Qt.PenStyle.DashLine))
        cross.setZValue(39)
        cross.hide()
        item.addItem(cross, ignoreBounds=True)
        self._crosshairs.append(cross)
        plot = _Plot(item, title)
        self.plots[name] = plot
        return plot

    def hold_prebuild(self, hold: bool) -> None:
        """Pause the background plot building while a backtest runs: the engine's worker thread holds
        the GIL for 5 ms slices, and every one of the many Qt calls a plot build makes waits for one
        (a 20 ms build took ~1 s). What is still missing is built after the run."""
        self._prebuild_held = hold
        if hold:
            self._prebuild_timer.stop()
        elif not self.for_export and any(name not in self._items for name in PLOT_NAMES):
            self._prebuild_timer.start(PREBUILD_DELAY_MS)

    def _prebuild_one(self) -> None:
        if self._prebuild_held:
            return
        missing = [name for name in PLOT_NAMES if name not in self._items]
        if missing:
            item = self._items[missing[0]] = self._build_plot_item(missing[0])
            self._park(item)
        if len(missing) > 1:
            self._prebuild_timer.start(0)

    def _park(self, item: pg.PlotItem) -> None:
        """Keep a plot that is out of the layout in the scene, hidden. Owned by the scene, it is
        destroyed with it, on the UI thread. Left to Python instead, the garbage collector may free
        it on whichever thread it happens to run, the engine worker included, and destroying its Qt
        menus there deadlocked against the UI thread (Qt's connection lock vs. the GIL)."""
        if item.scene() is None:
            self.graphics.scene().addItem(item)
        item.hide()

    def _build_plot_item(self, name: str) -> pg.PlotItem:
        width = style.scaled_px(AXIS_WIDTH)
        right_kind = RIGHT_AXES.get(name)
        axes = {"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0), "left": NumberAxis("left")}
        if right_kind == "pnl":
            axes["right"] = NumberAxis("right")
        elif right_kind == "thresholds":
            axes["right"] = ThresholdAxis()
        item = pg.PlotItem(axisItems=axes)
        ViewGrid(item, pg.mkPen(style.GRID))
        item.getAxis("left").setWidth(width)
        if right_kind is not None:
            item.showAxis("right")
            item.getAxis("right").setWidth(width)
        else:
            # No right axis (fewer axes to paint), but the same width reserved so all x axes line up.
            item.hideAxis("right")
            item.layout.setColumnFixedWidth(2, width)
        item.vb.setMouseEnabled(x=True, y=False)
        # y follows the drawn data through _Plot.fit_y (one range change instead of pyqtgraph's
        # per-frame auto range, which also costs a second repaint per frame)
        item.vb.disableAutoRange()
        # Zooming/panning/resizing changes which hours are visible and how many pixels they get.
        item.vb.sigXRangeChanged.connect(lambda *_: self._view_timer.start())
        item.vb.sigResized.connect(lambda *_: self._view_timer.start())
        return item

    def restyle(self) -> None:
        """Rebuild every plot with the active theme and text size (colours and font metrics are
        baked into the plots when they are built), and redraw the current run where it was."""
        for item in self._items.values():
            if item.scene() is not None:
                item.scene().removeItem(item)
            item.deleteLater()
        self._items.clear()
        self.graphics.clear()
        self._rows = []
        self.graphics.setBackground(style.CHART_BACKGROUND)
        hour = self.rendered_hour
        if self.data is not None:
            self.set_data(self.data)
            if hour >= 0:
                self.render(hour)
        else:
            self.hold_prebuild(self._prebuild_held)

    def _curve(self, plot: _Plot, y: np.ndarray, color: str, label: str | None, *, width: float = 1.0,
               z: float = 0.0, pen_style: Qt.PenStyle = Qt.PenStyle.SolidLine, kind: str = "line",
               live: Callable[[float], str] | None = None) -> pg.PlotCurveItem:
        finite = bool(np.all(np.isfinite(y)))
        kwargs = {"pen": pg.mkPen(color, width=width, style=pen_style), "connect": "all" if finite else "finite",
                  "skipFiniteCheck": finite}
        curve = pg.PlotCurveItem(**kwargs)
        curve.setZValue(z)
        plot.item.addItem(curve)
        plot.curves.append((curve, len(plot.ys)))
        plot.ys.append(y)
        if label:
            plot.legend.append(_Legend(color, label, kind, y if live else None, live))
        return curve

    def _thresholds(self, plot: _Plot, lines: list[Threshold]) -> None:
        """Reference lines, named on the right axis beside them (not in the title legend: the
        labels already sit next to their lines, and the legend keeps its width for the series)."""
        lines = [line for line in lines if math.isfinite(line.value)]
        for line in lines:
            color = line_color(line.kind)
            item = pg.InfiniteLine(pos=line.value, angle=0, pen=pg.mkPen(color, width=1, style=LINE_STYLES[line.kind]))
            item.setZValue(20)
            item.setToolTip(line.label)
            plot.item.addItem(item)
        plot.item.getAxis("right").set_marks([(line.value, line.short or line.label, line_color(line.kind))
                                              for line in lines])
        plot.anchors += [line.value for line in lines]

    def _value_plot(self, data: ChartData) -> None:
        cur = data.currency
        # A non-finite initial value (never produced by a valid run) must not reach pyqtgraph: a line
        # or an axis offset at NaN crashes Qt's painter (SIGSEGV), taking the whole app down.
        initial = data.initial_value if math.isfinite(data.initial_value) else None
        plot = self._new_plot("value", f"Portfolio value ({cur})", cur, 3,
                              right_offset=initial if initial is not None else 0.0)
        plot.item.setLabel("right", f"P&L {cur}")
        if initial is not None:
            plot.item.addItem(pg.InfiniteLine(pos=initial, angle=0,
                                              pen=pg.mkPen(style.TRIGGER_LINE, width=1, style=Qt.PenStyle.DotLine)))
            plot.anchors.append(initial)
        self._curve(plot, data.value, style.SERIES["value"], "value (left axis) = capital + P&L (right axis)",
                    width=2)
        plot.legend.append(_Legend(style.TRIGGER_LINE, "initial capital (P&L 0)", "rule"))
        for hours, symbol, color, label, kind in (
                (data.rebalance_hours, "t1", style.SERIES["rebalance"], "rebalance", "marker"),
                (data.liquidation_hours, "x", style.SERIES["liquidation"], "liquidation", "cross")):
            hours = hours[np.isfinite(data.value[hours])] if hours.size else hours
            if hours.size == 0:
                continue
            scatter = pg.ScatterPlotItem(symbol=symbol, size=10, pen=pg.mkPen(color), brush=pg.mkBrush(color))
            scatter.setZValue(30)
            plot.item.addItem(scatter)
            self._markers.append((scatter, hours, data.x[hours].copy(), data.value[hours].copy()))
            self._marker_counts.append(-1)
            plot.legend.append(_Legend(color, label, kind))

    def _pnl_plot(self, data: ChartData) -> None:
        cur = data.currency
        plot = self._new_plot("pnl", f"Cumulative P&L by component ({cur}; stacked, gains above 0, costs below)",
                              cur, 3)
        plot.wrap_legend = True
        for side, attr, flag in (("above", "upper", "ever_positive"), ("below", "lower", "ever_negative")):
            bands = [band for band in data.bands if getattr(band, flag)]
            if not bands:
                continue
            area = StackedAreaItem([blend(style.component_color(b.name), style.CHART_BACKGROUND, 0.75)
                                    for b in bands])
            area.setZValue(-10)
            plot.item.addItem(area)
            indices = []
            for band in bands:
                indices.append(len(plot.ys))
                plot.ys.append(getattr(band, attr))
            plot.areas.append((area, indices))
        for band in data.bands:
            plot.legend.append(_Legend(style.component_color(band.name), band.label, "fill"))
        self._curve(plot, data.pnl, style.SERIES["pnl_total"], "net P&L (the sum)", width=2, z=10)
        plot.item.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen(style.TRIGGER_LINE, width=1)))
        plot.anchors.append(0.0)

    def _delta_plot(self, data: ChartData) -> None:
        unit = data.delta_unit
        if data.directional:
            # An ETH share class counts value in ETH: holding ETH is the strategy, not an unhedged gap.
            title = f"Net {unit} position (the share class is {data.currency}: long {unit} is its own currency, not price risk)"
        else:
            title = f"Net delta: price exposure in {unit} (0 = market neutral)"
        plot = self._new_plot("delta", title, unit, 2)
        plot.min_span = 0.02
        legs = [(data.delta_onchain, style.SERIES["onchain"], data.onchain_label),
                (data.delta_cex, style.SERIES["cex"], f"CEX spot + perps ({unit})")]
        legs = [leg for leg in legs if leg[0] is not None]
        for values, color, label in legs:
            self._curve(plot, values, color, label)
        if len(legs) != 1:   # with a single leg, that leg is the net delta
            self._curve(plot, data.delta_net, style.SERIES["net"], f"net ({unit})", width=2)
        plot.item.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen(style.TRIGGER_LINE, width=1)))
        plot.anchors.append(0.0)

    def _margin_plot(self, data: ChartData) -> None:
        plot = self._new_plot("margin", "Perp margin ratio, equity / notional (%)", "%", 2)
        for i, (venue, values) in enumerate(data.margin_pct.items()):
            pen_style, width, kind = venue_line(venue, i)
            self._curve(plot, values, style.venue_color(venue), venue, width=width, z=i, pen_style=pen_style,
                        kind=kind, live=format_pct)
        self._thresholds(plot, data.margin_thresholds)
        if data.margin_band is not None:
            plot.fixed_range = data.margin_band
            top = data.margin_band[1]
            peak = max((float(np.nanmax(a)) for a in data.margin_pct.values() if np.any(np.isfinite(a))),
                       default=-math.inf)
            if peak > top:
                plot.note = f"({data.margin_band[0]:g}–{top:g} % shown; surplus up to {peak:,.0f} % off the top)"

    def _finish(self) -> None:
        plots = [p.item for p in self.plots.values()]
        for plot in self.plots.values():
            plot.title_html = plot.compose_title(0 if plot.live_legend else None)
            _set_title(plot.item, plot.title_html)
            plot.decimator = PeakDecimator(self.data.x, plot.ys)
        for item in plots[:-1]:
            item.hideAxis("bottom")       # one time axis, under the last plot
        if plots:
            plots[-1].setLabel("bottom", "time (UTC)")
            first = plots[0]
            first.vb.enableAutoRange(axis="x", enable=False)
            first.setXRange(float(self.data.x[0]), float(self.data.x[-1]), padding=0.01)
        for name, item in self._items.items():
            if name not in self.plots:
                item.setXLink(None)            # out of the layout: stop following the shown plots
        self.graphics.setMinimumHeight(MIN_PLOT_HEIGHT * len(plots))
        self._configure_decimators()

    def _configure_decimators(self) -> None:
        data = self.data
        if data is None or not self.plots:
            return
        first = next(iter(self.plots.values())).item
        (x0, x1), _ = first.vb.viewRange()
        start = max(0, int(np.searchsorted(data.x, x0, side="left")) - 1)
        stop = min(data.hours, int(np.searchsorted(data.x, x1, side="right")) + 1)
        columns = max(200, int(first.vb.width()) or 1000)
        for plot in self.plots.values():
            plot.decimator.configure(start, stop, columns)
            plot.fit_y()

    def _view_changed(self) -> None:
        self._configure_decimators()
        if self.rendered_hour >= 0:
            self.render(self.rendered_hour)

    # ---- drawing ------------------------------------------------------------------------------
    def render(self, hour: int) -> None:
        """Draw hours 0..hour of every series and move the playhead there."""
        data = self.data
        if data is None:
            return
        hour = max(0, min(int(hour), data.hours - 1))
        for plot in self.plots.values():
            x, ys = plot.decimator.upto(hour)
            for curve, i in plot.curves:
                curve.setData(x=x, y=ys[i])
            for area, indices in plot.areas:
                area.set_data(x, [ys[i] for i in indices])
        at = float(data.x[hour])
        for line in self._playheads:
            line.setValue(at)
        for i, (scatter, hours, mx, my) in enumerate(self._markers):
            count = int(np.searchsorted(hours, hour, side="right"))
            if count != self._marker_counts[i]:
                scatter.setData(mx[:count], my[:count])
                self._marker_counts[i] = count
        self.rendered_hour = hour
        if self.hover_hour is None:
            self._show_readout(hour)

    def _show_readout(self, hour: int) -> None:
        """The readout and the value legends at `hour` (the playhead, or the hovered hour)."""
        if self.data is None:
            return
        hour = max(0, min(hour, self.data.hours - 1))
        for plot in self.plots.values():
            if plot.live_legend:
                html = plot.compose_title(hour)
                if html != plot.title_html:       # only when a shown value changes (~0.1 % steps)
                    plot.title_html = html
                    _update_title(plot.item, html)
        if not self.for_export:
            self.readout.setText(self.describe_hour(hour))

    def set_notice(self, text: str) -> None:
        """A line shown first in the readout (e.g. that a new run is under way and the charts
        still show the previous one); empty clears it."""
        self.notice = text
        if self.data is None:
            self.readout.setText(text or self.IDLE_TEXT)
        else:
            self._show_readout(self.hover_hour if self.hover_hour is not None else max(self.rendered_hour, 0))

    def drawn_until(self) -> dict[str, float]:
        """Per plot, the last time (epoch s) its curves reach (tests: drawn up to the playhead)."""
        out = {}
        for name, plot in self.plots.items():
            ends = [float(c.xData[-1]) for c, _ in plot.curves if c.xData is not None and c.xData.size]
            out[name] = min(ends) if len(ends) == len(plot.curves) and ends else float("nan")
        return out

    def save_png(self, path: Path, width: int = EXPORT_WIDTH) -> Path:
        """The whole run's charts as a PNG of the plots alone (no readout, buttons or scroll bars), at
        least `width` pixels wide, drawn by an offscreen chart stack of its own."""
        if self.data is None:
            raise RuntimeError("no charts to export; run a backtest first")
        image = render_image(self.data, width)
        if not image.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
        return Path(path)

    # ---- readout, crosshair, click-to-seek ----------------------------------------------------
    def describe_hour(self, hour: int) -> str:
        data = self.data
        if data is None:
            return ""
        hour = max(0, min(hour, data.hours - 1))
        cur = data.currency
        dp = currency_decimals(cur)
        when = datetime.fromtimestamp(float(data.x[hour]), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        future = hour > self.rendered_hour >= 0

        def item(color: str, name: str, text: str) -> str:
            return f"<span style='color:{color}'>{name}</span> <b>{text}</b>"

        parts = []
        if self.notice:
            parts.append(f"<span style='color:{style.WARNING}'>{self.notice}</span>")
        parts.append(f"<b>{data.mode}</b> <span style='color:{style.TEXT_DIM}'>({cur})</span> "
                     f"<b>{when}</b> <span style='color:{style.TEXT_DIM}'>hour {hour:,}/{data.hours - 1:,}"
                     f"{' (not played yet)' if future else ''}</span>")
        parts.append(item(style.SERIES["value"], "value", f"{format_number(data.value[hour], dp)} {cur}"))
        parts.append(item(style.SERIES["pnl_total"], "P&L", f"{data.pnl[hour]:+,.{dp}f} {cur}"))
        top = sorted(data.bands, key=lambda b: -abs(b.cumulative[hour]))[:4]
        if top:
            parts.append(", ".join(
                f"<span style='color:{style.component_color(b.name)}'>{b.label}</span> "
                f"{b.cumulative[hour]:+,.{dp}f}" for b in top))
        parts.append(item(style.SERIES["net"], "net delta", f"{data.delta_net[hour]:+,.4f} {data.delta_unit}"))
        if data.health_factor is not None:
            parts.append(item(style.SERIES["hf"], "HF", format_number(data.health_factor[hour], 4)))
        for venue, arr in data.margin_pct.items():
            parts.append(item(style.venue_color(venue), venue, format_pct(float(arr[hour]))))
        if data.lst_peg is not None:
            parts.append(item(style.SERIES["peg"], f"{data.lst} peg", format_number(data.lst_peg[hour], 5)))
        parts.append(item(style.TEXT_DIM, data.underlying, f"${format_number(data.underlying_price[hour], 2)}"))
        return " &nbsp;·&nbsp; ".join(parts)

    def _plot_at(self, scene_pos: QPointF) -> pg.PlotItem | None:
        for plot in self.plots.values():
            if plot.item.vb.sceneBoundingRect().contains(scene_pos):
                return plot.item
        return None

    def clear_hover(self) -> None:
        """Forget the hovered hour: the readout follows the playhead again."""
        self.hover_hour = None
        for line in self._crosshairs:
            line.hide()
        self._show_readout(max(self.rendered_hour, 0))

    def hover_at(self, scene_pos: QPointF) -> None:
        """The mouse is at `scene_pos` of the charts' scene (from the rate-limited mouse signal)."""
        if self.data is None:
            return
        plot = self._plot_at(scene_pos)
        if plot is None:
            self.clear_hover()
            return
        hour = hour_at(self.data.x, plot.vb.mapSceneToView(scene_pos).x())
        self.hover_hour = hour
        for line in self._crosshairs:
            line.setValue(float(self.data.x[hour]))
            line.show()
        self._show_readout(hour)

    def _on_mouse_moved(self, event) -> None:
        # The proxy delivers the last position up to 1/30 s late: the mouse may have left since,
        # and a position from before the Leave must not bring a stale hour back.
        if self._mouse_inside:
            self.hover_at(event[0])

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.Enter, QEvent.Type.MouseMove, QEvent.Type.HoverMove):
            self._mouse_inside = True
        elif kind == QEvent.Type.Leave:
            self._mouse_inside = False
            if self.hover_hour is not None:
                self.clear_hover()
        return False

    def _on_mouse_clicked(self, event) -> None:
        if self.data is None or event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        plot = self._plot_at(event.scenePos())
        if plot is not None:
            self.seek_requested.emit(hour_at(self.data.x, plot.vb.mapSceneToView(event.scenePos()).x()))


def render_image(data: ChartData, width: int = EXPORT_WIDTH) -> QImage:
    """The whole run's charts, drawn by an offscreen chart stack sized for print (never the
    on-screen one: its size depends on the window and it carries the readout and controls)."""
    if QApplication.instance() is None:
        raise RuntimeError("rendering charts needs a QApplication")
    stack = ChartStack(for_export=True)
    try:
        stack.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        stack.set_data(data)
        start = datetime.fromtimestamp(float(data.x[0]), tz=UTC).strftime("%Y-%m-%d %H:%M")
        end = datetime.fromtimestamp(float(data.x[-1]), tz=UTC).strftime("%Y-%m-%d %H:%M")
        stack.readout.setText(f"<span style='font-size:{style.scaled_pt(12)}pt; font-weight:600'>{data.mode}</span>"
                              f"&nbsp;&nbsp;<span style='color:{style.TEXT_DIM}'>{start} → {end} UTC · "
                              f"{data.hours:,} hours · values in {data.currency}</span>")
        rows = len(stack.plots)
        stack.resize(max(width, 1600), 60 + EXPORT_ROW_HEIGHT * rows)
        stack.show()
        QApplication.processEvents()            # lay out the plots at their print size
        stack._configure_decimators()
        stack.render(data.hours - 1)
        QApplication.processEvents()
        return stack.grab().toImage()
    finally:
        stack.hide()
        stack.deleteLater()
