"""The venues are the truth: every live tick reads their positions on the mode's perp symbols and
compares them with the strategy book. Any difference (a manual trade, a liquidation, a lost fill)
is a risk breach: trading on a wrong book is guesswork, so it halts."""
from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from engine.domain.portfolio import Portfolio
from engine.domain.venue_ports import CexVenuePort, VenuePosition
from engine.services.live.market_feed import perp_symbol

POSITION_TOLERANCE = 1e-8       # base units; fills are applied from the venue's own numbers


async def read_positions(venues: Mapping[str, CexVenuePort], perp_keys: Sequence[tuple[str, str]],
                         timeout: float) -> tuple[dict[str, list[VenuePosition]] | None, str]:
    """(every venue's positions on the mode's perp symbols, error). None when any venue could not
    answer: no comparison on partial information; the error says which and why."""
    symbols = {v: [perp_symbol(a)] for v, a in perp_keys}
    names = list(symbols)
    results = await asyncio.gather(
        *(asyncio.wait_for(venues[v].fetch_positions(symbols[v]), timeout) for v in names), return_exceptions=True)
    out: dict[str, list[VenuePosition]] = {}
    for venue, res in zip(names, results):
        if isinstance(res, BaseException):
            if isinstance(res, asyncio.CancelledError):
                raise res
            why = "no answer in time" if isinstance(res, asyncio.TimeoutError) else (str(res) or type(res).__name__)
            return None, f"{venue}: positions not read: {why}"
        out[venue] = res
    return out, ""


def mismatches(book: Portfolio, venue_positions: Mapping[str, list[VenuePosition]],
               perp_keys: Sequence[tuple[str, str]],
               foreign: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """"venue symbol" -> venue size minus the book's, for every perp that differs. ``foreign``:
    positions the session found at start and does not own (left alone, not compared)."""
    out: dict[str, float] = {}
    for venue, asset in perp_keys:
        symbol = perp_symbol(asset)
        venue_size = sum(float(p.size) for p in venue_positions.get(venue, []) if p.symbol == symbol)
        venue_size -= foreign.get((venue, symbol), 0.0)
        acct = book.cex.get(venue)
        size = acct.perps[asset].size if acct and asset in acct.perps else 0.0
        if abs(venue_size - size) > POSITION_TOLERANCE * max(1.0, abs(size)):
            out[f"{venue} {symbol}"] = venue_size - size
    return out
