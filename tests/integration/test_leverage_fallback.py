"""The leverage flow picks its flash lender by itself: Morpho Blue (no fee) when it can lend, AAVE
``flashLoanSimple`` when it cannot — Morpho holding too little WETH, no Morpho code at its address, or
Morpho's loan reverting in the simulation. Each path runs entry, partial deleverage and full exit on
the real AAVE v3, Uniswap v3 and Morpho Blue bytecode."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.domain.onchain_ports import FlashLender, LeverageExitRequest
from tests.integration.chain.leverage import HF_FLOOR, HF_TARGET, assert_executor_holds_nothing, entry_request, supply_weeth
from venues.onchain.leverage import MorphoCannotServe

# A runtime that reverts every call with empty data (PUSH1 0 PUSH1 0 REVERT): Morpho "broken".
REVERTING_CODE = "0x60006000fd"
PRICE_DROP = D("0.96")


async def _flow(defi, ex, expect: FlashLender, reason: str | None) -> None:
    await supply_weeth(ex, D(10))
    plan = await ex.executor.plan_entry(entry_request())          # asks for Morpho (the default)
    assert plan.lender is expect
    if reason is None:
        assert plan.fallback_reason == ""
    else:
        assert reason in plan.fallback_reason
        assert any("fell back to AAVE" in n for n in plan.ticket.notes)
    entered = await ex.executor.execute(plan, hf_floor=HF_FLOOR)
    assert (entered.flash_premium > 0) is (expect is FlashLender.AAVE)

    admin = defi.admin
    admin.set_feed("weETH", await ex.aave.oracle_price("weETH") * PRICE_DROP)
    admin.set_pool_price("weETH", "WETH", admin.pool_price("weETH", "WETH") * PRICE_DROP)
    plan = await ex.executor.plan_exit(LeverageExitRequest("weETH", HF_TARGET, hf_tolerance=D("0.0005")))
    assert plan.lender is expect
    hf = (await ex.executor.execute(plan, hf_floor=HF_FLOOR)).account_after.health_factor
    assert abs(hf - HF_TARGET) < D("0.0005")

    plan = await ex.executor.plan_exit(LeverageExitRequest("weETH", None, hf_tolerance=D(0)))
    assert plan.lender is expect
    out = await ex.executor.execute(plan, hf_floor=HF_FLOOR)
    assert out.account_after.total_debt_base == 0
    await assert_executor_holds_nothing(ex, defi.stack)


async def test_morpho_serves_when_it_can(defi, execution):
    await _flow(defi, execution, FlashLender.MORPHO, None)


async def test_morpho_without_weth_falls_back_to_aave(defi, execution):
    assert defi.admin.drain_morpho() > 0
    await _flow(defi, execution, FlashLender.AAVE, "Morpho Blue holds 0.000000 WETH")


async def test_no_morpho_code_falls_back_to_aave(defi, execution):
    defi.chain.rpc("anvil_setCode", defi.stack.morpho["morpho_blue"], "0x")
    await _flow(defi, execution, FlashLender.AAVE, "no Morpho Blue contract at")


async def test_morpho_reverting_falls_back_to_aave(defi, execution):
    defi.chain.rpc("anvil_setCode", defi.stack.morpho["morpho_blue"], REVERTING_CODE)
    await _flow(defi, execution, FlashLender.AAVE, "reverted in the simulation")


async def test_fallback_off_raises_the_morpho_refusal(defi, execution):
    defi.admin.drain_morpho()
    await supply_weeth(execution, D(10))
    with pytest.raises(MorphoCannotServe, match="holds 0.000000 WETH"):
        await execution.executor.plan_entry(entry_request(fallback_to_aave=False))
