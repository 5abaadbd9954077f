"""Resolving a write whose outcome is unknown, by its client order id, before anything else is sent.

A create-order that timed out, whose answer was cut off or garbled, or that got a 5xx after it left
may have been booked: treating it as "not placed" lets the next step send it again (a doubled
position), treating it as placed invents a fill. The only way to know is to ask the venue about the
client order id the order carried: its order first, then its trades (where the venue's trades carry
client ids), retried with backoff for a bounded time.

- found: the order as the venue has it (filled, open, cancelled) — the program goes on with it;
- absent: the venue answers and has no such order or trade, asked at least ``absent_after_s`` after
  the send (a request the venue received late must have been booked by then) — not placed;
- unresolved: no conclusive answer within ``budget_s`` — the caller halts trading, says so, and
  leaves the journal row "unknown" for a restart to resolve.

While a look-up runs, `pending` lists it (the session's snapshot shows it, and an event says when
it starts and how it ended). The same resolver serves the live order path, the emergency stop (an
in-flight order of unknown status is looked up to be cancelled) and restart recovery.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.venue_ports import (
    CexVenuePort,
    OrderRequest,
    OrderStatus,
    VenueError,
    VenueErrorKind,
    VenueOrder,
)

from engine.services.live.book_store import summed_fees


@dataclass(frozen=True, slots=True)
class ResolvePolicy:
    budget_s: float = 30.0             # look-ups end here: the session halts
    first_delay_s: float = 0.05
    max_delay_s: float = 2.0
    absent_after_s: float = 2.0        # "not found" counts as not placed only this long after the send
    lookup_timeout_s: float = 5.0      # one look-up (order, then trades)

    def __post_init__(self) -> None:
        for name in ("budget_s", "first_delay_s", "max_delay_s", "lookup_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ResolvePolicy.{name} must be positive, got {getattr(self, name)!r}")
        if self.absent_after_s < 0:
            raise ValueError(f"ResolvePolicy.absent_after_s must not be negative, got {self.absent_after_s!r}")


class OrderNotPlaced(RuntimeError):
    """The venue confirms it never booked the order (nothing executed: safe to decide again)."""


class OutcomeUnresolved(RuntimeError):
    """No conclusive answer within the budget: what the venue did is unknown."""


@dataclass
class PendingOutcome:
    """One order being looked up (shown while it runs)."""

    venue: str
    request: OrderRequest
    cause: str
    since: float                       # time.time() the look-ups started
    attempts: int = 0
    last: str = ""

    def describe(self) -> str:
        r = self.request
        text = (f"{self.venue} {r.side.value} {r.amount} {r.symbol} (client id {r.client_order_id}): outcome unknown "
                f"after {self.cause}; look-up {self.attempts} for {time.time() - self.since:.1f} s")
        return text + (f": {self.last}" if self.last else "")


@dataclass(frozen=True, slots=True)
class Resolution:
    """How one look-up ended: ``order`` found, or ``not_placed``."""

    order: VenueOrder | None
    not_placed: bool = False


Listener = Callable[[str, PendingOutcome, str], None]     # (what: started|retry|found|not_placed|unresolved)


@dataclass
class UnknownOutcomeResolver:
    venues: Mapping[str, CexVenuePort]
    policy: ResolvePolicy = field(default_factory=ResolvePolicy)
    listener: Listener | None = None
    pending: dict[str, PendingOutcome] = field(default_factory=dict)

    async def resolve(self, venue: str, request: OrderRequest, cause: str, sent_at: float | None = None,
                      *, budget_s: float | None = None) -> Resolution:
        """Look the order up until the venue answers conclusively. ``sent_at``: time.monotonic() of
        the send (None: long ago, e.g. a journal row found at restart). Raises OutcomeUnresolved."""
        policy = self.policy
        budget = policy.budget_s if budget_s is None else budget_s
        port = self.venues[venue]
        started = time.monotonic()
        item = PendingOutcome(venue, request, cause, time.time())
        cid = request.client_order_id
        self.pending[cid] = item
        self._tell("started", item)
        delay = policy.first_delay_s
        try:
            while True:
                item.attempts += 1
                try:
                    found = await asyncio.wait_for(self._look_up(port, request, sent_at), policy.lookup_timeout_s)
                except (VenueError, asyncio.TimeoutError) as exc:
                    item.last = f"look-up failed: {exc}" if isinstance(exc, VenueError) else \
                        f"look-up got no answer within {policy.lookup_timeout_s:g} s"
                else:
                    if found is not None:
                        self._tell("found", item, f"{found.status.value}, filled {found.filled}")
                        return Resolution(found)
                    since_send = None if sent_at is None else time.monotonic() - sent_at
                    if since_send is None or since_send >= policy.absent_after_s:
                        self._tell("not_placed", item, "the venue has no such order or trade")
                        return Resolution(None, not_placed=True)
                    item.last = "not found yet"
                if time.monotonic() - started + delay > budget:
                    why = (f"{venue} {request.side.value} {request.amount} {request.symbol} (client id {cid}): outcome "
                           f"unknown after {cause}; {item.attempts} look-up(s) in {time.monotonic() - started:.1f} s gave "
                           f"no conclusive answer ({item.last})")
                    self._tell("unresolved", item, why)
                    raise OutcomeUnresolved(why)
                self._tell("retry", item, item.last)
                await asyncio.sleep(delay)
                delay = min(delay * 2, policy.max_delay_s)
        finally:
            self.pending.pop(cid, None)

    async def _look_up(self, port: CexVenuePort, request: OrderRequest, sent_at: float | None) -> VenueOrder | None:
        """The order by client id, then its trades: a found trade proves a fill the order look-up
        missed (an order history that lags, an archived order)."""
        found = await port.fetch_order_by_client_id(request.symbol, request.client_order_id)
        if found is not None:
            return found
        since_ms = None if sent_at is None else int((time.time() - (time.monotonic() - sent_at) - 60) * 1000)
        fills = await port.fetch_fills_by_client_id(request.symbol, request.client_order_id, since_ms)
        if not fills:
            return None
        filled = sum((f.amount for f in fills), Decimal(0))
        average = sum((f.amount * f.price for f in fills), Decimal(0)) / filled if filled else None
        complete = filled >= request.amount * (1 - Decimal("1e-9"))
        return VenueOrder(port.venue, request.symbol, fills[0].order_id, request.client_order_id, request.side,
                          request.type.value, request.amount, filled, request.price, average,
                          OrderStatus.CLOSED if complete else OrderStatus.UNKNOWN, fees=summed_fees(fills))

    def _tell(self, what: str, item: PendingOutcome, detail: str = "") -> None:
        if self.listener is not None:
            self.listener(what, item, detail)


def is_gone(exc: VenueError) -> bool:
    """A cancel refused because the order is no longer open (filled, cancelled, unknown to the venue)."""
    return exc.kind in (VenueErrorKind.NOT_FOUND, VenueErrorKind.REJECTED)
