"""Numbers at the ccxt boundary: Decimals from ccxt's floats and strings, steps, exact floats."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from engine.domain.venue_ports import MarketKind, VenueError, VenueErrorKind, VenueFee


def dec(value: Any) -> Decimal | None:
    """Decimal from a ccxt number/string; None for missing values. Floats go through repr (shortest)."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def fees_of(raw: Any) -> tuple[VenueFee, ...]:
    """The fees of a ccxt-parsed order or trade, summed per currency: ccxt's ``fees`` list (every
    currency the venue charged in), else its single ``fee``. Entries without a currency or a cost
    are left out; none at all means the venue did not report the fee (not that it was zero)."""
    if not isinstance(raw, dict):
        return ()
    listed = raw.get("fees")
    entries = listed if isinstance(listed, list) and listed else [raw.get("fee")]
    totals: dict[str, Decimal] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        currency, cost = entry.get("currency"), dec(entry.get("cost"))
        if not currency or cost is None or not cost.is_finite():
            continue
        totals[str(currency)] = totals.get(str(currency), Decimal(0)) + cost
    return tuple(VenueFee(c, v) for c, v in totals.items())


def trades_fees(trades: Any) -> tuple[VenueFee, ...]:
    """The fees of an order's ccxt-parsed trades, summed per currency; none when any trade came
    without its fee (a partial sum would read as the whole fee of the order)."""
    per_trade = [fees_of(t) for t in trades] if isinstance(trades, list) else []
    if not per_trade or not all(per_trade):
        return ()
    totals: dict[str, Decimal] = {}
    for fees in per_trade:
        for fee in fees:
            totals[fee.currency] = totals.get(fee.currency, Decimal(0)) + fee.cost
    return tuple(VenueFee(c, v) for c, v in totals.items())


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
