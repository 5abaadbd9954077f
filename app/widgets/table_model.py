"""The shared shape of the app's flat table models: fixed column titles over a list of rows."""
from __future__ import annotations

from typing import Any, ClassVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt


class ColumnTableModel(QAbstractTableModel):
    """Row count from the list named by ROWS_ATTR, column count and horizontal headers from COLUMNS.
    Subclasses implement `data` only."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    ROWS_ATTR: ClassVar[str] = "rows"

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(getattr(self, self.ROWS_ATTR))

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None
