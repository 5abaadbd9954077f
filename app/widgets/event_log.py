"""Event log view: venue/type filters over a tree of events that follows the playhead.

Clicking an event asks the replay to seek to its hour. "Follow playhead" keeps the latest event at or
before the playhead in view; turn it off to browse freely while the replay runs.
"""
from __future__ import annotations

from PySide6.QtCore import QModelIndex, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.widgets.event_model import ALL, DEFAULT_CAP, NOT_FUNDING, EventIndex, EventTreeModel
from engine.domain.events import Event


class EventLogView(QWidget):
    #: hour of the event the user clicked
    seek_requested = Signal(int)

    def __init__(self, cap: int = DEFAULT_CAP, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = EventTreeModel(cap, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Venue"))
        self.venue_combo = QComboBox(self)
        filters.addWidget(self.venue_combo)
        filters.addWidget(QLabel("Type"))
        self.type_combo = QComboBox(self)
        filters.addWidget(self.type_combo)
        self.follow_box = QCheckBox("Follow playhead", self)
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("Keep the latest event at or before the playhead in view")
        filters.addWidget(self.follow_box)
        filters.addStretch(1)
        layout.addLayout(filters)
        self.tree = QTreeView(self)
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setRootIsDecorated(True)
        self.tree.setExpandsOnDoubleClick(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        # Fixed starting widths, never ResizeToContents: that re-measures every row on each update.
        bold = self.tree.font()
        bold.setBold(True)
        metrics = QFontMetrics(bold)
        for column, sample in enumerate(("2025-09-18 23:00", "strategy", "perp_trade", "", "$1,234.56")):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            if sample:
                header.resizeSection(column, metrics.horizontalAdvance(sample) + (30 if column == 0 else 10))
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.tree.clicked.connect(self._on_clicked)
        layout.addWidget(self.tree, 1)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("dim")
        layout.addWidget(self.count_label)
        self.venue_combo.currentIndexChanged.connect(self._filters_changed)
        self.type_combo.currentIndexChanged.connect(self._filters_changed)
        self._fill_filters()

    def set_events(self, events: list[Event] | EventIndex) -> None:
        self.model.set_events(events)
        self._fill_filters()
        self._update_label()

    def _fill_filters(self) -> None:
        for combo in (self.venue_combo, self.type_combo):
            combo.blockSignals(True)
            combo.clear()
        self.venue_combo.addItem("all venues", ALL)
        for venue in self.model.venues():
            self.venue_combo.addItem(venue, venue)
        self.type_combo.addItem("all but funding", NOT_FUNDING)
        self.type_combo.addItem("all types", ALL)
        for event_type in self.model.types():
            self.type_combo.addItem(event_type, event_type)
        for combo in (self.venue_combo, self.type_combo):
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self._filters_changed()

    def set_filter(self, venue: str | None = ALL, event_type: str | None = ALL) -> None:
        """Select filter entries programmatically (venue name / type name / None for all)."""
        for combo, value in ((self.venue_combo, venue), (self.type_combo, event_type)):
            index = combo.findData(value)
            if index < 0:
                raise ValueError(f"no filter entry {value!r} (available: {[combo.itemData(i) for i in range(combo.count())]})")
            combo.setCurrentIndex(index)
        self._filters_changed()

    def _filters_changed(self) -> None:
        self.model.set_filter(self.venue_combo.currentData(), self.type_combo.currentData())
        self.follow()
        self._update_label()

    def set_playhead(self, hour: int) -> None:
        self.model.set_playhead(hour)
        self.follow()
        self._update_label()

    def follow(self) -> None:
        if not self.follow_box.isChecked():
            return
        row = self.model.row_of_last_happened()
        if row >= 0:
            self.tree.scrollTo(self.model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter)
        elif self.model.rowCount() > 0:
            self.tree.scrollToTop()

    def _update_label(self) -> None:
        _start, shown, total = self.model.window()
        happened = self.model.happened_count()
        text = f"{happened:,} of {total:,} events so far"
        if shown < total:
            text += f" · showing {shown:,} around the playhead (filter to narrow)"
        self.count_label.setText(text)

    def _on_clicked(self, index: QModelIndex) -> None:
        event = self.model.event_at(index)
        if event is not None:
            self.seek_requested.emit(event.hour)
