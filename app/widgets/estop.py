"""The emergency-stop widgets: the red button (always visible in the main window's safety toolbar,
outside every dock, so closing or floating a panel never hides it), its keyboard action (works from
any window of the app), the trading-state badge, and the per-venue cancel progress table.

These are leaves: they show what they are given and say when they are pressed; the main window
connects a press to ``LiveController.emergency_stop``, which HALTS every session inside the call
(before the click handler returns) and then reports each venue's cancel-all (pending, cancelling,
done, failed, timeout; orders cancelled; ms since the press).
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from app import style
from app.widgets.table_model import ColumnTableModel
from app.view_models import CancelRow

#: The shortcuts (shown on the button). Ctrl+Shift+X is hard to hit by accident; F12 is one key.
ESTOP_SHORTCUTS = ("Ctrl+Shift+X", "F12")
ESTOP_TEXT = "EMERGENCY STOP"

STATE_COLORS = {
    "ACTIVE": ("#1f3a2a", style.OK),
    "REDUCING": ("#4a3a1c", style.WARNING),
    "AWAITING ACK": ("#4a3a1c", style.WARNING),
    "HALTED": ("#5a2326", "#ffd7d7"),
    None: (style.SURFACE_ALT, style.TEXT_DIM),
}
#: Which badge the safety bar shows when several sessions run: the most urgent.
BADGE_PRIORITY = ("HALTED", "AWAITING ACK", "REDUCING", "STARTING", "ACTIVE")
CANCEL_COLORS = {"pending": style.TEXT_DIM, "cancelling": style.ACCENT, "done": style.OK,
                 "failed": style.ERROR, "timeout": style.WARNING}


def shortcut_label() -> str:
    return " / ".join(ESTOP_SHORTCUTS)


class StateBadge(QLabel):
    """A session's badge: ACTIVE (green), REDUCING or AWAITING ACK (amber), HALTED (red), STARTING,
    STOPPED or no session (grey)."""

    def __init__(self, parent: QWidget | None = None, large: bool = False) -> None:
        super().__init__(parent)
        self.large = large
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumWidth(120 if large else 96)
        self.state: str | None = None
        self.set_state(None)

    def set_state(self, state: str | None, text: str | None = None) -> None:
        self.state = state
        background, foreground = STATE_COLORS.get(state, STATE_COLORS[None])
        size = "18px" if self.large else "13px"
        self.setStyleSheet(f"QLabel {{ background: {background}; color: {foreground}; border: 1px solid {foreground};"
                           f" border-radius: 4px; padding: 3px 10px; font-weight: 700; font-size: {size}; }}")
        self.setText(text if text is not None else (state or "NO SESSION"))


class EmergencyStopButton(QPushButton):
    """Big, red, labelled with its shortcuts. Pressing it halts without any confirmation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(f"■  {ESTOP_TEXT}   ({shortcut_label()})", parent)
        self.setObjectName("estop")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)        # a stray Space/Enter never presses it
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(34)
        self.setToolTip("HALT every live/paper session at once (no new order can reach a venue), then cancel "
                        "every open order on every venue concurrently. No confirmation. Shortcut: "
                        f"{shortcut_label()}. Leaving HALTED needs an explicit Reset in the Live trading panel.")
        self.setStyleSheet("QPushButton#estop { background: #c62828; color: #ffffff; font-weight: 800; font-size: 14px;"
                           " border: 2px solid #ff8a80; border-radius: 5px; padding: 4px 16px; }"
                           "QPushButton#estop:hover { background: #e53935; }"
                           "QPushButton#estop:pressed { background: #8e0000; }")


def make_estop_action(parent: QWidget) -> QAction:
    """The keyboard emergency stop: application-wide, so it works from a floating panel or a dialog."""
    action = QAction(f"{ESTOP_TEXT}", parent)
    action.setShortcuts([QKeySequence(s) for s in ESTOP_SHORTCUTS])
    action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    action.setToolTip("HALT every session and cancel every open order (no confirmation)")
    return action


class SafetyBar(QWidget):
    """Toolbar content: the state of the live sessions, the e-stop summary, and the e-stop button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(10)
        title = QLabel("Live", self)
        title.setObjectName("dim")
        layout.addWidget(title)
        self.badge = StateBadge(self)
        layout.addWidget(self.badge)
        self.sessions_label = QLabel("no session", self)
        self.sessions_label.setObjectName("dim")
        layout.addWidget(self.sessions_label)
        layout.addStretch(1)
        self.progress_label = QLabel(self)
        self.progress_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.progress_label)
        self.button = EmergencyStopButton(self)
        layout.addWidget(self.button)
        self.show_sessions([])

    def show_sessions(self, sessions: list[tuple[str, str]]) -> None:
        """(badge, one-line description) of every session that is not stopped."""
        if not sessions:
            self.badge.set_state(None)
            self.sessions_label.setText("no session running")
            return
        badges = {badge for badge, _ in sessions}
        self.badge.set_state(next((b for b in BADGE_PRIORITY if b in badges), sorted(badges)[0]))
        self.sessions_label.setText(", ".join(text for _, text in sessions))

    def show_press(self, halted_ms: float, rows: list[CancelRow], error: str = "", note: str = "") -> None:
        parts = [f"<b style='color:{style.ERROR}'>E-STOP</b> HALTED in {halted_ms:.1f} ms"]
        for row in rows:
            color = CANCEL_COLORS.get(row.status, style.TEXT)
            text = f"{row.venue} <span style='color:{color}'>{row.status}</span>"
            if row.status in ("done", "failed", "timeout"):
                text += f" {row.canceled} in {row.elapsed_ms:.0f} ms"
            parts.append(text)
        if error:
            parts.append(f"<span style='color:{style.ERROR}'>error: {error}</span>")
        elif note and not rows:
            parts.append(f"<span style='color:{style.TEXT_DIM}'>{note}</span>")
        self.progress_label.setText(" · ".join(parts))


class CancelProgressModel(ColumnTableModel):
    """Per-venue cancel-all progress of the last emergency stop."""

    COLUMNS = ("Session", "Venue", "Status", "Cancelled", "Elapsed (ms)", "Detail")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[CancelRow] = []

    def reset(self, rows: list[CancelRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def update_row(self, row: CancelRow) -> None:
        for i, existing in enumerate(self.rows):
            if (existing.request_id, existing.venue) == (row.request_id, row.venue):
                self.rows[i] = row
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))
                return
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows))
        self.rows.append(row)
        self.endInsertRows()

    def status_of(self, venue: str) -> str | None:
        return next((r.status for r in self.rows if r.venue == venue), None)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            finished = row.status in ("done", "failed", "timeout")
            return (row.request_id, row.venue, row.status.upper(), str(row.canceled) if finished else "",
                    f"{row.elapsed_ms:.0f}" if finished else "", row.error)[column]
        if role == Qt.ItemDataRole.ForegroundRole and column == 2:
            return QBrush(QColor(CANCEL_COLORS.get(row.status, style.TEXT)))
        if role == Qt.ItemDataRole.ToolTipRole and row.error:
            return row.error
        return None
