"""The book's CEX cash follows the venue's, and the difference is checked every live tick.

Three things keep them together:

- **funding the venue paid**: a live session books the payments the venue reports (its income / bill
  endpoint, read through the adapter) instead of an estimate from the rate, so the book's funding is
  the venue's to the last digit. Each payment is booked once (by the venue's id), as a ``funding``
  component, at the next trading step; payments read but not yet booked count on the book's side of
  the comparison. A payment on a symbol where the account also holds a position the session does
  not own is split by size: the foreign share belongs to the account beyond the book;
- **a cash baseline**: what each venue account held beyond the book when the session started (the
  book starts from the strategy's split of its capital, not from what the accounts hold). It is
  taken at the first complete reading, journaled with the book and restored with it;
- **allocations**: moving USDT between CEX books without a withdrawal (engine/services/live/execution.py)
  moves the book and not the venues, so it moves the baselines by the same amount.

The comparison, per venue: (venue cash - baseline) against the book's cash (+ funding read, not yet
booked). Beyond the venue's ``cash_reconciliation.tolerance_usdt`` it is a breach, exactly like a
perp mismatch. A venue with a transfer in flight is not compared (the money is between the two
books); its transfers are booked on both sides when they complete.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.domain.instructions import Fill, Instruction
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.domain.rewards import RewardPayout
from engine.domain.venue_ports import VenueFundingPayment
from engine.execution.cycle import VenueWorld
from engine.services.live.market_feed import perp_symbol


@dataclass(frozen=True, slots=True)
class PaidFunding:
    """One funding payment as the trading cycle books it (engine.execution.cycle.FundingPayment)."""

    venue: str
    asset: str
    size: float
    mark: float
    rate: float                  # implied by the payment: -payment / (size x mark)
    payment_usd: float           # the book's share, received (+) / paid (-)


def cash_mismatches(book: Portfolio, cash: Mapping[str, Decimal], baseline: Mapping[str, Decimal],
                    tolerance: Mapping[str, float], unbooked: Mapping[str, float] | None = None) -> dict[str, float]:
    """"what differs" -> venue cash minus the book's, for every venue beyond its tolerance.

    ``cash``: each venue's cash (excluding unrealised P&L) as read; ``baseline``: what it held beyond
    the book at the start (a venue without one is not compared yet); ``unbooked``: funding the venue
    paid that the book has read but not booked yet."""
    out: dict[str, float] = {}
    for venue, total in cash.items():
        base = baseline.get(venue)
        if base is None:
            continue
        acct = book.cex.get(venue)
        book_cash = (acct.usdt if acct is not None else 0.0) + (unbooked or {}).get(venue, 0.0)
        venue_cash = float(total - base)
        diff = venue_cash - book_cash
        if abs(diff) > tolerance[venue]:
            out[f"{venue} USDT cash: book {book_cash:.2f}, venue {venue_cash:.2f} (account {float(total):.2f} "
                f"less {float(base):.2f} held beyond the book at start), tolerance {tolerance[venue]:g}"] = diff
    return out


class CashBook:
    """A live session's cash reconciliation state: baselines, the funding cursor, funding read but not
    booked. Pure bookkeeping: the session reads the venues and hands the answers in."""

    def __init__(self, venues: Sequence[str], tolerance: Mapping[str, float], start_ms: int) -> None:
        self.venues = list(venues)
        self.tolerance = dict(tolerance)
        self.baseline: dict[str, Decimal] = {}
        #: per venue: ask for payments from this time (ms, inclusive), skipping the ids already booked there
        self.cursor: dict[str, int] = {v: start_ms for v in self.venues}
        self.seen: dict[str, set[str]] = {v: set() for v in self.venues}
        self.pending: list[VenueFundingPayment] = []

    # -- persistence with the book -----------------------------------------------------------------
    def to_book(self) -> dict[str, Any]:
        return {"baseline": {v: str(q) for v, q in sorted(self.baseline.items())},
                "funding_cursor": {v: [self.cursor[v], sorted(self.seen[v])] for v in self.venues}}

    def restore(self, book: Mapping[str, Any] | None, remeasure: Sequence[str] = ()) -> None:
        """Take the baselines and the funding cursor of a resumed book (funding paid while the session
        was away is read from the cursor on and booked at the first step). ``remeasure``: venues whose
        position changed while away, acknowledged by the operator: the venue wins, its position and
        its cash, so their baseline is measured again at the first reading."""
        saved = (book or {}).get("cash") or {}
        for v, q in (saved.get("baseline") or {}).items():
            if v in self.cursor and v not in remeasure:
                self.baseline[v] = Decimal(str(q))
        for v, (ms, ids) in (saved.get("funding_cursor") or {}).items():
            if v in self.cursor:
                self.cursor[v], self.seen[v] = int(ms), set(ids)

    # -- funding -----------------------------------------------------------------------------------
    def take(self, payments: Sequence[VenueFundingPayment]) -> int:
        """Queue the payments not seen before; returns how many were new."""
        new = 0
        for p in sorted(payments, key=lambda p: (p.timestamp_ms, p.payment_id)):
            if p.venue not in self.cursor or p.payment_id in self.seen[p.venue] or p.timestamp_ms < self.cursor[p.venue]:
                continue
            if p.timestamp_ms > self.cursor[p.venue]:
                self.cursor[p.venue], self.seen[p.venue] = p.timestamp_ms, set()
            self.seen[p.venue].add(p.payment_id)
            self.pending.append(p)
            new += 1
        return new

    def unbooked(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.pending:
            out[p.venue] = out.get(p.venue, 0.0) + float(p.amount)
        return out

    def settle(self, p: Portfolio, mv: MarketView, t: int,
               foreign: Mapping[tuple[str, str], float]) -> list[PaidFunding]:
        """Book the queued payments into the book's cash (the cycle books the component)."""
        out: list[PaidFunding] = []
        for pay in self.pending:
            asset = pay.symbol.split("/")[0]
            acct = p.account(pay.venue)
            size = acct.perps[asset].size if asset in acct.perps else 0.0
            other = foreign.get((pay.venue, pay.symbol), 0.0)
            share = 1.0 if not other else (size / (size + other) if size + other else 0.0)
            mine = float(pay.amount) * share
            if mine != float(pay.amount):        # the foreign position's share is the account's, not the book's
                self.baseline[pay.venue] = self.baseline.get(pay.venue, Decimal(0)) \
                    + pay.amount - Decimal(repr(mine))
            key = (pay.venue, asset)
            mark = mv.perp[key][t] if key in mv.perp else 0.0
            rate = -mine / (size * mark) if size and mark else 0.0
            acct.usdt += mine
            out.append(PaidFunding(pay.venue, asset, size, mark, rate, mine))
        self.pending.clear()
        return out

    # -- baselines ---------------------------------------------------------------------------------
    def set_missing_baselines(self, p: Portfolio, cash: Mapping[str, Decimal], skip: Sequence[str] = (),
                              read_at_ms: int | None = None) -> list[str]:
        """Baseline = what the venue holds beyond the book (and the funding it has not booked yet), for
        every venue read that has none; returns the venues that got one. ``read_at_ms``: when the read
        that gave ``cash`` started: a payment made before it is in the baseline, so the funding cursor
        moves there (it must not be booked on top)."""
        got: list[str] = []
        unbooked = self.unbooked()
        for venue, total in cash.items():
            if venue in self.baseline or venue in skip:
                continue
            acct = p.cex.get(venue)
            book_cash = (acct.usdt if acct is not None else 0.0) + unbooked.get(venue, 0.0)
            self.baseline[venue] = total - Decimal(repr(book_cash))
            if read_at_ms is not None and read_at_ms > self.cursor.get(venue, read_at_ms):
                self.cursor[venue], self.seen[venue] = read_at_ms, set()
            got.append(venue)
        return got

    def allocated(self, source: str, destination: str, amount: float) -> None:
        """A book-only move of USDT between two CEX books: the venues did not move."""
        for venue, sign in ((source, 1), (destination, -1)):
            if venue in self.baseline:
                self.baseline[venue] += sign * Decimal(repr(amount))

    def mismatches(self, p: Portfolio, cash: Mapping[str, Decimal]) -> dict[str, float]:
        return cash_mismatches(p, cash, self.baseline, self.tolerance, self.unbooked())


class VenuePaidFunding:
    """The simulated venue layer of a live session with funding from the venues: the cycle settles
    the payments the venues reported instead of simulating them from the rate."""

    def __init__(self, world: VenueWorld, cash: CashBook, portfolio: Portfolio, mv: MarketView,
                 foreign: Mapping[tuple[str, str], float]) -> None:
        self.world, self.cash, self.portfolio, self.mv, self.foreign = world, cash, portfolio, mv, foreign

    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill:
        return self.world.execute(ins, t, charge_gas)

    def settle_funding(self, t: int) -> list[PaidFunding]:
        return self.cash.settle(self.portfolio, self.mv, t, self.foreign)

    def sell_reward(self, t: int, payout: RewardPayout, tokens: float):
        return self.world.sell_reward(t, payout, tokens)

    def liquidate(self, t: int):
        return self.world.liquidate(t)

    def __getattr__(self, name: str) -> Any:     # anything else the simulated layer offers
        return getattr(self.world, name)


def perp_symbols_of(perp_keys: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v, a in perp_keys:
        out.setdefault(v, []).append(perp_symbol(a))
    return out
