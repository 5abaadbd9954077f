"""Binance: spot and USD-M futures are separate accounts behind separate ccxt classes (binance,
binanceusdm), so the Binance adapter holds one client of each.

Quirks owned here:
- cancel-all exists per symbol only; the emergency path lists the account's open orders on *every*
  symbol with the venue's raw endpoints (no symbol: weight 80 spot / 40 USD-M) and cancels each symbol
  by the venue's own id, so a symbol listed after our markets were loaded is cancelled too;
- USD-M's cancel-all answers "done" without the orders, so they are listed first to be counted;
- the dead-man switch (countdownCancelAll, milliseconds) exists on USD-M only, per symbol; spot has
  no REST cancel-after;
- the GET order answer carries no fee and the trades carry the venue's order id, not the client id:
  an order found by client id (origClientOrderId) that traded is completed with its trades, read by
  its orderId (api/v3/myTrades, fapi/v1/userTrades), whose commission is in the asset the venue took
  it in (the coin bought on a spot buy);
- key permissions from sapi apiRestrictions (absent on the testnet), the position mode from
  positionSide/dual, and the funding interval from fundingInfo (which lists only symbols whose
  interval differs from the 8 h default).
"""
from __future__ import annotations

import asyncio
from functools import partial
from decimal import Decimal
from typing import Any, ClassVar, Mapping, Sequence

from engine.domain.venue_ports import MarketKind, VenueError, VenueErrorKind, VenueOrder
from venues.cex.client import (
    AccountMode,
    CexClient,
    KeyPermissions,
    NotAvailable,
    RawOrder,
    Recheck,
    Sweep,
    number,
    order_fields,
)
from venues.cex.numbers import dec, trades_fees


class _BinanceClient(CexClient):
    """What Binance's spot and USD-M clients share: the account-wide sweep by raw symbol ids."""

    #: ccxt implicit methods: (read open orders, cancel every open order of one symbol)
    RAW_OPEN_ORDERS: ClassVar[str] = ""
    RAW_CANCEL_SYMBOL: ClassVar[str] = ""

    async def order_trades(self, symbol: str, order_id: str) -> list[RawOrder]:
        """The trades of one order, by the venue's order id (myTrades / userTrades take ``orderId``)."""
        trades = await self.read("fetch_my_trades", self.exchange.fetch_my_trades, symbol, None, None,
                                 {"orderId": order_id})
        if not isinstance(trades, list):
            raise self.malformed("fetch_my_trades", f"the trades answer is a {type(trades).__name__}, not a list")
        return [t for t in trades if str(t.get("order")) == str(order_id)]

    async def find_by_client_id(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        """The order by origClientOrderId; one that traded gets the fees of its trades (the GET
        order answer has none). Trades that do not yet add up to what the order filled (a trade list
        that lags) leave the fee unreported, never a part read as the whole."""
        order = await super().find_by_client_id(symbol, client_order_id)
        if order is None or order.fees or not order.filled or order.order_id is None:
            return order
        trades = await self.order_trades(symbol, order.order_id)
        traded = sum((dec(t.get("amount")) or Decimal(0) for t in trades), Decimal(0)) * self.contract_size(symbol)
        if traded < order.filled:
            return order
        return VenueOrder(**{**order_fields(order), "fees": trades_fees(trades)})

    async def fills_by_client_id(self, symbol: str, client_order_id: str,
                                 since_ms: int | None) -> list[RawOrder] | None:
        """The order's trades: its orderId from the look-up by client id, then its trades by that id.
        No order with this client id means no trades ([]: the venue says so, it is not unknown)."""
        order = await super().find_by_client_id(symbol, client_order_id)
        if order is None or order.order_id is None or not order.filled:
            return []
        return await self.order_trades(symbol, order.order_id)

    async def raw_open_orders(self, symbol_id: str | None = None) -> list[RawOrder]:
        """Raw open orders of one symbol id, or of every symbol of the account (``symbol_id`` None)."""
        method = getattr(self.exchange, self.RAW_OPEN_ORDERS)
        params = {"symbol": symbol_id} if symbol_id is not None else {}
        return await self.read("fetch_open_orders", method, params, attempts=1, priority=True)

    async def raw_cancel_symbol(self, symbol_id: str, listed: list[RawOrder]) -> list[RawOrder]:
        """Cancel every open order of ``symbol_id``; returns the raw rows of what was cancelled.

        Spot answers with the cancelled orders (OCO lists carry theirs in ``orderReports``) and with
        "Unknown order" (-2011) when none was open; USD-M only answers "done", so the rows ``listed`` for
        the symbol before the cancel stand for what it cancelled.
        """
        method = getattr(self.exchange, self.RAW_CANCEL_SYMBOL)
        try:
            answer = await self.write("cancel_all_orders", method, {"symbol": symbol_id}, priority=True)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return []
            raise
        if not isinstance(answer, list):
            return listed
        rows: list[RawOrder] = []
        for row in answer:
            if isinstance(row, dict):
                rows.extend(r for r in row.get("orderReports") or [row] if isinstance(r, dict) and r.get("orderId"))
        return rows

    async def cancel_account_wide(self, managed: Sequence[str]) -> Sweep:
        """The managed symbols' cancels start at once; concurrently one read of the account's open
        orders on *every* symbol finds the others — a symbol another tool or a person traded, or one
        listed after our markets were loaded — and each gets its own cancel by the venue's symbol id."""
        managed_ids = {self.market_id(s) for s in managed}
        sweep = Sweep()

        async def mine() -> None:
            outcomes = await asyncio.gather(*(self.cancel_symbol(s) for s in managed), return_exceptions=True)
            for symbol, outcome in zip(managed, outcomes):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    sweep.fail(symbol, outcome)
                else:
                    sweep.canceled.extend(outcome)

        async def others() -> None:
            key = f"{self.account} (symbols not traded by this mode)"
            try:
                rows = await self.raw_open_orders()
            except VenueError as exc:
                sweep.fail(key, exc, "could not list open orders: ")
                return
            by_id: dict[str, list[RawOrder]] = {}
            for row in rows:
                sid = row.get("symbol")
                if sid and sid not in managed_ids:
                    by_id.setdefault(str(sid), []).append(row)
            ids = sorted(by_id)
            outcomes = await asyncio.gather(*(self.raw_cancel_symbol(sid, by_id[sid]) for sid in ids),
                                            return_exceptions=True)
            for sid, outcome in zip(ids, outcomes):
                label = f"{self.account} {sid}"
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    sweep.fail(label, outcome)
                    continue
                sweep.canceled.extend(self.canceled_raw(outcome))
                sweep.recheck.append((label, partial(self.raw_open_orders, sid)))

        await asyncio.gather(mine(), others())
        return sweep

    def verify_reads(self, managed: Sequence[str], recheck: Sequence[Recheck]) -> list[Recheck]:
        """One read of the account's open orders on every symbol (weight 80 spot / 40 USD-M)."""
        return [(f"{self.account} (every symbol)", self.raw_open_orders)]


class BinanceSpot(_BinanceClient):
    MARKET_TYPES = ("spot",)
    KINDS = frozenset({MarketKind.SPOT})
    ACCOUNT_NAME = "spot"
    RAW_OPEN_ORDERS = "privateGetOpenOrders"
    RAW_CANCEL_SYMBOL = "privateDeleteOpenOrders"

    def dead_man_coverage(self, managed_perps: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (), ("Binance spot: the venue offers no REST cancel-after",)

    async def key_permissions(self, needs_futures: bool) -> KeyPermissions:
        ex = self.exchange
        # Asked of the environment, not of the URL table: a loopback venue standing in for the testnet
        # serves sapi (its wallet endpoints), the real testnet does not.
        if getattr(ex, "isSandboxModeEnabled", False) or "sapi" not in ex.urls.get("api", {}):
            raise NotAvailable("Binance's testnet has no API-key restrictions endpoint (sapi)")
        r = await self.read("apiRestrictions", ex.sapiGetAccountApiRestrictions)
        spot, futures = bool(r.get("enableSpotAndMarginTrading")), bool(r.get("enableFutures"))
        return KeyPermissions(spot and (futures or not needs_futures), bool(r.get("enableWithdrawals")),
                              f"spot trading {'on' if spot else 'off'}, futures {'on' if futures else 'off'}, "
                              f"IP restricted: {'yes' if r.get('ipRestrict') else 'no'}")


class BinanceUsdm(_BinanceClient):
    MARKET_TYPES = ("linear",)
    KINDS = frozenset({MarketKind.PERP})
    ACCOUNT_NAME = "usdm"
    RAW_OPEN_ORDERS = "fapiPrivateGetOpenOrders"
    RAW_CANCEL_SYMBOL = "fapiPrivateDeleteAllOpenOrders"

    async def cancel_symbol(self, symbol: str) -> list[VenueOrder]:
        """USD-M's cancel-all answers "done" without listing the orders: read them first so the e-stop
        can say how many it cancelled (one extra round trip, on this account only)."""
        listed = await self.open_orders_once(symbol)
        if not listed:
            return []
        try:
            raw = await self.write("cancel_all_orders", self.exchange.cancel_all_orders, symbol, priority=True)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return []
            raise
        return self.listed_orders(raw, symbol) or [self.canceled(o, symbol) for o in listed]

    def dead_man_coverage(self, managed_perps: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(f"usdm {s}" for s in managed_perps), ()

    async def set_dead_man(self, timeout_ms: int, managed_perps: Sequence[str]) -> None:
        """countdownCancelAll per symbol, in milliseconds (0 switches it off)."""
        ex = self.exchange
        await asyncio.gather(*(self.write("countdown_cancel_all", ex.fapiPrivatePostCountdownCancelAll,
                                          {"symbol": self.market_id(s), "countdownTime": timeout_ms}, priority=True)
                               for s in managed_perps))

    async def account_mode(self) -> AccountMode:
        r = await self.read("fetch_position_mode", self.exchange.fetch_position_mode)
        hedged = bool(r.get("hedged"))
        return AccountMode(hedged, True, "hedge (dual-side) position mode" if hedged else "one-way position mode")

    def cash_of(self, balance: Mapping[str, Any], asset: str) -> Decimal:
        """USD-M ``walletBalance`` of the asset (fapi account ``assets``): deposits, transfers, realised
        P&L, fees and funding, without the positions' unrealised P&L (``marginBalance`` adds it)."""
        info = balance.get("info")
        return self.cash_row(info.get("assets") if isinstance(info, Mapping) else None, "asset", asset,
                             "walletBalance", "USD-M assets")

    def funding_amount(self, row: Mapping[str, Any]) -> Decimal | None:
        """fapi income FUNDING_FEE: ``income`` is signed as the account sees it (+ received)."""
        info = row.get("info")
        return number(info.get("income")) if isinstance(info, Mapping) else None

    async def funding_interval(self, symbol: str) -> Any:
        intervals = await self.read("fetch_funding_intervals", self.exchange.fetch_funding_intervals, [symbol])
        entry = intervals.get(symbol) if isinstance(intervals, dict) else None
        interval = entry.get("interval") if entry else None
        return "8h" if interval is None else interval        # not listed = Binance's default schedule


__all__ = ["BinanceSpot", "BinanceUsdm"]
