"""Restart recovery with on-chain legs, after a real crash (SIGKILL of the process running the session).

The session's journal records every on-chain step and the wallet's holdings after it; the restarted
session reads the wallet, its AAVE position and the pending nonces from the chain, shows what differs
from the journal and waits for the operator before any new risk; once acknowledged it resumes the
book as the chain has it, and does not enter the loop a second time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from engine.services.live.session import SessionPhase
from engine.services.live.nonce_ledger import NonceLedger
from tests.integration.chain.defi import FAST_TRANSACTIONS, WALLET, WALLET_KEY, open_execution
from venues.onchain import abi
from tests.integration.chain.live import align_stack, onchain_service
from tests.integration.live_support import request, wait_until
from venues.onchain.devstack.overrides import venue_overrides

ROOT = Path(__file__).resolve().parents[2]


def start_child(defi, tmp_path: Path, cache_dir: Path, mode: str, capital: float) -> subprocess.Popen:
    spec = {"overrides": venue_overrides(defi.stack, "testnet", FAST_TRANSACTIONS), "rpc_url": defi.url,
            "private_key": WALLET_KEY, "wallet_address": WALLET, "executor_address": defi.stack.executor,
            "journal_dir": str(tmp_path), "cache_dir": str(cache_dir), "mode": mode, "capital": capital,
            "tick_seconds": 0.2}
    path = tmp_path / "child.json"
    path.write_text(json.dumps(spec))
    return subprocess.Popen([sys.executable, "-m", "tests.integration.chain.live_child", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


async def read_until(proc: subprocess.Popen, predicate, timeout: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), max(deadline - loop.time(), 0.1))
        if not line:
            raise AssertionError(f"the session process ended: {proc.stderr.read()[-3000:]}")
        if predicate(line):
            return line
    raise AssertionError("timed out waiting for the session process")


async def test_kill_9_after_the_loop_then_recover_with_nothing_lost_or_doubled(emulator, cex_store, defi, tmp_path,
                                                                               cache_dir):
    align_stack(defi, "eth_leveraged", cache_dir)
    child = start_child(defi, tmp_path, cache_dir, "eth_leveraged", 5.0)
    try:
        await read_until(child, lambda line: "entered=True" in line and "tick 2 " in line, timeout=90)
    finally:
        child.send_signal(signal.SIGKILL)            # kill -9: no stop, no flush beyond what was journaled
        child.wait(10)
    chain_after_crash = int(defi.chain.rpc("eth_getTransactionCount", WALLET, "latest"), 16)

    # While the workstation was down: 100 USDT arrived in the wallet, and one of its transactions sits
    # unmined in the mempool (signed, journaled in the nonce ledger and broadcast just before the crash).
    defi.admin.fund(WALLET, usdt=Decimal(100))
    defi.chain.rpc("evm_setAutomine", False)
    ledger = NonceLedger(tmp_path / "journal-testnet.sqlite3")
    ex = await open_execution(defi, ledger)
    weth = ex.aave.token("WETH")
    stuck = await ex.tm.submit(ex.ctx.call(weth, abi.WETH9, "deposit", [], value=10**15, label="wrap before the crash"))
    for task in [i.task for i in ex.tm._inflight.values() if i.task is not None]:
        task.cancel()                                  # the process "dies": nothing watches it any more
    await ex.reader.close()
    ledger.close()

    svc = onchain_service(emulator, cex_store, defi, tmp_path, cache_dir)
    try:
        rid = await svc.start(request("eth_leveraged", capital=5.0, tick_seconds=0.2, data_timeout_seconds=5.0))
        s = svc.session(rid)
        assert s.phase is SessionPhase.AWAITING_ACK           # no new risk before the operator has looked
        report = svc.recovery(rid)
        kinds = {d.kind for d in report.differences}
        assert kinds == {"chain_balance_changed", "transaction_pending"}, report.lines()
        assert any("wallet USDT: journal 0, chain 100" in d.detail for d in report.differences), report.lines()
        assert any(f"nonce {stuck}" in d.detail for d in report.differences if d.kind == "transaction_pending")
        assert report.book is not None and report.book["chain"]["debt_scaled"]["WETH"] > 0
        debt_before = (await s.onchain.holdings()).debt_scaled["WETH"]
        # The operator cancels the stuck transaction (same nonce, 0 value, bumped fee), then acknowledges.
        defi.chain.rpc("evm_setAutomine", True)
        results = await svc.cancel_pending_transactions(rid, timeout_s=20)
        assert [r.outcome for r in results] in (["cancelled"], ["mined first"])
        chain_after_crash += 1                           # that nonce is used now, by whichever won
        svc.acknowledge_recovery(rid)
        await wait_until(lambda: s.ticks >= 3, timeout=30, what="three ticks after the acknowledgement")
        st = svc.status(rid)
        assert st.state == "ACTIVE", (st.state_reason, st.breaches, st.last_error)
        now = await s.onchain.holdings()
        assert now.debt_scaled["WETH"] == debt_before                    # the loop was not entered twice
        assert int(defi.chain.rpc("eth_getTransactionCount", WALLET, "latest"), 16) == chain_after_crash
        assert s.portfolio.wallet.tokens.get("USDT", 0.0) == pytest.approx(100.0)   # booked, not lost
        assert s.router.progress.steps == []                             # nothing was re-done
    finally:
        await svc.close()
