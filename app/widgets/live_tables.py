"""Table models of the live dashboard: positions per venue, risk and exposure, the order blotter and
the event log. Each is refreshed from a session's snapshot (engine.services.live.snapshot) at the
dashboard's frame rate (never per signal) and holds a capped number of rows.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from app import style
from app.widgets.table_model import ColumnTableModel
from app.widgets.event_model import cost_text, describe
from engine.domain.events import Event
from engine.services.live.snapshot import PositionLine, RiskLine

_DISPLAY = Qt.ItemDataRole.DisplayRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_BRUSH = {k: QBrush(QColor(v)) for k, v in (("ok", style.OK), ("warn", style.WARNING), ("bad", style.ERROR),
                                            ("dim", style.TEXT_DIM))}
EVENT_CAP = 1000


def num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "∞" if value == math.inf else "–"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.2f}"
    if magnitude >= 1 or value == 0:
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return f"{value:.{digits}g}"


def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f}%"


class _RowsModel(ColumnTableModel):
    """Rows of display strings (plus an optional colour per row), replaced wholesale on refresh."""

    COLUMNS: tuple[str, ...] = ()
    NUMERIC: frozenset[int] = frozenset()
    #: Columns that take the row's colour (None: every column).
    COLORED: frozenset[int] | None = None

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, ...]] = []
        self.colors: list[str | None] = []
        self.tips: list[str] = []

    def set_rows(self, rows: Sequence[tuple[str, ...]], colors: Sequence[str | None] | None = None,
                 tips: Sequence[str] | None = None) -> None:
        rows = list(rows)
        colors = list(colors) if colors is not None else [None] * len(rows)
        tips = list(tips) if tips is not None else [""] * len(rows)
        if len(rows) == len(self.rows):
            changed = rows != self.rows or colors != self.colors or tips != self.tips
            self.rows, self.colors, self.tips = rows, colors, tips
            if changed and rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(self.COLUMNS) - 1))
            return
        self.beginResetModel()
        self.rows, self.colors, self.tips = rows, colors, tips
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        if role == _DISPLAY:
            return self.rows[index.row()][index.column()]
        if role == _FOREGROUND:
            color = self.colors[index.row()]
            if not color or (self.COLORED is not None and index.column() not in self.COLORED):
                return None
            return _BRUSH[color]
        if role == _ALIGN and index.column() in self.NUMERIC:
            return _RIGHT
        if role == _TOOLTIP:
            return self.tips[index.row()] or None
        return None

    def column(self, name: str) -> list[str]:
        i = self.COLUMNS.index(name)
        return [r[i] for r in self.rows]


CLOSE_TEXT = "Close…"


class PositionsModel(_RowsModel):
    """Every valued holding (wallet tokens, AAVE supply and debt per reserve, CEX cash, spot and perps)
    with its amount and USD value; the last column is the row's Close button (CEX perp and spot rows)."""

    COLUMNS = ("Venue", "Kind", "Asset", "Size", "Entry", "Mark", "Unrealized", "Value (USD)", "")
    NUMERIC = frozenset({3, 4, 5, 6, 7})
    COLORED = frozenset({6})
    CLOSE_COLUMN = 8

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.lines: list[PositionLine] = []

    def closable(self, row: int) -> PositionLine | None:
        """The position a click on row ``row``'s Close cell closes, or None."""
        if 0 <= row < len(self.lines) and self.rows[row][self.CLOSE_COLUMN]:
            return self.lines[row]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if index.isValid() and index.column() == self.CLOSE_COLUMN and self.rows[index.row()][self.CLOSE_COLUMN]:
            if role == _FOREGROUND:
                return _BRUSH["warn"]
            if role == _TOOLTIP:
                return "Close this position: a reduce-only market order for its full size (asks first)"
        return super().data(index, role)

    def refresh(self, positions: Sequence[PositionLine]) -> None:
        rows, colors = [], []
        self.lines = list(positions)
        for p in positions:
            unrealized = p.unrealized
            close = CLOSE_TEXT if p.kind in ("perp", "spot") and p.size and p.venue != "wallet" \
                and not (p.kind == "spot" and p.size < 0) else ""
            rows.append((p.venue, p.kind, p.asset, num(p.size, 6), num(p.entry), num(p.price),
                         "" if unrealized is None else f"{unrealized:+,.2f}",
                         "" if p.value is None else f"{p.value:,.2f}", close))
            colors.append(None if unrealized is None or abs(unrealized) < 0.005 else
                          ("ok" if unrealized > 0 else "bad"))
        self.set_rows(rows, colors)


class RiskModel(_RowsModel):
    """Health factor, LTV, per-venue margin ratio with the distance to liquidation, net delta (on-chain
    vs CEX), drawdown and data age against the session's limits."""

    COLUMNS = ("Metric", "Value", "Limit / distance")
    NUMERIC = frozenset({1})
    COLORED = frozenset({0, 1})

    def refresh(self, lines: Sequence[RiskLine]) -> None:
        self.set_rows([(x.metric, x.value, x.limit) for x in lines], [x.severity for x in lines], [x.tip for x in lines])

    def value_of(self, metric: str) -> str:
        for row in self.rows:
            if row[0] == metric:
                return row[1]
        raise KeyError(f"no risk row {metric!r} (rows: {[r[0] for r in self.rows]})")


def _decimal(text: str | None) -> str:
    """A venue amount string without trailing zeros ('3.199200000000' -> '3.1992')."""
    if not text:
        return ""
    try:
        value = Decimal(text)
    except ArithmeticError:
        return text
    if not value:
        return "0"
    # amounts sized from floats carry binary noise (3.1992000000000003): 12 significant digits
    return format(Decimal(f"{value:.12g}").normalize(), "f")


class OrdersModel(_RowsModel):
    """The order blotter, newest first: live orders as the venue reports them and paper sessions'
    simulated fills; ``Source`` tells the strategy's orders from the operator's (manual)."""

    COLUMNS = ("Time", "Source", "Venue", "Symbol", "Side", "Amount", "Reduce-only", "Status", "Filled",
               "Avg price", "Client id", "Error")
    NUMERIC = frozenset({5, 8, 9})

    def refresh(self, orders: Sequence[Any]) -> None:
        rows, colors = [], []
        for o in reversed(list(orders)):
            rows.append((time.strftime("%H:%M:%S", time.localtime(o.submitted_at)), o.source, o.venue, o.symbol,
                         o.side, _decimal(o.amount), "yes" if o.reduce_only else "", o.status, _decimal(o.filled),
                         _decimal(o.average), o.client_order_id, o.error))
            colors.append("bad" if o.status in ("failed", "rejected") else "dim" if o.status == "canceled" else None)
        self.set_rows(rows, colors)


class LiveEventsModel(ColumnTableModel):
    """The session's engine events, newest first, at most `cap` rows; appends are incremental."""

    COLUMNS = ("Time (UTC)", "Venue", "Type", "Details", "Cost")

    def __init__(self, cap: int = EVENT_CAP, parent=None) -> None:
        super().__init__(parent)
        self.cap = cap
        self.events: list[Event] = []        # newest first
        self.seen = 0
        self.source: object | None = None

    def refresh(self, source: object, events: Sequence[Event], total: int | None = None) -> None:
        """Show the events of `source` (a session id): ``events`` are the newest of ``total`` logged
        so far (all of them when ``total`` is None); only the new ones are inserted."""
        total = len(events) if total is None else total
        if source != self.source or total < self.seen:
            self.beginResetModel()
            self.source = source
            self.events = list(reversed(events[-self.cap:]))
            self.seen = total
            self.endResetModel()
            return
        count = min(total - self.seen, len(events))
        if count <= 0:
            return
        self.seen = total
        new = list(reversed(list(events[-count:])[-self.cap:]))
        self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
        self.events[:0] = new
        self.endInsertRows()
        if len(self.events) > self.cap:
            self.beginRemoveRows(QModelIndex(), self.cap, len(self.events) - 1)
            del self.events[self.cap:]
            self.endRemoveRows()

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    ROWS_ATTR = "events"

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        e = self.events[index.row()]
        if role == _DISPLAY:
            return (e.timestamp.replace("T", " ").rstrip("Z"), e.venue, e.type, describe(e), cost_text(e))[index.column()]
        if role == _FOREGROUND:
            if e.type in ("breach", "rejected", "liquidation"):
                return _BRUSH["bad"]
            if e.type == "state":
                return _BRUSH["warn"]
            if e.type == "funding":
                return _BRUSH["dim"]
        if role == _TOOLTIP:
            return "\n".join(f"{f.name}: {getattr(e, f.name)}" for f in fields(e)
                             if getattr(e, f.name) not in ("", None, 0, 0.0))
        return None
