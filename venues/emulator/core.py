"""Loopback exchange emulator: shared state, faults and the aiohttp server.

One aiohttp server on 127.0.0.1 (random port) serves every venue under its own path prefix
(``/binance/...``, ``/bybit/...``, ``/okx/...``); the adapters' ``url_override`` replaces the scheme and
host of each ccxt URL with ``http://127.0.0.1:PORT/<venue>``, so the emulator sees the exact paths ccxt
calls. Each venue keeps balances, orders and positions in memory, checks request signatures with its
test keys like the real venue does, and injects faults set per venue at run time.

Built for reuse by the live-trading tests (issue 5): ``ExchangeEmulator`` has start()/stop(), per-venue
``VenueState`` (place resting orders, read what is open), fault setters, and a request log.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Awaitable, Callable, Protocol

from aiohttp import web

D = Decimal
#: the account name of a venue's funding wallet (deposits land there; nothing trades from it)
FUNDING = "funding"


def fmt(value: Decimal | int | float | None) -> str:
    """A venue-style number string: plain notation, no trailing zeros."""
    if value is None:
        return ""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if d == 0:
        return "0"
    s = format(d.normalize(), "f")
    return s


@dataclass(frozen=True)
class TestKeys:
    """The credentials a venue accepts. ``passphrase`` only matters for OKX."""

    api_key: str
    secret: str
    passphrase: str = ""


TEST_KEYS: dict[str, TestKeys] = {
    "binance": TestKeys("binance-test-api-key-7f3a", "binance-test-secret-c91d44e0"),
    "bybit": TestKeys("bybit-test-api-key-5b2e", "bybit-test-secret-08af713c"),
    "okx": TestKeys("okx-test-api-key-9d4c", "okx-test-secret-6e1b2f90", "okx-test-passphrase-31"),
}


def store_test_keys(store, environments=("testnet", "production")):
    """Put every exchange's test keys into a venues.credentials.CredentialStore; returns the store."""
    for env in environments:
        for venue, keys in TEST_KEYS.items():
            store.set(env, venue, "api_key", keys.api_key)
            store.set(env, venue, "secret", keys.secret)
            if keys.passphrase:
                store.set(env, venue, "passphrase", keys.passphrase)
    return store


#: What the ``body`` fault answers with (HTTP 200 after the request was executed).
BODY_FAULTS = ("truncated", "html", "empty")


@dataclass
class RequestFaults:
    """What can go wrong with one request. Before the venue sees it: ``latency_s`` (added delay),
    ``hang`` (never answer until the emulator stops or the fault is cleared), ``http_status`` (answer
    with this status, e.g. 503, without executing), ``retry_after_s`` (429 with a ``Retry-After``
    header of that many seconds and the venue's rate-limit error, without executing).
    After the venue executed it (an order is booked, a cancel done): ``answer_late_s`` (hold the
    answer this long: a client whose timeout is shorter gives up while the order exists),
    ``drop_answer`` (send the headers and half the body, then cut the connection: aiohttp raises a
    payload error), ``body`` ("truncated": half the real JSON; "html": a 200 HTML page as a proxy or
    maintenance page sends; "empty": a 200 with no body), ``status_after`` (answer with this HTTP
    status, e.g. 502 or 504, as a gateway does when the venue behind it booked the order but its
    answer did not come back in time)."""

    latency_s: float = 0.0
    http_status: int | None = None
    hang: bool = False
    retry_after_s: float | None = None
    answer_late_s: float = 0.0
    drop_answer: bool = False
    body: str | None = None
    status_after: int | None = None

    def __post_init__(self) -> None:
        if self.body is not None and self.body not in BODY_FAULTS:
            raise ValueError(f"unknown body fault {self.body!r}; allowed: {', '.join(BODY_FAULTS)}")


@dataclass
class Faults(RequestFaults):
    """Fault injection for one venue; every request to the venue is affected (``FaultRule`` targets
    one endpoint). Besides the request faults: ``bad_auth`` rejects every signed request as an invalid
    key; ``clock_skew_ms`` makes the venue's clock run this far ahead of ours (negative = behind), for
    server time and signed-request timestamp windows."""

    bad_auth: bool = False
    clock_skew_ms: int = 0


@dataclass
class FaultRule(RequestFaults):
    """Request faults for the requests of one endpoint only: ``path`` is a prefix of the request path
    after the venue prefix (e.g. "api/v5/trade/batch-orders", "fapi/v1/order"; empty: every path),
    ``method`` exactly (empty: any); ``times`` limits the rule to the next N matching requests
    (None: until removed). ``hits`` counts the requests it applied to."""

    path: str = ""
    method: str = ""
    #: a substring the request's query string must contain (empty: any), e.g. "execType=Funding"
    query: str = ""
    times: int | None = None
    hits: int = 0
    #: answer 200 with this JSON instead of the venue's own, without executing (replays of recorded
    #: real answers, tests/fixtures/ccxt_static); signatures are still checked first
    answer_json: Any = None

    def matches(self, method: str, path: str, query: str = "") -> bool:
        return (self.times is None or self.hits < self.times) and path.startswith(self.path) \
            and (not self.method or self.method.upper() == method) and self.query in query


@dataclass
class Instrument:
    """A market at the venue. Quantities at the venue are in ``contract_size`` base units."""

    venue_id: str
    base: str
    quote: str
    kind: str                      # "spot" | "perp"
    price: Decimal
    tick: Decimal
    lot: Decimal                   # quantity step, venue units
    min_qty: Decimal
    contract_size: Decimal = D(1)
    key: str = ""                  # state key; venues with one id per category prefix it ("spot:ETHUSDT")

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.venue_id

    @property
    def bid(self) -> Decimal:
        return self.price - self.tick

    @property
    def ask(self) -> Decimal:
        return self.price + self.tick


@dataclass
class Order:
    order_id: str
    client_id: str
    instrument: Instrument
    side: str                      # "buy" | "sell"
    type: str                      # "limit" | "market"
    qty: Decimal                   # venue units
    price: Decimal | None
    filled: Decimal = D(0)
    avg_price: Decimal = D(0)
    status: str = "open"           # open | filled | canceled
    reduce_only: bool = False
    created_ms: int = 0
    updated_ms: int = 0
    locked: tuple[str, Decimal] | None = None   # spot: (asset, amount) held for a resting order
    fee: Decimal = D(0)            # the fees its trades paid, in ``fee_asset``
    fee_asset: str = ""


@dataclass
class Position:
    qty: Decimal = D(0)            # venue units, signed (short < 0)
    entry: Decimal = D(0)


@dataclass(frozen=True)
class Trade:
    """One execution of an order (the emulator fills an order in one trade)."""

    trade_id: str
    order: Order
    qty: Decimal                   # venue units
    price: Decimal
    ts_ms: int
    fee: Decimal = D(0)            # taken from the account's ``fee_asset`` balance
    fee_asset: str = ""
    realized: Decimal = D(0)       # perps: the P&L the trade realised on the position it reduced


@dataclass(frozen=True)
class FundingRecord:
    """One funding settlement the venue paid into (+) or took from (-) the account's quote balance:
    what the venues' income / execution / bill endpoints report."""

    record_id: str
    instrument: Instrument
    qty: Decimal                   # the position, venue units, signed
    mark: Decimal
    rate: Decimal
    amount: Decimal                # quote currency, received (+) / paid (-)
    balance_after: Decimal
    ts_ms: int


@dataclass(frozen=True)
class InternalTransfer:
    """One move between two accounts of a venue (Binance universal transfer, OKX funds transfer,
    Bybit inter-transfer); ``client_id`` is the caller's id where the venue takes one."""

    id: str
    asset: str
    amount: Decimal
    from_account: str
    to_account: str
    client_id: str
    ts_ms: int


class RejectOrder(Exception):
    """The venue refuses an order; ``reason`` is one of: funds, min_qty, unknown_symbol, duplicate_id."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class VenueState:
    """Everything one emulated venue knows. Accounts: e.g. binance "spot" and "usdm"; others one."""

    name: str
    keys: TestKeys
    instruments: dict[str, Instrument]
    balances: dict[str, dict[str, Decimal]]
    faults: Faults = field(default_factory=Faults)
    fault_rules: list[FaultRule] = field(default_factory=list)
    funding_rate: Decimal = D("0.0001")
    funding_interval_h: int = 8
    #: settle funding into balances at each funding time of the venue's clock (a test that needs a
    #: settlement at a moment of its choosing calls ``settle_funding``)
    funding_on_clock: bool = True
    #: taker fee rate by market kind ("spot", "perp"), taken on every fill: a spot buy's from the coin
    #: bought, every other from the quote
    taker_fee: dict[str, Decimal] = field(default_factory=dict)
    funding: list[FundingRecord] = field(default_factory=list)
    last_funding_ms: int | None = None
    can_trade: bool = True
    can_withdraw: bool = False
    read_only: bool = False
    hedge_mode: bool = False
    account_level: int = 2          # OKX acctLv: 1 simple (spot only), 2 single-currency margin
    orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    # Dead-man switches (exchange-side cancel-after): scope -> deadline on the venue clock (ms). A scope
    # is "*" (every order of the venue, OKX) or an instrument key (Binance USD-M is per symbol).
    dead_man: dict[str, int] = field(default_factory=dict)
    dead_man_arms: list[tuple[str, int]] = field(default_factory=list)      # (scope, timeout ms), 0 = off
    dead_man_fired: list[tuple[str, list[str]]] = field(default_factory=list)  # (scope, cancelled ids)
    _ids: Any = field(default_factory=lambda: itertools.count(1_000_001))
    #: the venue's wallet on a chain (venues/emulator/chain_bridge.ChainBridge): withdrawals and deposits
    chain: Any = None
    #: internal transfers between the venue's accounts, in order (venues/emulator/transfers.py)
    internal_transfers: list[InternalTransfer] = field(default_factory=list)

    # -- clocks ------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.faults.clock_skew_ms

    def next_funding_ms(self) -> int:
        interval = self.funding_interval_h * 3_600_000
        return (self.now_ms() // interval + 1) * interval

    # -- funding -----------------------------------------------------------------------------------
    def settle_funding(self, rate: Decimal | None = None, at_ms: int | None = None) -> list[FundingRecord]:
        """Pay funding on every open perp now: payment = -size x mark x rate into the account's quote
        balance (a short receives when the rate is positive), as the venue does at a funding time.
        ``rate`` defaults to the venue's current ``funding_rate``."""
        rate = self.funding_rate if rate is None else rate
        ts = self.now_ms() if at_ms is None else at_ms
        out: list[FundingRecord] = []
        for key, pos in self.positions.items():
            if pos.qty == 0:
                continue
            inst = self.instruments[key]
            amount = -pos.qty * inst.contract_size * inst.price * rate
            bal = self.balances[self.account_of(inst)]
            bal[inst.quote] = bal.get(inst.quote, D(0)) + amount
            record = FundingRecord(str(next(self._ids)), inst, pos.qty, inst.price, rate, amount,
                                   bal[inst.quote], ts)
            self.funding.append(record)
            out.append(record)
        return out

    def settle_funding_due(self, now_ms: int | None = None) -> list[FundingRecord]:
        """The clock-driven settlement: funding once per funding time passed since the last check."""
        now = self.now_ms() if now_ms is None else now_ms
        interval = self.funding_interval_h * 3_600_000
        boundary = now // interval * interval
        if self.last_funding_ms is None:
            self.last_funding_ms = boundary       # the venue opened now: the next funding time pays
            return []
        if boundary <= self.last_funding_ms:
            return []
        self.last_funding_ms = boundary
        return self.settle_funding(at_ms=boundary)

    # -- lookups -----------------------------------------------------------------------------------
    def add_instrument(self, instrument: Instrument) -> Instrument:
        """List a market at run time (e.g. a symbol no mode trades, or one listed after a client loaded
        its markets): the venue's market list, order entry and order endpoints see it from now on."""
        if instrument.key in self.instruments:
            raise ValueError(f"{self.name}: instrument {instrument.key} is already listed")
        self.instruments[instrument.key] = instrument
        return instrument

    def instrument(self, key: str) -> Instrument:
        try:
            return self.instruments[key]
        except KeyError:
            raise RejectOrder("unknown_symbol", f"unknown symbol {key}") from None

    @property
    def wallet_account(self) -> str:
        """Where the venue credits deposits and pays withdrawals from: the funding account where the
        venue has one (OKX, Bybit), else its first account (Binance: spot)."""
        return FUNDING if FUNDING in self.balances else next(iter(self.balances))

    def account_of(self, inst: Instrument) -> str:
        accounts = [a for a in self.balances if a != FUNDING]    # the funding account trades nothing
        if len(accounts) == 1:
            return accounts[0]
        return "spot" if inst.kind == "spot" else "usdm"

    def open_orders(self, key: str | None = None, kind: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.status == "open"
                and (key is None or o.instrument.key == key)
                and (kind is None or o.instrument.kind == kind)]

    def find_order(self, order_id: str | None = None, client_id: str | None = None) -> Order | None:
        if order_id:
            return self.orders.get(str(order_id))
        if client_id:
            for o in self.orders.values():
                if o.client_id == client_id:
                    return o
        return None

    def balance(self, account: str, asset: str) -> Decimal:
        return self.balances[account].get(asset, D(0))

    def locked(self, account: str, asset: str) -> Decimal:
        return sum((o.locked[1] for o in self.orders.values()
                    if o.status == "open" and o.locked and o.locked[0] == asset
                    and self.account_of(o.instrument) == account), D(0))

    def unrealized(self, key: str) -> Decimal:
        pos = self.positions.get(key)
        if not pos or pos.qty == 0:
            return D(0)
        inst = self.instruments[key]
        return pos.qty * inst.contract_size * (inst.price - pos.entry)

    def move(self, asset: str, amount: Decimal, from_account: str, to_account: str,
             client_id: str = "") -> InternalTransfer:
        """An internal transfer between two accounts of the venue (ValueError: unknown account, bad
        amount, duplicate client id, or not enough free balance; nothing moves then)."""
        if client_id and any(m.client_id == client_id for m in self.internal_transfers):
            raise ValueError(f"duplicate transfer id {client_id}")
        for account in (from_account, to_account):
            if account not in self.balances:
                raise ValueError(f"unknown account {account}")
        if from_account == to_account:
            raise ValueError("the accounts are the same")
        if amount <= 0:
            raise ValueError("amount must be positive")
        if self.balance(from_account, asset) - self.locked(from_account, asset) < amount:
            raise ValueError("insufficient balance")
        self.balances[from_account][asset] = self.balance(from_account, asset) - amount
        self.balances[to_account][asset] = self.balance(to_account, asset) + amount
        move = InternalTransfer(str(next(self._ids)), asset, amount, from_account, to_account, client_id, self.now_ms())
        self.internal_transfers.append(move)
        return move

    # -- trading -----------------------------------------------------------------------------------
    def place(self, key: str, side: str, type_: str, qty: Decimal, price: Decimal | None,
              client_id: str | None, reduce_only: bool = False) -> Order:
        """Market orders fill at once at the touch; limit orders rest (tests need open orders)."""
        inst = self.instrument(key)
        if client_id and self.find_order(client_id=client_id) is not None:
            raise RejectOrder("duplicate_id", f"duplicate client order id {client_id}")
        if qty < inst.min_qty or qty % inst.lot != 0:
            raise RejectOrder("min_qty", f"quantity {qty} invalid for {key} (min {inst.min_qty}, step {inst.lot})")
        now = self.now_ms()
        order = Order(str(next(self._ids)), client_id or f"emu{next(self._ids)}", inst, side, type_, qty,
                      price, reduce_only=reduce_only, created_ms=now, updated_ms=now)
        account = self.account_of(inst)
        if inst.kind == "spot":
            fill_price = inst.ask if side == "buy" else inst.bid
            need_asset, need = (inst.quote, qty * (price or fill_price)) if side == "buy" else (inst.base, qty)
            if self.balance(account, need_asset) - self.locked(account, need_asset) < need:
                raise RejectOrder("funds", "insufficient balance")
            if type_ == "limit":
                order.locked = (need_asset, need)
        if type_ == "market":
            self._fill(order, inst.ask if side == "buy" else inst.bid)
        self.orders[order.order_id] = order
        return order

    def _fill(self, order: Order, price: Decimal) -> None:
        inst = order.instrument
        account = self.account_of(inst)
        bal = self.balances[account]
        signed = order.qty if order.side == "buy" else -order.qty
        # Fees as the real venues take them: a spot buy pays in the coin bought (the account receives
        # the amount less the fee), a spot sell and every perp trade in the quote (USDT), on the
        # notional (OKX contracts x contract size).
        rate = self.taker_fee.get(inst.kind, D(0))
        if inst.kind == "spot" and order.side == "buy":
            fee, fee_asset = order.qty * rate, inst.base
        else:
            fee, fee_asset = order.qty * inst.contract_size * price * rate, inst.quote
        bal[fee_asset] = bal.get(fee_asset, D(0)) - fee
        realized = D(0)
        if inst.kind == "spot":
            bal[inst.base] = bal.get(inst.base, D(0)) + signed
            bal[inst.quote] = bal.get(inst.quote, D(0)) - signed * price
        else:
            pos = self.positions.setdefault(inst.key, Position())
            old, new = pos.qty, pos.qty + signed
            if old == 0 or (old > 0) == (signed > 0):
                pos.entry = (old * pos.entry + signed * price) / new
            else:
                closed = min(abs(signed), abs(old))
                realized = closed * inst.contract_size * (price - pos.entry) * (1 if old > 0 else -1)
                bal[inst.quote] = bal.get(inst.quote, D(0)) + realized
                if abs(signed) > abs(old):
                    pos.entry = price
                elif new == 0:
                    pos.entry = D(0)
            pos.qty = new
        order.filled, order.avg_price, order.status = order.qty, price, "filled"
        order.locked = None
        order.updated_ms = self.now_ms()
        order.fee, order.fee_asset = order.fee + fee, fee_asset
        self.trades.append(Trade(str(next(self._ids)), order, order.qty, price, order.updated_ms, fee, fee_asset,
                                 realized))

    def move_price(self, key: str, price: Decimal) -> list[Order]:
        """Move the market of ``key`` to ``price``; every resting limit order the new touch crosses
        fills at its limit price (a buy once the ask is at or below its limit, a sell once the bid is
        at or above it), as a venue's matching engine would. Returns the orders filled."""
        inst = self.instrument(key)
        inst.price = price.quantize(inst.tick)
        filled = []
        for o in self.open_orders(key):
            if o.type != "limit" or o.price is None:
                continue
            if (o.side == "buy" and inst.ask <= o.price) or (o.side == "sell" and inst.bid >= o.price):
                self._fill(o, o.price)
                filled.append(o)
        return filled

    def cancel(self, order: Order) -> Order:
        if order.status != "open":
            raise RejectOrder("not_open", f"order {order.order_id} is {order.status}")
        order.status, order.locked, order.updated_ms = "canceled", None, self.now_ms()
        return order

    # -- dead-man switch ---------------------------------------------------------------------------
    def arm_dead_man(self, scope: str, timeout_ms: int) -> int | None:
        """(Re)start the countdown of ``scope``; 0 switches it off. Returns the deadline (ms) or None."""
        self.dead_man_arms.append((scope, timeout_ms))
        if timeout_ms <= 0:
            self.dead_man.pop(scope, None)
            return None
        self.dead_man[scope] = self.now_ms() + timeout_ms
        return self.dead_man[scope]

    def expire_dead_man(self, now_ms: int | None = None) -> list[Order]:
        """Cancel the orders of every scope whose countdown ran out by ``now_ms`` (default: now).

        The emulator calls this every few ms; a test may pass a future time to play a long countdown
        (OKX's minimum is 10 s) without waiting for it.
        """
        now = self.now_ms() if now_ms is None else now_ms
        cancelled: list[Order] = []
        for scope, deadline in list(self.dead_man.items()):
            if now < deadline:
                continue
            del self.dead_man[scope]
            hit = [o for o in self.open_orders() if scope == "*" or o.instrument.key == scope]
            for o in hit:
                self.cancel(o)
            self.dead_man_fired.append((scope, [o.order_id for o in hit]))
            cancelled.extend(hit)
        return cancelled


Handler = Callable[[web.Request, str, bytes], Awaitable[web.Response]]


class Dialect(Protocol):
    """One venue's REST protocol (venues/emulator/binance.py, bybit.py, okx.py)."""

    def rate_limited(self) -> web.Response: ...

    async def handle(self, request: web.Request, path: str, body: bytes,
                     auth_only: bool = False) -> web.Response | None: ...


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(payload), status=status, content_type="application/json")


async def _cut_mid_answer(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Announce the whole answer, send half of it, close the connection (what a dropped TCP
    connection or a proxy timeout looks like to the client: aiohttp's ClientPayloadError)."""
    payload = response.body if isinstance(response.body, bytes) else (response.text or "").encode()
    cut = web.StreamResponse(status=response.status, headers={"Content-Type": response.content_type})
    cut.content_length = len(payload)
    await cut.prepare(request)
    await cut.write(payload[: len(payload) // 2])
    if request.transport is not None:
        request.transport.close()
    return cut


def _bad_body(response: web.Response, kind: str) -> web.Response:
    if kind == "html":
        return web.Response(status=200, content_type="text/html",
                            text="<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
                                 "<h1>We'll be back soon</h1><p>The exchange is under maintenance.</p></body></html>")
    if kind == "empty":
        return web.Response(status=200, content_type="application/json", text="")
    text = response.text or ""
    return web.Response(status=200, content_type="application/json", text=text[: max(1, len(text) // 2)])


class ExchangeEmulator:
    """The aiohttp server with one VenueState + dialect per venue.

    >>> emu = ExchangeEmulator(); await emu.start(); emu.base_url("okx")  # doctest: +SKIP
    """

    def __init__(self, keys: dict[str, TestKeys] | None = None) -> None:
        from venues.emulator import binance, bybit, okx  # dialects register their defaults

        keys = keys or TEST_KEYS
        self.venues: dict[str, VenueState] = {
            "binance": binance.default_state(keys["binance"]),
            "bybit": bybit.default_state(keys["bybit"]),
            "okx": okx.default_state(keys["okx"]),
        }
        self._dialects: dict[str, Dialect] = {
            "binance": binance.BinanceDialect(self.venues["binance"]),
            "bybit": bybit.BybitDialect(self.venues["bybit"]),
            "okx": okx.OkxDialect(self.venues["okx"]),
        }
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._dead_man_task: asyncio.Task | None = None
        self.port: int | None = None
        #: with record_answers, every JSON answer by (venue, method, path), for the fidelity checks
        self.record_answers = False
        self.answers: dict[tuple[str, str, str], list[Any]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{venue}/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._release = asyncio.Event()
        self._dead_man_task = asyncio.ensure_future(self._dead_man_loop())

    async def _dead_man_loop(self) -> None:
        """The venues' countdown checker (Binance checks about every 10 ms), and their funding clock."""
        while True:
            for state in self.venues.values():
                if state.dead_man:
                    state.expire_dead_man()
                if state.funding_on_clock:
                    state.settle_funding_due()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._dead_man_task is not None:
            self._dead_man_task.cancel()
            self._dead_man_task = None
        self._release.set()              # hung handlers answer and finish
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "ExchangeEmulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def base_url(self, venue: str) -> str:
        if self.port is None:
            raise RuntimeError("emulator not started")
        return f"http://127.0.0.1:{self.port}/{venue}"

    # -- faults ------------------------------------------------------------------------------------
    def set_faults(self, venue: str, **faults: Any) -> None:
        """E.g. ``set_faults("okx", hang=True)``; unknown names raise."""
        current = self.venues[venue].faults
        for name, value in faults.items():
            if not hasattr(current, name):
                raise AttributeError(f"unknown fault {name!r}")
            if name == "body" and value is not None and value not in BODY_FAULTS:
                raise ValueError(f"unknown body fault {value!r}; allowed: {', '.join(BODY_FAULTS)}")
            setattr(current, name, value)

    def clear_faults(self, venue: str | None = None) -> None:
        """Remove every fault (global and per-endpoint) of one venue, or of all."""
        for name in ([venue] if venue else list(self.venues)):
            self.venues[name].faults = Faults()
            self.venues[name].fault_rules.clear()

    def add_fault(self, venue: str, path: str = "", method: str = "", *, times: int | None = None,
                  **faults: Any) -> FaultRule:
        """Request faults on one endpoint, e.g. ``add_fault("okx", "api/v5/trade/batch-orders", "POST",
        answer_late_s=3, times=1)``. Rules are tried in the order added; the first that matches a
        request applies (instead of the venue-wide faults)."""
        rule = FaultRule(path=path, method=method, times=times, **faults)
        self.venues[venue].fault_rules.append(rule)
        return rule

    # -- requests ----------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        venue = request.match_info["venue"]
        state = self.venues.get(venue)
        if state is None:
            return json_response({"error": f"no emulated venue {venue!r}"}, 404)
        tail = request.match_info["tail"]
        state.requests.append((request.method, tail))
        faults: RequestFaults = state.faults
        rule = next((r for r in state.fault_rules if r.matches(request.method, tail, request.query_string)), None)
        if rule is not None:
            rule.hits += 1
            faults = rule
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if faults.hang:
            await self._release.wait()
            return web.Response(status=503, text="emulator stopped")
        if faults.http_status is not None:
            return web.Response(status=faults.http_status, text=f"<html>{faults.http_status} injected</html>",
                                content_type="text/html")
        dialect = self._dialects[venue]
        if faults.retry_after_s is not None:
            response = dialect.rate_limited()
            response.headers["Retry-After"] = f"{faults.retry_after_s:g}"
            return response
        body = await request.read()
        if isinstance(faults, FaultRule) and faults.answer_json is not None:
            denied = await dialect.handle(request, tail, body, auth_only=True)
            return denied if denied is not None else json_response(faults.answer_json)
        answered = await dialect.handle(request, tail, body)
        assert answered is not None, "a dialect answers every request that is not auth_only"
        response = answered
        if self.record_answers and response.content_type == "application/json" and response.text:
            self.answers.setdefault((venue, request.method, tail), []).append(json.loads(response.text))
        # From here on the venue has executed the request; only the answer goes wrong.
        if faults.answer_late_s:
            await asyncio.sleep(faults.answer_late_s)
        if faults.drop_answer:
            return await _cut_mid_answer(request, response)
        if faults.status_after is not None:
            return web.Response(status=faults.status_after, content_type="text/html",
                                text=f"<html><head><title>{faults.status_after} Gateway Time-out</title></head></html>")
        if faults.body is not None:
            return _bad_body(response, faults.body)
        return response
