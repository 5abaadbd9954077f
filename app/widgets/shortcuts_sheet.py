"""Help > Keyboard shortcuts: every shortcut of the window, read from the window itself.

The sheet is not a hand-kept list: it walks the window's QActions (menus, the emergency stop) and
QShortcuts (panel keys) and shows what each one's key sequence, description and scope are, so a
shortcut added anywhere shows up here and one removed disappears. A QShortcut describes itself
through its whatsThis text; one without a description is listed as such, so the gap is visible.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: Keys Qt itself gives every window (not QActions of ours, so listed here by hand).
BUILT_IN = (
    ("Alt + underlined letter", "open that menu (File, View, Backtest, Trading, Help)", "anywhere in the window"),
    ("Tab / Shift+Tab", "move the keyboard focus to the next / previous field", "anywhere"),
)


@dataclass(frozen=True)
class ShortcutRow:
    keys: str          # e.g. "Ctrl+Shift+X, F12"
    action: str        # what it does
    scope: str         # where it works


def _native(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.NativeText)


def _scope(obj: QObject, context: Qt.ShortcutContext) -> str:
    if context == Qt.ShortcutContext.ApplicationShortcut:
        return "anywhere in the app (floating panels and dialogs too)"
    owner = obj.parent()
    dock = owner
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parent()
    panel = f"the {dock.windowTitle()} panel" if isinstance(dock, QDockWidget) else "the main window"
    if context == Qt.ShortcutContext.WidgetShortcut and isinstance(owner, QWidget):
        name = owner.accessibleName() or type(owner).__name__
        return f"in {panel}, when the {name} has the focus"
    if context == Qt.ShortcutContext.WidgetWithChildrenShortcut:
        return f"in {panel}"
    return "in the main window"


def _action_text(action: QAction) -> str:
    text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").rstrip(".")
    tip = action.toolTip().replace("&", "").rstrip("…").rstrip(".")
    if not tip or tip == text:
        return text
    if tip.lower().startswith(text.lower()):
        return tip                               # "Larger text in every panel", not "Larger: Larger text…"
    return f"{text}: {tip}"


def collect_shortcuts(window: QWidget) -> list[ShortcutRow]:
    """Every QAction and QShortcut under `window` that has a key sequence, sorted by scope."""
    rows: list[ShortcutRow] = []
    seen_actions: set[int] = set()
    for action in window.findChildren(QAction):
        keys = [k for k in action.shortcuts() if not k.isEmpty()]
        if not keys or id(action) in seen_actions:
            continue
        seen_actions.add(id(action))
        rows.append(ShortcutRow(", ".join(_native(k) for k in keys), _action_text(action),
                                _scope(action, action.shortcutContext())))
    for shortcut in window.findChildren(QShortcut):
        keys = [k for k in shortcut.keys() if not k.isEmpty()]
        if not keys:
            continue
        rows.append(ShortcutRow(", ".join(_native(k) for k in keys), shortcut.whatsThis() or "(no description)",
                                _scope(shortcut, shortcut.context())))
    # Grouped by where they work (anywhere first); in each group, in the order they were made.
    rows.sort(key=lambda r: (not r.scope.startswith("anywhere"), r.scope))
    return rows


class ShortcutsSheet(QDialog):
    """A non-modal window listing the shortcuts (re-read each time it opens)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(820, 560)
        layout = QVBoxLayout(self)
        intro = QLabel("Every shortcut of the workstation. The emergency stop works from any window of the app. "
                       "A panel's keys work wherever the focus is in that panel; a text field keeps the keys "
                       "it edits with (Space, arrows, Home/End).", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["Keys", "Does", "Works"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, 300)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self._window = window
        self.refresh()

    def refresh(self) -> None:
        rows = [*collect_shortcuts(self._window), *(ShortcutRow(*row) for row in BUILT_IN)]
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate((row.keys, row.action, row.scope)):
                item = QTableWidgetItem(text)
                if j == 0:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(i, j, item)
        self.table.resizeRowsToContents()

    def showEvent(self, event) -> None:
        self.refresh()
        super().showEvent(event)
