"""The LeverageExecutor's guards on the real bytecode: only its owner starts an operation, a flash
callback is accepted only from the lender of a running operation, ETH is refused outside one, and an
executor that is not the shipped code, or not this wallet's, is refused before anything is signed."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.domain.onchain_ports import TransactionError, TxStage
from tests.integration.chain.defi import WALLET, open_execution, wallet_store
from tests.integration.chain.leverage import (
    assert_executor_holds_nothing,
    entry_request,
    revert_of,
    supply_weeth,
)
from venues.onchain.executor_code import EXPECTED_RUNTIME_CODE_HASH, code_hash, executor_abi

# anvil's published development account 2 (public test data): a stranger to the wallet's executor.
STRANGER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
STRANGER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def executor_call(defi, function: str, *args, sender: str = WALLET, value: int = 0) -> dict:
    contract = defi.chain.contract(executor_abi(), defi.stack.executor)
    return {"from": sender, "to": defi.stack.executor, "data": defi.chain.encode(contract, function, *args),
            "value": hex(value)}


async def test_only_the_owner_can_start_an_operation(defi, execution):
    await supply_weeth(execution, D(5))
    plan = await execution.executor.plan_entry(entry_request())
    enter_data = next(c for c in execution.executor._programs[plan.ticket.digest].calls
                      if c.to == defi.stack.executor).data
    tx = {"from": STRANGER, "to": defi.stack.executor, "data": enter_data}
    assert revert_of(defi.chain, tx) == "NotOwner"
    exit_args = (0, defi.stack.tokens["weETH"], 100, 2**256 - 1, 2**256 - 1, 0, (0, 2**256 - 1, 0, 10**18))
    assert revert_of(defi.chain, executor_call(defi, "exit", exit_args, sender=STRANGER)) == "NotOwner"
    assert revert_of(defi.chain, executor_call(defi, "sweep", defi.stack.tokens["WETH"], sender=STRANGER)) \
        == "NotOwner"


async def test_flash_callbacks_are_refused_outside_the_executors_own_operation(defi, execution):
    stack, chain = defi.stack, defi.chain
    weth, morpho, pool = stack.tokens["WETH"], stack.morpho["morpho_blue"], stack.aave["pool"]
    # Anyone calling the callbacks directly, the wallet included.
    for sender in (STRANGER, WALLET):
        assert revert_of(chain, executor_call(defi, "onMorphoFlashLoan", 10**18, b"", sender=sender)) \
            == "UnexpectedCallback"
        assert revert_of(chain, executor_call(defi, "executeOperation", weth, 10**18, 0, stack.executor, b"",
                                              sender=sender)) == "UnexpectedCallback"
    # The real lenders themselves, when no operation of the executor is running.
    chain.rpc("anvil_impersonateAccount", morpho)
    chain.rpc("anvil_impersonateAccount", pool)
    try:
        assert revert_of(chain, executor_call(defi, "onMorphoFlashLoan", 1, b"", sender=morpho)) \
            == "UnexpectedCallback"
        assert revert_of(chain, executor_call(defi, "executeOperation", weth, 1, 0, stack.executor, b"",
                                              sender=pool)) == "UnexpectedCallback"
    finally:
        chain.rpc("anvil_stopImpersonatingAccount", morpho)
        chain.rpc("anvil_stopImpersonatingAccount", pool)
    # A stranger's AAVE flash loan naming the executor as receiver: the initiator is not the executor.
    pool_contract = chain.contract(stack.abis["Pool"], pool)
    flash = {"from": STRANGER, "to": pool,
             "data": chain.encode(pool_contract, "flashLoanSimple", stack.executor, weth, 10**18, b"", 0)}
    assert revert_of(chain, flash) == "UnexpectedCallback"
    # A stranger's Morpho flash loan calls back the stranger, never the executor: nothing to refuse here,
    # and ETH sent to the executor outside an operation is refused.
    assert revert_of(chain, {"from": STRANGER, "to": stack.executor, "value": hex(10**18)}) == "UnexpectedEther"
    await assert_executor_holds_nothing(execution, stack)


async def test_an_executor_with_other_code_is_refused_before_signing(defi, ledger):
    stack = defi.stack
    original = defi.chain.rpc("eth_getCode", stack.executor, "latest")
    assert code_hash(original) == EXPECTED_RUNTIME_CODE_HASH  # what the devstack deployed is the shipped code
    # The same contract with one byte of its metadata changed: it would behave the same, but it is not
    # the audited build, so nothing may be signed for it.
    tampered = original[:-2] + ("00" if original[-2:] != "00" else "01")
    defi.chain.rpc("anvil_setCode", stack.executor, tampered)
    ex = await open_execution(defi, ledger)
    try:
        await supply_weeth(ex, D(5))
        signed_before = len(ledger.events())
        with pytest.raises(TransactionError) as refused:
            await ex.executor.plan_entry(entry_request())
        assert refused.value.stage is TxStage.VERIFICATION
        assert code_hash(tampered) in str(refused.value) and EXPECTED_RUNTIME_CODE_HASH in str(refused.value)
        assert len(ledger.events()) == signed_before  # no delegation, no entry: nothing signed
    finally:
        await ex.close()


async def test_an_executor_that_belongs_to_another_wallet_is_refused(defi, ledger):
    ex = await open_execution(
        defi, ledger, store=wallet_store(defi.url, key=STRANGER_KEY, wallet=STRANGER, executor=defi.stack.executor))
    try:
        with pytest.raises(TransactionError) as refused:
            await ex.executor.verify()
        assert refused.value.stage is TxStage.VERIFICATION
        assert f"owner {WALLET}" in str(refused.value) and STRANGER in str(refused.value)
    finally:
        await ex.close()
