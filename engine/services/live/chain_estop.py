"""The chain side of an emergency stop.

Inside the press (synchronously, beside the trading state going HALTED) the wallet's transaction
manager is halted: nothing new is signed from that instant, whatever program was running. A
transaction already broadcast cannot be recalled, only replaced: the stop lists the pending ones and
*offers* to replace each by a 0-value self-transfer at the same nonce with bumped fees
(``cancel_pending``), which the operator (or the headless CLI) confirms. The chain's progress is
reported as one more line beside the venues' (``chain:<name>``), so the dashboard shows both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from engine.domain.onchain_live import ChainCancelResult, OnchainInstructionPort, PendingChainTx
from engine.services.live.emergency_stop import CancelStatus, VenueCancelProgress

ProgressHook = Callable[[VenueCancelProgress], None]


def chain_label(port: OnchainInstructionPort) -> str:
    return f"chain:{port.chain}"


class ChainEStop:
    """Halts the wallet's signing at the press and cancels pending transactions when asked."""

    def __init__(self, port: OnchainInstructionPort, listeners: Sequence[ProgressHook] = ()) -> None:
        self.port = port
        self.listeners = tuple(listeners)
        self.progress: VenueCancelProgress | None = None
        self.pending: list[PendingChainTx] = []
        self.halted_ms = 0.0
        self._t0 = 0.0

    def press(self, reason: str) -> VenueCancelProgress:
        """Synchronous: after this returns no new transaction is signed for the wallet."""
        t0 = time.perf_counter()
        self.port.halt(reason)
        self.halted_ms = (time.perf_counter() - t0) * 1000.0
        self._t0 = t0
        self.pending = self.port.pending()
        p = VenueCancelProgress(chain_label(self.port))
        if self.pending:
            p.status = CancelStatus.PENDING
            p.error = (f"signing halted; {len(self.pending)} transaction(s) pending (nonce "
                       f"{', '.join(str(x.nonce) for x in self.pending)}): cancel offered")
        else:
            p.status = CancelStatus.DONE
            p.error = "signing halted; no transaction pending"
        p.elapsed_ms = self.halted_ms
        self.progress = p
        self._emit()
        return p

    async def cancel_pending(self, timeout_s: float) -> list[ChainCancelResult]:
        """Replace every pending transaction by a same-nonce 0-value self-transfer (bumped fees),
        concurrently, each within ``timeout_s``; a transaction that was mined first is reported so."""
        pending = self.port.pending()
        p = self.progress or VenueCancelProgress(chain_label(self.port))
        self.progress = p
        if not pending:
            p.status, p.error = CancelStatus.DONE, "signing halted; no transaction pending"
            self._emit()
            return []
        started = time.perf_counter()
        p.status = CancelStatus.CANCELLING
        self._emit()

        async def one(tx: PendingChainTx) -> ChainCancelResult:
            try:
                return await asyncio.wait_for(self.port.cancel(tx.nonce), timeout_s)
            except asyncio.TimeoutError:
                return ChainCancelResult(tx.chain, tx.nonce, "timeout", timeout_s * 1000.0, tx.tx_hash)

        results = list(await asyncio.gather(*(one(tx) for tx in pending)))
        settled = all(r.outcome in ("cancelled", "mined first") for r in results)
        p.status = CancelStatus.DONE if settled else (
            CancelStatus.TIMEOUT if any(r.outcome == "timeout" for r in results) else CancelStatus.FAILED)
        p.canceled = sum(1 for r in results if r.outcome == "cancelled")
        p.error = "; ".join(f"nonce {r.nonce} {r.outcome}" for r in results)
        p.elapsed_ms = (time.perf_counter() - started) * 1000.0
        self._emit()
        return results

    def _emit(self) -> None:
        if self.progress is None:
            return
        for hear in self.listeners:
            hear(self.progress)
