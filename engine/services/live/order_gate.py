"""OrderGate: the single path from the engine to a venue's order endpoint.

It checks the trading state *synchronously, immediately before* handing the order to the adapter, so
after an emergency stop (which flips the state without awaiting anything) no new order can leave.
It also tracks submissions still in flight at the moment of a stop: the e-stop waits for them and
cancels whatever they opened, closing the race between "sent just before the press" and "cancel-all".
"""
from __future__ import annotations

import asyncio
from typing import Callable, Mapping

from engine.domain.venue_ports import CexVenuePort, OrderRequest, VenueOrder
from engine.services.live.state import TradingStateMachine

JournalHook = Callable[[str, str, OrderRequest, VenueOrder | None, str | None], None]


class OrderGate:
    def __init__(self, state: TradingStateMachine, venues: Mapping[str, CexVenuePort],
                 journal: JournalHook | None = None) -> None:
        self.state = state
        self.venues = venues
        self.journal = journal
        self.inflight: dict[str, set[asyncio.Task]] = {v: set() for v in venues}
        self.sent = 0
        self.refused = 0

    async def submit(self, venue: str, request: OrderRequest) -> VenueOrder:
        port = self.venues[venue]
        try:
            self.state.check(request.reduce_only, f"{venue} {request.side.value} {request.symbol}")
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
        try:
            order = await task
        except Exception as exc:
            if self.journal:
                self.journal("failed", venue, request, None, str(exc))
            raise
        finally:
            self.inflight[venue].discard(task)
        if self.journal:
            self.journal("acknowledged", venue, request, order, None)
        return order

    def inflight_tasks(self, venue: str) -> list[asyncio.Task]:
        return list(self.inflight.get(venue, ()))
