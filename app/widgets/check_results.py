"""Table models for pre-live check results (engine.domain.readiness.CheckResult): the venue x check grid of the
Venue checks panel and the flat list the credentials dialog shows after "Test connection".

Both take results one at a time (``add``) as the checks stream in, so a row or a cell appears the
moment its check finishes. Cells carry the status colour, the message and hint as a tooltip, and the
raw CheckResult under ``RESULT_ROLE`` for a details pane.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app import style
from app.widgets.table_model import ColumnTableModel
from engine.domain.readiness import CheckResult
from engine.domain.readiness import CheckStatus as Status

RESULT_ROLE = Qt.ItemDataRole.UserRole + 1
_DISPLAY = Qt.ItemDataRole.DisplayRole
_BACKGROUND = Qt.ItemDataRole.BackgroundRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole

#: Cell background per status (dark tints of the theme colours) and the text colour on it.
STATUS_BACKGROUND = {
    Status.OK: "#1f3a2a",
    Status.WARN: "#4a3a1c",
    Status.FAIL: "#5a2326",
    Status.SKIP: "#2b2f38",
}
STATUS_TEXT = {Status.OK: style.OK, Status.WARN: style.WARNING, Status.FAIL: style.ERROR, Status.SKIP: style.TEXT_DIM}
PENDING_TEXT = "…"
#: Worst first: a venue's overall verdict is its worst result.
SEVERITY = {Status.FAIL: 3, Status.WARN: 2, Status.OK: 1, Status.SKIP: 0}

#: Column order of the grid: CEX checks in the order they run, then the chain's, then anything new.
CHECK_ORDER = ("credentials", "reachable", "clock", "markets", "funding", "account", "permissions",
               "account_mode", "rpc", "chain_id", "block_age", "gas", "fee_cap", "contracts", "rate", "tokens",
               "emode", "executor", "allowances", "config", "internal")
CHECK_TITLES = {"account_mode": "position mode", "chain_id": "chain id", "block_age": "block age",
                "reachable": "reachable", "fee_cap": "fee cap", "emode": "e-mode"}


def check_title(check: str) -> str:
    return CHECK_TITLES.get(check, check)


def latency_text(result: CheckResult) -> str:
    return "" if result.latency_ms is None else f"{result.latency_ms:,.0f} ms"


def cell_text(result: CheckResult) -> str:
    latency = latency_text(result)
    return f"{result.status.value}  {latency}" if latency else result.status.value


def tooltip(result: CheckResult) -> str:
    """Message and hint as rich text (both are redacted by venues.checks: never a secret)."""
    from html import escape

    parts = [f"<b>{escape(result.venue)} · {escape(check_title(result.check))}: {result.status.value}</b>"]
    if result.latency_ms is not None:
        parts.append(f"latency {result.latency_ms:,.0f} ms")
    parts.append(escape(result.message))
    if result.hint:
        parts.append(f"<i>Hint:</i> {escape(result.hint)}")
    return "<br>".join(parts)


def worst(results: Iterable[CheckResult]) -> Status | None:
    ordered = sorted(results, key=lambda r: SEVERITY[r.status], reverse=True)
    return ordered[0].status if ordered else None


def _brush(color: str) -> QBrush:
    return QBrush(QColor(color))


_BG = {s: _brush(c) for s, c in STATUS_BACKGROUND.items()}
_FG = {s: _brush(c) for s, c in STATUS_TEXT.items()}
_DIM = _brush(style.TEXT_DIM)


class CheckGridModel(QAbstractTableModel):
    """Rows: the plan's venues; columns: Venue, Overall, then one per check (appearing as needed)."""

    FIXED = ("Venue", "Overall")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.venues: list[str] = []
        self.checks: list[str] = []
        self.cells: dict[tuple[str, str], CheckResult] = {}
        self.running: set[str] = set()

    # ---- updates ------------------------------------------------------------------------------
    def start(self, venues: list[str], expected_checks: Iterable[str] = ()) -> None:
        """A new run: every venue of the plan shows as running, with the checks it is expected to run."""
        self.beginResetModel()
        self.venues = list(venues)
        self.cells = {}
        self.running = set(venues)
        self.checks = sorted(set(expected_checks), key=self._order)
        self.endResetModel()

    def add(self, result: CheckResult) -> None:
        if result.venue not in self.venues:
            row = len(self.venues)
            self.beginInsertRows(QModelIndex(), row, row)
            self.venues.append(result.venue)
            self.endInsertRows()
        if result.check not in self.checks:
            position = sum(1 for c in self.checks if self._order(c) <= self._order(result.check))
            column = len(self.FIXED) + position
            self.beginInsertColumns(QModelIndex(), column, column)
            self.checks.insert(position, result.check)
            self.endInsertColumns()
        self.cells[(result.venue, result.check)] = result
        row = self.venues.index(result.venue)
        column = len(self.FIXED) + self.checks.index(result.check)
        self.dataChanged.emit(self.index(row, column), self.index(row, column))
        self.dataChanged.emit(self.index(row, 1), self.index(row, 1))

    def finish(self) -> None:
        """The run ended (or was cancelled): nothing is running any more."""
        self.running = set()
        if self.venues:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.venues) - 1, self.columnCount() - 1))

    @staticmethod
    def _order(check: str) -> int:
        return CHECK_ORDER.index(check) if check in CHECK_ORDER else len(CHECK_ORDER)

    # ---- queries ------------------------------------------------------------------------------
    def results(self) -> list[CheckResult]:
        return list(self.cells.values())

    def result(self, venue: str, check: str) -> CheckResult | None:
        return self.cells.get((venue, check))

    def venue_results(self, venue: str) -> list[CheckResult]:
        return [r for (v, _), r in self.cells.items() if v == venue]

    def result_at(self, index: QModelIndex) -> CheckResult | None:
        if not index.isValid() or index.column() < len(self.FIXED):
            return None
        return self.cells.get((self.venues[index.row()], self.checks[index.column() - len(self.FIXED)]))

    def overall(self, venue: str) -> Status | None:
        return worst(self.venue_results(venue))

    # ---- Qt model -----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.venues)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.FIXED) + len(self.checks)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != _DISPLAY:
            return None
        if section < len(self.FIXED):
            return self.FIXED[section]
        return check_title(self.checks[section - len(self.FIXED)])

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        venue = self.venues[index.row()]
        column = index.column()
        if column == 0:
            return venue if role == _DISPLAY else None
        if column == 1:
            return self._overall_data(venue, role)
        result = self.cells.get((venue, self.checks[column - len(self.FIXED)]))
        if result is None:
            if role == _DISPLAY:
                return PENDING_TEXT if venue in self.running else ""
            if role == _FOREGROUND:
                return _DIM
            if role == _ALIGN:
                return Qt.AlignmentFlag.AlignCenter
            if role == _TOOLTIP and venue in self.running:
                return "running…"
            return None
        if role == _DISPLAY:
            return cell_text(result)
        if role == _BACKGROUND:
            return _BG[result.status]
        if role == _FOREGROUND:
            return _FG[result.status]
        if role == _TOOLTIP:
            return tooltip(result)
        if role == _ALIGN:
            return Qt.AlignmentFlag.AlignCenter
        if role == RESULT_ROLE:
            return result
        return None

    def _overall_data(self, venue: str, role: int) -> Any:
        status = self.overall(venue)
        running = venue in self.running
        if role == _DISPLAY:
            if status is None:
                return "running…" if running else "–"
            return f"{status.value}{' …' if running else ''}"
        if status is None:
            return _DIM if role == _FOREGROUND else None
        if role == _BACKGROUND:
            return _BG[status]
        if role == _FOREGROUND:
            return _FG[status]
        if role == _ALIGN:
            return Qt.AlignmentFlag.AlignCenter
        if role == _TOOLTIP:
            counts = {s: sum(1 for r in self.venue_results(venue) if r.status is s) for s in Status}
            return ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) + (" (still running)" if running else "")
        return None


class CheckListModel(ColumnTableModel):
    """One row per result: Check, Status, Latency, Message (the hint in the tooltip)."""

    COLUMNS = ("Check", "Status", "Latency", "Message")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[CheckResult] = []

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self.endResetModel()

    def add(self, result: CheckResult) -> None:
        row = len(self.rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self.rows.append(result)
        self.endInsertRows()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        result = self.rows[index.row()]
        column = index.column()
        if role == _DISPLAY:
            return (f"{result.venue} · {check_title(result.check)}", result.status.value, latency_text(result),
                    result.message + (f" — {result.hint}" if result.hint else ""))[column]
        if role == _TOOLTIP:
            return tooltip(result)
        if role == _BACKGROUND and column == 1:
            return _BG[result.status]
        if role == _FOREGROUND and column == 1:
            return _FG[result.status]
        if role == RESULT_ROLE:
            return result
        return None


class StatusCellDelegate(QStyledItemDelegate):
    """Draws a selected cell with its status colour and an accent outline (the default selection fill
    would hide whether the selected check is OK or FAIL)."""

    def paint(self, painter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        plain.state &= ~QStyle.StateFlag.State_HasFocus
        super().paint(painter, plain, index)
        if selected:
            painter.save()
            painter.setPen(QPen(QColor(style.ACCENT), 2))
            painter.drawRect(option.rect.adjusted(1, 1, -1, -1))
            painter.restore()
