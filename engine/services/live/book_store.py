"""The strategy book of a live session as JSON: written to the journal when it changes, read back by
a restarted session so it resumes its positions instead of entering again on top of them."""
from __future__ import annotations

import json
from typing import Any

from engine.domain.portfolio import CexAccount, Portfolio

Book = dict[str, Any]


def book_of(p: Portfolio, capital: float, entered: bool, flat: bool) -> Book:
    """The book as the journal stores it; ``flat`` also when nothing is held."""
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
