"""OrderGate: the single path from the engine to a venue's order endpoint.

It checks the trading state *synchronously, immediately before* handing the order to the adapter, so
after an emergency stop (which flips the state without awaiting anything) no new order can leave.
It also tracks submissions still in flight at the moment of a stop: the e-stop waits for them and
cancels whatever they opened, closing the race between "sent just before the press" and "cancel-all".

A submit whose outcome is unknown (timeout, dropped connection) is never sent again: the gate looks
the order up by its client order id and returns what the venue has, or reports it as not placed.
"""
from __future__ import annotations

import asyncio
from typing import Callable, Mapping

from engine.domain.venue_ports import CexVenuePort, OrderRequest, VenueError, VenueErrorKind, VenueOrder
from engine.services.live.state import TradingStateMachine

JournalHook = Callable[[str, str, OrderRequest, VenueOrder | None, str | None], None]
# Write failures after which the order may or may not exist at the venue (a garbled answer to a create
# may follow a booked order just as a timeout may).
UNCERTAIN = frozenset({VenueErrorKind.TIMEOUT, VenueErrorKind.NETWORK, VenueErrorKind.UNAVAILABLE,
                       VenueErrorKind.MALFORMED})


class OrderGate:
    def __init__(self, state: TradingStateMachine, venues: Mapping[str, CexVenuePort],
                 journal: JournalHook | None = None, lookup_timeout_s: float = 5.0) -> None:
        self.state = state
        self.venues = venues
        self.journal = journal
        self.lookup_timeout_s = lookup_timeout_s
        self.inflight: dict[str, set[asyncio.Task]] = {v: set() for v in venues}
        self.sent = 0
        self.refused = 0

    async def submit(self, venue: str, request: OrderRequest, *, risk_reducing: bool | None = None) -> VenueOrder:
        """Send one order if the trading state allows it *now*.

        ``risk_reducing`` says whether REDUCING may let it through (a spot sell reduces risk but
        cannot carry the venue's reduce-only flag); by default the request's reduce-only flag decides.
        """
        port = self.venues[venue]
        reducing = request.reduce_only if risk_reducing is None else risk_reducing
        try:
            self.state.check(reducing, f"{venue} {request.side.value} {request.symbol}")
        except Exception:
            self.refused += 1
            if self.journal:
                self.journal("refused", venue, request, None, self.state.state.value)
            raise
        # No await between the check above and the send below: the state cannot change in between.
        task = asyncio.ensure_future(port.create_order(request))
        self.inflight[venue].add(task)
        self.sent += 1
        if self.journal:
            self.journal("submitted", venue, request, None, None)
        task.add_done_callback(lambda t: self.inflight[venue].discard(t))
        try:
            # Shielded: if our caller is cancelled (a stop), the order already left; its outcome is
            # still journaled when the venue answers, instead of the request being torn down.
            order = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: self._late_outcome(venue, request, t))
            raise
        except VenueError as exc:
            if exc.kind not in UNCERTAIN:
                self._failed(venue, request, str(exc))
                raise
            order = await self._look_up(venue, port, request, exc)
        except Exception as exc:
            self._failed(venue, request, str(exc))
            raise
        if self.journal:
            self.journal("acknowledged", venue, request, order, None)
        return order

    def _late_outcome(self, venue: str, request: OrderRequest, task: asyncio.Task) -> None:
        if task.cancelled():
            self._failed(venue, request, "submit cancelled; outcome unknown until reconciled")
        elif task.exception() is not None:
            self._failed(venue, request, str(task.exception()))
        elif self.journal:
            self.journal("acknowledged", venue, request, task.result(), None)

    async def _look_up(self, venue: str, port: CexVenuePort, request: OrderRequest, exc: VenueError) -> VenueOrder:
        """The submit's outcome is unknown: ask the venue by client order id (a read, safe to retry)."""
        try:
            found = await asyncio.wait_for(port.fetch_order_by_client_id(request.symbol, request.client_order_id),
                                           self.lookup_timeout_s)
        except Exception as lookup_exc:      # still unknown: say so; reconciliation will catch a stray fill
            self._failed(venue, request, f"{exc}; outcome unknown, look-up by client id failed: {lookup_exc}")
            raise exc from None
        if found is None:
            self._failed(venue, request, f"{exc}; the venue has no order {request.client_order_id}: not placed")
            raise exc
        return found

    def _failed(self, venue: str, request: OrderRequest, error: str) -> None:
        if self.journal:
            self.journal("failed", venue, request, None, error)

    def inflight_tasks(self, venue: str) -> list[asyncio.Task]:
        return list(self.inflight.get(venue, ()))
