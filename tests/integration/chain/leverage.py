"""Shared steps of the leverage tests: a supplied weETH position in e-mode, the loop entered through the
executor, what the executor may hold afterwards, and revert decoding of raw calls."""

from __future__ import annotations

from decimal import Decimal as D

from engine.domain.onchain_ports import EntryRoute, FlashLender, LeverageEntryRequest, LeverageOutcome
from venues.onchain.devstack.rpc import DevChain, DevChainError
from venues.onchain.executor_code import executor_abi
from venues.onchain.tx.reverts import ErrorRegistry, decode_revert

TARGET_LTV = D("0.90")
HF_FLOOR = D("1.015")  # configs/modes/eth_leveraged.yaml rebalancing.hf_floor
HF_TARGET = D("1.03")  # ... rebalancing.hf_target
REGISTRY = ErrorRegistry([executor_abi()])


async def supply_weeth(ex, eth: D) -> D:
    """approve -> supply -> e-mode with the adapters (what the operator does before the loop)."""
    await ex.etherfi.stake(eth)
    await ex.etherfi.wrap((await ex.etherfi.balances()).base)
    weeth = (await ex.etherfi.balances()).wrapped
    await ex.aave.approve("weETH", weeth)
    await ex.aave.supply("weETH", weeth)
    await ex.aave.set_user_emode(1)
    return weeth


def entry_request(lender: FlashLender = FlashLender.MORPHO, **changes) -> LeverageEntryRequest:
    fields = dict(lst="weETH", target_ltv=TARGET_LTV, ltv_tolerance=D("0.0005"), min_health_factor=HF_FLOOR,
                  lender=lender, route=EntryRoute.STAKE)
    fields.update(changes)
    return LeverageEntryRequest(**fields)


async def enter_loop(ex, eth: D = D(10), lender: FlashLender = FlashLender.MORPHO) -> LeverageOutcome:
    await supply_weeth(ex, eth)
    plan = await ex.executor.plan_entry(entry_request(lender))
    return await ex.executor.execute(plan, hf_floor=HF_FLOOR)


async def executor_holdings(ex, stack) -> dict[str, int]:
    """Every balance the executor could be left with (tokens, aTokens, debt tokens, ETH), in wei."""
    out = {}
    for symbol in ("WETH", "weETH", "wstETH", "stETH", "eETH"):
        out[symbol] = await ex.ctx.balance_raw(stack.tokens[symbol], stack.executor)
    for role in ("a_weeth", "a_wsteth", "variable_debt_weth"):
        out[role] = await ex.ctx.balance_raw(stack.aave[role], stack.executor)
    out["ETH"] = int(await ex.reader.w3.eth.get_balance(stack.executor))
    return out


async def assert_executor_holds_nothing(ex, stack) -> None:
    held = await executor_holdings(ex, stack)
    # eETH moves by amount = shares x rate rounded down: one share of dust may stay (worth < 2 wei).
    assert held.pop("eETH") <= 1
    assert held == {k: 0 for k in held}, held


def revert_of(chain: DevChain, tx: dict) -> str:
    """The decoded name of the revert of ``tx`` run as an eth_call (raises if it does not revert)."""
    try:
        chain.rpc("eth_call", tx, "latest")
    except DevChainError as exc:
        text = str(exc)
        data = text.split(" data=", 1)[1] if " data=" in text else None
        return decode_revert(data, REGISTRY).name
    raise AssertionError(f"{tx} did not revert")
