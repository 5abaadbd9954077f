"""Grid lines drawn behind a plot's curves at its axes' tick positions.

pyqtgraph draws grid lines as part of each axis (AxisItem.setGrid). The axis then covers the whole
plot, so every curve update repaints every axis from its cached QPicture: about 1.7 ms per axis and
frame, the largest cost of a replay frame. This item draws the same lines with one drawLines call
and leaves the axes alone. It lives in the ViewBox's pixel coordinates (a child of the ViewBox,
not of its data group), so a range change only needs a repaint, never a geometry change during a
paint (which Qt does not allow).
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF
from PySide6.QtGui import QPainter, QPen


class ViewGrid(pg.GraphicsObject):
    def __init__(self, plot: pg.PlotItem, pen: QPen) -> None:
        super().__init__()
        self._plot = plot
        self._pen = QPen(pen)
        self._pen.setCosmetic(True)
        vb = plot.vb
        self.setParentItem(vb)
        self.setZValue(-1e6)   # behind the data group
        self.setFlag(self.GraphicsItemFlag.ItemStacksBehindParent, False)
        self._cache_key: tuple | None = None
        self._lines: list[QLineF] = []
        vb.sigRangeChanged.connect(lambda *_: self.update())
        vb.sigResized.connect(self._resized)

    def _resized(self, *_args) -> None:
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._plot.vb.boundingRect()

    def _ticks(self, side: str, low: float, high: float, pixels: float) -> list[float]:
        """Major and minor tick values of an axis, or none if the axis cannot tell yet (a date axis
        only knows its tick spacing after it has painted once). Never raises: an exception inside
        paint() would take Qt down."""
        try:
            levels = self._plot.getAxis(side).tickValues(min(low, high), max(low, high), max(1.0, pixels))
        except Exception:
            return []
        return [v for _spacing, values in levels[:1 if side == "bottom" else 2] for v in values]

    def paint(self, painter: QPainter, *_args) -> None:
        vb = self._plot.vb
        view = vb.viewRect()
        box = vb.boundingRect()
        if view.width() <= 0 or view.height() <= 0:
            return
        key = (view.left(), view.right(), view.top(), view.bottom(), box.width(), box.height())
        if key != self._cache_key or not self._lines:
            self._lines = self._grid_lines(view, box)
            self._cache_key = key
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(self._pen)
        painter.drawLines(self._lines)

    def _grid_lines(self, view: QRectF, box: QRectF) -> list[QLineF]:
        """Lines at the ticks of the current range (recomputed only when the range or size changes)."""
        vb = self._plot.vb
        lines: list[QLineF] = []
        for v in self._ticks("left", view.top(), view.bottom(), box.height()):
            y = vb.mapFromView(QPointF(view.left(), v)).y()
            lines.append(QLineF(box.left(), y, box.right(), y))
        for v in self._ticks("bottom", view.left(), view.right(), box.width()):
            x = vb.mapFromView(QPointF(v, view.top())).x()
            lines.append(QLineF(x, box.top(), x, box.bottom()))
        return lines
