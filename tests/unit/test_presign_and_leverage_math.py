"""The atomic loop's sizing, AAVE's liquidation outcome, the pre-sign ticket and its floor rule, and the
executor identity check: the pure parts the on-chain tests rely on."""
from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.presign import (
    AccountRisk,
    PreSignTicket,
    TicketRefused,
    TicketStep,
    TokenDelta,
    refuse_below_floor,
)
from engine.math import aave, leverage
from venues.onchain.executor_code import EXPECTED_RUNTIME_CODE_HASH, ExecutorIdentity, identity_problems

WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
POOL = "0x0000000000000000000000000000000000000a01"
MORPHO = "0x0000000000000000000000000000000000000a02"
WETH = "0x0000000000000000000000000000000000000a03"
ROUTER = "0x0000000000000000000000000000000000000a04"


# ------------------------------------------------------------------------------------------ sizing
def test_flash_for_target_ltv_is_the_textbook_formula_from_nothing():
    assert leverage.flash_loan_for_target_ltv(0.0, 0.0, 0.9, equity_eth=10.0) == pytest.approx(
        leverage.flash_loan_amount(10.0, 0.9), rel=1e-15)
    assert leverage.flash_loan_for_target_ltv(10.0, 0.0, 0.9) == pytest.approx(90.0, rel=1e-15)


@given(collateral=st.floats(0.0, 1e4), debt_share=st.floats(0.0, 0.5), equity=st.floats(0.0, 1e3),
       ltv=st.floats(0.55, 0.93), fee=st.sampled_from([0.0, 0.0005, 0.0009]), conversion=st.floats(0.97, 1.01))
def test_flash_for_target_ltv_lands_on_the_target(collateral, debt_share, equity, ltv, fee, conversion):
    debt = collateral * debt_share
    if collateral + equity < 1e-3:
        return
    flash = leverage.flash_loan_for_target_ltv(collateral, debt, ltv, equity_eth=equity, fee_rate=fee,
                                               conversion=conversion)
    new_collateral = collateral + conversion * (equity + flash * (1 - fee))
    assert (debt + flash) / new_collateral == pytest.approx(ltv, rel=1e-9)


def test_flash_for_target_ltv_refuses_what_cannot_be():
    with pytest.raises(ValueError, match="already at or above"):
        leverage.flash_loan_for_target_ltv(10.0, 9.5, 0.9)
    with pytest.raises(ValueError, match="target_ltv"):
        leverage.flash_loan_for_target_ltv(10.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="cannot be reached"):
        leverage.flash_loan_for_target_ltv(10.0, 0.0, 0.9, conversion=1.2)


# ------------------------------------------------------------------------------------------ liquidation
def test_the_full_close_factor_starts_at_hf_095_as_in_aave():
    # LiquidationLogic: 50 % only while HF is strictly above CLOSE_FACTOR_HF_THRESHOLD = 0.95.
    assert aave.liquidation_repay(100.0, 0.9500001, 0.5, 0.95) == 50.0
    assert aave.liquidation_repay(100.0, 0.95, 0.5, 0.95) == 100.0


# ------------------------------------------------------------------------------------------ tickets
def ticket(before: str | None, after: str | None) -> PreSignTicket:
    def risk(hf: str | None) -> AccountRisk:
        return AccountRisk(D(1000), D(0) if hf is None else D(900), None if hf is None else D(hf), 1)

    return PreSignTicket(
        program="test program", chain_id=1, wallet=WALLET, block_number=7, simulated_with="eth_simulateV1",
        steps=(TicketStep("a", "0x1", 100_000, 130_000), TicketStep("b", "0x2", 50_000, 65_000, 10**18)),
        before=risk(before), after=risk(after),
        deltas=(TokenDelta("WETH", D(1), D("0.5")), TokenDelta("ETH", D(2), D(2))),
        base_fee_wei=10 * 10**9, priority_fee_wei=10**9, max_fee_per_gas_wei=21 * 10**9, fee_cap_wei=50 * 10**9,
        digest="00", notes=("a note",),
    )


def test_the_floor_rule():
    floor = D("1.015")
    assert refuse_below_floor(ticket(None, "1.05"), floor)  # enters above the floor
    assert refuse_below_floor(ticket("1.05", None), floor)  # exits fully
    assert refuse_below_floor(ticket("1.00", "1.01"), floor)  # below, but raises it: a deleverage
    for before, after in (("1.05", "1.01"), (None, "1.01"), ("1.01", "1.005")):
        with pytest.raises(TicketRefused, match="below the floor 1.015"):
            refuse_below_floor(ticket(before, after), floor)
    with pytest.raises(TypeError):
        refuse_below_floor(ticket(None, "1.05"), 1.015)  # type: ignore[arg-type]


def test_ticket_totals_and_text():
    t = ticket("1.2", "1.1")
    assert (t.gas_used, t.gas_limit) == (150_000, 195_000)
    assert t.expected_fee_eth == D("0.00165") and t.max_fee_eth == D("0.004095")
    assert t.delta("WETH").change == D("-0.5")
    with pytest.raises(KeyError, match="watches no token"):
        t.delta("USDT")
    text = "\n".join(t.lines())
    assert "health factor: 1.2000 -> 1.1000" in text and "LTV: 0.9000 -> 0.9000" in text
    assert "WETH: 1.000000 -> 0.500000 (-0.500000)" in text and "ETH: 2" not in text  # unchanged: left out
    assert "step 2: b: gas 50,000 (limit 65,000), sends 1 ETH" in text
    assert "cap 50.000 gwei" in text and "note: a note" in text


# ------------------------------------------------------------------------------------------ executor identity
def identity(**changes) -> ExecutorIdentity:
    fields = dict(address="0xE", code_hash=EXPECTED_RUNTIME_CODE_HASH, owner=WALLET, pool=POOL, morpho=MORPHO,
                  weth=WETH, swap_router=ROUTER)
    fields.update(changes)
    return ExecutorIdentity(**fields)


def test_identity_problems_name_what_differs():
    expected = dict(owner=WALLET, pool=POOL, morpho=MORPHO, weth=WETH, swap_router=ROUTER)
    assert identity_problems(identity(), **expected) == []
    assert identity_problems(identity(owner=WALLET.lower()), **expected) == []  # checksum case is no problem
    assert identity_problems(identity(code_hash=""), **expected) == ["no contract code at 0xE"]
    (other,) = identity_problems(identity(code_hash="0x" + "1" * 64), **expected)
    assert "0x" + "1" * 64 in other and EXPECTED_RUNTIME_CODE_HASH in other
    (owner,) = identity_problems(identity(owner=POOL), **expected)
    assert owner == f"owner {POOL} (expected {WALLET})"
    # A chain without Morpho: the executor must carry the zero address there.
    assert identity_problems(identity(morpho="0x" + "0" * 40), **{**expected, "morpho": None}) == []
