"""Event log model: every engine event of a run, filterable, following the playhead, capped in rows.

Top-level rows are events without a parent; the children of an atomic bundle (flash loan, stake,
supply, borrow, repay) hang under it and expand in the tree. Filters (venue, type) match a bundle
if the bundle or any of its children matches. The model never holds more than `cap` top-level rows:
it shows a window of the filtered events centred on the playhead and slides it with row
inserts/removes (expanded bundles and the scroll position survive). Events after the playhead are
dimmed ("not yet happened") and the events of the playhead's hour are highlighted.

Units stay apart: the Amount column carries each amount's own asset, execution costs are in USD
and gas in ETH, each in a column that says so (they are different money until the P&L converts
them). The display strings are formatted once, off the UI thread (index_events), which also keeps
the longest text of each column so the view can size its columns to their content without
measuring every row.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from app import style
from engine.domain.events import Event

DEFAULT_CAP = 1000
ALL = None
#: The type filter entry that hides the (very frequent) funding settlements.
NOT_FUNDING = "!funding"

COLUMNS = ("Time (UTC)", "Venue", "Type", "Amount", "Cost (USD)", "Gas (ETH)", "Details")
COLUMN_TIPS = (
    "The hour of the event (UTC)",
    "Where it happened (strategy = a decision of the strategy itself)",
    "What happened",
    "The amount moved, in its own asset (→ what came out, in that asset); funding: the payment in USD",
    "Execution cost in USD: fees, slippage, flash-loan and transfer fees",
    "Gas paid, in ETH (on-chain steps only)",
    "Side, price, loop iteration and the reason the strategy gave",
)
DETAILS_COLUMN = COLUMNS.index("Details")
#: longest texts kept per column for sizing the columns to their content
WIDEST_KEPT = 6
_FUTURE = QBrush(QColor("#6b7280"))
_DISPLAY = Qt.ItemDataRole.DisplayRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_BACKGROUND = Qt.ItemDataRole.BackgroundRole
_FONT = Qt.ItemDataRole.FontRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_NUMERIC_COLUMNS = frozenset({COLUMNS.index("Cost (USD)"), COLUMNS.index("Gas (ETH)")})
_ROLES = frozenset({_DISPLAY, _FOREGROUND, _BACKGROUND, _FONT, _TOOLTIP, _ALIGN, Qt.ItemDataRole.UserRole})
_CURRENT = QBrush(QColor("#3b3420"))


def _restyle_brushes() -> None:
    """The dimmed and highlighted row colours of the active theme."""
    global _FUTURE, _CURRENT
    theme = style.current()
    _FUTURE = QBrush(QColor(theme.future_text))
    _CURRENT = QBrush(QColor(theme.current_row))


def _num(value: float, digits: int = 6) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.2f}"
    if magnitude >= 1:
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return f"{value:.{digits}g}"


def describe(event: Event, children: int = 0) -> str:
    """One readable line per event type (the tooltip carries every raw field)."""
    t = event.type
    if t == "bundle":
        return f"atomic bundle of {children} step{'s' if children != 1 else ''} ({event.reason or 'flash loan'})"
    if t == "funding":
        side = "short" if event.amount < 0 else "long"
        paid = "received" if event.amount_out >= 0 else "paid"
        return (f"{event.reason} on {side} {_num(abs(event.amount))} {event.asset} @ {_num(event.price)}: "
                f"{paid} {_num(abs(event.amount_out))} USD")
    if t in ("perp_trade", "spot_trade"):
        side = "buy" if event.amount > 0 else "sell"
        return f"{side} {_num(abs(event.amount))} {event.asset} @ {_num(event.price)}" + \
            (f" ({event.reason})" if event.reason else "")
    if t == "rebalance":
        return event.reason
    if t == "transfer":
        return (f"{_num(event.amount)} {event.asset} → {event.to_asset} (received {_num(event.amount_out)})"
                + (f" ({event.reason})" if event.reason else ""))
    if t == "REWARD_PAYMENT":
        label = event.reason.split(":", 1)[0]
        return (f"{label}: {_num(event.amount)} {event.asset} sold @ {_num(event.price)} ETH → "
                f"{_num(event.amount_out)} {event.to_asset}")
    if t == "liquidation":
        return f"{event.reason}: {_num(event.amount)} {event.asset} repaid/closed, {_num(event.amount_out)} seized"
    text = f"{_num(event.amount)} {event.asset}".strip() if event.asset or event.amount else ""
    if event.to_asset:
        text += f" → {_num(event.amount_out)} {event.to_asset}"
    if event.iteration is not None:
        text += f" (loop iteration {event.iteration})"
    if event.reason:
        text += f" ({event.reason})" if text else event.reason
    return text or t


def amount_text(event: Event) -> str:
    """What moved, each amount with its own asset."""
    t = event.type
    if t == "funding":
        return f"{event.amount_out:+,.2f} USD"
    if t in ("perp_trade", "spot_trade"):
        return f"{'+' if event.amount > 0 else '−'}{_num(abs(event.amount))} {event.asset}"
    if not event.asset:
        return ""
    if not event.amount and not event.to_asset:
        return event.asset                      # an approval or a setting: no amount moves
    text = f"{_num(event.amount)} {event.asset}"
    if event.to_asset and t != "transfer" and event.to_asset != event.asset:
        text += f" → {_num(event.amount_out)} {event.to_asset}"
    return text


def usd_cost_text(event: Event) -> str:
    return f"{event.execution_cost_usd:,.2f}" if event.execution_cost_usd else ""


def gas_text(event: Event) -> str:
    return f"{event.gas_eth:.8f}".rstrip("0").rstrip(".") if event.gas_eth else ""


def cost_text(event: Event) -> str:
    """Both costs on one line, each with its unit (USD and ETH are never added up here)."""
    parts = []
    if event.execution_cost_usd:
        parts.append(f"${event.execution_cost_usd:,.2f}")
    if event.gas_eth:
        parts.append(f"{event.gas_eth:.5f} ETH gas")
    return " + ".join(parts)


def display_texts(event: Event, children: int = 0) -> tuple[str, ...]:
    """The row's strings, in COLUMNS order."""
    return (event.timestamp[:16].replace("T", " "), event.venue, event.type, amount_text(event),
            usd_cost_text(event), gas_text(event), describe(event, children))


def tooltip_html(event: Event, children: int = 0) -> str:
    """Every field that says something, labelled and with its unit (empty ones left out)."""
    rows: list[tuple[str, str]] = [("when", f"{event.timestamp[:16].replace('T', ' ')} UTC (hour {event.hour:,})"),
                                   ("venue", event.venue)]
    if event.asset:
        amount = f"{_num(event.amount)} {event.asset}" if event.type != "funding" else \
            f"{_num(event.amount)} {event.asset} position"
        rows.append(("amount", amount))
    if event.to_asset:
        label = "to" if event.type == "transfer" else "received"
        rows.append((label, event.to_asset if event.type == "transfer" else f"{_num(event.amount_out)} {event.to_asset}"))
    if event.type == "funding":
        rows.append(("payment", f"{event.amount_out:+,.4f} USD"))
    if event.price:
        rows.append(("price", _num(event.price, 8)))
    if event.execution_cost_usd:
        rows.append(("execution cost", f"{event.execution_cost_usd:,.4f} USD"))
    if event.gas_eth:
        rows.append(("gas", f"{event.gas_eth:.8f} ETH"))
    if children:
        rows.append(("bundle", f"{children} step{'s' if children != 1 else ''} (expand the row)"))
    if event.parent is not None:
        rows.append(("part of", f"atomic bundle #{event.parent}"))
    if event.iteration is not None:
        rows.append(("loop iteration", str(event.iteration)))
    if event.reason:
        rows.append(("reason", event.reason))
    body = "".join(f"<tr><td style='color:{style.TEXT_DIM}; padding-right:8px'>{name}</td><td>{_html(value)}</td></tr>"
                   for name, value in rows)
    return f"<b>{_html(event.type)}</b> <span style='color:{style.TEXT_DIM}'>event #{event.order}</span><table>{body}</table>"


def _html(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class _Top:
    event: Event
    children: list[Event]
    venues: frozenset[str]
    types: frozenset[str]


@dataclass
class EventIndex:
    """Events grouped into top-level rows with their bundle children, with every row's display
    strings (plain Python: built on the worker thread)."""

    tops: list[_Top]
    #: event order -> the row's strings (COLUMNS order)
    texts: dict[int, tuple[str, ...]]
    #: per column, its longest strings (for sizing the column to its content)
    widest: list[list[str]]


def index_events(events: Iterable[Event]) -> EventIndex:
    events = list(events)
    by_order = {e.order: e for e in events}
    children: dict[int, list[Event]] = {}
    tops: list[Event] = []
    for event in events:
        if event.parent is not None and event.parent in by_order:
            children.setdefault(event.parent, []).append(event)
        else:
            tops.append(event)
    rows = []
    texts: dict[int, tuple[str, ...]] = {}
    for event in tops:
        kids = children.get(event.order, [])
        rows.append(_Top(event, kids, frozenset([event.venue, *(k.venue for k in kids)]),
                         frozenset([event.type, *(k.type for k in kids)])))
        texts[event.order] = display_texts(event, len(kids) if event.type == "bundle" else 0)
        for kid in kids:
            texts[kid.order] = display_texts(kid)
    widest: list[list[str]] = []
    for column in range(len(COLUMNS)):
        lengths = sorted({row[column] for row in texts.values()}, key=len, reverse=True)
        widest.append(lengths[:WIDEST_KEPT])
    return EventIndex(rows, texts, widest)


class EventTreeModel(QAbstractItemModel):
    """QAbstractItemModel over the events of one run (see the module docstring)."""

    def __init__(self, cap: int = DEFAULT_CAP, parent=None) -> None:
        super().__init__(parent)
        if cap < 1:
            raise ValueError(f"cap must be at least 1 row, got {cap}")
        self.cap = cap
        self._top: list[_Top] = []
        self._rows = np.zeros(0, dtype=np.int64)        # filtered top-level indices into _top
        self._row_hours = np.zeros(0, dtype=np.int64)
        self._pos = np.zeros(0, dtype=np.int64)         # _top index -> position in _rows (-1 = filtered out)
        self._start = 0                                  # window start (position in _rows)
        self._count = 0                                  # rows in the window
        self.playhead = 0
        self.venue_filter: str | None = ALL
        self.type_filter: str | None = ALL
        self._bold = QFont()
        self._bold.setBold(True)
        self._text_cache: dict[int, tuple[str, ...]] = {}
        self.widest: list[list[str]] = [[] for _ in COLUMNS]
        _restyle_brushes()
        style.theme_changed().connect(self._theme_changed)

    # ---- data in ------------------------------------------------------------------------------
    def set_events(self, events: Iterable[Event] | EventIndex) -> None:
        """Show these events (an EventIndex built off the UI thread, or a plain list)."""
        index = events if isinstance(events, EventIndex) else index_events(events)
        self.beginResetModel()
        self._top = index.tops
        self._text_cache = dict(index.texts)
        self.widest = index.widest
        self._apply_filter()
        self.endResetModel()

    def venues(self) -> list[str]:
        return sorted({v for top in self._top for v in top.venues})

    def types(self) -> list[str]:
        return sorted({t for top in self._top for t in top.types})

    def set_filter(self, venue: str | None = ALL, event_type: str | None = ALL) -> None:
        """venue: a venue name or None (all); event_type: a type, NOT_FUNDING or None (all)."""
        self.beginResetModel()
        self.venue_filter = venue
        self.type_filter = event_type
        self._apply_filter()
        self.endResetModel()

    def _matches(self, top: _Top) -> bool:
        if self.venue_filter is not None and self.venue_filter not in top.venues:
            return False
        if self.type_filter == NOT_FUNDING:
            return top.event.type != "funding"
        if self.type_filter is not None and self.type_filter not in top.types:
            return False
        return True

    def _apply_filter(self) -> None:
        rows = [i for i, top in enumerate(self._top) if self._matches(top)]
        self._rows = np.array(rows, dtype=np.int64)
        self._row_hours = np.array([self._top[i].event.hour for i in rows], dtype=np.int64)
        self._pos = np.full(len(self._top), -1, dtype=np.int64)
        self._pos[self._rows] = np.arange(len(rows))
        self._start, self._count = self._window()

    # ---- playhead -----------------------------------------------------------------------------
    @property
    def total_filtered(self) -> int:
        return int(self._rows.size)

    def happened_count(self, hour: int | None = None) -> int:
        """Filtered top-level events at or before `hour` (default: the playhead)."""
        return int(np.searchsorted(self._row_hours, self.playhead if hour is None else hour, side="right"))

    def _window(self) -> tuple[int, int]:
        total = self.total_filtered
        if total <= self.cap:
            return 0, total
        centre = self.happened_count() - 1
        start = max(0, min(centre - self.cap // 2, total - self.cap))
        return start, self.cap

    def set_playhead(self, hour: int) -> None:
        old_hour = self.playhead
        if hour == old_hour:
            return
        self.playhead = hour
        start, count = self._window()
        shift = start - self._start
        if count != self._count or abs(shift) >= count:
            self.beginResetModel()
            self._start, self._count = start, count
            self.endResetModel()
            return
        if shift > 0:      # window slides forward: drop rows at the top, add at the bottom
            self.beginRemoveRows(QModelIndex(), 0, shift - 1)
            self._start += shift
            self._count -= shift
            self.endRemoveRows()
            self.beginInsertRows(QModelIndex(), self._count, self._count + shift - 1)
            self._count += shift
            self.endInsertRows()
        elif shift < 0:
            back = -shift
            self.beginRemoveRows(QModelIndex(), self._count - back, self._count - 1)
            self._count -= back
            self.endRemoveRows()
            self.beginInsertRows(QModelIndex(), 0, back - 1)
            self._start -= back
            self._count += back
            self.endInsertRows()
        self._restyle(min(old_hour, hour), max(old_hour, hour))

    def _restyle(self, low_hour: int, high_hour: int) -> None:
        """Rows whose past/future/current state changed between two playhead positions."""
        if self._count == 0:
            return
        first = int(np.searchsorted(self._row_hours, low_hour, side="left")) - self._start
        last = int(np.searchsorted(self._row_hours, high_hour, side="right")) - 1 - self._start
        first, last = max(first, 0), min(last, self._count - 1)
        if first > last:
            return
        right = len(COLUMNS) - 1
        self.dataChanged.emit(self.index(first, 0), self.index(last, right),
                              [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole,
                               Qt.ItemDataRole.FontRole])
        for row in range(first, last + 1):
            top = self._top[int(self._rows[self._start + row])]
            if top.children:
                parent = self.index(row, 0)
                self.dataChanged.emit(self.index(0, 0, parent), self.index(len(top.children) - 1, right, parent))

    # ---- lookups ------------------------------------------------------------------------------
    def event_at(self, index: QModelIndex | QPersistentModelIndex) -> Event | None:
        if not index.isValid():
            return None
        internal = index.internalId()
        if internal == 0:
            pos = self._start + index.row()
            return self._top[int(self._rows[pos])].event if 0 <= index.row() < self._count else None
        top = self._top[internal - 1]
        return top.children[index.row()] if index.row() < len(top.children) else None

    def row_of_last_happened(self) -> int:
        """Row of the latest event at or before the playhead in the window (-1 if none)."""
        row = self.happened_count() - 1 - self._start
        return row if 0 <= row < self._count else -1

    def window(self) -> tuple[int, int, int]:
        """(first shown position, rows shown, total filtered): for the 'showing N of M' label."""
        return self._start, self._count, self.total_filtered

    # ---- QAbstractItemModel -------------------------------------------------------------------
    def index(self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:
        if column < 0 or column >= len(COLUMNS) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            if row >= self._count:
                return QModelIndex()
            return self.createIndex(row, column, 0)
        if parent.internalId() != 0:
            return QModelIndex()
        top_index = int(self._rows[self._start + parent.row()])
        if row >= len(self._top[top_index].children):
            return QModelIndex()
        return self.createIndex(row, column, top_index + 1)

    def parent(self, index: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        top_index = index.internalId() - 1
        row = int(self._pos[top_index]) - self._start
        if row < 0 or row >= self._count:
            return QModelIndex()
        return self.createIndex(row, 0, 0)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        if not parent.isValid():
            return self._count
        if parent.internalId() != 0 or parent.column() != 0:
            return 0
        return len(self._top[int(self._rows[self._start + parent.row()])].children)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return COLUMN_TIPS[section]
        return None

    def _theme_changed(self) -> None:
        _restyle_brushes()
        if self._count:
            self.dataChanged.emit(self.index(0, 0), self.index(self._count - 1, len(COLUMNS) - 1),
                                  [_FOREGROUND, _BACKGROUND])

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Roles are checked before anything else: a view asks ~7 roles per cell and repaints often.
        if role not in _ROLES:
            return None
        event = self.event_at(index)
        if event is None:
            return None
        if role == _DISPLAY:
            return self._texts(event, index)[index.column()]
        if role == _FOREGROUND:
            return _FUTURE if event.hour > self.playhead else None
        if role == _BACKGROUND:
            return _CURRENT if event.hour == self.playhead else None
        if role == _FONT:
            return self._bold if event.type in ("rebalance", "liquidation") and event.hour <= self.playhead else None
        if role == _TOOLTIP:
            return tooltip_html(event, self._children_of(event, index))
        if role == _ALIGN:
            return _RIGHT if index.column() in _NUMERIC_COLUMNS else None
        return event.hour   # UserRole

    def _children_of(self, event: Event, index: QModelIndex | QPersistentModelIndex) -> int:
        if index.internalId() == 0 and event.type == "bundle":
            return len(self._top[int(self._rows[self._start + index.row()])].children)
        return 0

    def _texts(self, event: Event, index: QModelIndex | QPersistentModelIndex) -> tuple[str, ...]:
        """The display strings of an event (formatted by index_events; a plain list is formatted here)."""
        texts = self._text_cache.get(event.order)
        if texts is None:
            texts = display_texts(event, self._children_of(event, index))
            self._text_cache[event.order] = texts
        return texts

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
