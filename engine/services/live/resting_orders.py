"""Resting orders: a limit order that did not fill at once is followed until it is final, and every
later fill is booked into the live book exactly once.

Without this the book only knew what an order filled when it was placed; a resting remainder that
filled later (the price crossed) moved the venue's position but not the book's, and the next tick's
reconciliation halted the session on a perp or spot mismatch.

Each tracked order carries what has been booked of it (base units and their cost). Every tick the
order is looked up by its client order id; the venue's trades of that order (or, where the venue's
trades carry no client id, the order's filled amount and average) say how much has filled in total.
Only the part beyond what was booked is booked, at the price those new trades paid, so a fill is never
booked twice, whichever tick sees it. The tracked orders are saved inside the strategy book (the same
journal row as the positions they move), so a restart resumes them with exactly the booked amount the
positions already contain: a fill booked before the crash is not booked again, and one that came
while the workstation was down is booked once on the first look after the restart.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal

from engine.domain.venue_ports import CexVenuePort, OrderStatus, VenueError, VenueFee
from engine.services.live.book_store import summed_fees

log = logging.getLogger(__name__)

#: Statuses after which an order fills no more.
FINAL = frozenset({OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
DUST = 1e-12


@dataclass
class RestingOrder:
    """One order at a venue whose remainder may still fill; ``booked`` base units of it are in the
    book already, at a total cost ``booked_cost`` (quote)."""

    venue: str
    symbol: str
    asset: str
    perp: bool
    side: str                   # buy | sell
    client_order_id: str
    amount: float               # the order's size (base units)
    booked: float = 0.0
    booked_cost: float = 0.0
    source: str = "manual"      # manual | strategy

    def describe(self) -> str:
        return (f"{self.venue} {self.symbol} {self.side} {self.amount:g} ({self.client_order_id}): "
                f"{self.booked:g} filled and booked")


#: ``book(order, signed_qty, price)``: apply a new fill of ``order`` to the book.
#: books one new fill: (order, signed base units, price, the venue's fees of the order so far, the share
#: of them this fill is); the fees are empty where the venue did not report them
BookFill = Callable[[RestingOrder, float, float, tuple[VenueFee, ...], float], None]


class RestingOrders:
    """The session's resting orders (see the module docstring)."""

    def __init__(self, venues: Mapping[str, CexVenuePort], book: BookFill) -> None:
        self.venues = venues
        self._book = book
        self.orders: dict[str, RestingOrder] = {}

    def track(self, order: RestingOrder) -> None:
        self.orders[order.client_order_id] = order

    def __bool__(self) -> bool:
        return bool(self.orders)

    def keys(self) -> set[tuple[str, str]]:
        """(venue, symbol) of every order still resting."""
        return {(o.venue, o.symbol) for o in self.orders.values()}

    # ---- persistence (inside the strategy book) ------------------------------------------------------
    def dump(self) -> list[dict]:
        return [asdict(o) for o in self.orders.values()]

    def load(self, rows: list[dict] | None) -> None:
        self.orders = {}
        for row in rows or []:
            o = RestingOrder(**row)
            self.orders[o.client_order_id] = o

    # ---- the per-tick look ---------------------------------------------------------------------------
    async def poll(self) -> list[tuple[RestingOrder, float, float]]:
        """Look every resting order up; book what filled since the last look. Returns the fills booked
        (order, signed quantity, price). A venue that does not answer is asked again next tick."""
        booked: list[tuple[RestingOrder, float, float]] = []
        for cid, o in list(self.orders.items()):
            port = self.venues.get(o.venue)
            if port is None:
                continue
            try:
                order = await port.fetch_order_by_client_id(o.symbol, cid)
                fills = await port.fetch_fills_by_client_id(o.symbol, cid)
            except VenueError as exc:
                log.warning("resting order %s: look-up failed (%s); next tick", cid, exc)
                continue
            if order is None and not fills:
                continue                                 # not visible yet: ask again
            traded = sum((f.amount for f in fills or ()), Decimal(0))
            if fills and (order is None or order.filled is None or traded >= order.filled):
                # the venue's trades of the order: the exact prices of the new part
                filled = float(traded)
                cost = float(sum((f.amount * f.price for f in fills), Decimal(0)))
                fees = summed_fees(fills)
            else:                                        # trades not carried (or lagging): the order's own
                assert order is not None
                filled = float(order.filled or 0)
                average = order.average or order.price or Decimal(0)
                cost = filled * float(average)
                fees = order.fees
            new = filled - o.booked
            if new > DUST * max(1.0, o.amount):
                price = (cost - o.booked_cost) / new
                signed = new if o.side == "buy" else -new
                # the venue reports fees per order so far: the new part's share of them (one rate per
                # order, so exact for an order whose fills all pay the same rate)
                self._book(o, signed, price, fees, new / filled)
                o.booked, o.booked_cost = filled, cost
                booked.append((o, signed, price))
            if order is not None and order.status in FINAL and filled >= o.booked - DUST:
                del self.orders[cid]
        return booked
