"""The strategy book of a live session as JSON: written to the journal when it changes, read back by
a restarted session so it resumes its positions instead of entering again on top of them."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.domain.portfolio import CexAccount, Portfolio
from engine.domain.venue_ports import VenueFee, VenueFill

Book = dict[str, Any]


def book_of(p: Portfolio, capital: float, entered: bool, flat: bool,
            spot_baseline: dict[tuple[str, str], Decimal] | None = None) -> Book:
    """The book as the journal stores it; ``flat`` also when nothing is held. ``spot_baseline``: what
    each spot account held beyond the book when the session started (a restart compares with it)."""
    holds = any(pos.size for a in p.cex.values() for pos in a.perps.values()) \
        or any(q for a in p.cex.values() for q in a.spot.values()) or bool(p.wallet.supply_scaled) \
        or bool(p.wallet.debt_scaled)
    return {
        "cex": {v: {"usdt": a.usdt, "spot": dict(a.spot),
                    "perps": {k: [pos.size, pos.entry_price] for k, pos in a.perps.items()}}
                for v, a in p.cex.items()},
        "wallet": {"tokens": dict(p.wallet.tokens), "supply_scaled": dict(p.wallet.supply_scaled),
                   "debt_scaled": dict(p.wallet.debt_scaled), "emode": p.wallet.emode},
        "capital": capital, "entered": entered, "flat": flat or not holds,
        "spot_baseline": {v: {a: str(q) for (v2, a), q in (spot_baseline or {}).items() if v2 == v}
                          for v in sorted({v for v, _ in (spot_baseline or {})})},
    }


def load_book(p: Portfolio, book: Book, capital: float) -> float:
    """Put a saved book into ``p``; returns the book's capital (``capital`` when it has none)."""
    p.cex.clear()
    for venue, a in (book.get("cex") or {}).items():
        acct = CexAccount(usdt=float(a.get("usdt", 0.0)), spot={k: float(v) for k, v in a.get("spot", {}).items()})
        for asset, (size, entry) in (a.get("perps") or {}).items():
            pos = acct.perp(asset)
            pos.size, pos.entry_price = float(size), float(entry)
        p.cex[venue] = acct
    w = book.get("wallet") or {}
    p.wallet.tokens = {k: float(v) for k, v in (w.get("tokens") or {}).items()}
    p.wallet.supply_scaled = {k: float(v) for k, v in (w.get("supply_scaled") or {}).items()}
    p.wallet.debt_scaled = {k: float(v) for k, v in (w.get("debt_scaled") or {}).items()}
    p.wallet.emode = bool(w.get("emode", False))
    return float(book.get("capital", capital))


@dataclass(frozen=True, slots=True)
class FillFee:
    """What one fill paid, as the book takes it: ``cash`` USDT from the account's cash and ``coin``
    units of the traded coin from its spot holding (Binance, Bybit and OKX take a spot buy's fee in
    the coin bought). ``reported``: the venue said so; otherwise the fee schedule's estimate in USDT."""

    cash: float = 0.0
    coin: float = 0.0
    reported: bool = False

    def value(self, price: float) -> float:
        """The fee in USD, its coin part at ``price`` (the price the book values the coin at)."""
        return self.cash + self.coin * price


def quote_of(symbol: str) -> str:
    """The currency a fill of ``symbol`` settles in: a perp's settle coin, a spot pair's quote."""
    return symbol.rpartition(":")[2] if ":" in symbol else symbol.partition("/")[2]


def fill_fee(fees: Sequence[VenueFee], symbol: str, notional: float, bps: float,
             share: float = 1.0) -> FillFee:
    """The fee of a fill of ``symbol`` worth ``notional`` USDT: the venue's own ``fees`` (times
    ``share``, the part of the order this fill is) where it reported them, else ``bps`` of the notional.

    The estimate is also used when a fee came in a currency the book does not hold (BNB on a Binance
    account paying fees in BNB): the book has nowhere to take it from, and the venue's cash and coin
    are then reconciled against the estimate as when no fee is reported."""
    estimate = FillFee(cash=notional * bps * 1e-4)
    if not fees:
        return estimate
    base, quote, perp = symbol.partition("/")[0], quote_of(symbol), ":" in symbol
    cash = coin = 0.0
    for f in fees:
        if f.currency == quote:
            cash += float(f.cost) * share
        elif f.currency == base and not perp:
            coin += float(f.cost) * share
        else:
            return estimate
    return FillFee(cash, coin, True)


def summed_fees(fills: Sequence[VenueFill]) -> tuple[VenueFee, ...]:
    """The fees of an order's trades per currency; none when any trade came without its fee (a
    partial sum would read as the whole fee)."""
    if not fills or any(not f.fees for f in fills):
        return ()
    totals: dict[str, Decimal] = {}
    for f in fills:
        for fee in f.fees:
            totals[fee.currency] = totals.get(fee.currency, Decimal(0)) + fee.cost
    return tuple(VenueFee(c, v) for c, v in totals.items())


def apply_fill(p: Portfolio, venue: str, asset: str, perp: bool, signed_qty: float, price: float, fee: FillFee,
               *, size_from_venue: bool = False) -> None:
    """Book one fill with its fee into ``p``: spot moves the coin (less a fee taken in it) and the
    cash (less a fee taken in it); a perp trades the position and pays its fee from the cash, or,
    where the venue's own size was already taken (``size_from_venue``, a fill found at restart),
    only books its fee. Every place the live book takes a fill goes through here."""
    acct = p.account(venue)
    if perp:
        if size_from_venue:
            acct.usdt -= fee.cash
        else:
            acct.usdt += acct.perp(asset).trade(signed_qty, price) - fee.cash
    else:
        acct.spot[asset] = acct.spot.get(asset, 0.0) + signed_qty - fee.coin
        acct.usdt -= signed_qty * price + fee.cash


class BookWriter:
    """Writes a book to the journal only when it differs from the last one written."""

    def __init__(self, save) -> None:
        """``save(book)`` persists one book (the session's journal call)."""
        self._save = save
        self._last: str | None = None

    def write(self, book: Book) -> bool:
        text = json.dumps(book, sort_keys=True)
        if text == self._last:
            return False
        self._save(book)
        self._last = text
        return True
