"""A transaction of the wallet that is still pending holds new risk, even once the operator has
acknowledged restart recovery: the session sends nothing that adds risk (no transaction, no order)
until the nonce is mined, replaced or cancelled, and its phase line says why. Real anvil stack with
the real AAVE pool; the pending transaction is one signed and broadcast by the workstation before it
went down (automine off, so it sits in the mempool)."""
from __future__ import annotations

import pytest

from engine.services.live.nonce_ledger import NonceLedger
from engine.services.live.session import SessionPhase
from tests.integration.chain.defi import WALLET, open_execution
from tests.integration.chain.live import align_stack, onchain_service
from tests.integration.live_support import request, wait_until
from venues.onchain import abi


async def leave_a_pending_transaction(defi, journal_dir) -> int:
    """Sign and broadcast a WETH wrap from the wallet, unmined, journaled in the session's nonce
    ledger, then "die" (nothing watches it any more). Returns its nonce."""
    defi.chain.rpc("evm_setAutomine", False)
    ledger = NonceLedger(journal_dir / "journal-testnet.sqlite3")
    ex = await open_execution(defi, ledger)
    stuck = await ex.tm.submit(ex.ctx.call(ex.aave.token("WETH"), abi.WETH9, "deposit", [], value=10**15,
                                           label="wrap before the crash"))
    for task in [i.task for i in ex.tm._inflight.values() if i.task is not None]:
        task.cancel()
    await ex.reader.close()
    ledger.close()
    return stuck


def chain_nonce(defi) -> int:
    return int(defi.chain.rpc("eth_getTransactionCount", WALLET, "latest"), 16)


async def test_new_risk_waits_for_a_pending_transaction_after_the_acknowledgement(emulator, cex_store, defi,
                                                                                  tmp_path, cache_dir):
    align_stack(defi, "eth_leveraged", cache_dir)
    stuck = await leave_a_pending_transaction(defi, tmp_path)
    mined_before = chain_nonce(defi)
    assert mined_before == stuck, "the wrap is not mined"

    svc = onchain_service(emulator, cex_store, defi, tmp_path, cache_dir)
    try:
        rid = await svc.start(request("eth_leveraged", capital=5.0, tick_seconds=0.2, data_timeout_seconds=5.0))
        s = svc.session(rid)
        assert s.phase is SessionPhase.AWAITING_ACK
        assert any(d.kind == "transaction_pending" and f"nonce {stuck}" in d.detail
                   for d in svc.recovery(rid).differences)
        assert f"nonce {stuck}" in svc.status(rid).phase_line, "the hold shows before the acknowledgement too"

        svc.acknowledge_recovery(rid)            # the operator acknowledges while the wrap is pending
        await wait_until(lambda: s.ticks >= 4, timeout=30, what="four ticks after the acknowledgement")
        st = svc.status(rid)
        assert st.phase == "running" and st.state == "ACTIVE", (st.state_reason, st.breaches, st.last_error)
        assert "NEW RISK BLOCKED" in st.phase_line and f"nonce {stuck} (wrap before the crash)" in st.phase_line
        assert st.risk_hold and st.pending_transactions == (f"{s.onchain.chain} nonce {stuck} wrap before the crash",)
        # nothing was signed behind the pending nonce, and the loop was not entered
        assert s.onchain.ex.tm.ledger.highest_nonce(s.onchain.ex.tm.chain_id, WALLET) == stuck
        assert chain_nonce(defi) == mined_before and not any(s.portfolio.wallet.debt_scaled.values())
        assert s.router.progress.steps == []
        await wait_until(lambda: any(t == "risk_hold" for _, _, _, t, _ in s.journal.events()), timeout=5,
                         what="the hold in the journal")
        hold = next(d for _, _, _, t, d in s.journal.events() if t == "risk_hold")
        assert f"nonce {stuck}" in hold

        # The wrap is mined: the hold lifts by itself, what it did is booked, and the strategy enters.
        defi.chain.rpc("evm_setAutomine", True)
        defi.chain.rpc("evm_mine")
        await wait_until(lambda: any(s.portfolio.wallet.debt_scaled.values()), timeout=60,
                         what="the entry once the pending wrap was mined")
        assert not s.tx_hold.held
        ticks = s.ticks
        await wait_until(lambda: s.ticks >= ticks + 2, timeout=30, what="two ticks after the entry")
        st = svc.status(rid)
        assert st.state == "ACTIVE", (st.state_reason, st.breaches, st.last_error)
        assert "NEW RISK BLOCKED" not in st.phase_line and st.risk_hold == ""
        assert chain_nonce(defi) > stuck + 1, "the entry's transactions came after the wrap"
    finally:
        await svc.close()
