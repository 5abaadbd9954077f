"""OrderGate: the single path from the engine to a venue's order endpoint.

It checks the trading state *synchronously, immediately before* handing the order to the adapter, so
after an emergency stop (which flips the state without awaiting anything) no new order can leave;
and it hands the adapter the same check to ask once more right before the HTTP request leaves the
process, so an order that waited behind ccxt's local rate limiter while the stop was pressed is
dropped there (VenueError NOT_SENT, reported as the state's refusal). It also tracks submissions still
in flight, and orders whose outcome is being looked up, at the moment of a stop: the e-stop resolves
them and cancels whatever they opened.

A new order is sent only once its journal row is on disk (bounded: a journal that cannot write
refuses new risk, never a risk-reducing order), so a restart always knows what may be at a venue.

A submit whose outcome is unknown (timeout, dropped connection, a garbled answer, a 5xx after it
left) is never sent again: the `UnknownOutcomeResolver` looks the order up by its client order id
until the venue answers conclusively, and the program waits for it; if it cannot within its budget
the gate calls ``on_unresolved`` (the session halts) and raises `OutcomeUnresolved`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Callable, Mapping

from engine.domain.venue_ports import CexVenuePort, OrderRequest, VenueError, VenueErrorKind, VenueOrder
from engine.services.live.outcome_resolver import OrderNotPlaced, OutcomeUnresolved, UnknownOutcomeResolver
from engine.services.live.pending_tx_hold import PendingTxHold
from engine.services.live.state import TradingHalted, TradingStateMachine

JournalHook = Callable[[str, str, OrderRequest, VenueOrder | None, str | None], None]
#: Persists an order's row before it is sent; the future resolves once it is on disk.
WriteAhead = Callable[[str, OrderRequest], "concurrent.futures.Future[None] | None"]
# Write failures after which the order may or may not exist at the venue (a garbled answer to a create
# may follow a booked order just as a timeout may).
UNCERTAIN = frozenset({VenueErrorKind.TIMEOUT, VenueErrorKind.NETWORK, VenueErrorKind.UNAVAILABLE,
                       VenueErrorKind.MALFORMED, VenueErrorKind.UNKNOWN})
WRITE_AHEAD_TIMEOUT_S = 2.0


class OrderNotJournaled(RuntimeError):
    """A new order was not sent because its journal row could not be written in time."""


class OrderGate:
    def __init__(self, state: TradingStateMachine, venues: Mapping[str, CexVenuePort],
                 journal: JournalHook | None = None, *, resolver: UnknownOutcomeResolver | None = None,
                 write_ahead: WriteAhead | None = None, write_ahead_timeout_s: float = WRITE_AHEAD_TIMEOUT_S,
                 on_unresolved: Callable[[str], None] | None = None, hold: PendingTxHold | None = None) -> None:
        """``hold``: new risk waits while a transaction of the session's wallet is pending."""
        self.state = state
        self.hold = hold
        self.venues = venues
        self.journal = journal
        self.resolver = resolver if resolver is not None else UnknownOutcomeResolver(venues)
        self.write_ahead = write_ahead
        self.write_ahead_timeout_s = write_ahead_timeout_s
        self.on_unresolved = on_unresolved
        self.inflight: dict[str, dict[asyncio.Task, OrderRequest]] = {v: {} for v in venues}
        #: orders whose outcome is being looked up, by venue (client id -> request)
        self.uncertain: dict[str, dict[str, OrderRequest]] = {v: {} for v in venues}
        self._left: set[str] = set()         # client ids of in-flight orders whose request has left
        self.sent = 0
        self.refused = 0

    def _check(self, venue: str, request: OrderRequest, reducing: bool) -> None:
        try:
            self.state.check(reducing, f"{venue} {request.side.value} {request.symbol}")
            if self.hold is not None:
                self.hold.check(reducing, f"{venue} {request.side.value} {request.symbol}")
        except TradingHalted as exc:
            self.refused += 1
            if self.journal:
                self.journal("refused", venue, request, None, str(exc) if self.state.allows(reducing)
                             else self.state.state.value)
            raise

    async def submit(self, venue: str, request: OrderRequest, *, risk_reducing: bool | None = None) -> VenueOrder:
        """Send one order if the trading state allows it *now*.

        ``risk_reducing`` says whether REDUCING may let it through (a spot sell reduces risk but
        cannot carry the venue's reduce-only flag); by default the request's reduce-only flag decides.
        """
        port = self.venues[venue]
        reducing = request.reduce_only if risk_reducing is None else risk_reducing
        self._check(venue, request, reducing)
        if self.write_ahead is not None:
            durable = self.write_ahead(venue, request)
            if durable is not None and not reducing:
                await self._journaled(venue, request, durable)
                self._check(venue, request, reducing)      # the press may have come while the row was written
        # No await between the check above and the send below: the state cannot change in between;
        # the adapter asks ``may_send`` once more right before the request leaves.
        cid = request.client_order_id

        def may_send() -> bool:
            if not self.state.allows(reducing):
                return False
            self._left.add(cid)             # from here on the venue may have it
            return True

        task = asyncio.ensure_future(port.create_order(request, may_send=may_send))
        sent_at = time.monotonic()
        self.inflight[venue][task] = request
        self.sent += 1
        if self.journal:
            self.journal("submitted", venue, request, None, None)

        def finished(t: asyncio.Task) -> None:
            self.inflight[venue].pop(t, None)
            self._left.discard(cid)

        task.add_done_callback(finished)
        try:
            # Shielded: if our caller is cancelled (a stop), the order already left; its outcome is
            # still journaled when the venue answers, instead of the request being torn down.
            order = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: self._late_outcome(venue, request, t))
            raise
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_SENT:
                self.sent -= 1
                self.refused += 1
                if self.journal:
                    self.journal("not_sent", venue, request, None, str(exc))
                raise TradingHalted(f"{venue} {request.side.value} {request.symbol} refused: trading is "
                                    f"{self.state.state.value} (dropped before its request left)") from None
            if exc.kind not in UNCERTAIN:
                self._failed(venue, request, str(exc))
                raise
            order = await self._resolve(venue, request, exc, sent_at)
        except Exception as exc:
            self._failed(venue, request, str(exc))
            raise
        if self.journal:
            self.journal("acknowledged", venue, request, order, None)
        return order

    async def _journaled(self, venue: str, request: OrderRequest, durable: concurrent.futures.Future[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.wrap_future(durable), self.write_ahead_timeout_s)
        except (asyncio.TimeoutError, Exception) as exc:     # noqa: BLE001 - any failure refuses the order
            why = f"the journal could not record it within {self.write_ahead_timeout_s:g} s" \
                if isinstance(exc, asyncio.TimeoutError) else f"the journal could not record it ({exc})"
            if self.journal:
                self.journal("not_sent", venue, request, None, why)
            raise OrderNotJournaled(f"{venue} {request.side.value} {request.amount} {request.symbol} not sent: "
                                    f"{why}") from None

    async def _resolve(self, venue: str, request: OrderRequest, exc: VenueError, sent_at: float) -> VenueOrder:
        """The submit's outcome is unknown: look it up by client order id until the venue answers."""
        cid = request.client_order_id
        self.uncertain[venue][cid] = request
        if self.journal:
            self.journal("uncertain", venue, request, None, str(exc))
        try:
            resolution = await self.resolver.resolve(venue, request, f"{exc.kind.value}: {exc.detail}", sent_at)
        except OutcomeUnresolved as unresolved:
            if self.journal:
                self.journal("unresolved", venue, request, None, str(unresolved))
            if self.on_unresolved is not None:
                self.on_unresolved(str(unresolved))
            raise
        finally:
            self.uncertain[venue].pop(cid, None)
        if resolution.order is None:
            if self.journal:
                self.journal("not_placed", venue, request, None, f"{exc}; the venue has no order {cid}")
            raise OrderNotPlaced(f"{venue} {request.side.value} {request.amount} {request.symbol}: {exc.detail}; "
                                 f"the venue confirms it has no order {cid}: not placed")
        return resolution.order

    def _late_outcome(self, venue: str, request: OrderRequest, task: asyncio.Task) -> None:
        """The caller went away (a stop) while the order was out: journal how it ended; an uncertain
        ending stays "unknown", for the next look-up (the e-stop's, or a restart's)."""
        if not self.journal:
            return
        exc = None if task.cancelled() else task.exception()
        if task.cancelled() or (isinstance(exc, VenueError) and exc.kind in UNCERTAIN):
            self.journal("uncertain", venue, request, None, "submit interrupted; outcome unknown until looked up"
                         if exc is None else str(exc))
        elif exc is not None:
            self._failed(venue, request, str(exc))
        else:
            self.journal("acknowledged", venue, request, task.result(), None)

    def _failed(self, venue: str, request: OrderRequest, error: str) -> None:
        if self.journal:
            self.journal("failed", venue, request, None, error)

    def inflight_tasks(self, venue: str) -> list[asyncio.Task]:
        return list(self.inflight.get(venue, {}))

    def inflight_requests(self, venue: str, *, left_only: bool = False) -> list[tuple[asyncio.Task, OrderRequest]]:
        """The submissions of ``venue`` whose answer has not arrived, with their requests.
        ``left_only``: only those whose request has left the process (one still queued behind ccxt's
        rate limiter when trading is HALTED never will: it is dropped when released)."""
        return [(t, r) for t, r in self.inflight.get(venue, {}).items()
                if not left_only or r.client_order_id in self._left]

    def uncertain_orders(self, venue: str) -> list[OrderRequest]:
        return list(self.uncertain.get(venue, {}).values())
