"""Venue-specific readiness reads that have no unified ccxt method: key permissions, position/account
mode and funding interval. Each returns plain facts; the checks decide OK/WARN/FAIL.

Each venue's client class does its own read (venues/cex/binance.py, bybit.py, okx.py, from the
venues' REST docs as ccxt calls them); these functions pick the client of the adapter that holds the
fact and turn its answer into the types below.
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from engine.domain.venue_ports import MarketKind, VenueError, VenueErrorKind
from venues.cex.client import AccountMode, KeyPermissions, NotAvailable
from venues.cex.numbers import dec, kind_of

__all__ = ["AccountMode", "KeyPermissions", "NotAvailable", "account_mode", "funding_interval_hours",
           "key_permissions"]

if TYPE_CHECKING:
    from venues.cex.adapter import CexVenueAdapter


async def key_permissions(adapter: CexVenueAdapter) -> KeyPermissions:
    """The key's rights, read from the venue's first (main) account."""
    needs_futures = len(adapter.accounts) > 1 and bool(adapter.perp_accounts())
    return await adapter.accounts[0].key_permissions(needs_futures)


async def account_mode(adapter: CexVenueAdapter) -> AccountMode:
    """Position/account mode of the account that trades perps (the main one without perps)."""
    perps = adapter.perp_accounts()
    return await (perps[0] if perps else adapter.accounts[0]).account_mode()


async def funding_interval_hours(adapter: CexVenueAdapter, symbol: str) -> Decimal:
    if kind_of(symbol) is not MarketKind.PERP:
        raise ValueError(f"{symbol} is not a perp: it has no funding interval")
    interval = await adapter.account_for(symbol).funding_interval(symbol)
    hours = dec(str(interval)[:-1]) if isinstance(interval, str) and interval.endswith("h") else None
    if hours is None:
        raise VenueError(adapter.venue, VenueErrorKind.UNKNOWN, f"{symbol}: the venue did not report a funding interval")
    return hours
