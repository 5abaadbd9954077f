"""The P&L ledger a trading cycle books into: per step, the change in value split by component, in
the share-class currency (the components are engine.domain.pnl.COMPONENTS; their sum must equal
the value change every step).

Two implementations of one protocol: `HourlyLedger` keeps a float64 row per hour of a backtest's
preallocated grid; `RunningLedger` keeps the current step and running totals of an open-ended live
or paper session.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from engine.components.pnl_attribution import MarketMove
from engine.domain.pnl import COMPONENT_INDEX, COMPONENTS

_MOVE = ("lending", "borrow", "staking", "lst_peg", "perp_mtm", "spot_price")
_I_LENDING, _I_BORROW, _I_STAKING, _I_PEG, _I_PERP, _I_SPOT = (COMPONENT_INDEX[c] for c in _MOVE)


class Ledger(Protocol):
    def start_hour(self, t: int) -> None:
        """Open the step at index t (nothing booked yet)."""

    def book(self, component: str, amount: float) -> None:
        """Add ``amount`` (share currency) to ``component`` of the open step."""

    def book_move(self, move: MarketMove) -> None:
        """Book the market move's components (lending, borrow, staking, lst_peg, perp_mtm, spot_price)."""

    def hour_total(self) -> float:
        """Sum of every component booked in the open step."""

    def close_hour(self) -> float:
        """The open step is complete; returns its total (what `hour_total` would)."""

    def totals(self) -> dict[str, float]:
        """Each component summed over every step so far."""


class HourlyLedger:
    """One row of components per hour of a fixed grid (the backtest)."""

    def __init__(self, hours: int) -> None:
        self.rows = np.zeros((hours, len(COMPONENTS)), dtype=np.float64)
        self._row = [0.0] * len(COMPONENTS)
        self._hour = 0

    def start_hour(self, t: int) -> None:
        self._hour = t
        self._row = [0.0] * len(COMPONENTS)

    def book(self, component: str, amount: float) -> None:
        self._row[COMPONENT_INDEX[component]] += amount

    def book_move(self, move: MarketMove) -> None:
        # one call per hour instead of six: this is the backtest's hot path
        r = self._row
        r[_I_LENDING] += move.lending
        r[_I_BORROW] += move.borrow
        r[_I_STAKING] += move.staking
        r[_I_PEG] += move.lst_peg
        r[_I_PERP] += move.perp_mtm
        r[_I_SPOT] += move.spot_price

    def hour_total(self) -> float:
        return sum(self._row)

    def put_hours(self, hours: slice, block: np.ndarray) -> np.ndarray:
        """Book many whole hours at once (a quiet stretch): ``block`` is hours x components. Returns
        each hour's total, summed component by component in order as `close_hour` sums a row."""
        self.rows[hours] = block
        total = np.zeros(block.shape[0])
        for i in range(block.shape[1]):
            total = total + block[:, i]
        return total

    def close_hour(self) -> float:
        row = self._row
        self.rows[self._hour] = row
        return sum(row)

    def totals(self) -> dict[str, float]:
        sums = self.rows.sum(axis=0)
        return {name: float(sums[i]) for i, name in enumerate(COMPONENTS)}


class RunningLedger:
    """The open step plus running totals (a live or paper session: no fixed length)."""

    def __init__(self) -> None:
        self._totals = dict.fromkeys(COMPONENTS, 0.0)
        self._row = dict.fromkeys(COMPONENTS, 0.0)

    def start_hour(self, t: int) -> None:
        self._row = dict.fromkeys(COMPONENTS, 0.0)

    def book(self, component: str, amount: float) -> None:
        self._row[component] += amount
        self._totals[component] += amount

    def book_move(self, move: MarketMove) -> None:
        for component in _MOVE:
            self.book(component, getattr(move, component))

    def hour_total(self) -> float:
        return sum(self._row.values())

    def close_hour(self) -> float:
        return sum(self._row.values())

    def totals(self) -> dict[str, float]:
        return dict(self._totals)
