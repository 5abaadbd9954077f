"""CexClient: the shared base of the per-venue ccxt clients (Binance spot, Binance USD-M, Bybit, OKX).

`CcxtAccount` gives every client the call discipline (retries, local pacing, redacted errors); this
class adds what the adapter needs from one account at a venue, with the behaviour most venues share
as the default. Each venue's own class (venues/cex/binance.py, bybit.py, okx.py) overrides only its
quirks, so the adapter never asks which exchange it is talking to:

- which fetchMarkets types to load, which market kinds it serves, the account's own name;
- how a client order id is passed (`client_id_params`) and how an order is found by it after an
  uncertain submit (`find_by_client_id`);
- cancelling one symbol (`cancel_symbol`) and every open order of the account, every symbol
  (`cancel_account_wide`, the emergency path);
- the exchange-side cancel-after (dead-man switch): what it covers, how it is set, its range;
- readiness reads with no unified ccxt method: key permissions, account mode, funding interval.

Amounts cross the port in base units; `contract_size` converts where a venue counts contracts.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Awaitable, Callable, ClassVar, Iterable, Mapping, Sequence

from engine.domain.venue_ports import MarketKind, OrderStatus, Side, VenueError, VenueErrorKind, VenueOrder
from venues.cex.account import CcxtAccount, RetryPolicy
from venues.cex.numbers import dec, fees_of
from venues.credentials import Secret

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.CLOSED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}

RawOrder = dict[str, Any]
Recheck = tuple[str, Callable[[], Awaitable[list[RawOrder]]]]


@dataclass(slots=True)
class Sweep:
    """One account's (or symbol's) cancel-all: what was cancelled, errors by account/symbol (with
    their kinds, so the e-stop knows which are worth a retry), and the read-backs that verify symbols
    outside the managed set ((key, read) pairs)."""

    canceled: list[VenueOrder] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    recheck: list[Recheck] = field(default_factory=list)
    kinds: dict[str, VenueErrorKind] = field(default_factory=dict)
    retry_after_s: float | None = None

    def fail(self, key: str, exc: BaseException, prefix: str = "") -> None:
        self.errors[key] = prefix + describe(exc)
        self.kinds[key] = exc.kind if isinstance(exc, VenueError) else VenueErrorKind.UNKNOWN
        if isinstance(exc, VenueError) and exc.retry_after_s is not None:
            self.retry_after_s = max(self.retry_after_s or 0.0, exc.retry_after_s)

    def merge(self, other: "Sweep") -> None:
        self.canceled.extend(other.canceled)
        self.errors.update(other.errors)
        self.kinds.update(other.kinds)
        self.recheck.extend(other.recheck)
        if other.retry_after_s is not None:
            self.retry_after_s = max(self.retry_after_s or 0.0, other.retry_after_s)


@dataclass(frozen=True)
class KeyPermissions:
    can_trade: bool
    can_withdraw: bool
    detail: str


@dataclass(frozen=True)
class AccountMode:
    hedge_mode: bool
    can_trade_perps: bool
    detail: str


class NotAvailable(Exception):
    """The venue offers no way to read this in the current environment (e.g. Binance testnet sapi)."""


def number(value: Any) -> Decimal | None:
    """A finite Decimal from a venue field, or None for a missing or unparseable one (an HTML page or
    "NaN" where a number belongs must not read as any amount)."""
    try:
        d = dec(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return d if d is not None and d.is_finite() else None


def describe(exc: BaseException) -> str:
    """A VenueError's own (redacted) text; only the type of anything else (it may not be redacted)."""
    return str(exc) if isinstance(exc, VenueError) else type(exc).__name__


def order_fields(order: VenueOrder) -> dict[str, Any]:
    return {name: getattr(order, name) for name in VenueOrder.__slots__}


class CexClient(CcxtAccount):
    """One ccxt client of a venue with the shared behaviour; subclasses own their venue's quirks."""

    #: fetchMarkets types loaded (only these keep load_markets to a few requests)
    MARKET_TYPES: ClassVar[tuple[str, ...]] = ()
    #: the market kinds this client can serve
    KINDS: ClassVar[frozenset[MarketKind]] = frozenset()
    #: the account's name as the venue calls it (balances are reported per account)
    ACCOUNT_NAME: ClassVar[str] = ""
    #: the order parameter carrying a client order id on cancel/fetch
    CLIENT_ID_PARAM: ClassVar[str] = "clientOrderId"

    def __init__(self, venue: str, exchange: Any, kinds: Iterable[MarketKind] | None = None, *,
                 secrets: Iterable[str | Secret | None] = (), retry: RetryPolicy = RetryPolicy()) -> None:
        super().__init__(venue, self.ACCOUNT_NAME, exchange, self.KINDS if kinds is None else kinds,
                         secrets=secrets, retry=retry)

    # -- markets and orders ---------------------------------------------------------------------------
    @property
    def markets(self) -> Mapping[str, dict[str, Any]]:
        return self.exchange.markets or {}

    def market_id(self, symbol: str) -> str:
        return str(self.markets[symbol]["id"])

    def contract_size(self, symbol: str) -> Decimal:
        """Base units per contract of ``symbol`` (1 where the venue counts in base units)."""
        market = self.markets.get(symbol) or {}
        size = dec(market.get("contractSize"))
        return size if market.get("contract") and size else Decimal(1)

    def order(self, o: RawOrder, fallback_symbol: str | None = None,
              fallback_client_id: str | None = None) -> VenueOrder:
        """A ccxt-parsed order as the port's VenueOrder, amounts in base units."""
        symbol = o.get("symbol") or fallback_symbol or ""
        size = self.contract_size(symbol) if symbol else Decimal(1)
        amount, filled = dec(o.get("amount")), dec(o.get("filled"))
        side = o.get("side")
        return VenueOrder(
            venue=self.venue, symbol=symbol, order_id=o.get("id"),
            client_order_id=o.get("clientOrderId") or fallback_client_id,
            side=Side(side) if side in ("buy", "sell") else None, type=o.get("type"),
            amount=amount * size if amount is not None else None,
            filled=filled * size if filled is not None else None,
            price=dec(o.get("price")), average=dec(o.get("average")),
            status=_STATUS.get(str(o.get("status")).lower(), OrderStatus.UNKNOWN),
            timestamp_ms=o.get("timestamp"), fees=fees_of(o))

    def canceled(self, o: RawOrder, symbol: str | None = None) -> VenueOrder:
        return VenueOrder(**{**order_fields(self.order(o, symbol)), "status": OrderStatus.CANCELED})

    def canceled_raw(self, rows: Iterable[RawOrder]) -> list[VenueOrder]:
        """Raw venue rows of cancelled orders -> VenueOrders (a symbol not in the loaded markets keeps
        the venue's id)."""
        return [self.canceled(self.exchange.parse_order(row)) for row in rows]

    def listed_orders(self, raw: Iterable[RawOrder], symbol: str | None = None) -> list[VenueOrder]:
        """The orders of a ccxt answer that carry an id (venues pad some answers with empty rows)."""
        return [self.order(o, symbol) for o in raw if o.get("id") or o.get("clientOrderId")]

    # -- client order ids -----------------------------------------------------------------------------
    def client_id_params(self, client_order_id: str) -> dict[str, str]:
        """ccxt maps the unified ``clientOrderId`` on most venues; a venue that passes params through
        verbatim names its own parameter (CLIENT_ID_PARAM)."""
        return {self.CLIENT_ID_PARAM: client_order_id}

    async def find_by_client_id(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        """The order with this client id, open or finished; None when the venue never saw it."""
        try:
            raw = await self.read("fetch_order", self.exchange.fetch_order, None, symbol,
                                  self.client_id_params(client_order_id))
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return None
            raise
        return self.order(raw, symbol, client_order_id)

    # -- cancels (the emergency path) ----------------------------------------------------------------
    async def cancel_symbol(self, symbol: str) -> list[VenueOrder]:
        """Cancel every open order of one managed symbol; returns what was cancelled."""
        try:
            raw = await self.write("cancel_all_orders", self.exchange.cancel_all_orders, symbol, priority=True)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:     # "Unknown order" when none is open
                return []
            raise
        return self.listed_orders(raw, symbol)

    async def cancel_account_wide(self, managed: Sequence[str]) -> Sweep:
        """Every open order of this account, every symbol, in as few requests as the venue allows.
        The default cancels the managed symbols one by one (a venue that can do better overrides)."""
        per_symbol = await asyncio.gather(*(self.cancel_symbol(s) for s in managed))
        return Sweep([o for orders in per_symbol for o in orders])

    async def open_orders_once(self, symbol: str) -> list[RawOrder]:
        """One unpaced read of a symbol's open orders (the e-stop's verification: no retries)."""
        return await self.read("fetch_open_orders", self.exchange.fetch_open_orders, symbol,
                               attempts=1, priority=True)

    def verify_reads(self, managed: Sequence[str], recheck: Sequence[Recheck]) -> list[Recheck]:
        """The read-backs that prove this account has no open order left after a cancel-all: one
        per managed symbol plus the sweep's own rechecks by default; a venue that can list the whole
        account (or a whole category) in one read overrides with that."""
        return [(s, partial(self.open_orders_once, s)) for s in managed] + list(recheck)

    # -- trades of one order (the second look of an uncertain submit) ---------------------------------
    async def fills_by_client_id(self, symbol: str, client_order_id: str,
                                 since_ms: int | None) -> list[RawOrder] | None:
        """Raw ccxt trades of the order with this client id; None where the venue's trades do not
        carry client ids (the order look-up is then the only evidence)."""
        return None

    # -- dead-man switch (exchange-side cancel-after) ------------------------------------------------
    def dead_man_coverage(self, managed_perps: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(covered, uncovered) scopes of this account's cancel-after, without calling the venue."""
        return (), ()

    def dead_man_seconds(self, requested: float) -> float:
        """The countdown the venue will actually be given (venues clamp the range)."""
        return requested

    async def set_dead_man(self, timeout_ms: int, managed_perps: Sequence[str]) -> None:
        """Arm (timeout_ms > 0, restarting the countdown) or disarm (0) the cancel-after."""

    # -- cash and funding (the book's cash follows the venue's) ----------------------------------------
    def cash_of(self, balance: Mapping[str, Any], asset: str) -> Decimal:
        """The ``asset`` cash of this account excluding unrealised P&L, from a ccxt fetch_balance answer.

        The default is ccxt's unified total, right for an account that holds no perps (a spot wallet
        has no unrealised P&L); a margin account's client reads the venue's own cash field from
        ``info``. A total that is not a number is malformed, never 0."""
        totals = balance.get("total")
        if not isinstance(totals, Mapping):
            raise self.malformed("fetch_balance", "the balance answer has no totals")
        if asset not in totals or totals[asset] is None:
            return Decimal(0)               # an asset the account never held is not listed
        value = number(totals[asset])
        if value is None:
            raise self.malformed("fetch_balance", f"{asset} total is not a number: {totals[asset]!r}")
        return value

    def malformed(self, operation: str, detail: str) -> VenueError:
        return VenueError(self.venue, VenueErrorKind.MALFORMED, f"{self.ccxt_id}: {detail}",
                          operation=f"{self.ccxt_id}.{operation}")

    def cash_row(self, rows: Any, key: str, asset: str, field_name: str, where: str) -> Decimal:
        """``field_name`` of the row whose ``key`` is ``asset`` in a venue's list of per-coin rows; no
        row: the account holds none (venues list only coins held); a row without a readable number in
        that field, or no list at all: malformed."""
        if not isinstance(rows, list):
            raise self.malformed("fetch_balance", f"the balance answer has no {where} list")
        for row in rows:
            if isinstance(row, Mapping) and row.get(key) == asset:
                value = number(row.get(field_name))
                if value is None:
                    raise self.malformed("fetch_balance", f"{asset} {field_name} is not a number: "
                                                          f"{row.get(field_name)!r}")
                return value
        return Decimal(0)

    async def funding_payments(self, symbols: Sequence[str], since_ms: int) -> list[tuple[str, Decimal, int, str]]:
        """(symbol, amount received (+) / paid (-), time ms, venue id) of each funding settlement on
        ``symbols`` since ``since_ms``, through ccxt's fetch_funding_history (the venue's income or
        bill endpoint). ``funding_amount`` reads the venue's own signed field from each row."""
        out: list[tuple[str, Decimal, int, str]] = []
        for symbol in symbols:
            rows = await self.read("fetch_funding_history", self.exchange.fetch_funding_history, symbol, since_ms)
            if not isinstance(rows, list):
                raise self.malformed("fetch_funding_history", f"funding history is a {type(rows).__name__}")
            for row in rows:
                if not isinstance(row, Mapping):
                    raise self.malformed("fetch_funding_history", "a funding row is not an object")
                ts, pid = row.get("timestamp"), row.get("id")
                amount = self.funding_amount(row)
                if amount is None or not isinstance(ts, int) or not pid:
                    raise self.malformed("fetch_funding_history", f"unreadable funding row {row.get('info')!r}")
                if row.get("symbol") in (None, symbol) and ts >= since_ms:
                    out.append((symbol, amount, ts, str(pid)))
        return out

    def funding_amount(self, row: Mapping[str, Any]) -> Decimal | None:
        """The payment received (+) / paid (-) of one ccxt funding-history row (ccxt's ``amount``)."""
        return number(row.get("amount"))

    # -- readiness reads without a unified ccxt method ---------------------------------------------------
    async def key_permissions(self, needs_futures: bool) -> KeyPermissions:
        raise NotAvailable(f"no permission read for {self.ccxt_id}")

    async def account_mode(self) -> AccountMode:
        raise NotAvailable(f"no account-mode read for {self.ccxt_id}")

    async def funding_interval(self, symbol: str) -> Any:
        """The funding interval as ccxt reports it (e.g. "8h"), or None when the venue does not say."""
        rate = await self.read("fetch_funding_rate", self.exchange.fetch_funding_rate, symbol)
        return rate.get("interval")

