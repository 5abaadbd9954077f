"""New risk waits while a transaction of the session's wallet is pending.

A transaction that is signed and not final (recovered after a crash, or left stuck by a step that
gave up waiting) holds its nonce: anything the session signs next queues behind it, and what it does
when it lands is not in the book yet. So while one is pending the session sends nothing that adds
risk, on the chain or on a CEX; risk-reducing orders (reduce-only closes, a confirmed flatten) and
cancels still go. The hold lifts by itself once the nonce is resolved — mined, replaced, or cancelled
with the e-stop's cancel-pending action (``LiveTradingService.cancel_pending_transactions``).

The operator may acknowledge a restart's other differences while the hold stands: acknowledging
says "I have seen it", not "the nonce is free". The hold is read when no step of the session is in
progress (at the start of a tick, and under the session lock for a manual order), so the session's
own transaction of a step under way never counts as pending.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.domain.onchain_live import PendingChainTx
from engine.services.live.state import TradingHalted


class PendingTransactionHold(TradingHalted):
    """Refused: it would add risk while a transaction of the wallet is pending."""


def describe_pending(pending: Sequence[PendingChainTx]) -> str:
    """The hold's reason in words, "" when nothing is pending."""
    if not pending:
        return ""
    txs = ", ".join(f"nonce {p.nonce} ({p.label or p.tx_hash[:12] or 'unlabelled'})" for p in pending)
    chain = pending[0].chain
    many = len(pending) > 1
    return (f"NEW RISK BLOCKED: {len(pending)} transaction{'s' if many else ''} of the wallet on {chain} "
            f"{'are' if many else 'is'} pending ({txs}); nothing that adds risk is sent until "
            f"{'they are' if many else 'it is'} mined, replaced or cancelled (Cancel pending transactions)")


class PendingTxHold:
    """The session's hold on new risk; ``refresh`` reads the wallet's pending transactions."""

    def __init__(self, pending: Callable[[], list[PendingChainTx]] | None) -> None:
        self._pending = pending
        self.txs: tuple[PendingChainTx, ...] = ()
        self.reason = ""

    def refresh(self) -> str:
        self.txs = tuple(self._pending()) if self._pending is not None else ()
        self.reason = describe_pending(self.txs)
        return self.reason

    @property
    def enabled(self) -> bool:
        """The session has a wallet whose transactions can hold new risk."""
        return self._pending is not None

    @property
    def held(self) -> bool:
        return bool(self.reason)

    def check(self, reducing: bool, what: str) -> None:
        """Raise PendingTransactionHold for ``what`` unless it reduces risk or nothing is pending."""
        if self.reason and not reducing:
            raise PendingTransactionHold(f"{what} refused: {self.reason}")
