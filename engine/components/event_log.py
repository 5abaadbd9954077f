"""Event log with a global order; atomic bundles get a parent event and child events."""
from __future__ import annotations

from engine.domain.events import Event


class EventLog:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._next = 0

    def add(self, timestamp: str, hour: int, venue: str, type_: str, **fields) -> Event:
        ev = Event(order=self._next, timestamp=timestamp, hour=hour, venue=venue, type=type_, **fields)
        self._next += 1
        self.events.append(ev)
        return ev

    def retract(self, event: Event) -> None:
        """Take back the newest event (a rebalance that turned out to need no instruction), so the
        log holds only what happened and the global order stays gap-free."""
        if not self.events or self.events[-1] is not event:
            raise ValueError("only the newest event can be retracted")
        self.events.pop()
        self._next -= 1

    def __len__(self) -> int:
        return len(self.events)
