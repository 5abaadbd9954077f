"""TxManager under the faults a real chain produces, on anvil with the real protocol bytecode.

Stuck transactions (mining off) replaced with a fee bump and cancelled at the same nonce; a reorg of
a mined transaction; a transaction the node drops; a base-fee spike above the cap; an RPC that hangs
or answers errors (through a loopback proxy); the private RPC seeing only eth_sendRawTransaction;
and a restart that finds its pending nonces in the ledger.
"""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal as D

import pytest

from engine.domain.onchain_ports import LedgerStatus, TransactionError, TxStage
from engine.domain.venue_ports import VenueError, VenueErrorKind
from tests.integration.chain.defi import WALLET, open_execution
from tests.integration.chain.rpc_proxy import RpcProxy
from venues.onchain import abi
from venues.onchain.tx.manager import TxCall

CHAIN = 11155111


async def until(predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(0.02)


def deposit_call(ex, eth: str = "1", label: str = "weth.deposit") -> TxCall:
    weth = ex.weth.weth
    data = ex.ctx.contract(weth, abi.WETH9).encode_abi("deposit", args=[])
    return TxCall(to=weth, data=data, value=int(D(eth) * 10**18), label=label)


def rows(ledger, nonce):
    return ledger.by_nonce(CHAIN, WALLET, nonce)


async def weth_balance(ex) -> D:
    return await ex.ctx.balance(ex.weth.weth)


async def test_stuck_transaction_is_replaced_with_a_fee_bump(defi, ledger):
    ex = await open_execution(defi, ledger, stuck_after_s=0.5)
    try:
        defi.chain.rpc("evm_setAutomine", False)
        nonce = await ex.tm.submit(deposit_call(ex))
        await until(lambda: len(rows(ledger, nonce)) >= 2, what="a replacement")
        first, replacement = rows(ledger, nonce)[:2]
        assert replacement.kind == "replace"
        assert replacement.max_fee_wei >= math.ceil(first.max_fee_wei * 1.125)
        assert replacement.priority_fee_wei >= math.ceil(first.priority_fee_wei * 1.125)
        defi.chain.mine()
        result = await ex.tm.wait(nonce)
        final = {r.tx_hash: r.status for r in rows(ledger, nonce)}
        assert final[result.tx_hash] is LedgerStatus.CONFIRMED
        assert result.tx_hash != first.tx_hash and result.replacements >= 1
        assert sorted(s.value for h, s in final.items() if h != result.tx_hash) == ["replaced"] * (
            len(final) - 1
        )
        assert await weth_balance(ex) == D(1)  # executed exactly once
    finally:
        await ex.close()


async def test_stuck_transaction_is_cancelled_by_a_self_transfer(defi, ledger):
    ex = await open_execution(defi, ledger, stuck_after_s=60)
    try:
        defi.chain.rpc("evm_setAutomine", False)
        eth_before = int(await ex.reader.w3.eth.get_balance(WALLET))
        nonce = await ex.tm.submit(deposit_call(ex, "2"))
        waiting = asyncio.create_task(ex.tm.wait(nonce))
        cancelling = asyncio.create_task(ex.tm.cancel(nonce))
        await until(lambda: any(r.kind == "cancel" for r in rows(ledger, nonce)), what="the cancel")
        cancel_row = next(r for r in rows(ledger, nonce) if r.kind == "cancel")
        defi.chain.mine()
        cancelled = await cancelling
        assert cancelled.tx_hash == cancel_row.tx_hash and cancelled.gas_used == 21_000
        with pytest.raises(TransactionError) as info:
            await waiting
        assert info.value.stage is TxStage.CANCELLED
        tx = await ex.reader.w3.eth.get_transaction(cancelled.tx_hash)
        assert (tx["to"], tx["value"], tx["nonce"]) == (WALLET, 0, nonce)
        assert await weth_balance(ex) == 0
        eth_after = int(await ex.reader.w3.eth.get_balance(WALLET))
        assert eth_before - eth_after == cancelled.fee_wei  # only the cancel's gas was paid
    finally:
        await ex.close()


async def test_reorg_of_a_mined_transaction_is_detected_and_it_is_mined_again(defi, ledger):
    ex = await open_execution(defi, ledger, confirmations=3, stuck_after_s=2)
    try:
        nonce = await ex.tm.submit(deposit_call(ex))
        tx_hash = rows(ledger, nonce)[0].tx_hash
        await until(lambda: ledger.get(tx_hash).status is LedgerStatus.MINED, what="the first receipt")
        first_block = ledger.get(tx_hash).block_hash
        defi.chain.mine()  # 2 of the 3 confirmations
        defi.chain.rpc("anvil_reorg", 2, [])  # both blocks replaced by empty ones
        await until(lambda: any("reorg" in e[3] for e in ledger.events(tx_hash)), what="the reorg to be seen")
        await until(
            lambda: ledger.get(tx_hash).status is LedgerStatus.MINED, what="the transaction mined again"
        )
        defi.chain.mine(2)
        result = await ex.tm.wait(nonce)
        assert result.tx_hash == tx_hash and result.reorgs >= 1
        assert result.block_hash != first_block
        assert result.confirmations >= 3
        canonical = await ex.reader.w3.eth.get_block(result.block_number)
        assert "0x" + bytes(canonical["hash"]).hex() == result.block_hash
        assert await weth_balance(ex) == D(1)
    finally:
        await ex.close()


async def test_a_receipt_that_moves_to_another_block_counts_as_a_reorg(defi, ledger):
    ex = await open_execution(defi, ledger, confirmations=3)
    try:
        nonce = await ex.tm.submit(deposit_call(ex))
        row = rows(ledger, nonce)[0]
        await until(lambda: ledger.get(row.tx_hash).status is LedgerStatus.MINED, what="the first receipt")
        first = ledger.get(row.tx_hash)
        # Replace its block and the next one; our transaction goes into the second of the new blocks.
        defi.chain.mine()
        defi.chain.rpc("anvil_reorg", 2, [[row.raw, 1]])
        defi.chain.mine(3)
        result = await ex.tm.wait(nonce)
        assert result.reorgs >= 1 and result.block_number == first.block_number + 1
        assert result.block_hash != first.block_hash
    finally:
        await ex.close()


async def test_a_dropped_transaction_is_rebroadcast(defi, ledger):
    ex = await open_execution(defi, ledger, stuck_after_s=2)
    try:
        defi.chain.rpc("evm_setAutomine", False)
        nonce = await ex.tm.submit(deposit_call(ex))
        tx_hash = rows(ledger, nonce)[0].tx_hash
        assert defi.chain.rpc("eth_getTransactionByHash", tx_hash) is not None
        defi.chain.rpc("anvil_dropTransaction", tx_hash)
        # Gone from the node, unless the watcher already noticed and sent it again (a loaded machine
        # can let a poll run between the drop and this read).
        assert (defi.chain.rpc("eth_getTransactionByHash", tx_hash) is None
                or any("rebroadcast" in e[3] for e in ledger.events(tx_hash)))
        await until(lambda: any("rebroadcast" in e[3] for e in ledger.events(tx_hash)), what="a rebroadcast")
        assert defi.chain.rpc("eth_getTransactionByHash", tx_hash) is not None
        defi.chain.mine()
        result = await ex.tm.wait(nonce)
        assert result.tx_hash == tx_hash and result.replacements == 0  # the same signed bytes
        assert await weth_balance(ex) == D(1)
    finally:
        await ex.close()


async def test_a_base_fee_spike_above_the_cap_is_refused_before_signing(defi, ledger, execution):
    cap_gwei = 50  # the local stack's max_fee_per_gas_gwei
    normal = int(defi.chain.block()["baseFeePerGas"], 16)
    defi.chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(300 * 10**9))
    defi.chain.mine()
    try:
        events_before = len(ledger.events())
        with pytest.raises(TransactionError) as info:
            await execution.weth.wrap(D(1))
        error = info.value
        assert error.stage is TxStage.FEES and error.kind is VenueErrorKind.REJECTED
        text = str(error)
        assert f"cap max_fee_per_gas_gwei = {cap_gwei} gwei" in text and "nothing was signed" in text
        next_base = int((await execution.reader.w3.eth.fee_history(1, "latest", []))["baseFeePerGas"][-1])
        assert next_base > cap_gwei * 10**9
        assert f"base fee {next_base / 1e9:.4g} gwei" in text
        assert len(ledger.events()) == events_before
        assert await execution.reader.w3.eth.get_transaction_count(WALLET, "pending") == 0
    finally:
        # anvil's fee bookkeeping is not part of evm_snapshot: put the base fee back by hand.
        defi.chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(normal))
        defi.chain.mine()


async def test_rpc_that_hangs_or_errors_fails_fast_and_recovers(defi, ledger):
    proxy = await RpcProxy(defi.url).start()
    ex = await open_execution(defi, ledger, url=proxy.url, timeout_s=0.5)
    try:
        # Every request hangs: each read gives up at its timeout (three attempts), nothing waits forever.
        proxy.fault("hang")
        started = time.monotonic()
        with pytest.raises(VenueError) as info:
            await ex.aave.account()
        assert info.value.kind is VenueErrorKind.TIMEOUT and time.monotonic() - started < 4.0
        # Healed: the same provider works again (the abandoned requests left nothing locked).
        proxy.heal()
        assert (await ex.aave.account()).total_debt_base == 0

        # HTTP 500 on eth_call: retried, then reported as the venue being unavailable.
        proxy.fault("http500", "eth_call")
        calls_before = proxy.methods.count("eth_call")
        with pytest.raises(VenueError) as info:
            await ex.lido.rate()
        assert info.value.kind is VenueErrorKind.UNAVAILABLE
        assert proxy.methods.count("eth_call") - calls_before == 3
        proxy.heal()

        # The node refuses a signed transaction: reported, the nonce not consumed, the next send reuses it.
        proxy.fault("rpc_error", "eth_sendRawTransaction")
        with pytest.raises(TransactionError) as info:
            await ex.weth.wrap(D(1))
        assert info.value.stage is TxStage.SUBMISSION and "backend overloaded" in str(info.value)
        assert ledger.get(info.value.tx_hash).status is LedgerStatus.FAILED
        proxy.heal()
        result = await ex.weth.wrap(D(1))
        assert result.nonce == info.value.nonce == 0

        # The broadcast hangs: the outcome is unknown, so the manager keeps the signed transaction and
        # resends it once the node answers; it is mined once.
        proxy.fault("hang", "eth_sendRawTransaction")
        pending = asyncio.create_task(ex.weth.wrap(D(1)))
        await until(
            lambda: any("broadcast uncertain" in e[3] for e in ledger.events()), what="the failed send"
        )
        proxy.heal()
        second = await asyncio.wait_for(pending, 30)
        assert second.nonce == 1
        assert await weth_balance(ex) == D(2)
    finally:
        await ex.close()
        await proxy.stop()


async def test_a_node_without_simulate_v1_falls_back_to_eth_call(defi, ledger):
    proxy = await RpcProxy(defi.url).start()
    proxy.fault("unsupported", "eth_simulateV1")
    ex = await open_execution(defi, ledger, url=proxy.url)
    try:
        assert not await ex.tm.can_simulate_program()
        await ex.weth.wrap(D(2))
        with pytest.raises(TransactionError) as info:  # still refused, still by name
            await ex.aave.borrow("WETH", D(1))
        assert info.value.stage is TxStage.SIMULATION and info.value.revert.kind == "aave"
        assert "eth_call" in str(info.value)
        # Without a joint simulation the approval goes first, then the swap is simulated alone.
        result = await ex.uniswap.swap_exact_input("WETH", "USDT", D(1))
        assert result.amount_out >= result.amount_out_minimum
        assert proxy.methods.count("eth_simulateV1") == 1  # probed once, then not again
    finally:
        await ex.close()
        await proxy.stop()


async def test_private_rpc_sees_only_raw_transactions(defi, ledger):
    public = await RpcProxy(defi.url).start()
    private = await RpcProxy(defi.url).start()
    ex = await open_execution(defi, ledger, url=public.url, private_rpc_url=private.url)
    try:
        await ex.weth.wrap(D(1))
        await ex.aave.approve("WETH", D(1))
        assert set(private.methods) == {"eth_sendRawTransaction"} and len(private.methods) >= 2
        assert "eth_sendRawTransaction" not in public.methods
        assert "eth_call" in public.methods or "eth_simulateV1" in public.methods
    finally:
        await ex.close()
        await public.stop()
        await private.stop()


async def test_restart_finds_pending_transactions_in_the_ledger(defi, ledger):
    """A session signs with mining off and stops; the next one resolves what it left behind."""
    first = await open_execution(defi, ledger, stuck_after_s=60)
    defi.chain.rpc("evm_setAutomine", False)
    in_pool = await first.tm.submit(deposit_call(first, "1", "in the mempool"))
    forgotten = await first.tm.submit(deposit_call(first, "2", "dropped by the node"))
    defi.chain.rpc("anvil_dropTransaction", rows(ledger, forgotten)[0].tx_hash)
    await first.close()  # the process dies: nothing awaited

    second = await open_execution(defi, ledger, stuck_after_s=60)
    try:
        report = second.recovery
        assert [p.nonce for p in report.pending] == [in_pool, forgotten]
        assert report.pending[0].known_to_node and not report.pending[1].known_to_node
        # Nothing new is signed while a nonce is held: it would queue behind the gap.
        with pytest.raises(TransactionError) as info:
            await second.weth.wrap(D(5))
        assert info.value.stage is TxStage.RECOVERY and f"nonce {forgotten}" in str(info.value)
        await second.tm.rebroadcast(forgotten)
        defi.chain.mine()
        assert (await second.tm.wait(in_pool)).label == "in the mempool"
        assert (await second.tm.wait(forgotten)).label == "dropped by the node"
        assert await weth_balance(second) == D(3)
        assert ledger.pending(CHAIN, WALLET) == []
        defi.chain.rpc("evm_setAutomine", True)
        assert (await second.weth.wrap(D(1))).nonce == forgotten + 1
    finally:
        await second.close()

    third = await open_execution(defi, ledger)
    try:
        assert third.recovery.pending == [] and third.recovery.resolved == []
    finally:
        await third.close()


async def test_restart_resolves_a_transaction_mined_while_away(defi, ledger):
    first = await open_execution(defi, ledger, stuck_after_s=60)
    defi.chain.rpc("evm_setAutomine", False)
    nonce = await first.tm.submit(deposit_call(first, "1", "mined while away"))
    tx_hash = rows(ledger, nonce)[0].tx_hash
    await first.close()
    defi.chain.mine()  # mined with nobody watching
    second = await open_execution(defi, ledger)
    try:
        report = second.recovery
        assert report.pending == []
        assert [(r.tx_hash, r.status) for r in report.resolved] == [(tx_hash, LedgerStatus.CONFIRMED)]
        assert (await second.tm.wait(nonce)).tx_hash == tx_hash  # the outcome is still there to read
    finally:
        await second.close()


async def test_cancel_racing_the_original_being_mined_returns_the_mined_outcome(defi, ledger):
    """The original is mined while its cancel is on the way: the node refuses the cancel ("nonce too
    low"); the manager finds which transaction took the nonce and answers with that outcome (the
    original, mined first), never a bare refusal."""
    from venues.onchain.tx.manager import MinedBeforeCancel

    ex = await open_execution(defi, ledger, stuck_after_s=60, poll_interval_s=30)   # the watcher sleeps
    try:
        defi.chain.rpc("evm_setAutomine", False)
        nonce = await ex.tm.submit(deposit_call(ex, "1"))
        original = rows(ledger, nonce)[0].tx_hash
        defi.chain.mine()                         # mined before the cancel leaves: the race
        with pytest.raises(MinedBeforeCancel) as info:
            await asyncio.wait_for(ex.tm.cancel(nonce), 10)
        assert info.value.result.tx_hash == original and info.value.result.nonce == nonce
        assert "mined" in str(info.value) and "nonce too low" not in str(info.value)
        final = {r.kind: r.status for r in rows(ledger, nonce)}
        assert final["send"] is LedgerStatus.CONFIRMED and final["cancel"] is LedgerStatus.FAILED
        assert nonce not in ex.tm.pending_nonces()
        assert await weth_balance(ex) == D(1)
        # asked again once the manager has finished the nonce: the same answer
        with pytest.raises(MinedBeforeCancel):
            await ex.tm.cancel(nonce)
    finally:
        await ex.close()
