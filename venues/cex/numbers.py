"""Numbers at the ccxt boundary: Decimals from ccxt's floats and strings, steps, exact floats."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from engine.domain.venue_ports import MarketKind, VenueError, VenueErrorKind


def dec(value: Any) -> Decimal | None:
    """Decimal from a ccxt number/string; None for missing values. Floats go through repr (shortest)."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def kind_of(symbol: str) -> MarketKind:
    """Unified symbols with a settle currency (``BASE/QUOTE:SETTLE``) are perps here."""
    return MarketKind.PERP if ":" in symbol else MarketKind.SPOT


def step(exchange: Any, precision: Any) -> Decimal | None:
    """The increment a market's ``precision`` entry stands for (ccxt has two precision modes)."""
    if precision is None:
        return None
    if exchange.precisionMode == ccxt.TICK_SIZE:
        return dec(precision)
    return Decimal(1).scaleb(-int(precision))  # DECIMAL_PLACES: precision is a digit count


def as_float(venue: str, value: Decimal, what: str) -> float:
    """ccxt takes floats; only pass values that survive the round trip exactly."""
    f = float(value)
    if Decimal(repr(f)) != value:
        raise VenueError(venue, VenueErrorKind.REJECTED, f"{what} {value} cannot be sent exactly",
                         operation="create_order")
    return f
