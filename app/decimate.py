"""Clip-to-view and peak (min/max) downsampling for growing replay curves, in O(pixels) per frame.

pyqtgraph's own clipToView + 'peak' downsampling re-reduces the whole visible prefix of every curve on
every frame (about 1 ms per curve for a 12,000-hour window, 25 curves: ~25 ms a frame). The replay
only ever shows a prefix 0..k of fixed arrays, so the min/max of each block of hours can be computed
once per zoom level; a frame then copies the precomputed pairs of the complete blocks plus the few
raw hours of the last, partial block into a preallocated buffer. The curve keeps every spike (a
health-factor dip stays visible) and a frame's cost no longer grows with the window.
"""
from __future__ import annotations

import math

import numpy as np

#: Points per pixel column (one min and one max).
POINTS_PER_BLOCK = 2


class PeakDecimator:
    """Decimated views of one x grid and several y series over the visible index range."""

    def __init__(self, x: np.ndarray, series: list[np.ndarray]) -> None:
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.series = [np.ascontiguousarray(y, dtype=np.float64) for y in series]
        self.start = 0
        self.stop = int(self.x.size)          # exclusive
        self.block = 1
        self._dx = self.x
        self._dy: list[np.ndarray] = list(self.series)
        self._buf_x = np.empty(0)
        self._buf_y: list[np.ndarray] = []
        self.configure(0, self.x.size, 1000)

    def configure(self, start: int, stop: int, columns: int) -> None:
        """Visible hours [start, stop) drawn into about `columns` pixel columns."""
        n = int(self.x.size)
        start = max(0, min(int(start), n))
        stop = max(start, min(int(stop), n))
        block = max(1, math.ceil((stop - start) / max(1, int(columns))))
        self.start, self.stop, self.block = start, stop, block
        if block == 1:
            self._dx = self.x[start:stop]
            self._dy = [y[start:stop] for y in self.series]
        else:
            blocks = (stop - start) // block
            end = start + blocks * block
            xs = self.x[start:end:block]
            self._dx = np.repeat(xs, POINTS_PER_BLOCK)
            self._dy = []
            for y in self.series:
                shaped = y[start:end].reshape(blocks, block)
                with np.errstate(invalid="ignore"):
                    pairs = np.empty((blocks, POINTS_PER_BLOCK))
                    pairs[:, 0] = np.fmin.reduce(shaped, axis=1)
                    pairs[:, 1] = np.fmax.reduce(shaped, axis=1)
                self._dy.append(pairs.reshape(-1))
        size = self._dx.size + block
        self._buf_x = np.empty(size)
        self._buf_y = [np.empty(size) for _ in self.series]

    def visible_series(self) -> list[np.ndarray]:
        """Every series over the whole visible range (decimated), e.g. to fit an axis."""
        return list(self._dy)

    def upto(self, hour: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """x and each y drawn for hours start..hour, ending exactly at `hour` (views into preallocated
        buffers, valid until the next call)."""
        last = min(int(hour), self.stop - 1)
        if last < self.start:
            empty = self._buf_x[:0]
            return empty, [b[:0] for b in self._buf_y]
        count = last - self.start + 1
        if self.block == 1:
            return self._dx[:count], [y[:count] for y in self._dy]
        full = count // self.block
        if full and full * self.block == count:
            full -= 1          # keep the last block raw so the curve ends exactly at `hour`
        head = full * POINTS_PER_BLOCK
        tail_from = self.start + full * self.block
        tail = last + 1 - tail_from
        size = head + tail
        bx = self._buf_x
        bx[:head] = self._dx[:head]
        bx[head:size] = self.x[tail_from:last + 1]
        ys = []
        for dy, raw, by in zip(self._dy, self.series, self._buf_y):
            by[:head] = dy[:head]
            by[head:size] = raw[tail_from:last + 1]
            ys.append(by[:size])
        return bx[:size], ys
