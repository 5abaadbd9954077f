"""The flatten preview's decisions on plain data: the HF-floor refusal (the chain's ticket, and the
engine's own health factor), what makes a re-simulated plan "different", and the execution guard
that never sends an instruction the operator did not see."""
from __future__ import annotations

from decimal import Decimal as D

from engine.domain.instructions import Instruction, Op
from engine.domain.presign import AccountRisk, PreSignTicket, TicketStep
from engine.services.live.flatten_preview import (
    FlattenPreview,
    PreviewStep,
    _floor_refusal,
    as_previewed,
    instruction_difference,
)

FLOOR = 1.015


def ticket(hf_before: str | None, hf_after: str | None) -> PreSignTicket:
    def risk(hf: str | None) -> AccountRisk:
        return AccountRisk(D(100), D(0) if hf is None else D(90), None if hf is None else D(hf), 1)
    return PreSignTicket("deleverage", 1, "0xw", 7, "eth_simulateV1", (TicketStep("exit", "0xe", 1, 2),),
                         risk(hf_before), risk(hf_after), (), 1, 1, 2, 50, "ab")


def step(ins: Instruction, *, hf_after: float | None = None, t: PreSignTicket | None = None) -> PreviewStep:
    return PreviewStep(1, "chain" if t else "cex", "x", ins, t, hf_after)


EXIT = Instruction(Op.BUNDLE, "morpho", children=[Instruction(Op.REPAY, "aave_v3", "WETH", 40.0),
                                                   Instruction(Op.WITHDRAW, "aave_v3", "weETH", 43.0)])
SALE = Instruction(Op.SWAP, "uniswap", "ETH", 1.4, to_asset="USDT")


def test_a_ticket_that_ends_below_the_floor_refuses_the_plan():
    why = _floor_refusal(step(EXIT, hf_after=1.0, t=ticket("1.05", "1.0")), 1.05, FLOOR)
    assert why is not None and "1.0000 is below the floor 1.015" in why
    assert _floor_refusal(step(EXIT, t=ticket("1.05", None)), 1.05, FLOOR) is None       # no debt left
    # A deleverage that raises a health factor already below the floor must stay possible.
    assert _floor_refusal(step(EXIT, hf_after=1.01, t=ticket("1.00", "1.01")), 1.0, FLOOR) is None


def test_the_engines_health_factor_lowered_below_the_floor_refuses_a_step_without_a_ticket():
    why = _floor_refusal(step(SALE, hf_after=1.01), 1.04, FLOOR)
    assert why is not None and "below the floor 1.015 (before: 1.0400)" in why
    assert _floor_refusal(step(SALE, hf_after=1.01), 1.0, FLOOR) is None                 # raised: allowed
    assert _floor_refusal(step(SALE, hf_after=None), 1.04, FLOOR) is None


def test_an_instruction_differs_when_its_action_or_amount_moved():
    assert instruction_difference(SALE, SALE, 1e-3) is None
    moved = Instruction(Op.SWAP, "uniswap", "ETH", 1.41, to_asset="USDT")
    assert "amount moved" in instruction_difference(SALE, moved, 1e-3)
    assert instruction_difference(SALE, moved, 1e-2) is None
    other = Instruction(Op.SWAP, "uniswap", "weETH", 1.4, to_asset="ETH")
    assert "instead of" in instruction_difference(SALE, other, 1e-3)
    bigger_exit = Instruction(Op.BUNDLE, "morpho", children=[Instruction(Op.REPAY, "aave_v3", "WETH", 41.0),
                                                              Instruction(Op.WITHDRAW, "aave_v3", "weETH", 43.0)])
    assert instruction_difference(EXIT, bigger_exit, 1e-3) is not None


def preview(*instructions: Instruction) -> FlattenPreview:
    steps = tuple(PreviewStep(i + 1, "cex", "x", ins) for i, ins in enumerate(instructions))
    return FlattenPreview("r", "m", "live", 0.0, "t", "s", 7, FLOOR, None, (), steps)


def test_differences_name_the_step_that_moved():
    assert preview(EXIT, SALE).differences(preview(EXIT, SALE)) is None
    assert preview(EXIT, SALE).differences(preview(EXIT)) == "1 steps instead of 2"
    why = preview(EXIT, SALE).differences(preview(EXIT, Instruction(Op.SWAP, "uniswap", "ETH", 1.5, to_asset="USDT")))
    assert why is not None and why.startswith("step 2:")


def test_execution_stops_before_an_instruction_that_is_not_the_previewed_one():
    cut = Instruction(Op.PERP_TRADE, "binance", "ETH", 1.0)
    extra = Instruction(Op.PERP_TRADE, "bybit", "ETH", 0.001)

    def program():
        yield EXIT
        yield SALE
        yield cut
        yield extra

    stopped: list[str] = []
    guarded = as_previewed(program(), preview(EXIT, SALE, cut), stopped)
    sent = [next(guarded)]
    while True:
        try:
            sent.append(guarded.send(None))
        except StopIteration:
            break
    assert sent == [EXIT, SALE, cut]                 # the extra order is never handed to the executor
    assert stopped and "was not in the previewed plan" in stopped[0]
