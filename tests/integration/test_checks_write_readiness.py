"""check-venues' write readiness on the real AAVE v3 / Morpho / Uniswap stack: the fee against the cap,
the wallet's executor (code hash, owner), e-mode, and the allowances the next program needs."""

from __future__ import annotations

from decimal import Decimal as D

from engine.math.leverage import flash_loan_for_target_ltv
from tests.integration.chain.defi import wallet_store
from tests.integration.chain.leverage import HF_FLOOR, entry_request, supply_weeth
from venues.checks import CheckResult, CheckSettings, Status, plan_for_mode, run_checks
from venues.onchain import abi

GWEI = 10**9


def by(results: list[CheckResult], venue: str, check: str) -> CheckResult:
    return next(r for r in results if r.venue == venue and r.check == check)


async def check(defi, *, executor: str | None) -> list[CheckResult]:
    store = wallet_store(defi.url, executor=executor)
    plan = plan_for_mode("eth_leveraged", "testnet", venue_configs=defi.configs())
    return await run_checks(plan, store=store, settings=CheckSettings(timeout_s=10))


async def test_write_readiness_follows_the_wallet_through_the_loop(defi, execution):
    ex, stack = execution, defi.stack
    results = await check(defi, executor=stack.executor)
    assert by(results, "alchemy", "gas").status is Status.OK  # the wallet's ETH for one full entry
    assert by(results, "alchemy", "fee_cap").status is Status.OK
    assert "cap 50 gwei" in by(results, "alchemy", "fee_cap").message
    executor = by(results, "aave_v3", "executor")
    assert executor.status is Status.OK and stack.executor in executor.message
    emode = by(results, "aave_v3", "emode")
    assert emode.status is Status.WARN and "setUserEMode(1)" in emode.hint
    allowances = by(results, "aave_v3", "allowances")
    assert allowances.status is Status.WARN and "no weETH" in allowances.message

    # Supplied and in e-mode: the next program is the entry; its credit delegation is not there yet.
    weeth = await supply_weeth(ex, D(10))
    price = await ex.aave.oracle_price("weETH") / await ex.aave.oracle_price("WETH")
    flash = D(repr(flash_loan_for_target_ltv(float(weeth * price), 0.0, 0.9)))
    results = await check(defi, executor=stack.executor)
    assert by(results, "aave_v3", "emode").status is Status.OK
    allowances = by(results, "aave_v3", "allowances")
    assert allowances.status is Status.WARN and f"{flash:.6f} WETH" in allowances.message
    debt_token = ex.aave.debt_token("WETH")
    raw = int(flash.scaleb(18)) + 10**12
    await ex.ctx.send(debt_token, abi.CREDIT_DELEGATION, "approveDelegation", [stack.executor, raw],
                      label="delegate")
    assert by(await check(defi, executor=stack.executor), "aave_v3", "allowances").status is Status.OK

    # In the loop: the next program is an exit, which pulls the aTokens.
    await ex.executor.execute(await ex.executor.plan_entry(entry_request()), hf_floor=HF_FLOOR)
    allowances = by(await check(defi, executor=stack.executor), "aave_v3", "allowances")
    assert allowances.status is Status.WARN and "full exit" in allowances.message


async def test_a_wrong_or_missing_executor_and_fees_over_the_cap_fail(defi):
    results = await check(defi, executor=None)
    executor = by(results, "aave_v3", "executor")
    assert executor.status is Status.FAIL and "no executor_address" in executor.message
    assert "python main.py executor deploy --env testnet" in executor.hint
    assert by(results, "aave_v3", "allowances").status is Status.SKIP

    # Not the wallet's: an executor address that holds other code (the WETH contract).
    results = await check(defi, executor=defi.stack.tokens["WETH"])
    executor = by(results, "aave_v3", "executor")
    assert executor.status is Status.FAIL and "runtime code hash" in executor.message

    # The next block's base fee: 30 gwei (WARN: a doubling passes the 50 gwei cap), then 60 (FAIL).
    normal = int(defi.chain.block()["baseFeePerGas"], 16)
    try:
        defi.chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(30 * GWEI))
        fee = by(await check(defi, executor=defi.stack.executor), "alchemy", "fee_cap")
        assert fee.status is Status.WARN and "doubling" in fee.message
        defi.chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(60 * GWEI))
        fee = by(await check(defi, executor=defi.stack.executor), "alchemy", "fee_cap")
        assert fee.status is Status.FAIL and "above the cap" in fee.message
        assert "nothing would be signed" in fee.message
    finally:
        # anvil's fee bookkeeping is not part of evm_snapshot: put the base fee back by hand.
        defi.chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(normal))
        defi.chain.mine()
