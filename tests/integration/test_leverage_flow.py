"""The whole leveraged flow on the real AAVE v3, Uniswap v3 and Morpho Blue bytecode, by the project's
own code: approve -> supply -> e-mode -> one flash-loan transaction to LTV 0.90 -> (the LST's price
falls 4 %, below the mode's HF floor) -> one transaction back to HF 1.03 -> one transaction out.

Every step is planned with the engine's maths, simulated as a pre-sign ticket on the chain's state,
checked against the health-factor floor, sent through the TxManager, and read back from the chain.
The same flow runs with AAVE's flashLoanSimple (5 bps premium) in place of Morpho (free).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.domain.onchain_ports import (
    AtomicLeveragePort,
    EntryRoute,
    FlashLender,
    LeverageEntryRequest,
    LeverageExitRequest,
)
from engine.math.leverage import flash_loan_for_target_ltv
from tests.integration.chain.defi import WALLET
from tests.integration.chain.leverage import (
    HF_FLOOR,
    HF_TARGET,
    TARGET_LTV,
    assert_executor_holds_nothing,
    supply_weeth,
)

E_MODE_LT = D("0.95")
PRICE_DROP = D("0.96")


def ltv_of(account) -> D:
    return D(account.total_debt_base) / D(account.total_collateral_base)


@pytest.mark.parametrize("lender", [FlashLender.MORPHO, FlashLender.AAVE], ids=["morpho", "aave-fallback"])
async def test_flash_loop_to_ltv_then_deleverage_then_exit(defi, execution, lender):
    ex = execution
    executor = ex.executor
    assert isinstance(executor, AtomicLeveragePort)
    weeth_supplied = await supply_weeth(ex, D(10))
    eth_before_loop = int(await ex.reader.w3.eth.get_balance(WALLET))

    # ---- one transaction to LTV 0.90
    plan = await executor.plan_entry(LeverageEntryRequest(
        "weETH", TARGET_LTV, ltv_tolerance=D("0.0005"), min_health_factor=HF_FLOOR, lender=lender,
        route=EntryRoute.STAKE))
    ticket = plan.ticket
    assert ticket.hf_before is None and ticket.after.ltv == pytest.approx(TARGET_LTV, abs=D("1e-9"))
    fee = D(0) if lender is FlashLender.MORPHO else D("0.0005")
    price = await ex.aave.oracle_price("weETH") / await ex.aave.oracle_price("WETH")
    engine_flash = flash_loan_for_target_ltv(float(weeth_supplied * price), 0.0, 0.9, fee_rate=float(fee))
    assert float(plan.flash_amount) == pytest.approx(engine_flash, rel=1e-12)
    if lender is FlashLender.MORPHO:  # nothing supplied before but the equity: the textbook l/(1-l) x E
        assert float(plan.flash_amount) == pytest.approx(0.9 / 0.1 * float(weeth_supplied * price), rel=1e-12)
    entered = await executor.execute(plan, hf_floor=HF_FLOOR)
    account = entered.account_after
    assert ltv_of(account) == pytest.approx(TARGET_LTV, abs=D("1e-9"))
    assert account.health_factor == pytest.approx(E_MODE_LT / TARGET_LTV, rel=D("1e-8"))
    assert entered.flash_amount == plan.flash_amount.quantize(D("1e-18"), rounding="ROUND_DOWN")
    assert entered.flash_premium == (D(0) if lender is FlashLender.MORPHO else
                                     (entered.flash_amount * fee).quantize(D("1e-18")))
    assert entered.ticket.after.health_factor == pytest.approx(account.health_factor, rel=D("1e-12"))
    assert len(entered.results) == 2  # credit delegation, then the executor's one transaction
    await assert_executor_holds_nothing(ex, defi.stack)
    assert int(await ex.reader.w3.eth.get_balance(WALLET)) < eth_before_loop  # gas only

    # ---- the LST loses 4 % (oracle and pool): HF below the floor
    admin = defi.admin
    admin.set_feed("weETH", await ex.aave.oracle_price("weETH") * PRICE_DROP)
    admin.set_pool_price("weETH", "WETH", admin.pool_price("weETH", "WETH") * PRICE_DROP)
    hf_low = (await ex.aave.account()).health_factor
    assert hf_low < HF_FLOOR

    # ---- one transaction back to HF 1.03
    plan = await executor.plan_exit(LeverageExitRequest("weETH", HF_TARGET, hf_tolerance=D("0.0005"),
                                                        lender=lender))
    assert plan.ticket.hf_after == pytest.approx(HF_TARGET, abs=D("0.0005"))
    delevered = await executor.execute(plan, hf_floor=HF_FLOOR)
    hf = delevered.account_after.health_factor
    assert abs(hf - HF_TARGET) < D("0.0005"), hf
    assert delevered.ticket.hf_after == pytest.approx(hf, rel=D("1e-9"))
    await assert_executor_holds_nothing(ex, defi.stack)

    # ---- one transaction out
    weth = ex.aave.token("WETH")
    weth_before = await ex.ctx.balance(weth)
    plan = await executor.plan_exit(LeverageExitRequest("weETH", None, hf_tolerance=D(0), lender=lender))
    out = await executor.execute(plan, hf_floor=HF_FLOOR)
    position = await ex.aave.position(["weETH", "WETH"])
    assert position.assets["WETH"].scaled_variable_debt_raw == 0
    assert position.assets["weETH"].scaled_supply_raw == 0
    assert out.account_after.total_debt_base == 0 and out.account_after.health_factor is None
    returned = await ex.ctx.balance(weth) - weth_before
    # The ticket simulated the block after its own: a few seconds less interest than when it was mined.
    assert returned > 0 and returned == pytest.approx(out.ticket.delta("WETH").change, rel=D("1e-9"))
    await assert_executor_holds_nothing(ex, defi.stack)
    print(f"\n{lender.value}: gas entry {entered.gas_used}, deleverage {delevered.gas_used}, exit {out.gas_used}; "
          f"{returned:.6f} WETH back")


async def test_entry_routes_stake_with_lido_or_buy_on_uniswap(defi, execution):
    """wstETH staked through Lido (ETH straight into wstETH) and weETH bought on Uniswap, each entered
    with WETH or ETH equity from the wallet (nothing supplied first), then exited fully."""
    ex = execution
    await ex.weth.wrap(D(5))
    await ex.aave.set_user_emode(1)
    for lst, route, equity in (("wstETH", EntryRoute.STAKE, {"equity_weth": D(5)}),
                               ("weETH", EntryRoute.SWAP, {"equity_eth": D(5)})):
        request = LeverageEntryRequest(lst, D("0.85"), ltv_tolerance=D("0.002"), min_health_factor=HF_FLOOR,
                                       route=route, **equity)
        plan = await ex.executor.plan_entry(request)
        entered = await ex.executor.execute(plan, hf_floor=HF_FLOOR)
        assert ltv_of(entered.account_after) == pytest.approx(D("0.85"), abs=D("0.002"))
        supplied = (await ex.aave.position([lst])).assets[lst].supply
        assert supplied == pytest.approx(plan.collateral_change, rel=D("1e-6"))
        assert entered.ticket.delta(f"a{lst} (AAVE collateral)").change == pytest.approx(supplied, rel=D("1e-9"))
        await assert_executor_holds_nothing(ex, defi.stack)
        out = await ex.executor.execute(await ex.executor.plan_exit(LeverageExitRequest(lst, None, D(0))),
                                        hf_floor=HF_FLOOR)
        assert out.account_after.total_debt_base == 0 and out.account_after.total_collateral_base == 0
        await assert_executor_holds_nothing(ex, defi.stack)
