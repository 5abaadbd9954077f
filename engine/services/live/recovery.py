"""Restart recovery: before a live session trades, read positions, open orders and
balances back from the venues, compare them with the journal, and list every difference.

What is compared:
- open orders: the journal's orders still believed open vs the venue's open orders (client ids);
- perp positions on the mode's symbols: the venue vs the journal's latest strategy book of the mode
  (what the previous session believed it held) or, without a book, vs the positions the journal's
  fills imply.
Balances are read and shown (a venue account also holds money the strategy does not manage, so
they are not compared). The report says whether the operator must acknowledge it before trading
starts: any difference, or anything open (positions or orders) the new session would take over.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from engine.domain.venue_ports import CexVenuePort, VenueBalance, VenueOrder, VenuePosition
from engine.services.live.journal import Journal

TOLERANCE = Decimal("1e-9")


@dataclass(frozen=True, slots=True)
class Difference:
    venue: str
    kind: str          # order_missing_on_venue | unknown_order_on_venue | position_mismatch | venue_unreachable
    detail: str

    def __str__(self) -> str:
        return f"{self.venue}: {self.kind}: {self.detail}"


@dataclass
class RecoveryReport:
    positions: dict[str, list[VenuePosition]] = field(default_factory=dict)
    open_orders: dict[str, list[VenueOrder]] = field(default_factory=dict)
    balances: dict[str, list[VenueBalance]] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    book: dict | None = None            # the journal's latest (not flat) book of the mode, if any
    book_session: str | None = None
    book_at: float | None = None
    acknowledged: bool = False

    @property
    def clean(self) -> bool:
        return not self.differences

    @property
    def flat(self) -> bool:
        return not any(self.positions.values()) and not any(self.open_orders.values())

    @property
    def needs_acknowledgement(self) -> bool:
        return not (self.clean and self.flat and self.book is None)

    def lines(self) -> list[str]:
        """Human-readable summary for the CLI and the dashboard."""
        out: list[str] = []
        if self.book is not None:
            out.append(f"journal: strategy book of session {self.book_session} found: the session resumes it "
                       "(perp sizes taken from the venues)")
        for venue in sorted(set(self.positions) | set(self.open_orders) | set(self.balances)):
            for p in self.positions.get(venue, []):
                out.append(f"{venue}: position {p.symbol} {p.size} (entry {p.entry_price})")
            for o in self.open_orders.get(venue, []):
                out.append(f"{venue}: open order {o.side.value if o.side else '?'} {o.amount} {o.symbol} "
                           f"@ {o.price} (client id {o.client_order_id})")
            usdt = [b for b in self.balances.get(venue, []) if b.asset == "USDT"]
            if usdt:
                out.append(f"{venue}: USDT " + ", ".join(f"{b.account} {b.total} (free {b.free})" for b in usdt))
        out.extend(f"DIFFERENCE {d}" for d in self.differences)
        if not out:
            out.append("venues flat, journal agrees: nothing to recover")
        return out


def book_perps(book: dict | None) -> dict[tuple[str, str], Decimal]:
    """(venue, asset) -> size of the perps in a saved book."""
    out: dict[tuple[str, str], Decimal] = {}
    for venue, acct in ((book or {}).get("cex") or {}).items():
        for asset, (size, _entry) in (acct.get("perps") or {}).items():
            if size:
                out[(venue, asset)] = Decimal(repr(float(size)))
    return out


async def _read_venue(port: CexVenuePort, timeout: float):
    return await asyncio.wait_for(
        asyncio.gather(port.fetch_positions(), port.fetch_open_orders(), port.fetch_balances()), timeout)


async def recover(venues: Mapping[str, CexVenuePort], journal: Journal, *, mode: str, execution: str,
                  perp_symbol_of: Mapping[str, str], timeout: float) -> RecoveryReport:
    """``perp_symbol_of``: asset -> unified perp symbol, to compare a book's perps with the venues'."""
    report = RecoveryReport()
    saved = journal.latest_book(mode, execution)
    if saved is not None and not saved[2].get("flat", False):
        report.book_session, report.book_at, report.book = saved
    names = list(venues)
    results = await asyncio.gather(*(_read_venue(venues[v], timeout) for v in names), return_exceptions=True)
    journal_open = journal.open_orders()
    if report.book is not None:
        expected = {(v, perp_symbol_of.get(a, a)): size for (v, a), size in book_perps(report.book).items()}
        source = "the journal's strategy book"
    else:
        expected = journal.positions()
        source = "the journal's fills"
    for venue, res in zip(names, results):
        if isinstance(res, BaseException):
            if isinstance(res, asyncio.CancelledError):
                raise res
            why = "no answer in time" if isinstance(res, asyncio.TimeoutError) else (str(res) or type(res).__name__)
            report.differences.append(Difference(venue, "venue_unreachable",
                                                 f"could not read positions/orders/balances: {why}"))
            continue
        positions, orders, balances = res
        report.positions[venue] = positions
        report.open_orders[venue] = orders
        report.balances[venue] = balances
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
            want = expected.get((venue, p.symbol), Decimal(0))
            if abs(p.size - want) > TOLERANCE:
                report.differences.append(Difference(
                    venue, "position_mismatch", f"{p.symbol}: venue {p.size}, {source} {want}"))
        for (v, symbol), size in expected.items():
            if v == venue and symbol not in seen and ":" in symbol and abs(size) > TOLERANCE:
                report.differences.append(Difference(
                    venue, "position_mismatch", f"{symbol}: venue has none, {source} {size}"))
    return report
