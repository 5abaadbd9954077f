"""CexVenueAdapter: the engine's CexVenuePort for one exchange, over one or two ccxt accounts.

Binance keeps spot and USD-M futures in separate wallets behind separate ccxt classes (binance,
binanceusdm), so its adapter holds two accounts; Bybit (unified account) and OKX (trading account)
serve spot and perps from one. Orders route by the symbol's market kind.

Units: the port speaks base-asset units; OKX swaps trade in contracts (0.1 ETH / 0.01 BTC), so
amounts are divided by the market's contractSize on the way out and multiplied on the way back.
Amounts are truncated to the venue's step (never more than asked) and prices rounded to the tick
in the direction that never pays more (buys down, sells up).
"""
from __future__ import annotations

import asyncio
import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

import ccxt

from engine.domain.venue_ports import (
    CancelAllResult,
    DeadManSwitchStatus,
    MarketKind,
    MarketQuote,
    MarketSnapshot,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueBalance,
    VenueError,
    VenueErrorKind,
    VenueOrder,
    VenuePosition,
)
from venues.cex import raw_orders
from venues.cex.account import CcxtAccount

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.CLOSED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}
# Bybit linear perps settle in USDT or USDC (USDC perps: BTCPERP...); cancel-all needs one settle coin per call.
_BYBIT_SETTLE = ("USDT", "USDC")
_OKX_DEAD_MAN_MIN_S, _OKX_DEAD_MAN_MAX_S = 10, 120   # cancel-all-after accepts 0 (off) or 10..120 s
# ccxt maps the unified `clientOrderId` param for cancel/fetch on Binance and OKX; Bybit passes params
# through verbatim, so its own name is needed.
_CLIENT_ID_PARAM = {"bybit": "orderLinkId"}


def client_id_param(account: CcxtAccount, client_order_id: str) -> dict[str, str]:
    return {_CLIENT_ID_PARAM.get(account.ccxt_id, "clientOrderId"): client_order_id}


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


def _step(exchange: Any, precision: Any) -> Decimal | None:
    if precision is None:
        return None
    if exchange.precisionMode == ccxt.TICK_SIZE:
        return dec(precision)
    return Decimal(1).scaleb(-int(precision))  # DECIMAL_PLACES: precision is a digit count


def _as_float(venue: str, value: Decimal, what: str) -> float:
    """ccxt takes floats; only pass values that survive the round trip exactly."""
    f = float(value)
    if Decimal(repr(f)) != value:
        raise VenueError(venue, VenueErrorKind.REJECTED, f"{what} {value} cannot be sent exactly",
                         operation="create_order")
    return f


class CexVenueAdapter:
    """Implements engine.domain.venue_ports.CexVenuePort for binance, bybit or okx."""

    def __init__(self, venue: str, accounts: Sequence[CcxtAccount], *,
                 markets: Mapping[MarketKind, Mapping[str, str]]) -> None:
        """``markets``: per kind, underlying -> ccxt unified symbol (configs/venues ``markets``)."""
        if not accounts:
            raise ValueError(f"{venue}: an adapter needs at least one ccxt account")
        self._venue = venue
        self.accounts = list(accounts)
        self.markets = {kind: dict(symbols) for kind, symbols in markets.items()}
        self._markets_loaded = False

    # -- structure ---------------------------------------------------------------------------------
    @property
    def venue(self) -> str:
        return self._venue

    @property
    def has_credentials(self) -> bool:
        return all(a.has_credentials for a in self.accounts)

    def wanted_symbols(self, kind: MarketKind | None = None) -> list[str]:
        """The symbols this adapter is meant to trade, whether or not the venue lists them."""
        out: list[str] = []
        for k in (MarketKind.SPOT, MarketKind.PERP):
            if (kind is None or k is kind) and any(a.serves(k) for a in self.accounts):
                out.extend(self.markets.get(k, {}).values())
        return out

    def symbols(self, kind: MarketKind | None = None) -> list[str]:
        """Wanted symbols the venue actually lists (markets must be loaded)."""
        return [s for s in self.wanted_symbols(kind) if self._listed(s)]

    def _listed(self, symbol: str) -> bool:
        markets = self.account_for(symbol).exchange.markets or {}
        return symbol in markets

    def account_for(self, symbol: str) -> CcxtAccount:
        kind = kind_of(symbol)
        for account in self.accounts:
            if account.serves(kind):
                return account
        raise VenueError(self._venue, VenueErrorKind.CONFIG, f"no {kind.value} account configured for {symbol}")

    def balance_account(self, symbol: str) -> str:
        return self.account_for(symbol).account

    def perp_accounts(self) -> list[CcxtAccount]:
        return [a for a in self.accounts if a.serves(MarketKind.PERP)]

    def _market(self, symbol: str) -> tuple[CcxtAccount, dict]:
        account = self.account_for(symbol)
        markets = account.exchange.markets or {}
        if symbol not in markets:
            raise VenueError(self._venue, VenueErrorKind.CONFIG,
                             f"{symbol} is not listed on {account.ccxt_id} (markets loaded: {bool(markets)})")
        return account, markets[symbol]

    # -- reads -------------------------------------------------------------------------------------
    async def load_markets(self) -> None:
        await asyncio.gather(*(a.load_markets() for a in self.accounts))
        self._markets_loaded = True

    async def _ensure_markets(self) -> None:
        if not self._markets_loaded:
            await self.load_markets()

    async def _quote(self, symbol: str) -> MarketQuote:
        account, market = self._market(symbol)
        ex = account.exchange
        if kind_of(symbol) is MarketKind.SPOT:
            t = await account.read("fetch_ticker", ex.fetch_ticker, symbol)
            return MarketQuote(self._venue, symbol, MarketKind.SPOT, dec(t.get("bid")), dec(t.get("ask")),
                               dec(t.get("last")), t.get("timestamp"))
        ticker_task = account.read("fetch_ticker", ex.fetch_ticker, symbol)
        funding_task = account.read("fetch_funding_rate", ex.fetch_funding_rate, symbol)
        t, f = await asyncio.gather(ticker_task, funding_task)
        mark = dec(f.get("markPrice")) or dec(t.get("markPrice"))
        index = dec(f.get("indexPrice")) or dec(t.get("indexPrice"))
        if mark is None and ex.has.get("fetchMarkPrice"):
            m = await account.read("fetch_mark_price", ex.fetch_mark_price, symbol)
            mark = dec(m.get("markPrice")) or dec(m.get("last"))
        interval = f.get("interval")
        hours = dec(interval[:-1]) if isinstance(interval, str) and interval.endswith("h") else None
        return MarketQuote(self._venue, symbol, MarketKind.PERP, dec(t.get("bid")), dec(t.get("ask")),
                           dec(t.get("last")), t.get("timestamp"), mark=mark, index=index,
                           funding_rate=dec(f.get("fundingRate")),
                           next_funding_time_ms=f.get("fundingTimestamp"), funding_interval_hours=hours)

    async def fetch_market_snapshot(self, symbols: Sequence[str]) -> MarketSnapshot:
        await self._ensure_markets()
        quotes = await asyncio.gather(*(self._quote(s) for s in symbols))
        return MarketSnapshot(self._venue, {q.symbol: q for q in quotes}, int(time.time() * 1000))

    async def fetch_balances(self) -> list[VenueBalance]:
        await self._ensure_markets()
        results = await asyncio.gather(*(a.read("fetch_balance", a.exchange.fetch_balance) for a in self.accounts))
        out: list[VenueBalance] = []
        for account, bal in zip(self.accounts, results):
            totals = bal.get("total") or {}
            for asset, total in sorted(totals.items()):
                t = dec(total)
                if t is None or t == 0:
                    continue
                free = dec((bal.get("free") or {}).get(asset)) or Decimal(0)
                used = dec((bal.get("used") or {}).get(asset))
                if used is None:            # a reported 0 stays 0 (it used to become total - free)
                    used = t - free
                out.append(VenueBalance(self._venue, account.account, asset, free, used, t))
        return out

    def _contract_size(self, account: CcxtAccount, symbol: str) -> Decimal:
        market = (account.exchange.markets or {}).get(symbol) or {}
        size = dec(market.get("contractSize"))
        return size if market.get("contract") and size else Decimal(1)

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[VenuePosition]:
        await self._ensure_markets()
        wanted = list(symbols) if symbols is not None else self.symbols(MarketKind.PERP)
        out: list[VenuePosition] = []
        for account in self.perp_accounts():
            mine = [s for s in wanted if self.account_for(s) is account]
            if not mine:
                continue
            # Bybit accepts at most one symbol: ask for all (one request everywhere) and filter here.
            arg = mine if len(mine) == 1 else None
            raw = await account.read("fetch_positions", account.exchange.fetch_positions, arg)
            for p in raw:
                symbol = p.get("symbol")
                if symbol not in mine:
                    continue
                contracts = dec(p.get("contracts")) or Decimal(0)
                if contracts == 0:
                    continue
                size = contracts * (dec(p.get("contractSize")) or self._contract_size(account, symbol))
                if p.get("side") == "short":
                    size = -abs(size)
                out.append(VenuePosition(
                    self._venue, symbol, size, dec(p.get("entryPrice")), dec(p.get("markPrice")),
                    dec(p.get("unrealizedPnl")), dec(p.get("leverage")), p.get("marginMode"),
                    dec(p.get("liquidationPrice"))))
        return out

    def _order(self, account: CcxtAccount, o: dict, fallback_symbol: str | None = None,
               fallback_client_id: str | None = None) -> VenueOrder:
        symbol = o.get("symbol") or fallback_symbol or ""
        size = self._contract_size(account, symbol) if symbol else Decimal(1)
        amount, filled = dec(o.get("amount")), dec(o.get("filled"))
        side = o.get("side")
        return VenueOrder(
            venue=self._venue, symbol=symbol, order_id=o.get("id"),
            client_order_id=o.get("clientOrderId") or fallback_client_id,
            side=Side(side) if side in ("buy", "sell") else None, type=o.get("type"),
            amount=amount * size if amount is not None else None,
            filled=filled * size if filled is not None else None,
            price=dec(o.get("price")), average=dec(o.get("average")),
            status=_STATUS.get(str(o.get("status")).lower(), OrderStatus.UNKNOWN),
            timestamp_ms=o.get("timestamp"))

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        await self._ensure_markets()
        targets = [symbol] if symbol is not None else self.symbols()

        async def one(s: str) -> list[VenueOrder]:
            account = self.account_for(s)
            raw = await account.read("fetch_open_orders", account.exchange.fetch_open_orders, s)
            return [self._order(account, o, s) for o in raw]

        per_symbol = await asyncio.gather(*(one(s) for s in targets))
        return [o for orders in per_symbol for o in orders]

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        await self._ensure_markets()
        for order in await self.fetch_open_orders(symbol):
            if order.client_order_id == client_order_id:
                return order
        account = self.account_for(symbol)
        ex = account.exchange
        try:
            if account.ccxt_id == "bybit":
                # Bybit's unified fetchOrder only sees the last 500 orders by id; the history endpoint
                # filters by orderLinkId directly.
                raw_list = await account.read("fetch_canceled_and_closed_orders", ex.fetch_canceled_and_closed_orders,
                                              symbol, None, None, client_id_param(account, client_order_id))
                matches = [o for o in raw_list if o.get("clientOrderId") == client_order_id]
                return self._order(account, matches[0], symbol, client_order_id) if matches else None
            raw = await account.read("fetch_order", ex.fetch_order, None, symbol,
                                     client_id_param(account, client_order_id))
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return None
            raise
        return self._order(account, raw, symbol, client_order_id)

    # -- writes ------------------------------------------------------------------------------------
    def _venue_amount(self, account: CcxtAccount, market: dict, amount: Decimal) -> Decimal:
        size = self._contract_size(account, market["symbol"])
        qty = amount / size
        step = _step(account.exchange, market.get("precision", {}).get("amount"))
        if step:
            qty = (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step
        minimum = dec(((market.get("limits") or {}).get("amount") or {}).get("min"))
        if qty <= 0 or (minimum is not None and qty < minimum):
            raise VenueError(self._venue, VenueErrorKind.REJECTED,
                             f"amount {amount} {market['base']} is below the minimum order size of {market['symbol']} "
                             f"({minimum or step} {'contracts' if size != 1 else market['base']})",
                             operation="create_order")
        return qty.normalize() if qty == qty.to_integral_value() else qty

    def _venue_price(self, account: CcxtAccount, market: dict, price: Decimal, side: Side) -> Decimal:
        tick = _step(account.exchange, market.get("precision", {}).get("price"))
        if not tick:
            return price
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return (price / tick).to_integral_value(rounding=rounding) * tick

    async def create_order(self, request: OrderRequest) -> VenueOrder:
        await self._ensure_markets()
        account, market = self._market(request.symbol)
        qty = self._venue_amount(account, market, request.amount)
        price = self._venue_price(account, market, request.price, request.side) \
            if request.type is OrderType.LIMIT and request.price is not None else None
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.reduce_only:
            if not market.get("contract"):
                raise VenueError(self._venue, VenueErrorKind.REJECTED, "reduce-only applies to perps only",
                                 operation="create_order")
            params["reduceOnly"] = True
        if request.post_only:
            params["postOnly"] = True
        raw = await account.write(
            "create_order", account.exchange.create_order, request.symbol, request.type.value, request.side.value,
            _as_float(self._venue, qty, "amount"),
            _as_float(self._venue, price, "price") if price is not None else None, params)
        order = self._order(account, raw, request.symbol, request.client_order_id)
        # Bybit and OKX acknowledge with ids only (status UNKNOWN = accepted, state not reported yet):
        # complete what the venue left out from the request itself.
        known = {"amount": request.amount, "side": request.side, "type": request.type.value, "price": price}
        missing = {k: v for k, v in known.items() if getattr(order, k) is None}
        return VenueOrder(**{**_fields(order), **missing}) if missing else order

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> VenueOrder:
        if order_id is None and client_order_id is None:
            raise ValueError("cancel_order needs an order_id or a client_order_id")
        await self._ensure_markets()
        account, _ = self._market(symbol)
        params = client_id_param(account, client_order_id) if client_order_id is not None and order_id is None else {}
        raw = await account.write("cancel_order", account.exchange.cancel_order, order_id, symbol, params)
        order = self._order(account, raw, symbol, client_order_id)
        if order.status in (OrderStatus.UNKNOWN, OrderStatus.OPEN):
            order = VenueOrder(**{**_fields(order), "status": OrderStatus.CANCELED,
                                  "order_id": order.order_id or order_id})
        return order

    # -- cancel-all (the emergency path) -----------------------------------------------------------
    async def _cancel_symbol(self, symbol: str) -> list[VenueOrder]:
        """Cancel the open orders of one managed symbol (Binance: one DELETE per symbol and account)."""
        account, market = self._market(symbol)
        ex = account.exchange
        if account.ccxt_id == "okx":
            rows = await raw_orders.okx_pending(account, market["id"])
            sweep = await self._okx_cancel_rows(account, rows)
            if sweep.errors:
                raise VenueError(self._venue, VenueErrorKind.UNKNOWN, "; ".join(sweep.errors.values()),
                                 operation="cancel_orders")
            return sweep.canceled
        listed: list[dict] = []
        if account.ccxt_id == "binanceusdm":
            # USD-M's cancel-all answers "done" without listing the orders: read them first so the
            # e-stop can say how many it cancelled (one extra round trip, on this account only).
            listed = await account.read("fetch_open_orders", ex.fetch_open_orders, symbol, attempts=1,
                                        priority=True)
            if not listed:
                return []
        try:
            raw = await account.write("cancel_all_orders", ex.cancel_all_orders, symbol, priority=True)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:     # Binance spot: "Unknown order" when none open
                return []
            raise
        ids = [o for o in raw if o.get("id") or o.get("clientOrderId")]
        if not ids and listed:
            return [self._canceled(account, o, symbol) for o in listed]
        return [self._order(account, o, symbol) for o in ids]

    def _canceled(self, account: CcxtAccount, order: dict, symbol: str | None = None) -> VenueOrder:
        return VenueOrder(**{**_fields(self._order(account, order, symbol)), "status": OrderStatus.CANCELED})

    def _canceled_raw(self, account: CcxtAccount, rows: list[dict]) -> list[VenueOrder]:
        """Raw venue rows of cancelled orders -> VenueOrders (a symbol not in the loaded markets keeps
        the venue's id)."""
        return [self._canceled(account, account.exchange.parse_order(row)) for row in rows]

    async def _okx_cancel_rows(self, account: CcxtAccount, rows: list[dict]) -> _Sweep:
        """Cancel listed OKX orders in batches of 20 (instruments mixed), all batches concurrently."""
        rows = [r for r in rows if r.get("ordId") and r.get("instId")]
        batches = [rows[i:i + raw_orders.OKX_BATCH] for i in range(0, len(rows), raw_orders.OKX_BATCH)]
        outcomes = await asyncio.gather(*(raw_orders.okx_cancel_batch(account, b) for b in batches),
                                        return_exceptions=True)
        sweep = _Sweep()
        for batch, outcome in zip(batches, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                sweep.errors[f"{account.account} batch of {len(batch)}"] = _describe(outcome)
                continue
            done, errors = outcome
            sweep.canceled.extend(self._canceled_raw(account, done))
            sweep.errors.update(errors)
        return sweep

    async def _okx_sweep(self, account: CcxtAccount) -> _Sweep:
        """Every pending order of the OKX account, on every instrument type (orders-pending without
        instType), 100 per page, re-read until a page comes back short; the e-stop's timeout bounds it."""
        managed = {self._market(s)[1]["id"] for s in self.symbols() if self.account_for(s) is account}
        sweep = _Sweep()
        foreign: set[str] = set()
        for _ in range(20):
            rows = await raw_orders.okx_pending(account)
            foreign.update(r["instId"] for r in rows if r.get("instId") and r["instId"] not in managed)
            page = await self._okx_cancel_rows(account, rows)
            sweep.canceled.extend(page.canceled)
            sweep.errors.update(page.errors)
            if len(rows) < raw_orders.OKX_PAGE or page.errors or not page.canceled:
                break
        for inst_id in sorted(foreign):
            sweep.recheck.append((f"{account.account} {inst_id}",
                                  lambda i=inst_id: raw_orders.okx_pending(account, i)))
        return sweep

    async def _binance_sweep(self, account: CcxtAccount) -> _Sweep:
        """Binance cancels per symbol only. The managed symbols' cancels start at once; concurrently one
        read of the account's open orders on *every* symbol (no symbol: weight 80 spot / 40 USD-M, fine
        for an emergency) finds the others — a symbol another tool or a person traded, or one listed
        after our markets were loaded — and each gets its own cancel by the venue's symbol id."""
        mine = [s for s in self.symbols() if self.account_for(s) is account]
        managed_ids = {self._market(s)[1]["id"] for s in mine}
        sweep = _Sweep()

        async def managed() -> None:
            outcomes = await asyncio.gather(*(self._cancel_symbol(s) for s in mine), return_exceptions=True)
            for symbol, outcome in zip(mine, outcomes):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    sweep.errors[symbol] = _describe(outcome)
                else:
                    sweep.canceled.extend(outcome)

        async def others() -> None:
            key = f"{account.account} (symbols not traded by this mode)"
            try:
                rows = await raw_orders.binance_open_orders(account)
            except VenueError as exc:
                sweep.errors[key] = f"could not list open orders: {exc}"
                return
            by_id: dict[str, list[dict]] = {}
            for row in rows:
                sid = row.get("symbol")
                if sid and sid not in managed_ids:
                    by_id.setdefault(str(sid), []).append(row)
            ids = sorted(by_id)
            outcomes = await asyncio.gather(*(raw_orders.binance_cancel_symbol(account, sid, by_id[sid])
                                              for sid in ids), return_exceptions=True)
            for sid, outcome in zip(ids, outcomes):
                label = f"{account.account} {sid}"
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    sweep.errors[label] = _describe(outcome)
                    continue
                sweep.canceled.extend(self._canceled_raw(account, outcome))
                sweep.recheck.append((label, lambda s=sid: raw_orders.binance_open_orders(account, s)))

        await asyncio.gather(managed(), others())
        return sweep

    async def _cancel_account_wide(self, account: CcxtAccount) -> _Sweep:
        """Every open order of one account — every symbol, not only the managed ones — in as few
        requests as the venue allows.

        Bybit: one cancel-all per category and settle coin (spot; linear USDT; linear USDC), which
        covers every symbol of those; ccxt paces Bybit cancel-alls at 1/s, so per-symbol calls took
        ~1 s each. OKX: one read of every pending order (100 per page), then batches of 20
        concurrently. Binance: one cancel per symbol that has open orders (see `_binance_sweep`).
        """
        ex = account.exchange
        if account.ccxt_id == "bybit":
            scopes: list[dict[str, str]] = []
            if account.serves(MarketKind.SPOT):
                scopes.append({"type": "spot"})
            if account.serves(MarketKind.PERP):
                scopes.extend({"type": "swap", "subType": "linear", "settleCoin": coin} for coin in _BYBIT_SETTLE)
            raws = await asyncio.gather(*(account.write("cancel_all_orders", ex.cancel_all_orders, None, scope,
                                                        priority=True) for scope in scopes))
            return _Sweep([self._order(account, o) for raw in raws for o in raw
                           if o.get("id") or o.get("clientOrderId")])
        if account.ccxt_id == "okx":
            return await self._okx_sweep(account)
        if raw_orders.supports_binance(account):
            return await self._binance_sweep(account)
        mine = [s for s in self.symbols() if self.account_for(s) is account]
        per_symbol = await asyncio.gather(*(self._cancel_symbol(s) for s in mine))
        return _Sweep([o for orders in per_symbol for o in orders])

    async def cancel_all_orders(self, symbol: str | None = None, *, verify: bool = True) -> CancelAllResult:
        """Cancel every open order: of one symbol, or (symbol None) of the whole venue — every symbol
        of every account, including symbols this mode does not trade. Accounts and symbols run
        concurrently; cancels skip ccxt's local pacing; errors are collected per account/symbol,
        never raised mid-way.

        With ``verify`` the managed symbols' open orders, and those of every other symbol the sweep
        cancelled on, are read back once (no retries: the e-stop's budget is not spent retrying): any
        survivor is reported as an error, so an e-stop can tell "acknowledged" from "sent".
        """
        result = CancelAllResult(self._venue)
        try:
            await self._ensure_markets()
        except VenueError as exc:
            result.errors["*"] = str(exc)
            return result
        if symbol is not None:
            keys: list[str] = [symbol]
            jobs = [self._one_symbol(symbol)]
        else:
            keys = [a.account for a in self.accounts]
            jobs = [self._cancel_account_wide(a) for a in self.accounts]
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        failed_accounts: set[str] = set()
        recheck: list[tuple[str, Callable[[], Awaitable[list]]]] = []
        for key, outcome in zip(keys, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                result.errors[key] = _describe(outcome)
                failed_accounts.add(key)
            else:
                result.canceled.extend(outcome.canceled)
                result.errors.update(outcome.errors)
                recheck.extend(outcome.recheck)
        if verify:
            targets = [symbol] if symbol is not None else [
                s for s in self.symbols() if self.account_for(s).account not in failed_accounts]
            reads = [(s, lambda s=s: self._open_once(s)) for s in targets if s not in result.errors]
            reads += [(k, read) for k, read in recheck if k not in result.errors]
            checks = await asyncio.gather(*(read() for _, read in reads), return_exceptions=True)
            for (key, _), left in zip(reads, checks):
                if isinstance(left, BaseException):
                    if not isinstance(left, Exception):
                        raise left
                    result.errors[key] = f"could not verify: {left}"
                elif left:
                    result.errors[key] = f"{len(left)} order(s) still open after cancel-all"
        return result

    async def _one_symbol(self, symbol: str) -> _Sweep:
        return _Sweep(await self._cancel_symbol(symbol))

    async def _open_once(self, symbol: str) -> list[dict]:
        account = self.account_for(symbol)
        return await account.read("fetch_open_orders", account.exchange.fetch_open_orders, symbol,
                                  attempts=1, priority=True)

    # -- dead-man switch (exchange-side cancel-after) ------------------------------------------------
    def dead_man_switch_coverage(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(covered, uncovered) scopes, without calling the venue."""
        covered: list[str] = []
        uncovered: list[str] = []
        for account in self.accounts:
            if account.ccxt_id == "okx":
                covered.append("all orders of the OKX trading account")
            elif account.ccxt_id == "binanceusdm":
                covered.extend(f"usdm {s}" for s in self.symbols(MarketKind.PERP) if self.account_for(s) is account)
            elif account.ccxt_id == "binance":
                uncovered.append("Binance spot: the venue offers no REST cancel-after")
            elif account.ccxt_id == "bybit":
                uncovered.append("Bybit: its disconnect-cancel (DCP) fires only when a private websocket "
                                 "subscribed to 'dcp' drops; this REST adapter holds none")
        return tuple(covered), tuple(uncovered)

    async def _set_dead_man(self, timeout_ms: int) -> None:
        jobs = []
        for account in self.accounts:
            ex = account.exchange
            if account.ccxt_id == "okx":
                jobs.append(account.write("cancel_all_orders_after", ex.cancel_all_orders_after, timeout_ms,
                                          priority=True))
            elif account.ccxt_id == "binanceusdm":
                for s in self.symbols(MarketKind.PERP):
                    if self.account_for(s) is account:
                        market_id = ex.markets[s]["id"]
                        jobs.append(account.write("countdown_cancel_all", ex.fapiPrivatePostCountdownCancelAll,
                                                  {"symbol": market_id, "countdownTime": timeout_ms},
                                                  priority=True))
        await asyncio.gather(*jobs)

    async def arm_dead_man_switch(self, timeout_s: float) -> DeadManSwitchStatus:
        """Arm (or re-arm: each call restarts the countdown) the venue's cancel-after.

        OKX takes whole seconds in 10..120 (cancel-all-after, the whole trading account); Binance USD-M
        takes milliseconds per symbol (countdownCancelAll). A request outside a venue's range is
        clamped to it and the status reports what was set. The heartbeat skips ccxt's local pacing
        (ccxt books OKX's 1/s limit as 1.1 s of queue for every later call, market data included):
        the caller keeps re-arms at most about once a second.
        """
        if not timeout_s > 0:
            raise ValueError(f"dead-man switch timeout must be positive, got {timeout_s!r}")
        await self._ensure_markets()
        covered, uncovered = self.dead_man_switch_coverage()
        if any(a.ccxt_id == "okx" for a in self.accounts):
            seconds = float(min(max(round(timeout_s), _OKX_DEAD_MAN_MIN_S), _OKX_DEAD_MAN_MAX_S))
        else:
            seconds = float(timeout_s)
        if covered:
            await self._set_dead_man(int(seconds * 1000))
        return DeadManSwitchStatus(self._venue, bool(covered), seconds, covered, uncovered,
                                   int(time.time() * 1000) if covered else None)

    async def disarm_dead_man_switch(self) -> DeadManSwitchStatus:
        await self._ensure_markets()
        covered, uncovered = self.dead_man_switch_coverage()
        if covered:
            await self._set_dead_man(0)
        return DeadManSwitchStatus(self._venue, False, 0.0, (), uncovered)

    async def close(self) -> None:
        await asyncio.gather(*(a.close() for a in self.accounts))


def _fields(order: VenueOrder) -> dict[str, Any]:
    return {name: getattr(order, name) for name in VenueOrder.__slots__}


def _describe(exc: BaseException) -> str:
    """A VenueError's own (redacted) text; only the type of anything else (it may not be redacted)."""
    return str(exc) if isinstance(exc, VenueError) else type(exc).__name__


@dataclass(slots=True)
class _Sweep:
    """One account's (or symbol's) cancel-all: what was cancelled, errors by account/symbol, and the
    read-backs that verify symbols outside the managed set ((key, read) pairs)."""

    canceled: list[VenueOrder] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    recheck: list[tuple[str, Callable[[], Awaitable[list]]]] = field(default_factory=list)
