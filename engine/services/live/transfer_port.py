"""The live router's TransferPort on the journaled TransferService.

A live program's transfer step ("move 5,000 USDT from the wallet to OKX") must either end with the
asset credited at the destination, or stop the program saying exactly which transfer is where. This
adapter gives the router that contract on top of ``TransferService``:

- it picks the kind from the endpoints (CEX -> wallet, wallet -> CEX, CEX -> CEX), starts it (the
  service journals it before anything moves) and follows it until it has arrived in the wallet or
  been credited by the exchange, within ``timeout_s``;
- it returns what moved: the amount sent, what the destination credited, the withdrawal id or the
  payment's hash, and the gas a wallet payment burned (so the router charges gas, not execution cost);
- a transfer that failed, or is still on its way at the timeout, raises ``TransferNotCompleted``
  naming the transfer id and the command that finishes it. It is a ``TransferUnavailable``, which
  the live session counts as a refused program step: the program stops there, nothing after it runs.

Never blindly again: a strategy that finds its venues unfunded asks for the same transfer at its next
rebalance. Sending it a second time while the first is in flight (or after one whose outcome is
uncertain) could pay twice. So once a transfer through this adapter did not complete, and while the
journal holds any unfinished transfer, every further transfer is refused naming it, until the operator
has looked (``python main.py transfer list / resume``) and restarted the session.

A transfer the service had to leave ``requested`` (a wallet payment signed but not known to be
broadcast) is followed with ``resuming=True``, which looks the payment up in the nonce ledger and the
withdrawal up by its client id before anything could be sent again.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

from engine.domain.onchain_live import TransferReceipt, TransferUnavailable
from engine.domain.transfers import WALLET, Transfer, TransferRefused, TransferStatus
from engine.domain.venue_ports import VenueError
from engine.services.live.transfers import TransferService

log = logging.getLogger(__name__)

GasPaid = Callable[[str], Awaitable[float]]


class TransferNotCompleted(TransferUnavailable):
    """A transfer was started and did not arrive (failed, or still on its way at the timeout)."""

    def __init__(self, message: str, transfer_id: str, status: TransferStatus | None) -> None:
        super().__init__(message)
        self.transfer_id = transfer_id
        self.status = status


class ServiceTransfers:
    """``TransferPort`` over a ``TransferService`` (see the module docstring)."""

    def __init__(self, service: TransferService, *, environment: str, timeout_s: float | None = None,
                 gas_paid: GasPaid | None = None, close: Callable[[], Awaitable[None]] | None = None) -> None:
        """``timeout_s``: how long one transfer step may take to arrive (None: the service's settings,
        ``transfer_timeout_s`` of configs/transfers.yaml); ``gas_paid(tx_hash)``: the
        ETH a wallet payment's transaction burned (None: charged to execution cost); ``close``:
        releases the service's connections. The timeout counts from the request: a slow payment
        leaves less time to wait for the credit."""
        timeout_s = service.settings.transfer_timeout_s if timeout_s is None else timeout_s
        if not timeout_s > 0:
            raise ValueError(f"the transfer timeout must be positive, got {timeout_s!r} (configs/transfers.yaml "
                             f"environments.{environment}.transfer_timeout_s)")
        self.service = service
        self.environment = environment
        self.timeout_s = timeout_s
        self.gas_paid = gas_paid
        self._close = close
        self._stuck: tuple[str, str] | None = None      # (transfer id, why) of one that did not complete

    async def transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> TransferReceipt:
        self._refuse_while_unresolved(asset, amount, source, destination)
        what = f"{amount} {asset} {source} -> {destination}"
        deadline = asyncio.get_running_loop().time() + self.timeout_s     # sending included
        try:
            t = await self._start(asset, amount, source, destination)
        except TransferRefused as exc:
            raise TransferUnavailable(f"transfer {what} refused, nothing sent: {exc}") from None
        except VenueError as exc:
            # Before the journal row (the deposit address could not be read), nothing left; after it,
            # the journal has it and the check above stops any second attempt.
            self._check_journal(what, exc)
            raise TransferUnavailable(f"transfer {what} not started, nothing sent: {exc}") from None
        t = await self._follow(t, what, deadline)
        return await self._receipt(t)

    def in_flight(self, venue: str) -> list[Transfer]:
        """The transfers to or from ``venue`` still on their way (see TransferService.in_flight): a cash
        reconciliation skips that venue's cash while any is; a finished one is booked on both sides."""
        return self.service.in_flight(venue)

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    # -- internals ---------------------------------------------------------------------------------
    def _refuse_while_unresolved(self, asset: str, amount: Decimal, source: str, destination: str) -> None:
        resume = f"python main.py transfer resume --env {self.environment}"
        if self._stuck is not None:
            tid, why = self._stuck
            raise TransferNotCompleted(
                f"not moving {amount} {asset} {source} -> {destination}: transfer {tid} of this session {why}; "
                f"nothing more is sent until it is settled ({resume}, then restart the session)", tid, None)
        unfinished = self.service.journal.unfinished()
        if unfinished:
            t = unfinished[0]
            raise TransferNotCompleted(
                f"not moving {amount} {asset} {source} -> {destination}: transfer {t.id} ({t.amount} {t.asset} "
                f"{t.source} -> {t.destination}) is still {t.status.value}: finish it first ({resume})",
                t.id, t.status)

    def _check_journal(self, what: str, exc: BaseException) -> None:
        unfinished = self.service.journal.unfinished()
        if unfinished:
            self._stuck = (unfinished[-1].id, f"could not be followed ({exc})")

    async def _start(self, asset: str, amount: Decimal, source: str, destination: str) -> Transfer:
        if source == destination:
            raise TransferRefused(f"a transfer from {source} to itself moves nothing")
        if destination == WALLET:
            return await self.service.cex_to_wallet(source, asset, amount)
        if source == WALLET:
            return await self.service.wallet_to_cex(destination, asset, amount)
        return await self.service.cex_to_cex(source, destination, asset, amount)

    async def _follow(self, t: Transfer, what: str, deadline: float) -> Transfer:
        """Advance until final or the timeout; a 'requested' one is advanced as a resume (looked up
        before it could be sent again)."""
        loop = asyncio.get_running_loop()
        resume = f"python main.py transfer resume --env {self.environment}"
        try:
            while not t.status.final:
                if loop.time() >= deadline:
                    why = f"is still {t.status.value} after {self.timeout_s:g} s"
                    self._stuck = (t.id, why)
                    raise TransferNotCompleted(
                        f"transfer {t.id} ({what}) {why}"
                        + (f" (withdraw {t.withdraw_id})" if t.withdraw_id else "")
                        + (f" (tx {t.tx_hash})" if t.tx_hash else "")
                        + f": it is journaled and not sent again; follow it with {resume}", t.id, t.status)
                await asyncio.sleep(self.service.settings.poll_interval_s)
                t = await self.service.advance(t.id, resuming=t.status is TransferStatus.REQUESTED)
        except TransferNotCompleted:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to follow it: named, never retried
            why = f"could not be followed ({type(exc).__name__}: {exc})"
            self._stuck = (t.id, why)
            raise TransferNotCompleted(f"transfer {t.id} ({what}) {why}: it is journaled as {t.status.value} "
                                       f"and not sent again; follow it with {resume}", t.id, t.status) from None
        if t.status is TransferStatus.FAILED:
            self._stuck = (t.id, f"failed ({t.detail})")
            raise TransferNotCompleted(f"transfer {t.id} ({what}) failed: {t.detail}; see python main.py transfer "
                                       f"list --env {self.environment}", t.id, t.status)
        return t

    async def _receipt(self, t: Transfer) -> TransferReceipt:
        """``sent``: what left the source (an exchange's debit includes its withdrawal fee, as the
        journal holds it); ``received``: what the destination holds; ``fee``: the difference, which
        the router books as a cost, so the book equals venue and chain after a withdrawal."""
        sent, received = t.debit, t.arrives
        # what left the trading account: the debit as moved to the withdrawal account first (rounded up
        # to the venue's transfer precision; the dust left there is no longer trading capital)
        moved_out = self.service.journal.move(f"{t.id}-out")
        if moved_out is not None and moved_out.status == "done":
            sent = moved_out.amount
        if t.status is TransferStatus.CREDITED:
            # What the exchange credited, as it reports it now. From the wallet that is also what was
            # paid (the journal holds the payment in whole token units: 6 decimals of USDT).
            deposit = await self.service.cex[t.destination].find_deposit(t.asset, t.tx_hash)
            if deposit is not None:
                received = deposit.amount
                if t.source == WALLET:
                    sent = deposit.amount
            # what reached the trading account: the credit as moved there (rounded down to the venue's
            # transfer precision; the dust left in the deposit account is not trading capital)
            moved_in = self.service.journal.move(f"{t.id}-in")
            if moved_in is not None and moved_in.status == "done":
                received = moved_in.amount
        gas = 0.0
        if t.source == WALLET and self.gas_paid is not None and t.tx_hash:
            gas = await self.gas_paid(t.tx_hash)
        return TransferReceipt(t.asset, t.source, t.destination, sent=sent, received=received,
                               fee=sent - received if received < sent else Decimal(0),
                               reference=t.tx_hash if t.source == WALLET else (t.withdraw_id or t.tx_hash),
                               gas_eth=gas)
