"""The order blotter of a session: every order the gate sent, with its state as the venue last
reported it, and in paper sessions every simulated fill (capped; the journal keeps the live orders).

``source`` says who asked: the strategy, or the operator's order ticket (``manual``: client ids with
the ``man`` prefix); paper rows have status ``filled (paper)``."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

from engine.domain.venue_ports import OrderRequest, VenueOrder

MANUAL_PREFIX = "man"       # engine.services.live.execution.MANUAL_PREFIX (kept here: no import cycle)

BLOTTER_LIMIT = 500


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One row of the order blotter (a live order, or a simulated paper fill)."""

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
    source: str = "strategy"             # strategy | manual


class Blotter:
    def __init__(self, limit: int = BLOTTER_LIMIT) -> None:
        self._rows: deque[str] = deque(maxlen=limit)         # client ids, oldest first
        self._by_id: dict[str, OrderRecord] = {}

    def submitted(self, venue: str, request: OrderRequest) -> None:
        cid = request.client_order_id
        self._add(OrderRecord(cid, venue, request.symbol, request.side.value, str(request.amount),
                              request.reduce_only, "submitted", time.time(),
                              source="manual" if cid.startswith(MANUAL_PREFIX) else "strategy"))

    def paper_fill(self, client_order_id: str, venue: str, symbol: str, side: str, amount: float, price: float,
                   reduce_only: bool, manual: bool) -> None:
        """A simulated fill of a paper session (no venue saw it)."""
        text = f"{amount:.8g}"
        self._add(OrderRecord(client_order_id, venue, symbol, side, text, reduce_only, "filled (paper)", time.time(),
                              filled=text, average=f"{price:.8g}", source="manual" if manual else "strategy"))

    def _add(self, record: OrderRecord) -> None:
        if len(self._rows) == self._rows.maxlen:
            self._by_id.pop(self._rows[0], None)
        self._rows.append(record.client_order_id)
        self._by_id[record.client_order_id] = record

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
