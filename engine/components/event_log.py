"""Event log with a global order; atomic bundles get a parent event and child events."""
from __future__ import annotations

import threading
from collections.abc import Callable

from engine.domain.events import Event
from engine.domain.instructions import WALLET
from engine.domain.portfolio import Portfolio

#: Builds a batch of events given the order of its first one.
BatchBuilder = Callable[[int], list[Event]]


class EventLog:
    """Events in their global order. A batch may be deferred (`defer`): its orders are taken at once
    and its Event objects built the first time the log is read. A backtest's quiet stretches log
    thousands of funding settlements that a sweep never reads; building them costs as much as
    valuing the stretch."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        # after a deferred batch, everything is queued in order: (first order, count, builder or event)
        self._pending: list[tuple[int, int, BatchBuilder | Event]] = []
        self._lock = threading.Lock()     # a result may be read from a worker and the UI thread at once
        self._next = 0

    @property
    def events(self) -> list[Event]:
        if self._pending:
            self._build_pending()
        return self._events

    def add(self, timestamp: str, hour: int, venue: str, type_: str, **fields) -> Event:
        ev = Event(order=self._next, timestamp=timestamp, hour=hour, venue=venue, type=type_, **fields)
        if self._pending:
            self._pending.append((self._next, 1, ev))
        else:
            self._events.append(ev)
        self._next += 1
        return ev

    def defer(self, count: int, build: BatchBuilder) -> None:
        """Take the next `count` orders for events that `build(first_order)` returns when the log is
        next read (in order, exactly `count` of them)."""
        if count:
            self._pending.append((self._next, count, build))
            self._next += count

    def retract(self, event: Event) -> None:
        """Take back the newest event (a rebalance that turned out to need no instruction), so the
        log holds only what happened and the global order stays gap-free."""
        events = self.events
        if not events or events[-1] is not event:
            raise ValueError("only the newest event can be retracted")
        events.pop()
        self._next -= 1

    def __len__(self) -> int:
        return self._next

    def _build_pending(self) -> None:
        with self._lock:
            for first, count, build in self._pending:
                batch = [build] if isinstance(build, Event) else build(first)
                if len(batch) != count or (batch and batch[0].order != first):
                    raise RuntimeError(f"a deferred event batch built {len(batch)} events from order "
                                       f"{batch[0].order if batch else first}, expected {count} from {first}")
                self._events.extend(batch)
            self._pending.clear()


def record_deposits(log: EventLog, portfolio: Portfolio, timestamp: str, hour: int = 0,
                    reason: str = "starting capital") -> None:
    """One `deposit` event per balance the portfolio holds (the seeded capital, before the entry), so
    the event log alone rebuilds every holding: a replay starts from nothing and applies events."""
    for token, amount in portfolio.wallet.tokens.items():
        if amount:
            log.add(timestamp, hour, WALLET, "deposit", asset=token, amount=amount, amount_out=amount, reason=reason)
    for venue, acct in portfolio.cex.items():
        if acct.usdt:
            log.add(timestamp, hour, venue, "deposit", asset="USDT", amount=acct.usdt, amount_out=acct.usdt,
                    reason=reason)
        for asset, qty in acct.spot.items():
            if qty:
                log.add(timestamp, hour, venue, "deposit", asset=asset, amount=qty, amount_out=qty, reason=reason)
