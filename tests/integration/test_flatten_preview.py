"""The flatten previewed before it is confirmed, on the loopback exchange emulator and the local DeFi
stack (real AAVE v3, Uniswap v3, Morpho Blue bytecode): each on-chain step's pre-sign ticket comes
from one eth_simulateV1 of the plan, and the chain then does what the tickets said; a plan that would
revert (or break the HF floor) is refused and nothing is signed; a plan that moved since the preview
is not sent and the fresh preview is handed back.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from engine.services.live import FlattenPreviewStale, FlattenRefused, LiveStartError
from engine.services.live.state import TradingState
from tests.integration.chain.live import (
    LoopbackTransfers,
    align_stack,
    onchain_service_factory,  # noqa: F401 - the make_service fixture
)
from tests.integration.live_support import make_service as paper_service
from tests.integration.live_support import request, venue_positions, wait_until


def simulated_change(preview, token: str) -> Decimal:
    """What the previewed on-chain steps change ``token`` by, summed over their tickets."""
    return sum((t.delta(token).change for t in preview.tickets), Decimal(0))


def nonce_of(s) -> int | None:
    tm = s.onchain.ex.tm
    return tm.ledger.highest_nonce(tm.chain_id, tm.address)


async def _entered_leveraged(make_service, defi, cache_dir):
    align_stack(defi, "eth_leveraged", cache_dir)
    svc = make_service()
    rid = await svc.start(request("eth_leveraged", capital=5.0, tick_seconds=0.2, data_timeout_seconds=5.0))
    s = svc.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.portfolio.wallet.debt_scaled.get("WETH", 0.0) > 0, timeout=60,
                     what="the loop entry")
    return svc, rid, s


async def test_eth_leveraged_preview_is_what_the_chain_then_does(make_service, defi, cache_dir):
    svc, rid, s = await _entered_leveraged(make_service, defi, cache_dir)
    before = await s.onchain.holdings()
    sent_before = nonce_of(s)
    preview = await svc.preview_flatten(rid)
    assert preview.ready, preview.lines()
    assert preview.block_number is not None and "simulated on block" in preview.source
    assert nonce_of(s) == sent_before                       # a preview signs nothing
    first = preview.steps[0]
    assert first.where == "chain" and first.instruction.op.value == "bundle"
    ticket = first.ticket
    assert ticket is not None and ticket.gas_used > 0 and ticket.fee_cap_wei > 0
    assert float(ticket.hf_before) == pytest.approx(before.health_factor, rel=1e-6)
    assert ticket.hf_after is None                          # a full exit leaves no debt
    assert first.hf_after is None                           # the engine agrees
    assert ticket.delta("WETH debt").after == 0 and ticket.delta("aweETH").after == 0
    assert all(s.state.state is TradingState.ACTIVE for _ in [0])   # nothing changed in the session

    report = await svc.flatten(rid, confirmed=True, preview=preview)
    assert report.failed == [], report.failed
    s.journal.flush()
    journaled = next(e for e in s.journal.events(limit=50) if e[3] == "flatten")[4]      # newest first
    assert ticket.digest in journaled and f'"previewed_block": {preview.block_number}' in journaled
    after = await s.onchain.holdings()
    assert after.health_factor is None and not any(after.debt.values()) and not any(after.supply.values())
    # Token deltas: the chain moved the wallet's ETH (native + WETH) by what the tickets simulated,
    # less the gas the transactions really burned (a simulation charges none).
    gas = sum(Decimal(repr(r.gas_eth)) for r in s.router.progress.steps[-len(preview.tickets):])
    expected = simulated_change(preview, "ETH") + simulated_change(preview, "WETH") - gas
    got = Decimal(repr(after.tokens["ETH"])) - Decimal(repr(before.tokens["ETH"]))
    assert float(got) == pytest.approx(float(expected), rel=1e-4)
    assert s.state.state is TradingState.HALTED


async def _entered_market_neutral(make_service, emulator, defi, cache_dir):
    align_stack(defi, "usdt_market_neutral", cache_dir)
    defi.admin.fund(defi.stack.wallet, usdt=Decimal(30_000))
    svc = make_service(LoopbackTransfers(defi, emulator))
    rid = await svc.start(request("usdt_market_neutral", capital=20_000.0, tick_seconds=0.2,
                                  data_timeout_seconds=5.0))
    s = svc.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.trades > 0, timeout=90, what="the entry")
    return svc, rid, s


async def test_market_neutral_preview_tickets_every_transaction_and_the_chain_agrees(make_service, emulator,
                                                                                     defi, cache_dir):
    svc, rid, s = await _entered_market_neutral(make_service, emulator, defi, cache_dir)
    before = await s.onchain.holdings()
    preview = await svc.preview_flatten(rid)
    assert preview.ready, preview.lines()
    where = [step.where for step in preview.steps]
    assert where[0] == "chain" and "cex" in where
    chain_steps = [step for step in preview.steps if step.where == "chain"]
    assert all(step.ticket is not None for step in chain_steps)
    assert len(chain_steps) >= 5                            # the exit, then the ETH sold in slices
    # One state for the whole plan: every ticket on the same block, each sale after the exit's WETH.
    assert {step.ticket.block_number for step in chain_steps} == {preview.block_number}
    # The hedge is cut after each slice: the engine's delta is never more than one slice off flat,
    # and back near flat once every venue's perp is cut.
    slice_eth = max(step.instruction.amount for step in chain_steps if step.instruction.asset == "ETH")
    steps = preview.steps
    for i, step in enumerate(steps):
        eth = abs(dict(step.delta_after).get("ETH", 0.0))
        assert eth <= slice_eth * 1.01 + 0.01, step.lines()
        if step.where == "cex" and (i + 1 == len(steps) or steps[i + 1].where != "cex"):
            assert eth < 0.01 * slice_eth + 0.01, step.lines()

    report = await svc.flatten(rid, confirmed=True, preview=preview)
    assert report.failed == [], report.failed
    assert len(report.closed) == len(preview.steps)
    after = await s.onchain.holdings()
    assert not any(after.debt.values()) and not any(after.supply.values())
    assert all(v == 0 for v in venue_positions(emulator).values())
    usdt = Decimal(repr(after.tokens["USDT"])) - Decimal(repr(before.tokens["USDT"]))
    assert float(usdt) == pytest.approx(float(simulated_change(preview, "USDT")), rel=1e-4)
    assert s.state.state is TradingState.HALTED and s.reconciliation_error < 0.01


async def test_a_plan_that_would_revert_is_refused_and_nothing_is_sent(make_service, emulator, defi, cache_dir):
    svc, rid, s = await _entered_leveraged(make_service, defi, cache_dir)
    holdings = await s.onchain.holdings()
    # The weETH pool trades 8 % under the oracle: the exit's sale of the collateral would fill below
    # the floor the oracle sets (and could not repay the flash loan), so its simulation reverts.
    rates = align_stack(defi, "eth_leveraged", cache_dir)
    defi.admin.set_pool_price("weETH", "WETH", Decimal(repr(rates["weETH"])) * Decimal("0.92"))
    sent_before = nonce_of(s)
    preview = await svc.preview_flatten(rid)
    assert not preview.ready
    assert "step 1" in preview.refusal and "exit the loop" in preview.refusal
    with pytest.raises(FlattenRefused):
        await svc.flatten(rid, confirmed=True, preview=preview)
    assert nonce_of(s) == sent_before
    now = await s.onchain.holdings()
    assert now.debt == pytest.approx(holdings.debt, rel=1e-6) and now.supply == pytest.approx(holdings.supply, rel=1e-6)
    assert s.state.state is not TradingState.HALTED or "flatten" not in s.state.history[-1].reason


async def test_a_plan_that_moved_since_the_preview_is_shown_again_not_sent(make_service, emulator, defi,
                                                                          cache_dir):
    svc, rid, s = await _entered_leveraged(make_service, defi, cache_dir)
    preview = await svc.preview_flatten(rid)
    assert preview.ready, preview.lines()
    sent_before = nonce_of(s)
    rates = align_stack(defi, "eth_leveraged", cache_dir)
    # The pool moves 0.3 % between the preview and the confirmation (inside the swap floor): the exit
    # would free less WETH than the ticket the operator saw.
    defi.admin.set_pool_price("weETH", "WETH", Decimal(repr(rates["weETH"])) * Decimal("0.997"))
    with pytest.raises(FlattenPreviewStale) as stale:
        await svc.flatten(rid, confirmed=True, preview=preview)
    assert nonce_of(s) == sent_before
    assert stale.value.fresh.ready and stale.value.fresh.block_number is not None
    assert "step 1" in stale.value.why
    # The fresh preview is the plan: confirming it goes through.
    report = await svc.flatten(rid, confirmed=True, preview=stale.value.fresh)
    assert report.failed == [], report.failed


async def test_a_paper_preview_comes_from_the_simulated_book_and_is_what_the_flatten_does(emulator, cex_store,
                                                                                         tmp_path, cache_dir):
    svc = paper_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    try:
        rid = await svc.start(request("usdt_market_neutral_no_leverage", execution="paper"))
        s = svc.session(rid)
        await wait_until(lambda: s.ticks >= 2 and s.portfolio.wallet.tokens.get("weETH", 0) > 0, what="the entry")
        book = s.book()
        preview = await svc.preview_flatten(rid)
        assert preview.ready and preview.block_number is None and not preview.tickets
        assert preview.source.startswith("paper:") and "nothing is simulated on a chain" in preview.source
        assert {step.where for step in preview.steps} == {"simulated"}
        assert s.book() == book                          # the preview ran on a copy
        report = await svc.flatten(rid, confirmed=True, preview=preview)
        assert report.failed == []
        assert report.closed == [step.action for step in preview.steps]
        last = preview.steps[-1]
        # Flat but for the gas the sales ran up (a USDT share class owes it as a negative ETH balance).
        assert abs(dict(last.delta_after).get("ETH", 0.0)) < 0.01
        assert s.portfolio.wallet.tokens.get("weETH", 0.0) == 0.0
    finally:
        await svc.close()


async def test_an_emergency_stop_while_the_confirmed_plan_is_checked_again_cancels_it(make_service, defi, cache_dir):
    svc, rid, s = await _entered_leveraged(make_service, defi, cache_dir)
    preview = await svc.preview_flatten(rid)
    assert preview.ready, preview.lines()
    sent_before = nonce_of(s)
    flatten = asyncio.ensure_future(svc.flatten(rid, confirmed=True, preview=preview))
    await asyncio.sleep(0.01)                    # the flatten is simulating its plan again on the chain
    assert not flatten.done()
    await svc.emergency_stop("operator pressed the e-stop after confirming").done
    with pytest.raises(LiveStartError, match="HALTED while the plan was checked again"):
        await flatten
    assert nonce_of(s) == sent_before and s.portfolio.wallet.debt_scaled.get("WETH", 0.0) > 0
    assert s.state.state is TradingState.HALTED
