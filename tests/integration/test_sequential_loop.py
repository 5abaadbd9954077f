"""The sequential loop on the real AAVE v3 bytecode, with the same adapters as single actions, agrees
with the engine's loop: the same iterations, the same borrows, the LTV the engine's formula gives."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.domain.presign import TicketRefused
from engine.math.leverage import sequential_loop
from tests.integration.chain.leverage import HF_FLOOR
from venues.onchain.sequential import SequentialLoop


async def test_sequential_loop_follows_the_engine_iteration_by_iteration(defi, execution):
    ex = execution
    await ex.aave.set_user_emode(1)
    loop = SequentialLoop(ex.aave, ex.etherfi, ex.weth, target_ltv=D("0.8"), max_iterations=3,
                          min_borrow_eth=D("0.05"))
    report = await loop.run(D(4), hf_floor=HF_FLOOR)
    engine = sequential_loop(4.0, 0.8, 3, 0.05)
    assert [i.iteration for i in report.iterations] == [s.iteration for s in engine]
    assert [float(i.staked_eth) for i in report.iterations] == pytest.approx([s.stake_eth for s in engine],
                                                                            rel=1e-15)
    assert [float(i.borrowed) for i in report.iterations] == pytest.approx([s.borrow_eth for s in engine],
                                                                          rel=1e-15)
    position = await ex.aave.position(["weETH", "WETH"])
    assert position.assets["WETH"].variable_debt == pytest.approx(sum(i.borrowed for i in report.iterations),
                                                                   rel=D("1e-9"))
    # Staking at the rate the oracle uses: debt / collateral = l (1 - l^n) / (1 - l^(n+1)), n borrows.
    n, l = 3, D("0.8")
    account = report.account_after
    ltv = D(account.total_debt_base) / D(account.total_collateral_base)
    assert ltv == pytest.approx(l * (1 - l**n) / (1 - l ** (n + 1)), rel=D("1e-8"))
    assert await ex.ctx.balance(ex.aave.token("WETH")) == 0  # every borrow was unwrapped and staked
    assert all(i.gas_used > 0 for i in report.iterations)

    # An iteration whose borrow would end below the floor is refused before it is signed: the account's
    # HF would go 1.437 -> 1.394 with another ETH looped at 0.92 against a floor of 1.40.
    debt_before = position.assets["WETH"].scaled_variable_debt_raw
    deeper = SequentialLoop(ex.aave, ex.etherfi, ex.weth, target_ltv=D("0.92"), max_iterations=1,
                            min_borrow_eth=D("0.05"))
    with pytest.raises(TicketRefused) as refused:
        await deeper.run(D(1), hf_floor=D("1.40"))
    assert refused.value.ticket.hf_after < D("1.40") < refused.value.ticket.hf_before
    assert (await ex.aave.position(["WETH"])).assets["WETH"].scaled_variable_debt_raw == debt_before
