"""The strategy book of a live session as JSON: written to the journal when it changes, read back by
a restarted session so it resumes its positions instead of entering again on top of them."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from engine.domain.portfolio import CexAccount, Portfolio

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


def apply_fill(p: Portfolio, venue: str, asset: str, perp: bool, signed_qty: float, price: float, fee: float,
               *, size_from_venue: bool = False) -> None:
    """A fill the book never saw (found at restart): spot moves the coin and the cash; a perp trades
    the position, or, where the venue's own size was already taken (``size_from_venue``), only
    books its fee."""
    acct = p.account(venue)
    if perp:
        if size_from_venue:
            acct.usdt -= fee
        else:
            acct.usdt += acct.perp(asset).trade(signed_qty, price) - fee
    else:
        acct.spot[asset] = acct.spot.get(asset, 0.0) + signed_qty
        acct.usdt -= signed_qty * price + fee


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
