"""The venues are the truth: every live tick reads their positions on the mode's perp symbols and the
spot holdings of the mode's spot legs, and compares them with the strategy book. Any difference (a
manual trade, a liquidation, a lost or doubled fill) is a risk breach: trading on a wrong book is
guesswork, so it halts.

Spot holdings are compared as a change: a venue account also holds coins the strategy does not manage,
so what the account held beyond the book when the session started (`spot_baseline`) is subtracted.
Spot fees are often taken in the bought coin, so the comparison allows twice the taker fee of the
holding; a doubled entry is a multiple of it.

The CEX cash (excluding unrealised P&L) of every venue the mode trades is read too
(engine/services/live/cash_recon.py compares it with the book's). The funding the venue paid is
read only when the cash moved: the history is an expensive read (Binance's income endpoint weighs
30, 1.5 s of ccxt's pacing, which would starve the market data if read every tick), and a payment
the book has not read shows as a cash difference. Such a difference is looked at again with the
funding history and then the cash read once more (``reread_cash``) before it counts; the history
is read first, so a payment it lists is in the cash read after it.

A read that fails, times out or cannot be parsed is *unknown*, never "no position": the tick that
got it does not trade (the session's guard allows nothing) and says why.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.domain.venue_ports import CexVenuePort, VenueBalance, VenueFundingPayment, VenuePosition
from engine.services.live.market_feed import perp_symbol, spot_symbol

POSITION_TOLERANCE = 1e-8       # base units; fills are applied from the venue's own numbers
SPOT_FEE_ALLOWANCE = 2.0        # x the taker fee of the holding: coin fees a venue did not report


@runtime_checkable
class TransfersInFlight(Protocol):
    """A transfer port that knows what is on its way to or from a venue (ServiceTransfers)."""

    def in_flight(self, venue: str) -> Sequence[object]: ...


@dataclass
class VenueReading:
    """One tick's read of the venues: perp positions and the spot holdings of the spot legs."""

    positions: dict[str, list[VenuePosition]] = field(default_factory=dict)
    spot: dict[tuple[str, str], Decimal] = field(default_factory=dict)    # (venue, asset) -> account total
    cash: dict[str, Decimal] = field(default_factory=dict)                # venue -> USDT cash, no uPnL
    funding: list[VenueFundingPayment] = field(default_factory=list)      # paid since the cursor
    #: venues whose cash was not compared this tick, and why (a transfer in flight)
    cash_skipped: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def complete(self) -> bool:
        return not self.error


def spot_total(balances: Sequence[VenueBalance], account: str, asset: str) -> Decimal:
    return sum((b.total for b in balances if b.account == account and b.asset == asset), Decimal(0))


async def _funding_then_cash(port: CexVenuePort, symbols: Sequence[str],
                             since_ms: int) -> tuple[list[VenueFundingPayment], Decimal]:
    """The funding history first, then the cash: a payment the history lists is in the cash read after."""
    funding = await port.fetch_funding_payments(symbols, since_ms)
    cash = await port.fetch_cash("USDT")
    return funding, cash.amount


async def _cash(port: CexVenuePort) -> tuple[list[VenueFundingPayment], Decimal]:
    return [], (await port.fetch_cash("USDT")).amount


async def reread_cash(venues: Mapping[str, CexVenuePort], symbols: Mapping[str, Sequence[str]],
                      since_ms: Mapping[str, int], timeout: float
                      ) -> tuple[list[VenueFundingPayment], dict[str, Decimal], str]:
    """(payments, cash, error): the funding history and then the cash of some venues, again (see
    the module docstring)."""
    names = list(symbols)
    results = await asyncio.gather(*(asyncio.wait_for(_funding_then_cash(venues[v], symbols[v], since_ms[v]), timeout)
                                     for v in names), return_exceptions=True)
    out: list[VenueFundingPayment] = []
    cash: dict[str, Decimal] = {}
    errors: list[str] = []
    for venue, res in zip(names, results):
        if isinstance(res, asyncio.CancelledError):
            raise res
        if isinstance(res, BaseException):
            errors.append(f"{venue}: funding and cash not read again: {_why(res)}")
        else:
            out.extend(res[0])
            cash[venue] = res[1]
    return out, cash, "; ".join(errors)


def _why(exc: BaseException) -> str:
    return "no answer in time" if isinstance(exc, asyncio.TimeoutError) else (str(exc) or type(exc).__name__)


async def read_venues(venues: Mapping[str, CexVenuePort], perp_keys: Sequence[tuple[str, str]],
                      spot_keys: Sequence[tuple[str, str]], timeout: float, *,
                      cash_venues: Sequence[str] = (), funding_since: Mapping[str, int] | None = None) -> VenueReading:
    """Every venue's positions on the mode's perp symbols and the totals of its spot legs' coins, and
    for ``cash_venues`` the USDT cash, after the funding paid since ``funding_since[venue]`` for the
    venues named there.
    Any venue that cannot answer makes the reading incomplete (``error`` says which and why): no
    comparison on partial information, and no trading on it."""
    reading = VenueReading()
    symbols: dict[str, list[str]] = {}
    for v, a in perp_keys:
        symbols.setdefault(v, []).append(perp_symbol(a))
    spot_venues: dict[str, list[str]] = {}
    for v, a in spot_keys:
        spot_venues.setdefault(v, []).append(a)
    jobs: list[tuple[str, str, asyncio.Future]] = []
    for venue, syms in symbols.items():
        jobs.append((venue, "positions", asyncio.ensure_future(
            asyncio.wait_for(venues[venue].fetch_positions(syms), timeout))))
    for venue in spot_venues:
        jobs.append((venue, "balances", asyncio.ensure_future(
            asyncio.wait_for(venues[venue].fetch_balances(), timeout))))
    for venue in cash_venues:
        since = (funding_since or {}).get(venue)
        job = _cash(venues[venue]) if since is None or not symbols.get(venue) else \
            _funding_then_cash(venues[venue], symbols[venue], since)
        jobs.append((venue, "cash", asyncio.ensure_future(asyncio.wait_for(job, timeout))))
    results = await asyncio.gather(*(j[2] for j in jobs), return_exceptions=True)
    errors: list[str] = []
    for (venue, what, _), res in zip(jobs, results):
        if isinstance(res, BaseException):
            if isinstance(res, asyncio.CancelledError):
                raise res
            errors.append(f"{venue}: {what} not read: {_why(res)}")
            continue
        if what == "positions":
            reading.positions[venue] = list(res)
        elif what == "cash":
            payments, cash = res
            reading.funding.extend(payments)
            reading.cash[venue] = cash
        else:
            port = venues[venue]
            for asset in spot_venues[venue]:
                reading.spot[(venue, asset)] = spot_total(res, port.balance_account(spot_symbol(asset)), asset)
    reading.error = "; ".join(errors)
    return reading


async def read_positions(venues: Mapping[str, CexVenuePort], perp_keys: Sequence[tuple[str, str]],
                         timeout: float) -> tuple[dict[str, list[VenuePosition]] | None, str]:
    """(every venue's positions on the mode's perp symbols, error); None when any venue could not answer."""
    reading = await read_venues(venues, perp_keys, (), timeout)
    return (None if reading.error else reading.positions), reading.error


def spot_keys_of(params: RunParams, venues: Mapping[str, CexVenuePort]) -> list[tuple[str, str]]:
    """The (venue, coin) spot legs a mode holds at a CEX (basis modes: the spot venue's underlying)."""
    sp = params.strategy
    if sp.spot_venue and sp.underlying and sp.spot_venue in venues:
        return [(sp.spot_venue, sp.underlying)]
    return []


def mismatches(book: Portfolio, venue_positions: Mapping[str, list[VenuePosition]],
               perp_keys: Sequence[tuple[str, str]],
               foreign: Mapping[tuple[str, str], float], *,
               spot: Mapping[tuple[str, str], Decimal] | None = None,
               spot_baseline: Mapping[tuple[str, str], Decimal] | None = None,
               spot_fee_rate: Mapping[str, float] | None = None) -> dict[str, float]:
    """"venue symbol" -> venue size minus the book's, for every perp and spot leg that differs.
    ``foreign``: perp positions the session found at start and does not own (left alone, not
    compared); ``spot_baseline``: what each spot account held beyond the book at start."""
    out: dict[str, float] = {}
    for venue, asset in perp_keys:
        symbol = perp_symbol(asset)
        venue_size = sum(float(p.size) for p in venue_positions.get(venue, []) if p.symbol == symbol)
        venue_size -= foreign.get((venue, symbol), 0.0)
        acct = book.cex.get(venue)
        size = acct.perps[asset].size if acct and asset in acct.perps else 0.0
        if abs(venue_size - size) > POSITION_TOLERANCE * max(1.0, abs(size)):
            out[f"{venue} {symbol}"] = venue_size - size
    for (venue, asset), total in (spot or {}).items():
        base = (spot_baseline or {}).get((venue, asset))
        if base is None:
            continue
        held = float(total - base)
        acct = book.cex.get(venue)
        size = acct.spot.get(asset, 0.0) if acct else 0.0
        fee = (spot_fee_rate or {}).get(venue, 0.0)
        allowed = max(POSITION_TOLERANCE * max(1.0, abs(size)), SPOT_FEE_ALLOWANCE * fee * abs(size))
        if abs(held - size) > allowed:
            out[f"{venue} {spot_symbol(asset)} (spot)"] = held - size
    return out
