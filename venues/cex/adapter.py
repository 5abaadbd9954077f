"""CexVenueAdapter: the engine's CexVenuePort for one exchange, over one or two ccxt clients.

Binance keeps spot and USD-M futures in separate wallets behind separate ccxt classes (binance,
binanceusdm), so its adapter holds two clients; Bybit (unified account) and OKX (trading account)
serve spot and perps from one. Orders route by the symbol's market kind. Everything a venue does
its own way (cancel-all, the dead-man switch, finding an order by client id, contract sizes) lives
in that venue's client class (venues/cex/binance.py, bybit.py, okx.py on venues/cex/client.py): this
adapter never asks which exchange it talks to.

Units: the port speaks base-asset units; OKX swaps trade in contracts (0.1 ETH / 0.01 BTC), so
amounts are divided by the market's contract size on the way out and multiplied on the way back.
Amounts are truncated to the venue's step (never more than asked) and prices rounded to the tick
in the direction that never pays more (buys down, sells up).
"""
from __future__ import annotations

import asyncio
import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial
from typing import Any, Mapping, Sequence

from engine.domain.venue_ports import (
    CancelAllResult,
    DeadManSwitchStatus,
    MarketKind,
    MarketQuote,
    MarketSnapshot,
    OrderRequest,
    OrderStatus,
    OrderType,
    SendCheck,
    Side,
    VenueBalance,
    VenueCash,
    VenueError,
    VenueErrorKind,
    VenueFill,
    VenueFundingPayment,
    VenueOrder,
    VenuePosition,
)
from venues.cex.client import CexClient, Recheck, Sweep, describe, order_fields
from venues.cex.numbers import as_float, dec, fees_of, kind_of, step

__all__ = ["CexVenueAdapter", "dec", "kind_of"]


class CexVenueAdapter:
    """Implements engine.domain.venue_ports.CexVenuePort for binance, bybit or okx."""

    def __init__(self, venue: str, accounts: Sequence[CexClient], *,
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
        return symbol in self.account_for(symbol).markets

    def account_for(self, symbol: str) -> CexClient:
        kind = kind_of(symbol)
        for account in self.accounts:
            if account.serves(kind):
                return account
        raise VenueError(self._venue, VenueErrorKind.CONFIG, f"no {kind.value} account configured for {symbol}")

    def balance_account(self, symbol: str) -> str:
        return self.account_for(symbol).account

    def perp_accounts(self) -> list[CexClient]:
        return [a for a in self.accounts if a.serves(MarketKind.PERP)]

    def managed(self, account: CexClient, kind: MarketKind | None = None) -> list[str]:
        """The listed symbols this adapter trades through ``account``."""
        return [s for s in self.symbols(kind) if self.account_for(s) is account]

    def _market(self, symbol: str) -> tuple[CexClient, dict]:
        account = self.account_for(symbol)
        markets = account.markets
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

    async def fetch_cash(self, asset: str = "USDT") -> VenueCash:
        """The book's one CEX cash balance, as the venue holds it: the sum over this venue's accounts
        (Binance spot + USD-M wallets; Bybit and OKX one unified account), each read from the field
        that excludes unrealised P&L (the account's client knows which)."""
        await self._ensure_markets()
        results = await asyncio.gather(*(a.read("fetch_balance", a.exchange.fetch_balance) for a in self.accounts))
        parts = []
        for account, bal in zip(self.accounts, results):
            if not isinstance(bal, Mapping):
                raise VenueError(self._venue, VenueErrorKind.MALFORMED, f"{account.ccxt_id}: balance answer is a "
                                 f"{type(bal).__name__}", operation="fetch_balance")
            parts.append((account.account, account.cash_of(bal, asset)))
        return VenueCash(self._venue, asset, sum((amount for _, amount in parts), Decimal(0)), tuple(parts))

    async def fetch_funding_payments(self, symbols: Sequence[str], since_ms: int) -> list[VenueFundingPayment]:
        await self._ensure_markets()
        out: list[VenueFundingPayment] = []
        for account in self.perp_accounts():
            mine = [s for s in symbols if self.account_for(s) is account]
            if not mine:
                continue
            for symbol, amount, ts, pid in await account.funding_payments(mine, since_ms):
                out.append(VenueFundingPayment(self._venue, symbol, symbol.split(":")[-1], amount, ts, pid))
        return sorted(out, key=lambda p: (p.timestamp_ms, p.payment_id))

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
            if not isinstance(raw, list):
                raise VenueError(self._venue, VenueErrorKind.MALFORMED, f"positions answer is a {type(raw).__name__}, "
                                 "not a list", operation="fetch_positions")
            for p in raw:
                symbol = p.get("symbol")
                if symbol not in mine:
                    continue
                # A size the venue did not state is not "no position": a position read that cannot be
                # trusted must never let the strategy enter again on top of what is held.
                contracts = dec(p.get("contracts"))
                if contracts is None:
                    raise VenueError(self._venue, VenueErrorKind.MALFORMED,
                                     f"the position of {symbol} has no readable size "
                                     f"({'contracts' if 'contracts' in p else 'no contracts field'}: {p.get('contracts')!r})",
                                     operation="fetch_positions")
                if contracts == 0:
                    continue
                size = contracts * (dec(p.get("contractSize")) or account.contract_size(symbol))
                if p.get("side") == "short":
                    size = -abs(size)
                out.append(VenuePosition(
                    self._venue, symbol, size, dec(p.get("entryPrice")), dec(p.get("markPrice")),
                    dec(p.get("unrealizedPnl")), dec(p.get("leverage")), p.get("marginMode"),
                    dec(p.get("liquidationPrice"))))
        return out

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        await self._ensure_markets()
        targets = [symbol] if symbol is not None else self.symbols()

        async def one(s: str) -> list[VenueOrder]:
            account = self.account_for(s)
            raw = await account.read("fetch_open_orders", account.exchange.fetch_open_orders, s)
            return [account.order(o, s) for o in raw]

        per_symbol = await asyncio.gather(*(one(s) for s in targets))
        return [o for orders in per_symbol for o in orders]

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        await self._ensure_markets()
        for order in await self.fetch_open_orders(symbol):
            if order.client_order_id == client_order_id:
                return order
        return await self.account_for(symbol).find_by_client_id(symbol, client_order_id)

    async def fetch_fills_by_client_id(self, symbol: str, client_order_id: str,
                                       since_ms: int | None = None) -> list[VenueFill] | None:
        """The trades of one order found by its client id (amounts in base units), each with its fee
        as the venue took it; [] when the venue has no such order or trade (Binance, whose trades carry
        only its order id, finds the order by client id first)."""
        await self._ensure_markets()
        account = self.account_for(symbol)
        raw = await account.fills_by_client_id(symbol, client_order_id, since_ms)
        if raw is None:
            return None
        size = account.contract_size(symbol)
        out: list[VenueFill] = []
        for t in raw:
            amount, price = dec(t.get("amount")), dec(t.get("price"))
            if amount is None or price is None:
                raise VenueError(self._venue, VenueErrorKind.MALFORMED,
                                 f"a trade of order {client_order_id} has no amount or price", operation="fetch_my_trades")
            side = t.get("side")
            out.append(VenueFill(self._venue, symbol, t.get("order"), client_order_id,
                                 Side(side) if side in ("buy", "sell") else None, amount * size, price,
                                 t.get("timestamp"), fees_of(t)))
        return out

    # -- writes ------------------------------------------------------------------------------------
    async def tradable_amount(self, symbol: str, amount: Decimal) -> Decimal:
        """What an order for ``amount`` (base units) really trades here: rounded down to the venue's
        lot, in base units. A preview sizes the rest of a plan from this, as the venue will fill it.
        Raises VenueError (REJECTED) below the minimum order size, as ``create_order`` would."""
        await self._ensure_markets()
        account, market = self._market(symbol)
        return self._venue_amount(account, market, amount) * account.contract_size(symbol)

    def _venue_amount(self, account: CexClient, market: dict, amount: Decimal) -> Decimal:
        size = account.contract_size(market["symbol"])
        qty = amount / size
        lot = step(account.exchange, market.get("precision", {}).get("amount"))
        if lot:
            qty = (qty / lot).to_integral_value(rounding=ROUND_FLOOR) * lot
        minimum = dec(((market.get("limits") or {}).get("amount") or {}).get("min"))
        if qty <= 0 or (minimum is not None and qty < minimum):
            raise VenueError(self._venue, VenueErrorKind.REJECTED,
                             f"amount {amount} {market['base']} is below the minimum order size of {market['symbol']} "
                             f"({minimum or lot} {'contracts' if size != 1 else market['base']})",
                             operation="create_order")
        return qty.normalize() if qty == qty.to_integral_value() else qty

    def _venue_price(self, account: CexClient, market: dict, price: Decimal, side: Side) -> Decimal:
        tick = step(account.exchange, market.get("precision", {}).get("price"))
        if not tick:
            return price
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return (price / tick).to_integral_value(rounding=rounding) * tick

    async def create_order(self, request: OrderRequest, *, may_send: SendCheck | None = None) -> VenueOrder:
        """Send one order; ``may_send`` is asked right before its HTTP request leaves (after ccxt's
        local rate limiter): False raises VenueError NOT_SENT and nothing reaches the venue."""
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
            as_float(self._venue, qty, "amount"),
            as_float(self._venue, price, "price") if price is not None else None, params, may_send=may_send)
        order = account.order(raw, request.symbol, request.client_order_id)
        # Bybit and OKX acknowledge with ids only (status UNKNOWN = accepted, state not reported yet):
        # complete what the venue left out from the request itself.
        known = {"amount": request.amount, "side": request.side, "type": request.type.value, "price": price}
        missing = {k: v for k, v in known.items() if getattr(order, k) is None}
        return VenueOrder(**{**order_fields(order), **missing}) if missing else order

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> VenueOrder:
        if order_id is None and client_order_id is None:
            raise ValueError("cancel_order needs an order_id or a client_order_id")
        await self._ensure_markets()
        account, _ = self._market(symbol)
        params = account.client_id_params(client_order_id) if client_order_id is not None and order_id is None else {}
        raw = await account.write("cancel_order", account.exchange.cancel_order, order_id, symbol, params)
        order = account.order(raw, symbol, client_order_id)
        if order.status in (OrderStatus.UNKNOWN, OrderStatus.OPEN):
            order = VenueOrder(**{**order_fields(order), "status": OrderStatus.CANCELED,
                                  "order_id": order.order_id or order_id})
        return order

    # -- cancel-all (the emergency path) -----------------------------------------------------------
    async def cancel_all_orders(self, symbol: str | None = None, *, verify: bool = True) -> CancelAllResult:
        """One pass of cancel-all: of one symbol, or (symbol None) of the whole venue — every symbol
        of every account, including symbols this mode does not trade. Accounts and symbols run
        concurrently; cancels skip ccxt's local pacing; errors are collected per account/symbol with
        their kinds, never raised mid-way. A pass does not retry: the emergency stop repeats passes
        within its budget, so it decides how long to wait (Retry-After included).

        With ``verify`` every account's open orders are read back once after its cancels — the whole
        account or category where the venue can list it in one read (Binance, Bybit, OKX) — also on
        an account whose cancel failed, since a garbled answer to a cancel that executed must not
        leave the venue "unconfirmed" when a read proves it flat. ``verified`` is set only when every
        read-back answered and found nothing open; an unreadable answer is an error, never "nothing".
        """
        result = CancelAllResult(self._venue)
        try:
            await self._ensure_markets()
        except VenueError as exc:
            result.fail("*", exc)
            return result
        if symbol is not None:
            keys: list[str] = [symbol]
            jobs = [self._one_symbol(symbol)]
        else:
            keys = [a.account for a in self.accounts]
            jobs = [a.cancel_account_wide(self.managed(a)) for a in self.accounts]
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        rechecks: dict[str, list[Recheck]] = {}
        for key, outcome in zip(keys, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                result.fail(key, outcome if isinstance(outcome, VenueError) else describe(outcome),
                            VenueErrorKind.UNKNOWN)
            else:
                result.canceled.extend(outcome.canceled)
                for k, text in outcome.errors.items():
                    result.errors[k] = text
                    result.kinds[k] = outcome.kinds.get(k, VenueErrorKind.UNKNOWN)
                if outcome.retry_after_s is not None:
                    result.retry_after_s = max(result.retry_after_s or 0.0, outcome.retry_after_s)
                rechecks[key] = outcome.recheck
        if verify:
            if symbol is not None:
                reads: list[Recheck] = [(symbol, partial(self.account_for(symbol).open_orders_once, symbol))]
            else:
                reads = [r for a in self.accounts for r in a.verify_reads(self.managed(a), rechecks.get(a.account, []))]
            checks = await asyncio.gather(*(read() for _, read in reads), return_exceptions=True)
            clean = True
            for (key, _), left in zip(reads, checks):
                if isinstance(left, BaseException):
                    if not isinstance(left, Exception):
                        raise left
                    clean = False
                    result.fail(f"verify {key}", f"could not verify: {describe(left)}",
                                left.kind if isinstance(left, VenueError) else VenueErrorKind.UNKNOWN)
                    if isinstance(left, VenueError) and left.retry_after_s is not None:
                        result.retry_after_s = max(result.retry_after_s or 0.0, left.retry_after_s)
                elif not isinstance(left, list):
                    clean = False
                    result.fail(f"verify {key}", f"could not verify: the answer is a {type(left).__name__}, "
                                "not a list of orders", VenueErrorKind.MALFORMED)
                elif left:
                    clean = False
                    result.errors[f"verify {key}"] = f"{len(left)} order(s) still open after cancel-all"
            result.verified = clean
        return result

    async def _one_symbol(self, symbol: str) -> Sweep:
        return Sweep(await self.account_for(symbol).cancel_symbol(symbol))

    # -- dead-man switch (exchange-side cancel-after) ------------------------------------------------
    def dead_man_switch_coverage(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(covered, uncovered) scopes, without calling the venue."""
        covered: list[str] = []
        uncovered: list[str] = []
        for account in self.accounts:
            yes, no = account.dead_man_coverage(self.managed(account, MarketKind.PERP))
            covered.extend(yes)
            uncovered.extend(no)
        return tuple(covered), tuple(uncovered)

    async def _set_dead_man(self, timeout_ms: int) -> None:
        await asyncio.gather(*(a.set_dead_man(timeout_ms, self.managed(a, MarketKind.PERP)) for a in self.accounts))

    async def arm_dead_man_switch(self, timeout_s: float) -> DeadManSwitchStatus:
        """Arm (or re-arm: each call restarts the countdown) the venue's cancel-after.

        A request outside a venue's range is clamped to it (OKX: whole seconds 10..120) and the status
        reports what was set. The heartbeat skips ccxt's local pacing (ccxt books OKX's 1/s limit as
        1.1 s of queue for every later call, market data included): the caller keeps re-arms at most
        about once a second.
        """
        if not timeout_s > 0:
            raise ValueError(f"dead-man switch timeout must be positive, got {timeout_s!r}")
        await self._ensure_markets()
        covered, uncovered = self.dead_man_switch_coverage()
        seconds = float(timeout_s)
        for account in self.accounts:
            seconds = account.dead_man_seconds(seconds)
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

