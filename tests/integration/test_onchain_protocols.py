"""The protocol adapters against the real bytecode: AAVE v3, Uniswap v3 SwapRouter02, the LSTs.

Every write goes through the TxManager (simulated, fee-capped, signed with the key from the
keyring, confirmed); balances are read back from the chain and checked against what the protocol's
own arithmetic says they must be.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.domain.onchain_ports import (
    MAX,
    AaveLendingPort,
    DexSwapPort,
    LiquidStakingPort,
    NonceLedgerPort,
    TransactionError,
    TxStage,
)
from tests.integration.chain.defi import WALLET

RAY = 10**27
E18 = 10**18


def ray_mul(a: int, b: int) -> int:
    """AAVE WadRayMath.rayMul: half-up rounding."""
    return (a * b + RAY // 2) // RAY


async def eth_balance(execution) -> int:
    return int(await execution.reader.w3.eth.get_balance(WALLET))


async def test_leveraged_weeth_round_trip_on_aave(defi, execution):
    """approve -> supply weETH -> e-mode -> borrow WETH -> repay max -> withdraw max, read back each step."""
    ex = execution
    aave, etherfi = ex.aave, ex.etherfi
    stake = await etherfi.stake(D(20))
    staked = await etherfi.balances()
    assert D(20) - staked.base <= D("2e-18")  # shares x rate, rounded down
    await etherfi.wrap(staked.base)
    wrapped = await etherfi.balances()
    assert wrapped.base <= D("2e-18")
    assert abs(wrapped.wrapped - staked.base / wrapped.rate) <= D("2e-18")

    approval = await aave.approve("weETH", wrapped.wrapped)
    assert approval is not None
    weeth = aave.token("weETH")
    raw_weeth = int(wrapped.wrapped.scaleb(18))
    assert await ex.ctx.allowance_raw(weeth, aave.pool_address) == raw_weeth  # exactly, not unlimited
    assert await aave.approve("weETH", wrapped.wrapped) is None  # already covered: no tx

    await aave.supply("weETH", wrapped.wrapped)
    position = await aave.position(["weETH", "WETH"])
    supplied = position.assets["weETH"]
    reserve = position.reserves["weETH"]
    assert ray_mul(supplied.scaled_supply_raw, reserve.normalized_income_ray) == int(
        supplied.supply.scaleb(18)
    )
    assert abs(supplied.supply - wrapped.wrapped) <= D("1e-18")
    assert position.account.emode_category == 0
    assert position.account.ltv_bps == 7750  # weETH's own LTV (configs/venues/aave_v3.yaml)

    await aave.set_user_emode(1)
    account = await aave.account()
    assert (account.emode_category, account.ltv_bps, account.current_liquidation_threshold_bps) == (
        1,
        9300,
        9500,
    )

    await aave.borrow("WETH", D(15))
    assert await ex.ctx.balance(aave.token("WETH")) == D(15)
    position = await aave.position(["weETH", "WETH"])
    debt = position.assets["WETH"]
    assert ray_mul(
        debt.scaled_variable_debt_raw, position.reserves["WETH"].normalized_variable_debt_ray
    ) == int(debt.variable_debt.scaleb(18))
    price_weeth, price_weth = await aave.oracle_price("weETH"), await aave.oracle_price("WETH")
    collateral_usd = position.assets["weETH"].supply * price_weeth
    debt_usd = debt.variable_debt * price_weth
    expected_hf = collateral_usd * D("0.95") / debt_usd
    assert abs(position.account.health_factor - expected_hf) / expected_hf < D("1e-9")

    # A borrow beyond the e-mode LTV is refused by simulation, with AAVE's error by name, unsigned.
    before = ledger_count(ex)
    with pytest.raises(TransactionError) as refused:
        await aave.borrow("WETH", D(5))
    assert refused.value.stage is TxStage.SIMULATION
    assert refused.value.revert.name == "COLLATERAL_CANNOT_COVER_NEW_BORROW"
    assert "AAVE error 36" in str(refused.value)
    assert ledger_count(ex) == before

    defi.admin.advance(7 * 24 * 3600)  # a week of interest
    await ex.weth.wrap(D("0.1"))  # the interest is paid from the wallet
    allowance = await aave.repay_max_allowance("WETH")
    owed = (await aave.position(["WETH"])).assets["WETH"].variable_debt
    assert owed > D(15) and allowance > owed and allowance - owed < owed * D("1e-5")
    await aave.approve("WETH", allowance)
    await aave.repay("WETH", MAX)
    position = await aave.position(["weETH", "WETH"])
    assert position.assets["WETH"].scaled_variable_debt_raw == 0
    assert position.account.total_debt_base == 0 and position.account.health_factor is None
    weth_left = await ex.ctx.balance(aave.token("WETH"))
    assert D(0) < weth_left < D("0.1")  # 15.1 less the debt with a week's interest

    await aave.withdraw("weETH", MAX)
    position = await aave.position(["weETH"])
    assert position.assets["weETH"].scaled_supply_raw == 0
    back = await ex.ctx.balance(weeth)
    assert back >= wrapped.wrapped - D("1e-18")  # principal back, plus a week of supply interest
    assert stake.gas_used > 0 and stake.confirmations >= 1


def ledger_count(ex) -> int:
    return len(ex.tm.ledger.events())


async def test_uniswap_swap_floor_comes_from_the_oracle(defi, execution):
    ex = execution
    await ex.weth.wrap(D(3))
    weth, usdt = ex.aave.token("WETH"), ex.aave.token("USDT")
    oracle = await ex.aave.oracle_price("WETH") / await ex.aave.oracle_price("USDT")
    result = await ex.uniswap.swap_exact_input("WETH", "USDT", D(2))
    floor = D(2) * oracle * (1 - D(3000) / D(10**6)) * (1 - D(50) / D(10_000))
    assert result.amount_out_minimum == floor.quantize(D("0.000001"), rounding="ROUND_DOWN")
    assert result.amount_out >= result.amount_out_minimum
    assert await ex.ctx.balance(usdt) == result.amount_out
    assert await ex.ctx.balance(weth) == D(1)
    assert await ex.ctx.allowance_raw(weth, ex.uniswap.router) == 0  # exact approval, fully used

    # A reference price 2 % above the pool's: the router would give "Too little received"; the joint
    # simulation of approve + swap refuses both, so no allowance is left behind.
    with pytest.raises(TransactionError) as refused:
        await ex.uniswap.swap_exact_input("WETH", "USDT", D(1), reference_price=oracle * D("1.02"))
    assert refused.value.stage is TxStage.SIMULATION
    assert refused.value.revert.name == "Too little received"
    assert await ex.ctx.allowance_raw(weth, ex.uniswap.router) == 0
    assert await ex.ctx.balance(weth) == D(1)


async def test_lido_and_etherfi_stake_wrap_unwrap_follow_the_rate(defi, execution):
    ex = execution
    for adapter, rate_before in ((ex.lido, D("1.20")), (ex.etherfi, D("1.07"))):
        assert await adapter.rate() == rate_before
        await adapter.stake(D(6))
        base = (await adapter.balances()).base
        assert D(6) - base <= D("2e-18")
        await adapter.wrap(base)
        wrapped = (await adapter.balances()).wrapped
        assert abs(wrapped * rate_before - base) <= D("2e-18")
        # An oracle report raises the rate by 1 %: the LST is worth more ETH, the count stays.
        defi.admin.set_lst_rate(adapter.lst, rate_before * D("1.01"))
        assert await adapter.rate() == rate_before * D("1.01")
        await adapter.unwrap(wrapped)
        after = await adapter.balances()
        assert after.wrapped == 0
        assert abs(after.base - base * D("1.01")) <= D("3e-18")


async def test_positions_accrue_with_chain_time(defi, execution):
    """Scaled balances stay put while the normalized indices grow; balances are their ray product."""
    ex = execution
    await ex.weth.wrap(D(10))
    await ex.aave.approve("WETH", D(10))
    await ex.aave.supply("WETH", D(10))
    await ex.aave.borrow("WETH", D(5))  # utilisation, so both indices accrue
    first = await ex.aave.position(["WETH"])
    defi.admin.advance(30 * 24 * 3600)
    later = await ex.aave.position(["WETH"])
    a, b = first.assets["WETH"], later.assets["WETH"]
    assert (a.scaled_supply_raw, a.scaled_variable_debt_raw) == (
        b.scaled_supply_raw,
        b.scaled_variable_debt_raw,
    )
    r0, r1 = first.reserves["WETH"], later.reserves["WETH"]
    assert r1.normalized_income_ray > r0.normalized_income_ray
    assert r1.normalized_variable_debt_ray > r0.normalized_variable_debt_ray
    assert r1.liquidity_index_ray == r0.liquidity_index_ray  # stored index: only moves on an update
    assert ray_mul(b.scaled_supply_raw, r1.normalized_income_ray) == int(b.supply.scaleb(18))
    assert ray_mul(b.scaled_variable_debt_raw, r1.normalized_variable_debt_ray) == int(
        b.variable_debt.scaleb(18)
    )
    assert b.supply > a.supply and b.variable_debt > a.variable_debt


async def test_adapters_implement_the_engine_ports(execution):
    assert isinstance(execution.aave, AaveLendingPort)
    assert isinstance(execution.lido, LiquidStakingPort) and isinstance(execution.etherfi, LiquidStakingPort)
    assert isinstance(execution.uniswap, DexSwapPort)
    assert isinstance(execution.tm.ledger, NonceLedgerPort)


async def test_stack_is_configured_as_the_venue_files_say(defi, execution):
    """The deployed Pool carries configs/venues/aave_v3.yaml's e-mode; oracle and pools the spec's prices;
    Morpho Blue holds WETH for fee-free flash loans."""
    from engine.config import load_venue_config

    emode = load_venue_config("aave_v3").emode
    ltv, threshold, bonus, label = await execution.aave.emode_category(emode.category_id)
    assert (ltv, threshold, bonus, label) == (D("0.93"), D("0.95"), D("0.01"), emode.label)
    assert await execution.aave.oracle_price("WETH") == D(3000)
    assert await execution.aave.oracle_price("USDT") == D(1)
    assert await execution.aave.oracle_price("wstETH") == D(3600)
    assert abs(defi.admin.pool_price("WETH", "USDT") - D(3000)) < D("1e-6")
    assert abs(defi.admin.pool_price("wstETH", "WETH") - D("1.2")) < D("1e-12")
    stack = defi.stack
    assert await execution.ctx.balance(stack.tokens["WETH"], stack.morpho["morpho_blue"]) == D(20_000)
