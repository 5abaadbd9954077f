"""Flash-loan transactions that must not go through, on the real bytecode.

The market moves between the plan and the send: the fresh simulation of the program refuses it with
the executor's bound (LtvOutOfBounds, HealthFactorOutOfBounds) or Uniswap's floor ("Too little
received") by name, and nothing is signed. A transaction that passed its simulation and reverted
once mined (the node dropped it, the pool moved, it was rebroadcast) is decoded by name too, and the
revert leaves the position exactly as it was. A ticket below the live HF floor is refused unsigned.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D

import pytest

from engine.domain.onchain_ports import LedgerStatus, LeverageExitRequest, TransactionError, TxStage
from engine.domain.presign import TicketRefused
from tests.integration.chain.defi import WALLET, open_execution
from tests.integration.chain.leverage import (
    HF_FLOOR,
    HF_TARGET,
    assert_executor_holds_nothing,
    enter_loop,
    entry_request,
    supply_weeth,
)
from venues.onchain.program import ProgramFailed

CHAIN = 11155111


async def position_raw(ex) -> tuple[int, int]:
    position = await ex.aave.position(["weETH", "WETH"])
    return position.assets["weETH"].scaled_supply_raw, position.assets["WETH"].scaled_variable_debt_raw


def drop_price(defi, factor: D, *, oracle: bool = True, pool: bool = True) -> None:
    admin = defi.admin
    if oracle:
        admin.set_feed("weETH", admin.feed("weETH") * factor)
    if pool:
        admin.set_pool_price("weETH", "WETH", admin.pool_price("weETH", "WETH") * factor)


async def test_bounds_and_floors_refuse_a_stale_plan_unsigned(defi, execution, ledger):
    ex = execution
    await supply_weeth(ex, D(10))
    entry = await ex.executor.plan_entry(entry_request())
    drop_price(defi, D("0.98"), pool=False)  # the collateral is worth 2 % less than planned
    signed = len(ledger.events())
    with pytest.raises(TransactionError) as refused:
        await ex.executor.execute(entry, hf_floor=HF_FLOOR)
    assert refused.value.stage is TxStage.SIMULATION
    assert refused.value.revert.name == "LtvOutOfBounds"  # 0.918 would be outside 0.90 ± 0.0005
    assert "LtvOutOfBounds(" in str(refused.value) and "executor.enter" in str(refused.value)
    assert len(ledger.events()) == signed  # not even the credit delegation that came first

    # Enter at the new price, then plan a deleverage and let the market move each way.
    await ex.executor.execute(await ex.executor.plan_entry(entry_request()), hf_floor=HF_FLOOR)
    drop_price(defi, D("0.96"))
    exit_plan = await ex.executor.plan_exit(LeverageExitRequest("weETH", HF_TARGET, D("0.0005")))
    before = await position_raw(ex)
    signed = len(ledger.events())
    drop_price(defi, D("1.01"), pool=False)  # the oracle recovers 1 %: the plan would overshoot 1.03
    with pytest.raises(TransactionError) as refused:
        await ex.executor.execute(exit_plan, hf_floor=HF_FLOOR)
    assert refused.value.revert.name == "HealthFactorOutOfBounds"
    drop_price(defi, D(1) / D("1.01"), pool=False)
    # The pool (2 % above the oracle since the first drop) falls 5 %: 3 % below the oracle, past the
    # 0.5 % floor the swap may give up.
    drop_price(defi, D("0.95"), oracle=False)
    with pytest.raises(TransactionError) as refused:
        await ex.executor.execute(exit_plan, hf_floor=HF_FLOOR)
    assert refused.value.revert.name == "Too little received"
    assert len(ledger.events()) == signed and await position_raw(ex) == before
    await assert_executor_holds_nothing(ex, defi.stack)


async def test_a_mined_flash_loan_revert_is_decoded_and_leaves_no_state(defi, ledger):
    ex = await open_execution(defi, ledger, stuck_after_s=4.0)
    try:
        await enter_loop(ex)
        drop_price(defi, D("0.96"))
        a_token = ex.aave.a_token("weETH")
        await ex.ctx.ensure_allowance(a_token, defi.stack.executor, 10**24, label="aweETH for the exit")
        plan = await ex.executor.plan_exit(LeverageExitRequest("weETH", HF_TARGET, D("0.0005")))
        assert len(ex.executor._programs[plan.ticket.digest].calls) == 1  # just the executor's exit
        before = await position_raw(ex)
        weth_before = await ex.ctx.balance(ex.aave.token("WETH"))

        defi.chain.rpc("evm_setAutomine", False)
        sending = asyncio.create_task(ex.executor.execute(plan, hf_floor=HF_FLOOR))
        deadline = time.monotonic() + 10
        while not ex.tm.pending_nonces():
            assert time.monotonic() < deadline, "the exit was never broadcast"
            await asyncio.sleep(0.01)
        (nonce,) = ex.tm.pending_nonces()
        (row,) = ledger.by_nonce(CHAIN, WALLET, nonce)
        defi.chain.rpc("anvil_dropTransaction", row.tx_hash)  # the node forgets it ...
        defi.chain.rpc("evm_setAutomine", True)
        drop_price(defi, D("0.98"), oracle=False)  # ... the pool falls meanwhile; the manager resends it
        with pytest.raises(ProgramFailed) as failed:
            await sending
        error = failed.value
        assert error.stage is TxStage.EXECUTION and error.revert.name == "Too little received"
        assert "reverted on chain" in str(error) and error.completed == ()
        assert ledger.by_nonce(CHAIN, WALLET, nonce)[0].status is LedgerStatus.REVERTED
        assert await position_raw(ex) == before  # the flash loan, repay and withdrawal all rolled back
        assert await ex.ctx.balance(ex.aave.token("WETH")) == weth_before
        await assert_executor_holds_nothing(ex, defi.stack)
    finally:
        await ex.close()


async def test_a_ticket_below_the_floor_is_refused_unsigned(defi, execution, ledger):
    await supply_weeth(execution, D(5))
    plan = await execution.executor.plan_entry(entry_request())
    assert plan.ticket.hf_after < D("1.06")
    signed = len(ledger.events())
    with pytest.raises(TicketRefused) as refused:
        await execution.executor.execute(plan, hf_floor=D("1.06"))
    assert "below the floor 1.06" in str(refused.value)
    assert len(ledger.events()) == signed
