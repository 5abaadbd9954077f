"""Event log with a global order; atomic bundles get a parent event and child events (DESIGN §6)."""
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

    def __len__(self) -> int:
        return len(self.events)
