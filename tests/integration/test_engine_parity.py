"""Parity between the engine's AAVE accounting and the real AAVE v3 Pool, over a week of real history.

The local stack follows 168 shipped hours (2024-08-01 .. 08-07, the 5 August sell-off included): AAVE's
oracle feeds (ETH/USD, weETH and wstETH at their hourly oracle rate) move hour by hour and the chain's
clock with them, so the Pool's indices accrue. A weETH loop is opened through the project's own code (supply, e-mode, executor entry to LTV
0.90) and the engine executes the same instructions through the simulated venue with the Pool's
indices. Then, every hour, the engine's risk monitor (engine/components/risk.py) and the Pool's
getUserAccountData must agree, and at the end two real liquidationCalls (close factor 0.5 at HF 0.97;
the whole debt, capped by the collateral, at HF 0.93) must match the simulated venue's liquidation.
Everything within 1e-9 relative; the figures are printed (pytest -s).
"""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal as D

import pytest

from engine.components.risk import aave_state
from engine.config import load_config
from engine.data import DataRequirements, HistoricalDataProvider
from engine.domain.instructions import Instruction, Op
from engine.domain.portfolio import Portfolio
from engine.services.run_params import build_run_params
from tests.integration.chain.leverage import HF_FLOOR, entry_request
from tests.integration.chain.parity import RAY, ParityErrors, append_hour, empty_view
from venues.onchain import abi
from venues.onchain.devstack.history import HistoryFollower, hours
from venues.simulated.venue import SimulatedVenues

DATA = __import__("bootstrap").DATA_DIR
WEEK = 168
TOLERANCE = 1e-9
MAX_UINT = 2**256 - 1


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    provider = HistoricalDataProvider(DATA, tmp_path_factory.mktemp("aligned"))
    req = DataRequirements(spot=("ETH",), lsts=("weETH", "wstETH"), aave_reserves=("WETH",))
    data = provider.load(req, "2024-08-01 00:00", "2024-08-07 23:00")
    states = list(hours(data))
    assert len(states) == WEEK
    index = data["aave.WETH.borrow_index"]
    return states, float(index[-1] / index[0])


async def scaled_at(ex, block: int) -> tuple[int, int]:
    """(weETH aToken, WETH debt token) scaled balances of the wallet at ``block``."""
    out = []
    for role in ("a_weeth", "variable_debt_weth"):
        token = ex.ctx.contract(ex.aave.contracts[role], abi.SCALED_TOKEN)
        out.append(int(await token.functions.scaledBalanceOf(ex.ctx.address).call(block_identifier=block)))
    return out[0], out[1]


def ray_mul(a: int, b: int) -> int:
    return (a * b + RAY // 2) // RAY


async def test_a_week_of_hours_engine_and_pool_agree(defi, execution, week):
    states, data_index_growth = week
    ex, admin = execution, defi.admin
    follower = HistoryFollower(admin)
    start = int(defi.chain.block()["timestamp"], 16)
    week_hours = [dataclasses.replace(h, timestamp=start + 3600 * (k + 1)) for k, h in enumerate(states)]
    params = build_run_params(load_config("eth_leveraged"))
    view, portfolio, errors = empty_view(), Portfolio(), ParityErrors()
    venues = SimulatedVenues(portfolio, view, params)

    # ---- hour 0: the position opened by the project's code, the same instructions in the engine
    first = week_hours[0]
    follower.apply(first)
    await ex.etherfi.stake(D(10))
    await ex.etherfi.wrap((await ex.etherfi.balances()).base)
    units = (await ex.etherfi.balances()).wrapped
    await ex.aave.approve("weETH", units)
    supplied = await ex.aave.supply("weETH", units)
    await ex.aave.set_user_emode(1)
    t = await append_hour(view, ex.aave, first, supplied.block_number)
    portfolio.wallet.add("weETH", float(units))
    venues.execute(Instruction(Op.SUPPLY, "aave_v3", "weETH", float(units)), t, charge_gas=False)
    venues.execute(Instruction(Op.SET_EMODE, "aave_v3"), t, charge_gas=False)

    plan = await ex.executor.plan_entry(entry_request())
    entered = await ex.executor.execute(plan, hf_floor=HF_FLOOR)
    t = await append_hour(view, ex.aave, first, entered.results[-1].block_number)
    flash = float(entered.flash_amount)
    venues.execute(Instruction(Op.BUNDLE, "morpho", children=[
        Instruction(Op.FLASH_BORROW, "morpho", "WETH", flash),
        Instruction(Op.STAKE, "etherfi", "ETH", flash, to_asset="weETH"),
        Instruction(Op.SUPPLY, "aave_v3", "weETH", flash / view.lst_oracle["weETH"][t]),
        Instruction(Op.BORROW, "aave_v3", "WETH", flash),
        Instruction(Op.FLASH_REPAY, "morpho", "WETH", flash),
    ]), t)
    coll_scaled, debt_scaled = await scaled_at(ex, entered.results[-1].block_number)
    errors.add("scaled aweETH balance", portfolio.wallet.supply_scaled["weETH"], coll_scaled / 1e18, 0)
    errors.add("scaled WETH debt balance", portfolio.wallet.debt_scaled["WETH"], debt_scaled / 1e18, 0)

    # ---- a week of hours: prices, LST rates and the clock move; the indices accrue
    aave_params = params.aave
    for k, hour in enumerate(week_hours[1:], start=1):
        block = follower.apply(hour, oracle_only=True)
        t = await append_hour(view, ex.aave, hour, block)
        engine = aave_state(portfolio, view, t, aave_params)
        pool = await ex.aave.account(block)
        errors.add("collateral (base currency)", engine.collateral_usd, pool.total_collateral_base / 1e8, k)
        errors.add("debt (base currency)", engine.debt_usd, pool.total_debt_base / 1e8, k)
        errors.add("health factor", engine.health_factor, pool.health_factor_wad / 1e18, k)
    pool_index_growth = view.borrow_index["WETH"][-1] / view.borrow_index["WETH"][1]

    # ---- liquidations: a real liquidationCall against the simulated venue's, from the same state
    deployer = defi.stack.deployer
    pool_contract = defi.chain.contract(defi.stack.abis["Pool"], defi.stack.aave["pool"])
    admin._tx("WETH9", defi.stack.tokens["WETH"], "approve", defi.stack.aave["pool"], MAX_UINT)
    last = week_hours[-1]
    hf_now = D((await ex.aave.account()).health_factor_wad) / D(10**18)
    outcomes = {}
    for name, target_hf in (("close factor 0.5", D("0.97")), ("full, collateral-capped", D("0.93"))):
        snapshot = defi.chain.snapshot()
        try:
            rate = last.oracle["weETH"] * target_hf / hf_now
            admin.set_feed("weETH", last.eth_usd * rate)
            before = await scaled_at(ex, int(defi.chain.rpc("eth_blockNumber"), 16))
            receipt = defi.chain.transact(deployer, pool_contract, "liquidationCall", defi.stack.tokens["weETH"],
                                          defi.stack.tokens["WETH"], ex.ctx.address, MAX_UINT, False)
            block = int(receipt["blockNumber"], 16)
            after = await scaled_at(ex, block)
            moved = dataclasses.replace(last, oracle={**last.oracle, "weETH": rate})
            t = await append_hour(view, ex.aave, moved, block)
            idx_supply = await ex.aave.reserve_state("weETH", block)
            idx_debt = await ex.aave.reserve_state("WETH", block)
            chain_seized = (ray_mul(before[0], idx_supply.normalized_income_ray)
                            - ray_mul(after[0], idx_supply.normalized_income_ray)) / 1e18
            chain_repaid = (ray_mul(before[1], idx_debt.normalized_variable_debt_ray)
                            - ray_mul(after[1], idx_debt.normalized_variable_debt_ray)) / 1e18
            sim = copy.deepcopy(portfolio)
            engine_hf = aave_state(sim, view, t, aave_params).health_factor
            (result,) = SimulatedVenues(sim, view, params).liquidate(t)
            errors.add(f"liquidation HF ({name})", engine_hf, float(target_hf), -1)
            errors.add(f"debt repaid ({name})", result.repaid_or_closed, chain_repaid, -1)
            errors.add(f"collateral seized ({name})", result.seized, chain_seized, -1)
            assert result.loss_usd >= 0  # a liquidation never pays the liquidated
            outcomes[name] = (chain_repaid, chain_seized, after[1] > 0)
        finally:
            assert defi.chain.revert(snapshot)

    print("\nengine vs AAVE v3 Pool over a week of hours (2024-08-01 .. 08-07):")
    for line in errors.lines():
        print("  " + line)
    print(f"  WETH borrow index growth over the week: shipped data {data_index_growth - 1:.3e}, "
          f"local Pool {pool_index_growth - 1:.3e} (different utilisation: structural, see the module doc)")
    assert {name: err for name, (err, _) in errors.worst.items() if err > TOLERANCE} == {}
    # AAVE's own rules, seen on the real Pool: half the debt at HF 0.97; below 0.95 the whole debt is
    # due, but the collateral covers only collateral / 1.01 of it and the rest stays owed.
    half_repaid, _, half_left = outcomes["close factor 0.5"]
    full_repaid, full_seized, full_left = outcomes["full, collateral-capped"]
    assert half_left and full_left and full_repaid > half_repaid
