"""A heatmap of one metric over a sweep's grid (pyqtgraph ImageItem), axes labelled with the values.

Cells fill in as trials arrive; a cell without a result (not run yet, or an invalid configuration)
stays grey. Each cell carries its value as text when the grid is small enough to read it. A click
on a cell emits its (x, y) grid index.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app import style

#: grids up to this many cells print their values in the cells
ANNOTATE_MAX_CELLS = 144
MISSING = "#3a3f4b"


class HeatmapView(QWidget):
    #: (x index, y index) of the clicked cell
    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.graphics = pg.GraphicsLayoutWidget(self)
        layout.addWidget(self.graphics)
        self.plot = self.graphics.addPlot(row=0, col=0)
        self.plot.setMenuEnabled(False)
        self.plot.vb.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.invertY(False)
        self.background = pg.ImageItem()
        self.image = pg.ImageItem()
        self.plot.addItem(self.background)
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.selection = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        self.selection.setPen(pg.mkPen("#ffffff", width=2))
        self.selection.setBrush(pg.mkBrush(0, 0, 0, 0))
        self.selection.hide()
        self.plot.addItem(self.selection)
        self._texts: list[pg.TextItem] = []
        self.values = np.full((0, 0), np.nan)
        self.x_labels: list[str] = []
        self.y_labels: list[str] = []
        self.value_format = "{:.4g}"
        self.graphics.scene().sigMouseClicked.connect(self._clicked)

    def set_grid(self, x_key: str, x_labels: list[str], y_key: str, y_labels: list[str]) -> None:
        """A new, empty grid: len(x_labels) columns by len(y_labels) rows."""
        self.x_labels, self.y_labels = list(x_labels), list(y_labels) or [""]
        self.values = np.full((len(self.x_labels), len(self.y_labels)), np.nan)
        self.plot.setLabel("bottom", x_key)
        self.plot.setLabel("left", y_key or " ")
        self.plot.getAxis("bottom").setTicks([[(i + 0.5, t) for i, t in enumerate(self.x_labels)]])
        self.plot.getAxis("left").setTicks([[(j + 0.5, t) for j, t in enumerate(self.y_labels)]])
        grey = np.zeros(self.values.shape + (4,), dtype=np.ubyte)
        grey[...] = pg.mkColor(MISSING).getRgb()
        self.background.setImage(grey, levels=None)
        self.background.setRect(0, 0, len(self.x_labels), len(self.y_labels))
        self.plot.setXRange(0, len(self.x_labels), padding=0.02)
        self.plot.setYRange(0, len(self.y_labels), padding=0.02)
        self.selection.hide()
        self._draw()

    def set_values(self, values: np.ndarray, title: str, value_format: str = "{:.4g}",
                   reverse: bool = False) -> None:
        """The metric per cell (shape x by y; NaN = no result). `reverse` puts bright on low values
        (drawdown, liquidations: lower is better)."""
        self.values = np.array(values, dtype=np.float64)
        self.value_format = value_format
        self.plot.setTitle(title, size="9pt", color=style.TEXT)
        cmap = pg.colormap.get("viridis")           # shared by pyqtgraph: never reversed in place
        if reverse:
            cmap = pg.ColorMap(1.0 - cmap.pos[::-1], cmap.color[::-1])
        self.colorbar.setColorMap(cmap)
        self._draw()

    def select(self, ix: int, iy: int) -> None:
        self.selection.setRect(ix, iy, 1, 1)
        self.selection.show()

    def _draw(self) -> None:
        values = self.values
        finite = values[np.isfinite(values)]
        if values.size == 0:
            self.image.clear()
            return
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5 * max(abs(lo), 1e-9), hi + 0.5 * max(abs(hi), 1e-9)
        self.image.setImage(values, levels=(lo, hi), autoLevels=False)
        self.image.setRect(0, 0, values.shape[0], values.shape[1])
        self.colorbar.setLevels((lo, hi))
        for item in self._texts:
            self.plot.removeItem(item)
        self._texts.clear()
        if values.size <= ANNOTATE_MAX_CELLS:
            for ix in range(values.shape[0]):
                for iy in range(values.shape[1]):
                    v = values[ix, iy]
                    text = "–" if not math.isfinite(v) else self.value_format.format(v)
                    bright = math.isfinite(v) and (v - lo) / (hi - lo) > 0.6
                    item = pg.TextItem(text, color="#15171c" if bright else "#e6e8ec", anchor=(0.5, 0.5))
                    item.setPos(ix + 0.5, iy + 0.5)
                    self.plot.addItem(item)
                    self._texts.append(item)

    def cell_text(self, ix: int, iy: int) -> str:
        """What the cell shows (tests)."""
        index = ix * self.values.shape[1] + iy
        return self._texts[index].toPlainText() if index < len(self._texts) else ""

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.values.size == 0:
            return
        if not self.plot.vb.sceneBoundingRect().contains(event.scenePos()):
            return
        point = self.plot.vb.mapSceneToView(event.scenePos())
        ix, iy = math.floor(point.x()), math.floor(point.y())
        if 0 <= ix < self.values.shape[0] and 0 <= iy < self.values.shape[1]:
            self.select(ix, iy)
            self.cell_clicked.emit(ix, iy)
