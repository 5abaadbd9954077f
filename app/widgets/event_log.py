"""Event log view: venue/type filters over a tree of events that follows the playhead.

Clicking an event asks the replay to seek to its hour. "Follow playhead" keeps the latest event at or
before the playhead in view; turn it off to browse freely while the replay runs.

Columns fit their content when a run loads (measured from each column's longest strings, which the
model keeps, never row by row: Qt's ResizeToContents re-measures every row on each update); the
Details column takes the rest of the width and its full text is in the tooltip. Right-click (as in
VeighNa's monitors) fits the columns again or copies the selected rows.
"""
from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QFontMetrics, QGuiApplication, QKeySequence
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

from app import style
from app.widgets.event_model import (
    ALL,
    COLUMNS,
    DEFAULT_CAP,
    DETAILS_COLUMN,
    NOT_FUNDING,
    EventIndex,
    EventTreeModel,
)
from engine.domain.events import Event

#: widest a fitted column gets (px at text size 1.0), so one long swap amount cannot push the
#: costs out of a narrow pane (its full text is in the tooltip)
MAX_FITTED_WIDTH = 170
#: starting widths before a run is loaded (sample texts)
SAMPLES = ("2025-09-18 23:00", "strategy", "perp_trade", "−10.9428 ETH", "1,234.56", "0.000335", "")


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
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(14)
        self.tree.setAccessibleName("event log")
        self.tree.setExpandsOnDoubleClick(True)
        header = self.tree.header()
        header.setStretchLastSection(True)              # Details (last) takes the remaining width
        header.setMinimumSectionSize(36)
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
        self.fit_columns()
        self.tree.clicked.connect(self._on_clicked)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        fit = QAction("Fit columns to contents", self.tree)
        fit.triggered.connect(self.fit_columns)
        copy = QAction("Copy selected rows", self.tree)
        copy.setShortcut(QKeySequence.StandardKey.Copy)
        copy.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        copy.setToolTip("Copy the selected events as tab-separated text")
        copy.triggered.connect(self.copy_selection)
        self.tree.addActions([fit, copy])
        style.theme_changed().connect(self.fit_columns)     # the text size changes the widths
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
        self.fit_columns()

    def fit_columns(self) -> None:
        """Each column as wide as its longest text (or the sample before a run), the header's title
        included, capped at MAX_FITTED_WIDTH; Details takes what is left."""
        bold = self.tree.font()
        bold.setBold(True)                       # rebalances and liquidations are drawn bold
        metrics = QFontMetrics(bold)
        header = self.tree.header()
        header_metrics = QFontMetrics(header.font())
        cap = style.scaled_px(MAX_FITTED_WIDTH)
        for column in range(len(COLUMNS)):
            if column == DETAILS_COLUMN:
                continue
            texts = self.model.widest[column] or [SAMPLES[column]]
            content = max(metrics.horizontalAdvance(t) for t in texts) + (self.tree.indentation() + 14 if column == 0 else 14)
            title = header_metrics.horizontalAdvance(COLUMNS[column]) + 18
            header.resizeSection(column, min(cap, max(content, title)))

    def copy_selection(self) -> str:
        """The selected rows, tab-separated, on the clipboard (and returned)."""
        rows = sorted({(index.parent().row(), index.row(), index.internalId()): index
                       for index in self.tree.selectionModel().selectedRows()}.items())
        lines = ["\t".join(COLUMNS)]
        for _key, index in rows:
            lines.append("\t".join(self.model.index(index.row(), c, index.parent()).data() or ""
                                   for c in range(len(COLUMNS))))
        text = "\n".join(lines)
        QGuiApplication.clipboard().setText(text)
        return text

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
