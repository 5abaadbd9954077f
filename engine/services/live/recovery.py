"""Restart recovery: before a live session trades, read positions, open orders and balances back from
the venues, resolve every order the journal left unfinished, compare, and list every difference.

Orders: every journal row still ``submitted``, ``open`` or ``unknown`` (the previous session was cut
off with it out, or its answer was lost) is resolved with the venue by its client order id, the
order and then its trades, and closed in the journal:
- filled (fully or partly, now finished): the fill is adopted — journaled, and applied to the resumed
  book, which never saw it (journal entries are committed in order, so a book written after an
  order's final row cannot exist while the row is still open);
- still open: cancelled (a restarted session does not know what the order was for; a market
  strategy never rests one on purpose), and any part already filled adopted;
- absent: the venue never booked it — marked not placed;
- no conclusive answer: UNKNOWN, and trading is blocked (the start fails saying so).

Positions and spot: the venue vs the journal's latest strategy book of the mode (what the previous
session believed it held, plus the fills just adopted) or, without a book, the positions the
journal's fills imply. A read that fails, times out or cannot be parsed is UNKNOWN — never "no
position" — and blocks trading until a read succeeds; a read that disagrees with the book is taken
again to confirm the difference before it is reported.

The report says whether the operator must acknowledge it before trading starts: any difference, any
order resolved, or anything open the new session takes over.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.venue_ports import (
    CexVenuePort,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueBalance,
    VenueError,
    VenueFee,
    VenueOrder,
    VenuePosition,
)
from engine.services.live.journal import Journal, JournalOrder
from engine.services.live.outcome_resolver import OutcomeUnresolved, ResolvePolicy, UnknownOutcomeResolver, is_gone
from engine.services.live.reconcile import spot_total

TOLERANCE = Decimal("1e-9")
READ_ATTEMPTS = 2            # a venue's whole read (positions, orders, balances), the adapter's retries inside
CONFIRM_PAUSE_S = 0.2
#: Difference kinds that block trading (the start fails): nothing about the venue is known.
BLOCKING = frozenset({"venue_unreadable", "order_unknown"})


@dataclass(frozen=True, slots=True)
class Difference:
    venue: str
    kind: str          # order_missing_on_venue | unknown_order_on_venue | position_mismatch | spot_mismatch
    #                    | order_resolved | venue_unreadable | order_unknown
    detail: str

    def __str__(self) -> str:
        return f"{self.venue}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AdoptedFill:
    """A fill the previous session never applied to its book, found at restart."""

    venue: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    client_order_id: str
    fees: tuple[VenueFee, ...] = ()     # as the venue reported them (empty: not reported)


@dataclass
class RecoveryReport:
    positions: dict[str, list[VenuePosition]] = field(default_factory=dict)
    open_orders: dict[str, list[VenueOrder]] = field(default_factory=dict)
    balances: dict[str, list[VenueBalance]] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)           # one line per journal row closed
    adopted: list[AdoptedFill] = field(default_factory=list)
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
    def blocking(self) -> list[Difference]:
        """What makes trading impossible: a venue whose state is unknown, an order nobody can resolve."""
        return [d for d in self.differences if d.kind in BLOCKING]

    @property
    def needs_acknowledgement(self) -> bool:
        return not (self.clean and self.flat and self.book is None and not self.resolved)

    def lines(self) -> list[str]:
        """Human-readable summary for the CLI and the dashboard."""
        out: list[str] = []
        if self.book is not None:
            out.append(f"journal: strategy book of session {self.book_session} found: the session resumes it "
                       "(perp sizes taken from the venues)")
        out.extend(f"journal order resolved: {line}" for line in self.resolved)
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


def book_spot(book: dict | None) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for venue, acct in ((book or {}).get("cex") or {}).items():
        for asset, qty in (acct.get("spot") or {}).items():
            out[(venue, asset)] = Decimal(repr(float(qty)))
    return out


def book_spot_baseline(book: dict | None) -> dict[tuple[str, str], Decimal]:
    """What each spot account held beyond the book when the book's session started."""
    return {(v, a): Decimal(str(q)) for v, assets in ((book or {}).get("spot_baseline") or {}).items()
            for a, q in assets.items()}


async def _read_venue(port: CexVenuePort, timeout: float):
    return await asyncio.wait_for(
        asyncio.gather(port.fetch_positions(), port.fetch_open_orders(), port.fetch_balances()), timeout)


async def _read(port: CexVenuePort, timeout: float) -> tuple[list, list, list] | BaseException:
    """The venue's positions, open orders and balances, read again once if the first read failed."""
    last: BaseException | None = None
    for attempt in range(READ_ATTEMPTS):
        try:
            return await _read_venue(port, timeout)
        except asyncio.CancelledError:
            raise
        except (VenueError, asyncio.TimeoutError) as exc:
            last = exc
        except Exception as exc:                   # a parser's surprise: unreadable, never "nothing"
            last = exc
        if attempt + 1 < READ_ATTEMPTS:
            await asyncio.sleep(CONFIRM_PAUSE_S)
    assert last is not None
    return last


def _why(exc: BaseException) -> str:
    return "no answer in time" if isinstance(exc, asyncio.TimeoutError) else (str(exc) or type(exc).__name__)


def _request_of(row: JournalOrder) -> OrderRequest:
    return OrderRequest(row.symbol, Side(row.side), OrderType.MARKET, row.amount, row.client_order_id,
                        reduce_only=row.reduce_only)


async def recover(venues: Mapping[str, CexVenuePort], journal: Journal, *, mode: str, execution: str,
                  perp_symbol_of: Mapping[str, str], timeout: float,
                  spot_legs: Mapping[tuple[str, str], tuple[str, str]] | None = None,
                  resolve_policy: ResolvePolicy | None = None) -> RecoveryReport:
    """``perp_symbol_of``: asset -> unified perp symbol, to compare a book's perps with the venues'.
    ``spot_legs``: (venue, asset) -> (account, spot symbol) of the spot holdings to compare."""
    report = RecoveryReport()
    saved = journal.latest_book(mode, execution)
    if saved is not None and not saved[2].get("flat", False):
        report.book_session, report.book_at, report.book = saved
    names = list(venues)
    results = await asyncio.gather(*(_read(venues[v], timeout) for v in names))
    readable: dict[str, tuple[list, list, list]] = {}
    for venue, res in zip(names, results):
        if isinstance(res, BaseException):
            report.differences.append(Difference(
                venue, "venue_unreadable", f"positions/orders/balances UNKNOWN: {_why(res)}"))
        else:
            readable[venue] = res
    resolver = UnknownOutcomeResolver(venues, resolve_policy or ResolvePolicy(budget_s=max(timeout, 1.0)))
    journal_open = journal.open_orders()
    # Resolve every unfinished journal row of a venue that answered (an unreadable venue blocks anyway).
    for row in journal_open:
        if row.venue not in readable or row.venue not in venues:
            continue
        listed = {o.client_order_id: o for o in readable[row.venue][1] if o.client_order_id}
        await _resolve_row(report, resolver, venues[row.venue], journal, row, listed.get(row.client_order_id))
    if report.book is not None:
        expected = {(v, perp_symbol_of.get(a, a)): size for (v, a), size in book_perps(report.book).items()}
        source = "the journal's strategy book"
        for fill in report.adopted:            # the book never saw them
            if ":" in fill.symbol:
                key = (fill.venue, fill.symbol)
                signed = fill.amount if fill.side == "buy" else -fill.amount
                expected[key] = expected.get(key, Decimal(0)) + signed
    else:
        expected = journal.positions()         # the adopted fills are journaled already
        source = "the journal's fills"
    for venue, (positions, orders, balances) in readable.items():
        known = {r.client_order_id for r in journal_open if r.venue == venue}
        if _differs(venue, positions, expected):
            confirm = await _read(venues[venue], timeout)          # a difference must be seen twice
            if isinstance(confirm, BaseException):
                report.differences.append(Difference(venue, "venue_unreadable",
                                                     f"positions UNKNOWN on the confirming read: {_why(confirm)}"))
                continue
            positions, orders, balances = confirm
        # the journal's own orders were resolved above (an open one cancelled): not foreign
        orders = [o for o in orders if o.client_order_id not in known]
        report.positions[venue] = positions
        report.open_orders[venue] = orders
        report.balances[venue] = balances
        for o in orders:
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
    _compare_spot(report, spot_legs or {})
    return report


def _differs(venue: str, positions: list[VenuePosition], expected: Mapping[tuple[str, str], Decimal]) -> bool:
    held = {p.symbol: p.size for p in positions}
    for (v, symbol), size in expected.items():
        if v == venue and ":" in symbol and abs(held.get(symbol, Decimal(0)) - size) > TOLERANCE:
            return True
    return any(abs(size - expected.get((venue, symbol), Decimal(0))) > TOLERANCE for symbol, size in held.items())


def _compare_spot(report: RecoveryReport, spot_legs: Mapping[tuple[str, str], tuple[str, str]]) -> None:
    """A resumed book's spot holding vs the venue account (beyond what it held before the book)."""
    if report.book is None:
        return
    baseline = book_spot_baseline(report.book)
    held_in_book = book_spot(report.book)
    for (venue, asset), (account, symbol) in spot_legs.items():
        if venue not in report.balances or (venue, asset) not in baseline:
            continue
        book_qty = held_in_book.get((venue, asset), Decimal(0))
        for f in report.adopted:
            if f.venue == venue and f.symbol == symbol:
                book_qty += f.amount if f.side == "buy" else -f.amount
        venue_qty = spot_total(report.balances[venue], account, asset) - baseline[(venue, asset)]
        # fees taken in the bought coin: allow 1 % of the holding (a doubled entry is 100 %)
        if abs(venue_qty - book_qty) > max(TOLERANCE, abs(book_qty) * Decimal("0.01")):
            report.differences.append(Difference(
                venue, "spot_mismatch", f"{symbol}: the account holds {venue_qty} beyond what it held before the "
                f"session, the journal's strategy book {book_qty}"))


async def _resolve_row(report: RecoveryReport, resolver: UnknownOutcomeResolver, port: CexVenuePort,
                       journal: Journal, row: JournalOrder, listed: VenueOrder | None) -> None:
    request = _request_of(row)
    what = f"{row.side} {row.amount} {row.symbol} on {row.venue} (client id {row.client_order_id}, was {row.status})"
    order = listed
    if order is None:
        sent_at = time.monotonic() - max(0.0, time.time() - row.created_at) if row.created_at else None
        try:
            resolution = await resolver.resolve(row.venue, request, f"the journal row left {row.status}", sent_at)
        except OutcomeUnresolved as exc:
            journal.order_update(row.client_order_id, "unknown", error=str(exc))
            report.differences.append(Difference(row.venue, "order_unknown", f"{what}: {exc}"))
            return
        if resolution.not_placed:
            journal.order_update(row.client_order_id, "not_placed",
                                 error="restart: the venue has no such order or trade")
            report.resolved.append(f"{what}: not placed (the venue never booked it)")
            return
        order = resolution.order
    assert order is not None
    if order.status in (OrderStatus.OPEN, OrderStatus.UNKNOWN):
        # Decided: cancel it. A restarted session cannot know what the order was for.
        try:
            cancelled = await port.cancel_order(row.symbol, order_id=order.order_id,
                                                client_order_id=row.client_order_id)
        except VenueError as exc:
            if not is_gone(exc):
                journal.order_update(row.client_order_id, "unknown", error=f"restart: cancel failed: {exc}")
                report.differences.append(Difference(row.venue, "order_unknown",
                                                     f"{what}: still open and the cancel failed: {exc}"))
                return
            cancelled = None
        final = await port.fetch_order_by_client_id(row.symbol, row.client_order_id) or cancelled or order
        order = final
        note = "was open: cancelled"
    else:
        note = order.status.value
    filled = order.filled or Decimal(0)
    status = order.status.value if order.status is not OrderStatus.UNKNOWN else "canceled"
    journal.order_update(row.client_order_id, status, order.order_id, filled, order.average)
    if filled > 0:
        price = order.average or order.price or Decimal(0)
        journal.fill(row.client_order_id, row.venue, row.symbol, row.side, filled, price)
        report.adopted.append(AdoptedFill(row.venue, row.symbol, row.side, filled, price, row.client_order_id,
                                           order.fees))
        report.resolved.append(f"{what}: {note}, filled {filled} @ {price}: adopted into the book")
    else:
        report.resolved.append(f"{what}: {note}, nothing filled")
    report.differences.append(Difference(row.venue, "order_resolved", report.resolved[-1]))
