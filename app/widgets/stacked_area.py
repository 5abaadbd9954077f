"""Stacked areas drawn as one polygon per band (no overdraw), for the P&L-by-component chart.

Filling each boundary down to zero (pyqtgraph's fillLevel) paints the whole stack once per band
and splits every fill into 50-point chunks; with ten components that was most of a frame. Here band
i is exactly the region between boundary i-1 and boundary i, filled once, with an opaque colour
pre-blended on the chart background (opaque fills are about twice as fast as translucent ones).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPolygonF


def blend(color: str, background: str, alpha: float) -> QColor:
    """`color` at `alpha` over `background`, as an opaque colour."""
    top, bottom = QColor(color), QColor(background)
    mix = [round(alpha * a + (1 - alpha) * b) for a, b in zip(top.getRgb()[:3], bottom.getRgb()[:3])]
    return QColor(*mix)


class StackedAreaItem(pg.GraphicsObject):
    """Bands between consecutive boundaries: boundaries[0] against 0, boundaries[i] against [i-1]."""

    def __init__(self, colors: list[QColor]) -> None:
        super().__init__()
        self._brushes = [QBrush(c) for c in colors]
        self._x = np.zeros(0)
        self._bounds: list[np.ndarray] = []
        self._polygons: list[QPolygonF] = []
        self._rect = QRectF()

    def set_data(self, x: np.ndarray, boundaries: list[np.ndarray]) -> None:
        """x and one boundary per band (same length as x), innermost first."""
        self.prepareGeometryChange()
        self._x = x
        self._bounds = boundaries
        self._polygons = []
        n = x.size
        if n >= 2 and boundaries:
            inner = np.zeros(n)
            xs = np.concatenate([x, x[::-1]])
            for outer in boundaries:
                ys = np.concatenate([outer, inner[::-1]])
                polygon = pg.functions.create_qpolygonf(2 * n)
                view = pg.functions.ndarray_from_qpolygonf(polygon)
                view[:, 0] = xs
                # A non-finite point collapses to the zero line: nan_to_num's default would put an
                # infinity at +-1.8e308, far outside anything Qt's painter can rasterise.
                view[:, 1] = np.nan_to_num(ys, nan=0.0, posinf=0.0, neginf=0.0)
                self._polygons.append(polygon)
                inner = outer
            finite = [b[np.isfinite(b)] for b in boundaries]
            lo = min([0.0] + [float(b.min()) for b in finite if b.size])
            hi = max([0.0] + [float(b.max()) for b in finite if b.size])
            self._rect = QRectF(float(x[0]), lo, float(x[-1] - x[0]), hi - lo)
        else:
            self._rect = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, *_args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(Qt.PenStyle.NoPen)
        for polygon, brush in zip(self._polygons, self._brushes):
            painter.setBrush(brush)
            painter.drawPolygon(polygon)
