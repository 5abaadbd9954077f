"""Hourly P&L ledger: one float64 row of components per hour, in the share-class currency."""
from __future__ import annotations

import numpy as np

from engine.domain.pnl import COMPONENT_INDEX, COMPONENTS


class PnlLedger:
    def __init__(self, hours: int) -> None:
        self.rows = np.zeros((hours, len(COMPONENTS)), dtype=np.float64)
        self._row = [0.0] * len(COMPONENTS)
        self._hour = 0

    def start_hour(self, t: int) -> None:
        self._hour = t
        self._row = [0.0] * len(COMPONENTS)

    def book(self, component: str, amount: float) -> None:
        self._row[COMPONENT_INDEX[component]] += amount

    def hour_total(self) -> float:
        return sum(self._row)

    def close_hour(self) -> None:
        self.rows[self._hour] = self._row

    def totals(self) -> dict[str, float]:
        sums = self.rows.sum(axis=0)
        return {name: float(sums[i]) for i, name in enumerate(COMPONENTS)}
