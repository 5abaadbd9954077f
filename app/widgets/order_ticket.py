"""The order ticket of the live dashboard: venue, market, side, size, market/limit, reduce-only.

A leaf: it only builds a `ManualOrder` from what is typed (Decimal sizes, never floats) and says when
"Review order…" is pressed. The panel then asks the live service to check and price it and shows
the confirmation (notional, fee) before anything is sent.
"""
from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from app.widgets.banner import show_banner
from engine.domain.venue_ports import OrderType, Side
from engine.services.live.manual_orders import KINDS, ManualOrder, ManualOrderRefused, parse_amount


class OrderTicket(QWidget):
    #: (ManualOrder) the operator wants to review this order (nothing is sent yet)
    review_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.setHorizontalSpacing(10)
        self.venue_combo = QComboBox(self)
        self.venue_combo.setToolTip("The session's venues")
        self.kind_combo = QComboBox(self)
        for kind in KINDS:
            self.kind_combo.addItem(kind, kind)
        self.asset_combo = QComboBox(self)
        self.asset_combo.setToolTip("perp: the USDT-margined perpetual (ETH/USDT:USDT); spot: ETH/USDT")
        side_box = QWidget(self)
        side_row = QHBoxLayout(side_box)
        side_row.setContentsMargins(0, 0, 0, 0)
        self.buy_radio = QRadioButton("Buy", side_box)
        self.sell_radio = QRadioButton("Sell", side_box)
        self.buy_radio.setChecked(True)
        self.sides = QButtonGroup(self)
        self.sides.addButton(self.buy_radio)
        self.sides.addButton(self.sell_radio)
        side_row.addWidget(self.buy_radio)
        side_row.addWidget(self.sell_radio)
        self.size_edit = QLineEdit(self)
        self.size_edit.setPlaceholderText("size in base units, e.g. 0.05")
        self.type_combo = QComboBox(self)
        for t in (OrderType.MARKET, OrderType.LIMIT):
            self.type_combo.addItem(t.value, t.value)
        self.price_edit = QLineEdit(self)
        self.price_edit.setPlaceholderText("limit price (USDT)")
        self.price_edit.setEnabled(False)
        self.reduce_box = QCheckBox("Reduce-only", self)
        self.reduce_box.setToolTip("Refused unless it only reduces an open position")
        self.review_button = QPushButton("Review order…", self)
        self.review_button.setObjectName("primary")
        self.review_button.setToolTip("Shows notional and fees and asks before anything is sent")
        self.review_button.clicked.connect(self.review)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        self.type_combo.currentIndexChanged.connect(
            lambda _i: self.price_edit.setEnabled(self.type_combo.currentData() == OrderType.LIMIT.value))
        fields = (("Venue", self.venue_combo), ("Market", self.kind_combo), ("Asset", self.asset_combo),
                  ("Side", side_box), ("Size", self.size_edit), ("Type", self.type_combo),
                  ("Limit price", self.price_edit))
        for column, (title, widget) in enumerate(fields):
            caption = QLabel(title, self)
            caption.setObjectName("dim")
            grid.addWidget(caption, 0, column)
            grid.addWidget(widget, 1, column)
        self.size_edit.setMinimumWidth(150)
        self.price_edit.setMinimumWidth(150)
        grid.addWidget(self.reduce_box, 1, len(fields))
        grid.addWidget(self.review_button, 1, len(fields) + 1)
        grid.setColumnStretch(len(fields) + 2, 1)
        grid.addWidget(self.message, 2, 0, 1, len(fields) + 3)
        hint = QLabel("The ticket's orders go through the same pre-trade checks, order gate and journal as the "
                      "strategy's; refused while HALTED or while restart recovery waits. Close… on a position row "
                      "sends a reduce-only market order for its full size. Both ask first.", self)
        hint.setObjectName("sectionHelp")
        hint.setWordWrap(True)
        grid.addWidget(hint, 3, 0, 1, len(fields) + 3)
        grid.setRowStretch(4, 1)
        self.set_markets([], [])

    def set_markets(self, venues: Iterable[str], assets: Iterable[str]) -> None:
        """The venues and assets of the session shown (keeps the current choice when it is still there)."""
        for combo, values in ((self.venue_combo, list(venues)), (self.asset_combo, list(assets))):
            current = combo.currentData()
            if [combo.itemData(i) for i in range(combo.count())] == values:
                continue
            combo.blockSignals(True)
            combo.clear()
            for v in values:
                combo.addItem(v, v)
            if current in values:
                combo.setCurrentIndex(values.index(current))
            combo.blockSignals(False)
        self.review_button.setEnabled(self.venue_combo.count() > 0 and self.asset_combo.count() > 0)

    def set_order(self, order: ManualOrder) -> None:
        """Fill the ticket from an order (the Close button pre-fills it this way)."""
        for combo, value in ((self.venue_combo, order.venue), (self.kind_combo, order.kind),
                             (self.asset_combo, order.asset), (self.type_combo, order.order_type.value)):
            index = combo.findData(value)
            if index >= 0:
                combo.setCurrentIndex(index)
        (self.buy_radio if order.side is Side.BUY else self.sell_radio).setChecked(True)
        self.size_edit.setText(str(order.amount))
        self.price_edit.setText("" if order.price is None else str(order.price))
        self.reduce_box.setChecked(order.reduce_only)

    def order(self) -> ManualOrder:
        """The order typed (raises ManualOrderRefused naming the field that is wrong)."""
        if self.venue_combo.count() == 0:
            raise ManualOrderRefused("start a session first: the ticket trades on its venues")
        kind = self.kind_combo.currentData()
        order_type = OrderType(self.type_combo.currentData())
        price = parse_amount(self.price_edit.text(), "limit price") if order_type is OrderType.LIMIT else None
        return ManualOrder(self.venue_combo.currentData(), self.asset_combo.currentData(), kind,
                           Side.BUY if self.buy_radio.isChecked() else Side.SELL,
                           parse_amount(self.size_edit.text(), "size"), order_type, price, self.reduce_box.isChecked())

    def review(self) -> None:
        try:
            order = self.order()
        except ManualOrderRefused as exc:
            self.show_message(str(exc), "banner")
            return
        self.message.hide()
        self.review_requested.emit(order)

    def show_message(self, text: str, kind: str) -> None:
        show_banner(self.message, text, kind)
