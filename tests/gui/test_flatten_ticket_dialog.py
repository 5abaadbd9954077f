"""The flatten's pre-sign ticket dialog renders an engine FlattenPreview (plain data): Confirm is
disabled while the plan is simulated, when the preview refuses, and on Enter; a ready plan lists its
steps, and selecting an on-chain step shows that transaction's ticket (HF against the floor, the
wallet's balances, gas and the fee cap). Cancel never confirms."""
from __future__ import annotations

from decimal import Decimal as D

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from app import style
from app.widgets.flatten_ticket import FlattenTicketDialog
from engine.domain.instructions import Instruction, Op
from engine.domain.presign import AccountRisk, PreSignTicket, TicketStep, TokenDelta
from engine.services.live import FlattenPreview, PreviewStep

GWEI = 10**9


def exit_ticket() -> PreSignTicket:
    """Shaped like the executor's full exit of a 5 ETH weETH loop on the local stack."""
    return PreSignTicket(
        program="full exit (morpho flash, sell all weETH)", chain_id=11155111,
        wallet="0x70997970C51812dc3A010C7d01b50e0d17dc79C8", block_number=105, simulated_with="eth_simulateV1",
        steps=(TicketStep("leverage_executor: all aweETH (+1 h of interest): approve", "0xa", 46_100, 55_320),
               TicketStep("leverage_executor.exit: repay all 40.9 WETH (morpho flash), sell all weETH", "0xe",
                          412_000, 494_400)),
        before=AccountRisk(D(126000), D(102250), D("1.0413"), 1), after=AccountRisk(D(0), D(0), None, 1),
        deltas=(TokenDelta("ETH", D("10.5"), D("10.5")), TokenDelta("WETH", D(0), D("4.93")),
                TokenDelta("aweETH", D("43.1"), D(0), "collateral"), TokenDelta("WETH debt", D("40.9"), D(0), "debt")),
        base_fee_wei=GWEI // 10, priority_fee_wei=GWEI, max_fee_per_gas_wei=GWEI + GWEI // 5,
        fee_cap_wei=50 * GWEI, digest="cd" * 32, notes=("flash the whole debt from morpho (fee 0)",))


def preview(refusal: str | None = None) -> FlattenPreview:
    bundle = Instruction(Op.BUNDLE, "morpho", children=[Instruction(Op.REPAY, "aave_v3", "WETH", 40.9),
                                                        Instruction(Op.WITHDRAW, "aave_v3", "weETH", 43.1)])
    steps = (
        PreviewStep(1, "chain", "morpho: exit the loop atomically (repay 40.9 WETH debt, withdraw and sell 43.1 weETH)",
                    bundle, exit_ticket(), None, (("ETH", 4.93),), 1.2, 0.0005),
        PreviewStep(2, "cex", "binance ETH perp buy 1.2 (reduce-only)", Instruction(Op.PERP_TRADE, "binance", "ETH", 1.2),
                    None, None, (("ETH", 3.73),), 0.6, 0.0),
    )
    return FlattenPreview("abc123", "usdt_market_neutral", "live", 0.0, "2026-12-01 15:00", "live: on-chain steps "
                          "simulated on block 105", 105, 1.015, 1.0413, (("ETH", 0.01),), steps, refusal)


def open_dialog(qtbot) -> tuple[FlattenTicketDialog, list[int]]:
    dialog = FlattenTicketDialog("abc123", "usdt_market_neutral", "live")
    qtbot.addWidget(dialog)
    finished: list[int] = []
    dialog.finished.connect(finished.append)
    dialog.open()
    qtbot.waitExposed(dialog)
    return dialog, finished


def test_confirm_is_disabled_while_simulating_then_the_steps_and_tickets_show(qtbot):
    dialog, finished = open_dialog(qtbot)
    assert not dialog.confirm_button.isEnabled() and "Simulating" in dialog.banner.text()
    dialog.confirm_button.click()           # disabled: nothing happens
    assert finished == []
    dialog.set_preview(preview())
    assert dialog.confirm_button.isEnabled() and not dialog.confirm_button.autoDefault()
    model = dialog.plan_model
    assert model.rowCount() == 2
    assert [model.index(r, 1).data() for r in range(2)] == ["chain", "cex"]
    assert model.index(0, 3).data() == "∞ (no debt)" and model.index(1, 2).data().startswith("binance ETH perp buy")
    # The first on-chain step is selected: its ticket is on show.
    panel = dialog.ticket_panel
    assert panel.ticket is not None and panel.ticket.program.startswith("full exit")
    assert "1.0413" in panel.hf_label.text() and "∞ (no debt)" in panel.hf_label.text()
    assert style.OK in panel.hf_label.text() and "floor 1.015" in panel.hf_label.text()
    assert [panel.deltas_model.index(r, 0).data() for r in range(panel.deltas_model.rowCount())] == [
        "WETH", "aweETH", "WETH debt"]                  # unchanged ETH (gas is in the fee line) left out
    assert panel.steps_model.rowCount() == 2 and "cap 50.000 gwei" in panel.fees_label.text()
    dialog.plan_view.selectRow(1)
    assert panel.ticket is None and "CEX order" in panel.title.text()
    assert "1. [chain] morpho: exit the loop" in dialog.details() and "program: full exit" in dialog.details()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)       # Enter is Cancel (the default): it never flattens
    assert finished == [QDialog.DialogCode.Rejected]


def test_a_refused_preview_cannot_be_confirmed(qtbot):
    dialog, finished = open_dialog(qtbot)
    dialog.set_preview(preview("step 1 (morpho: exit the loop atomically): would revert: Too little received"))
    assert not dialog.confirm_button.isEnabled()
    assert dialog.banner.objectName() == "banner" and "Too little received" in dialog.banner.text()
    dialog.accept()                                 # belt and braces: refused even if called
    assert finished == [] and dialog.isVisible()
    dialog.cancel_button.click()
    assert finished == [QDialog.DialogCode.Rejected]


def test_a_failed_preview_says_why_and_cannot_be_confirmed(qtbot):
    dialog, finished = open_dialog(qtbot)
    dialog.set_failed("no live session 'abc123'")
    assert not dialog.confirm_button.isEnabled() and "no live session" in dialog.banner.text()
    dialog.accept()
    assert finished == []


def test_confirm_accepts_a_ready_plan_on_click(qtbot):
    dialog, finished = open_dialog(qtbot)
    dialog.set_preview(preview())
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    assert finished == [QDialog.DialogCode.Accepted] and dialog.preview is not None
