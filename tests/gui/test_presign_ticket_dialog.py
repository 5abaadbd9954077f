"""The pre-sign ticket dialog renders a ticket (plain engine data), colours the health factor against the
floor, and cannot be accepted for a ticket below the floor; Enter never signs."""
from __future__ import annotations

from decimal import Decimal as D

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog

from app import style
from app.widgets.presign_ticket import PreSignTicketDialog, health_colour
from engine.domain.presign import AccountRisk, PreSignTicket, TicketStep, TokenDelta

GWEI = 10**9


def ticket(hf_after: str, *, hf_before: str | None = None) -> PreSignTicket:
    """Shaped like the executor's entry to LTV 0.90 on the local stack (numbers from a real run)."""
    before = AccountRisk(D("32100.00"), D(0) if hf_before is None else D("28890"),
                         None if hf_before is None else D(hf_before), 1)
    after = AccountRisk(D("321000.00"), D("288900.00"), D(hf_after), 1)
    return PreSignTicket(
        program="leverage entry to LTV 0.90 (morpho flash, stake weETH)",
        chain_id=11155111, wallet="0x70997970C51812dc3A010C7d01b50e0d17dc79C8", block_number=412,
        simulated_with="eth_simulateV1",
        steps=(TicketStep("aave_v3.approveDelegation 90 WETH to the executor", "0xdebt", 46_300, 60_190),
               TicketStep("leverage_executor.enter: flash 90.000000 WETH (morpho) -> stake weETH", "0xexec",
                          537_400, 698_620)),
        before=before, after=after,
        deltas=(TokenDelta("ETH", D("9979.9"), D("9979.9")),
                TokenDelta("aweETH (AAVE collateral)", D("9.345794"), D("93.457943"), "collateral"),
                TokenDelta("WETH debt (AAVE)", D(0), D(90), "debt")),
        base_fee_wei=GWEI // 10, priority_fee_wei=GWEI, max_fee_per_gas_wei=GWEI + GWEI // 5,
        fee_cap_wei=50 * GWEI, digest="ab" * 32,
        notes=("flash 90.000000000 WETH from morpho (fee 0), borrowed back for the wallet",),
    )


def test_a_passing_ticket_shows_risk_deltas_steps_and_fees_and_signs_on_click(qtbot):
    dialog = PreSignTicketDialog(ticket("1.055555555"), hf_floor=D("1.015"))
    qtbot.addWidget(dialog)
    finished = []
    dialog.finished.connect(finished.append)
    dialog.open()  # never exec(): the caller's loop keeps running
    qtbot.waitExposed(dialog)
    assert dialog.refusal is None and not dialog.banner.isVisible()
    assert "∞ (no debt) →" in dialog.hf_label.text() and "1.0556" in dialog.hf_label.text()
    assert style.OK in dialog.hf_label.text() and "floor 1.015" in dialog.hf_label.text()
    assert "LTV 0.0000 → 0.9000" in dialog.ltv_label.text()
    # Unchanged balances (ETH: gas is in the fee line) are left out.
    assert [dialog.deltas.index(r, 0).data() for r in range(dialog.deltas.rowCount())] == [
        "aweETH (AAVE collateral)", "WETH debt (AAVE)"]
    assert dialog.deltas.index(1, 3).data() == "+90.000000"
    foreground = Qt.ItemDataRole.ForegroundRole
    assert dialog.deltas.index(0, 3).data(foreground).name() == style.OK  # more collateral
    assert dialog.deltas.index(1, 3).data(foreground).name() == style.ERROR  # more debt
    assert dialog.steps.rowCount() == 2 and dialog.steps.index(1, 2).data() == "537,400"
    assert "cap 50.000 gwei" in dialog.fees_label.text() and "758,810 gas" in dialog.fees_label.text()
    assert dialog.sign_button.isEnabled()
    qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    assert finished == [QDialog.DialogCode.Accepted]


def test_a_ticket_below_the_floor_is_shown_refused_and_cannot_be_signed(qtbot):
    dialog = PreSignTicketDialog(ticket("1.0080", hf_before="1.0200"), hf_floor=D("1.015"))
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    assert dialog.banner.isVisible() and "below the floor 1.015" in dialog.banner.text()
    assert style.ERROR in dialog.hf_label.text()
    assert not dialog.sign_button.isEnabled()
    dialog.accept()  # even called directly it does not accept
    assert dialog.result() != QDialog.DialogCode.Accepted and dialog.isVisible()
    dialog.copy_details()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith("program: leverage entry") and "REFUSED: simulated health factor" in copied
    assert "step 2: leverage_executor.enter" in copied


def test_enter_does_not_sign(qtbot):
    dialog = PreSignTicketDialog(ticket("1.0556"), hf_floor=D("1.015"))
    qtbot.addWidget(dialog)
    finished = []
    dialog.finished.connect(finished.append)
    dialog.open()
    qtbot.waitExposed(dialog)
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert finished == [QDialog.DialogCode.Rejected]


def test_health_colour_against_the_floor():
    floor = D("1.015")
    assert health_colour(None, floor) == style.OK  # no debt
    assert health_colour(D("1.10"), floor) == style.OK
    assert health_colour(D("1.02"), floor) == style.WARNING  # within 2 % above the floor
    assert health_colour(D("1.01"), floor) == style.ERROR
