"""The pre-sign ticket dialog: what an on-chain program will do, shown before a person lets it be signed.

It renders an ``engine.domain.presign.PreSignTicket`` (the program simulated on the chain's current
state) and nothing else: no venue, no web3. The health factor before and after is the headline,
coloured against the floor; then the balances the program moves, each transaction with its gas, and
the fees with the cap. A ticket that ends below the floor (``refuse_below_floor``) is shown with the
reason and cannot be accepted. Open it with ``open()`` and read ``finished`` / ``accepted``: never
``exec()`` inside a coroutine.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app import style
from app.widgets.banner import show_banner
from app.widgets.table_model import ColumnTableModel
from engine.domain.presign import PreSignTicket, TicketRefused, format_gwei, format_hf, refuse_below_floor

#: Above the floor by less than this (relative), the health factor is shown as a warning.
NEAR_FLOOR = Decimal("0.02")
_ALIGN_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class DeltaModel(ColumnTableModel):
    """The wallet balances the program changes (unchanged ones are left out)."""

    COLUMNS = ("token", "before", "after", "change")

    def __init__(self, ticket: PreSignTicket) -> None:
        super().__init__()
        self.rows = [d for d in ticket.deltas if d.change]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        d = self.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (d.token, f"{d.before:,.6f}", f"{d.after:,.6f}", f"{d.change:+,.6f}")[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and column:
            return _ALIGN_RIGHT
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            better = d.change < 0 if d.kind == "debt" else d.change > 0  # more debt is a cost
            return QColor(style.OK if better else style.ERROR)
        return None


class StepModel(ColumnTableModel):
    """The program's transactions in the order they are sent."""

    COLUMNS = ("#", "transaction", "gas used", "gas limit")

    def __init__(self, ticket: PreSignTicket) -> None:
        super().__init__()
        self.rows = list(ticket.steps)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(index.row() + 1), s.label, f"{s.gas_used:,}", f"{s.gas_limit:,}")[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{s.label}\nto {s.to}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, 2, 3):
            return _ALIGN_RIGHT
        return None


def health_colour(hf: Decimal | None, floor: Decimal | None) -> str:
    """Theme colour of a health factor against the floor: none or far above green, near amber, below red."""
    if hf is None or floor is None:
        return style.OK
    if hf < floor:
        return style.ERROR
    if hf < floor * (1 + NEAR_FLOOR):
        return style.WARNING
    return style.OK


def _table(model: ColumnTableModel, parent: QWidget) -> QTableView:
    view = QTableView(parent)
    view.setModel(model)
    view.verticalHeader().setVisible(False)
    view.setSelectionMode(QTableView.SelectionMode.NoSelection)
    view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    rows = max(model.rowCount(), 1)
    view.setFixedHeight(header.sizeHint().height() + rows * view.verticalHeader().defaultSectionSize() + 4)
    return view


class PreSignTicketDialog(QDialog):
    """Shows ``ticket``; "Sign and send" accepts, unless the ticket ends below ``hf_floor``."""

    def __init__(self, ticket: PreSignTicket, *, hf_floor: Decimal | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ticket = ticket
        self.hf_floor = hf_floor
        self.refusal: str | None = None
        if hf_floor is not None:
            try:
                refuse_below_floor(ticket, hf_floor)
            except TicketRefused as refused:
                self.refusal = refused.reason
        self.setWindowTitle("Review before signing")
        self.setModal(True)
        self.resize(760, 560)
        layout = QVBoxLayout(self)

        title = QLabel(ticket.program, self)
        title.setObjectName("placeholderTitle")
        title.setWordWrap(True)
        layout.addWidget(title)
        where = QLabel(
            f"Simulated on block {ticket.block_number:,} of chain {ticket.chain_id} ({ticket.simulated_with}) "
            f"for {ticket.wallet}. Nothing has been signed.", self)
        where.setObjectName("dim")
        where.setWordWrap(True)
        layout.addWidget(where)

        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        layout.addWidget(self.banner)
        if self.refusal is not None:
            show_banner(self.banner, f"Refused: {self.refusal}. It cannot be signed.", "banner")
        else:
            self.banner.setVisible(False)

        grid = QGridLayout()
        self.hf_label = QLabel(self)
        self.ltv_label = QLabel(self)
        if ticket.before is not None and ticket.after is not None:
            colour = health_colour(ticket.hf_after, hf_floor)
            floor_text = f" (floor {hf_floor})" if hf_floor is not None else ""
            self.hf_label.setText(
                f"<span style='font-size:18px'>health factor {format_hf(ticket.hf_before)} → "
                f"<b style='color:{colour}'>{format_hf(ticket.hf_after)}</b></span>{floor_text}")
            self.ltv_label.setText(f"LTV {ticket.before.ltv:.4f} → {ticket.after.ltv:.4f}; collateral "
                                   f"{ticket.before.collateral_base:,.2f} → {ticket.after.collateral_base:,.2f}, "
                                   f"debt {ticket.before.debt_base:,.2f} → {ticket.after.debt_base:,.2f} "
                                   "(the Pool's base currency)")
        else:
            self.hf_label.setText("This program does not touch an AAVE position.")
        self.ltv_label.setObjectName("dim")
        grid.addWidget(self.hf_label, 0, 0)
        grid.addWidget(self.ltv_label, 1, 0)
        layout.addLayout(grid)

        self.deltas = DeltaModel(ticket)
        layout.addWidget(QLabel("Balances of the wallet", self))
        layout.addWidget(_table(self.deltas, self))
        self.steps = StepModel(ticket)
        layout.addWidget(QLabel("Transactions, in the order they are sent", self))
        layout.addWidget(_table(self.steps, self))

        self.fees_label = QLabel(
            f"Fees: base {format_gwei(ticket.base_fee_wei)} + tip {format_gwei(ticket.priority_fee_wei)}, "
            f"at most {format_gwei(ticket.max_fee_per_gas_wei)} per gas (cap {format_gwei(ticket.fee_cap_wei)}). "
            f"Cost ~{ticket.expected_fee_eth:.6f} ETH, at most {ticket.max_fee_eth:.6f} ETH "
            f"for {ticket.gas_limit:,} gas.", self)
        self.fees_label.setWordWrap(True)
        layout.addWidget(self.fees_label)
        if ticket.notes:
            notes = QLabel("\n".join(ticket.notes), self)
            notes.setObjectName("dim")
            notes.setWordWrap(True)
            notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(notes)
        layout.addStretch(1)

        buttons = QHBoxLayout()
        self.copy_button = QPushButton("Copy details", self)
        self.copy_button.clicked.connect(self.copy_details)
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.cancel_button)
        self.sign_button = QPushButton("Sign and send", self)
        self.sign_button.clicked.connect(self.accept)
        self.sign_button.setEnabled(self.refusal is None)
        self.sign_button.setAutoDefault(False)  # Enter must not sign: only a deliberate click does
        self.cancel_button.setDefault(True)
        buttons.addWidget(self.sign_button)
        layout.addLayout(buttons)

    def accept(self) -> None:
        if self.refusal is not None:  # belt and braces: the button is disabled
            return
        super().accept()

    def details(self) -> str:
        lines = self.ticket.lines()
        if self.refusal is not None:
            lines.insert(1, f"REFUSED: {self.refusal}")
        return "\n".join(lines)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details())
