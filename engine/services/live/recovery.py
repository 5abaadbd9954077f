"""Restart recovery (DESIGN §7): read positions and open orders back from the venues, compare them
with the journal, and list every difference for the operator before trading resumes."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from engine.domain.venue_ports import CexVenuePort, VenueOrder, VenuePosition
from engine.services.live.journal import Journal


@dataclass(frozen=True, slots=True)
class Difference:
    venue: str
    kind: str          # order_missing_on_venue | unknown_order_on_venue | position_mismatch | venue_unreachable
    detail: str


@dataclass
class RecoveryReport:
    positions: dict[str, list[VenuePosition]] = field(default_factory=dict)
    open_orders: dict[str, list[VenueOrder]] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences


async def _read_venue(port: CexVenuePort, timeout: float) -> tuple[list[VenuePosition], list[VenueOrder]]:
    positions, orders = await asyncio.wait_for(
        asyncio.gather(port.fetch_positions(), port.fetch_open_orders()), timeout)
    return positions, orders


async def recover(venues: Mapping[str, CexVenuePort], journal: Journal, timeout: float) -> RecoveryReport:
    report = RecoveryReport()
    names = list(venues)
    results = await asyncio.gather(*(_read_venue(venues[v], timeout) for v in names), return_exceptions=True)
    journal_open = journal.open_orders()
    journal_pos = journal.positions()
    for venue, res in zip(names, results):
        if isinstance(res, BaseException):
            report.differences.append(Difference(venue, "venue_unreachable",
                                                 f"could not read positions/orders: {res or type(res).__name__}"))
            continue
        positions, orders = res
        report.positions[venue] = positions
        report.open_orders[venue] = orders
        venue_ids = {o.client_order_id for o in orders if o.client_order_id}
        known = {o.client_order_id for o in journal_open if o.venue == venue}
        for o in journal_open:
            if o.venue == venue and o.client_order_id not in venue_ids:
                report.differences.append(Difference(
                    venue, "order_missing_on_venue",
                    f"journal has {o.side} {o.amount} {o.symbol} ({o.client_order_id}) {o.status}; "
                    "the venue lists it as not open (filled or cancelled while we were away)"))
        for o in orders:
            if o.client_order_id not in known:
                report.differences.append(Difference(
                    venue, "unknown_order_on_venue",
                    f"open {o.side.value if o.side else '?'} {o.amount} {o.symbol} "
                    f"(id {o.order_id}, client id {o.client_order_id}) is not in the journal"))
        seen: set[str] = set()
        for p in positions:
            seen.add(p.symbol)
            expected = journal_pos.get((venue, p.symbol), Decimal(0))
            if p.size != expected:
                report.differences.append(Difference(
                    venue, "position_mismatch",
                    f"{p.symbol}: venue {p.size}, journal fills imply {expected}"))
        for (v, symbol), size in journal_pos.items():
            if v == venue and symbol not in seen:
                report.differences.append(Difference(
                    venue, "position_mismatch", f"{symbol}: venue has none, journal fills imply {size}"))
    return report
