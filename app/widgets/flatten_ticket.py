"""The flatten's pre-sign ticket: every step of the unwind, and each on-chain transaction's simulated
ticket, shown before the operator confirms.

It renders an ``engine.services.live.FlattenPreview`` and nothing else (no venue, no web3). The
dialog opens at once, saying the plan is being simulated, with Confirm disabled; the panel fills it
with ``set_preview`` when the engine's async preview returns (or ``set_failed``). Confirm stays
disabled when the preview refuses (a simulation reverts, a step would break the HF floor), and it is
never the default button: only a deliberate click flattens. Selecting an on-chain step shows its
ticket: health factor before -> after against the floor, the wallet's balances, the transactions
with their gas, and the fees with the cap. Open it with ``open()`` and read ``finished``; never
``exec()`` inside a coroutine.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.widgets.banner import show_banner
from app.widgets.presign_ticket import DeltaModel, StepModel, health_colour
from app.widgets.table_model import ColumnTableModel
from engine.domain.presign import PreSignTicket, format_gwei, format_hf
from engine.services.live import FlattenPreview, PreviewStep

_ALIGN_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def _hf_text(hf: float | None) -> str:
    return format_hf(None if hf is None else Decimal(repr(hf)))


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _delta_text(delta: tuple[tuple[str, float], ...]) -> str:
    return ", ".join(f"{asset} {value:+.4f}" for asset, value in delta) or "flat"


class PlanModel(ColumnTableModel):
    """The flatten's steps in the order they are sent."""

    COLUMNS = ("#", "where", "step", "HF after", "delta after", "gas (ETH)")

    def __init__(self, preview: FlattenPreview | None = None) -> None:
        super().__init__()
        self.hf_floor = preview.hf_floor if preview is not None else None
        self.rows: list[PreviewStep] = list(preview.steps) if preview is not None else []

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            gas = s.ticket.expected_fee_eth if s.ticket is not None else Decimal(repr(s.gas_eth))
            return (str(s.number), s.where, s.action, _hf_text(s.hf_after), _delta_text(s.delta_after),
                    f"{gas:.6f}" if gas else "")[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 2:
            return s.action + ("\n(select to see its pre-sign ticket)" if s.ticket is not None else "")
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, 3, 4, 5):
            return _ALIGN_RIGHT
        if role == Qt.ItemDataRole.ForegroundRole and column == 3 and self.hf_floor is not None:
            floor = Decimal(repr(self.hf_floor))
            return QColor(health_colour(None if s.hf_after is None else Decimal(repr(s.hf_after)), floor))
        return None


def _table(parent: QWidget) -> QTableView:
    view = QTableView(parent)
    view.verticalHeader().setVisible(False)
    view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return view


class TicketPanel(QWidget):
    """One on-chain step's pre-sign ticket (or a line saying the step has none)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("Select an on-chain step to see its pre-sign ticket.", self)
        self.title.setObjectName("dim")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.hf_label = QLabel(self)
        self.hf_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.hf_label)
        self.deltas_view = _table(self)
        self.deltas_view.setSelectionMode(QTableView.SelectionMode.NoSelection)
        layout.addWidget(self.deltas_view, 1)
        self.steps_view = _table(self)
        self.steps_view.setSelectionMode(QTableView.SelectionMode.NoSelection)
        layout.addWidget(self.steps_view, 1)
        self.fees_label = QLabel(self)
        self.fees_label.setWordWrap(True)
        layout.addWidget(self.fees_label)
        self.notes = QLabel(self)
        self.notes.setObjectName("dim")
        self.notes.setWordWrap(True)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.notes)
        self.ticket: PreSignTicket | None = None
        self.show_ticket(None, None)

    def show_ticket(self, step: PreviewStep | None, hf_floor: float | None) -> None:
        ticket = step.ticket if step is not None else None
        self.ticket = ticket
        for w in (self.hf_label, self.deltas_view, self.steps_view, self.fees_label, self.notes):
            w.setVisible(ticket is not None)
        if step is None:
            self.title.setText("Select an on-chain step to see its pre-sign ticket.")
            return
        if ticket is None:
            self.title.setText(f"Step {step.number} is a CEX order ({step.where}): no transaction to sign.")
            return
        self.title.setText(f"Step {step.number}: {ticket.program} — simulated on block {ticket.block_number:,} of "
                           f"chain {ticket.chain_id} ({ticket.simulated_with}) for {ticket.wallet}, after the "
                           "steps before it. Nothing has been signed.")
        floor = Decimal(repr(hf_floor)) if hf_floor is not None else None
        if ticket.before is not None and ticket.after is not None:
            colour = health_colour(ticket.hf_after, floor)
            self.hf_label.setText(
                f"<span style='font-size:16px'>health factor {format_hf(ticket.hf_before)} → "
                f"<b style='color:{colour}'>{format_hf(ticket.hf_after)}</b></span>"
                + (f" (floor {hf_floor})" if hf_floor is not None else "")
                + f"; LTV {ticket.before.ltv:.4f} → {ticket.after.ltv:.4f}")
        else:
            self.hf_label.setText("This transaction does not touch an AAVE position.")
        self.deltas_model = DeltaModel(ticket)
        self.deltas_view.setModel(self.deltas_model)
        self.steps_model = StepModel(ticket)
        self.steps_view.setModel(self.steps_model)
        self.fees_label.setText(
            f"Fees: base {format_gwei(ticket.base_fee_wei)} + tip {format_gwei(ticket.priority_fee_wei)}, at most "
            f"{format_gwei(ticket.max_fee_per_gas_wei)} per gas (cap {format_gwei(ticket.fee_cap_wei)}). Cost "
            f"~{ticket.expected_fee_eth:.6f} ETH, at most {ticket.max_fee_eth:.6f} ETH for {ticket.gas_limit:,} gas.")
        self.notes.setText("\n".join(ticket.notes))
        self.notes.setVisible(bool(ticket.notes))


class FlattenTicketDialog(QDialog):
    """The flatten preview; "Confirm flatten" accepts, only once a preview is ready and not refused."""

    def __init__(self, request_id: str, mode: str, execution: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request_id = request_id
        self.preview: FlattenPreview | None = None
        self.setWindowTitle("Flatten: review before confirming")
        self.setModal(True)
        self.resize(1040, 720)
        layout = QVBoxLayout(self)
        title = QLabel(f"Flatten session {request_id} ({mode}, {execution})", self)
        title.setObjectName("placeholderTitle")
        layout.addWidget(title)
        self.source_label = QLabel(self)
        self.source_label.setWordWrap(True)
        self.source_label.setObjectName("dim")
        layout.addWidget(self.source_label)
        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.banner)
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.summary)

        split = QSplitter(Qt.Orientation.Vertical, self)
        self.plan_model = PlanModel()
        self.plan_view = _table(split)
        self.plan_view.setModel(self.plan_model)
        self.plan_view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.plan_view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.ticket_panel = TicketPanel(split)
        split.addWidget(self.plan_view)
        split.addWidget(self.ticket_panel)
        split.setSizes([200, 480])
        self.split = split
        layout.addWidget(split, 1)

        buttons = QHBoxLayout()
        self.copy_button = QPushButton("Copy details", self)
        self.copy_button.clicked.connect(self.copy_details)
        self.copy_button.setEnabled(False)
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.cancel_button)
        self.confirm_button = QPushButton("Confirm flatten", self)
        self.confirm_button.clicked.connect(self.accept)
        self.confirm_button.setEnabled(False)
        self.confirm_button.setAutoDefault(False)   # Enter must not flatten: only a deliberate click does
        self.cancel_button.setDefault(True)
        buttons.addWidget(self.confirm_button)
        layout.addLayout(buttons)
        self.set_simulating()

    # ---- states -------------------------------------------------------------------------------
    def set_simulating(self, note: str = "") -> None:
        """The preview is being made: nothing to confirm yet."""
        self.preview = None
        self.confirm_button.setEnabled(False)
        self.copy_button.setEnabled(False)
        self.source_label.setText("")
        self.summary.setText("")
        show_banner(self.banner, (note + " " if note else "") + "Simulating the flatten on the current state …",
                    "warnBanner" if note else "infoBanner")
        self._set_plan(None)

    def set_failed(self, message: str) -> None:
        """The preview could not be made: nothing can be confirmed."""
        self.preview = None
        self.confirm_button.setEnabled(False)
        show_banner(self.banner, f"No preview: {message}. Nothing was sent.", "banner")

    def set_preview(self, preview: FlattenPreview, note: str = "") -> None:
        self.preview = preview
        self.source_label.setText(preview.source)
        floor = preview.hf_floor
        now = Decimal(repr(preview.hf_before)) if preview.hf_before is not None else None
        colour = health_colour(now, Decimal(repr(floor)))
        block = f" · block {preview.block_number:,}" if preview.block_number is not None else ""
        self.summary.setText(
            f"Now: health factor <b style='color:{colour}'>{format_hf(now)}</b> (floor {floor}), delta "
            f"{_delta_text(preview.delta_before)} · {_count(len(preview.steps), 'step')}, "
            f"{_count(len(preview.tickets), 'transaction')} to sign · sized at {preview.timestamp}{block}")
        self._set_plan(preview)
        prefix = note + " " if note else ""
        if preview.refusal is not None:
            show_banner(self.banner, f"{prefix}Refused: {preview.refusal}. Nothing can be sent.", "banner")
        elif preview.execution == "paper":
            show_banner(self.banner, f"{prefix}Paper session: {preview.source}.", "warnBanner")
        else:
            show_banner(self.banner, f"{prefix}Ready. Confirm sends exactly these steps; it is simulated once more "
                        "first, and shown again if the book or the chain moved.", "warnBanner" if note else "infoBanner")
        self.confirm_button.setEnabled(preview.ready and bool(preview.steps))
        self.copy_button.setEnabled(True)
        first = next((i for i, s in enumerate(preview.steps) if s.ticket is not None), None)
        if first is not None:
            self.plan_view.selectRow(first)

    def _set_plan(self, preview: FlattenPreview | None) -> None:
        self.plan_model = PlanModel(preview)
        self.plan_view.setModel(self.plan_model)
        # The plan gets the rows it has (a short plan leaves the room to its tickets), up to a third.
        rows = max(self.plan_model.rowCount(), 2)
        wanted = self.plan_view.horizontalHeader().sizeHint().height() + rows * \
            self.plan_view.verticalHeader().defaultSectionSize() + 6
        total = sum(self.split.sizes()) or 680
        plan = min(wanted, total // 3)
        self.split.setSizes([plan, total - plan])
        self.plan_view.selectionModel().currentRowChanged.connect(self._row_changed)
        self.ticket_panel.show_ticket(None, None)

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self.preview is None or not current.isValid():
            self.ticket_panel.show_ticket(None, None)
            return
        self.ticket_panel.show_ticket(self.plan_model.rows[current.row()], self.preview.hf_floor)

    # ---- actions ------------------------------------------------------------------------------
    def accept(self) -> None:
        if self.preview is None or not self.preview.ready:   # belt and braces: the button is disabled
            return
        super().accept()

    def details(self) -> str:
        return "\n".join(self.preview.lines()) if self.preview is not None else ""

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details())

