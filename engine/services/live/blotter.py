"""The order blotter of a live session: every order the gate sent, with its state as the venue last
reported it (capped; the journal keeps them all)."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

from engine.domain.venue_ports import OrderRequest, VenueOrder

BLOTTER_LIMIT = 500


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One row of the order blotter (live orders; paper fills are events)."""

    client_order_id: str
    venue: str
    symbol: str
    side: str
    amount: str
    reduce_only: bool
    status: str
    submitted_at: float
    order_id: str | None = None
    filled: str | None = None
    average: str | None = None
    error: str = ""


class Blotter:
    def __init__(self, limit: int = BLOTTER_LIMIT) -> None:
        self._rows: deque[str] = deque(maxlen=limit)         # client ids, oldest first
        self._by_id: dict[str, OrderRecord] = {}

    def submitted(self, venue: str, request: OrderRequest) -> None:
        cid = request.client_order_id
        if len(self._rows) == self._rows.maxlen:
            self._by_id.pop(self._rows[0], None)
        self._rows.append(cid)
        self._by_id[cid] = OrderRecord(cid, venue, request.symbol, request.side.value, str(request.amount),
                                       request.reduce_only, "submitted", time.time())

    def reported(self, request: OrderRequest, order: VenueOrder) -> None:
        """The venue's view of the order (acknowledged, or read back until settled)."""
        rec = self._by_id.get(request.client_order_id)
        if rec is not None:
            self._by_id[rec.client_order_id] = replace(
                rec, status=order.status.value, order_id=order.order_id,
                filled=None if order.filled is None else str(order.filled),
                average=None if order.average is None else str(order.average))

    def failed(self, request: OrderRequest, error: str) -> None:
        self.marked(request, "failed", error)

    def marked(self, request: OrderRequest, status: str, error: str = "") -> None:
        """A state the gate knows without the venue's order: not_sent, unknown, not_placed, failed."""
        rec = self._by_id.get(request.client_order_id)
        if rec is not None:
            self._by_id[rec.client_order_id] = replace(rec, status=status, error=error or rec.error)

    def rows(self) -> tuple[OrderRecord, ...]:
        """Oldest first."""
        return tuple(self._by_id[cid] for cid in self._rows)

    def __len__(self) -> int:
        return len(self._rows)
