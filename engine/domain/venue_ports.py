"""Venue ports: what the engine needs from a live exchange account or chain, as `typing.Protocol`s.

The engine never imports venues/ or any SDK; live adapters (venues.cex, venues.onchain)
implement these protocols and the bootstrap wires them in. Conventions at this boundary:

- Symbols are ccxt unified symbols: spot ``"ETH/USDT"``, USDT-margined linear perp ``"ETH/USDT:USDT"``.
- Order amounts and prices are ``Decimal`` (no float rounding on what is sent to an exchange).
  Amounts are always in **base-asset units** (ETH, BTC), also for perps: an adapter converts to
  contracts where a venue counts in contracts (OKX swaps), so the engine never sees contract sizes.
- Every order carries a client order id made by the caller (``new_client_order_id``): a retry after
  a timeout can then look the order up instead of submitting it twice.
- Reads are safe to retry; writes are not retried by the adapter.
- On-chain amounts are returned both raw (integer base units) and as ``Decimal`` token units.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Callable, Protocol, Sequence, runtime_checkable

# OKX accepts 1-32 alphanumerics only; Binance and Bybit allow 36 with some punctuation. The common
# subset is what every venue accepts, so ids are made to fit it.
CLIENT_ORDER_ID_MAX_LEN = 32


def new_client_order_id(prefix: str = "bw") -> str:
    """A fresh client order id valid on every supported venue (alphanumeric, 32 characters)."""
    if not prefix.isalnum() or len(prefix) > 8:
        raise ValueError(f"client order id prefix must be 1-8 alphanumerics, got {prefix!r}")
    return prefix + secrets.token_hex(16)[: CLIENT_ORDER_ID_MAX_LEN - len(prefix)]


def validate_client_order_id(client_order_id: str) -> str:
    """Return the id if every venue accepts it, else raise ValueError naming the rule."""
    if not (1 <= len(client_order_id) <= CLIENT_ORDER_ID_MAX_LEN) or not client_order_id.isalnum() \
            or not client_order_id.isascii():
        raise ValueError(
            f"client order id {client_order_id!r} must be 1-{CLIENT_ORDER_ID_MAX_LEN} ASCII alphanumerics "
            "(the subset Binance, Bybit and OKX all accept)")
    return client_order_id


class VenueErrorKind(str, Enum):
    """Why a venue call failed, in terms the engine and the checks act on."""

    AUTH = "auth"                  # key missing, wrong, expired, bad signature or passphrase
    PERMISSION = "permission"      # key valid but not allowed (IP whitelist, missing trade right)
    CLOCK = "clock"                # request timestamp outside the venue's window (local clock skew)
    TIMEOUT = "timeout"            # no answer in time (outcome of a write is UNKNOWN)
    NETWORK = "network"            # connection refused / DNS / reset
    UNAVAILABLE = "unavailable"    # venue answered 5xx or maintenance
    RATE_LIMIT = "rate_limit"
    REJECTED = "rejected"          # order refused (funds, filters, precision)
    NOT_FOUND = "not_found"        # order/symbol unknown
    CONFIG = "config"              # our configuration is wrong (unknown symbol, wrong chain, no contract)
    MALFORMED = "malformed"        # the venue answered, but not with what its API returns (HTML, cut JSON)
    NOT_SENT = "not_sent"          # an order never left: the trading state refused it right before the request
    UNKNOWN = "unknown"


RETRYABLE_KINDS = frozenset({VenueErrorKind.TIMEOUT, VenueErrorKind.NETWORK, VenueErrorKind.UNAVAILABLE,
                             VenueErrorKind.RATE_LIMIT, VenueErrorKind.MALFORMED})


class VenueError(Exception):
    """A failed venue call. The message is already redacted (no key, secret or RPC key in it).

    ``retry_after_s``: how long the venue asked to wait before the next request (its Retry-After on a
    429/418/503), when it said so."""

    def __init__(self, venue: str, kind: VenueErrorKind, message: str, *, operation: str = "",
                 retry_after_s: float | None = None) -> None:
        super().__init__(f"{venue}: {operation + ': ' if operation else ''}{message}")
        self.venue = venue
        self.kind = kind
        self.detail = message
        self.operation = operation
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


class MarketKind(str, Enum):
    SPOT = "spot"
    PERP = "perp"


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(str, Enum):
    LIMIT = "limit"
    MARKET = "market"


class OrderStatus(str, Enum):
    OPEN = "open"
    CLOSED = "closed"        # fully filled
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class MarketQuote:
    """One instrument's live prices. Perp-only fields are None on spot."""

    venue: str
    symbol: str
    kind: MarketKind
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    timestamp_ms: int | None
    mark: Decimal | None = None
    index: Decimal | None = None
    funding_rate: Decimal | None = None          # current period's rate (fraction, not percent)
    next_funding_time_ms: int | None = None
    funding_interval_hours: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Quotes for several instruments on one venue, fetched together."""

    venue: str
    quotes: dict[str, MarketQuote]
    fetched_at_ms: int


@dataclass(frozen=True, slots=True)
class VenueBalance:
    """One asset in one account of a venue (Binance spot and USD-M are separate accounts)."""

    venue: str
    account: str
    asset: str
    free: Decimal
    used: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class VenueCash:
    """The settlement-currency cash of a venue's accounts that the book's CEX account stands for,
    *excluding* unrealised P&L: what fees, funding, realised P&L and transfers move, and nothing
    else. Each venue states it in its own field (Binance USD-M ``walletBalance``, Bybit unified
    ``walletBalance`` of the coin, OKX ``cashBal``); ``parts`` keeps the per-account amounts (Binance
    spot and USD-M are separate wallets; the book holds one USDT balance for both)."""

    venue: str
    asset: str
    amount: Decimal
    parts: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class VenueFundingPayment:
    """One funding settlement the venue booked into the account: ``amount`` received (+) or paid (-),
    in the settlement currency. ``payment_id`` is the venue's own id (income tranId, execId, billId)."""

    venue: str
    symbol: str
    asset: str
    amount: Decimal
    timestamp_ms: int
    payment_id: str


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """A perp position. size > 0 long, < 0 short, in base-asset units (the engine's convention)."""

    venue: str
    symbol: str
    size: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    unrealized_pnl: Decimal | None
    leverage: Decimal | None
    margin_mode: str | None       # "cross" | "isolated" | None when the venue does not say
    liquidation_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as the engine asks for it. ``amount`` in base units; ``price`` required for LIMIT."""

    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    client_order_id: str
    price: Decimal | None = None
    reduce_only: bool = False
    post_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite() or self.amount <= 0:
            raise ValueError(f"order amount must be a positive, finite Decimal, got {self.amount!r}")
        if self.type is OrderType.LIMIT and (not isinstance(self.price, Decimal) or self.price <= 0):
            raise ValueError(f"a limit order needs a positive Decimal price, got {self.price!r}")
        if self.type is OrderType.MARKET and self.post_only:
            raise ValueError("a market order cannot be post-only")
        validate_client_order_id(self.client_order_id)


@dataclass(frozen=True, slots=True)
class VenueFee:
    """A fee as the venue took it: ``cost`` of ``currency`` (a spot buy's fee is in the coin bought on
    Binance, Bybit and OKX; a spot sell's and a perp's in the quote). A negative cost is a rebate."""

    currency: str
    cost: Decimal


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue reports it. Amounts in base units. ``fees``: what it paid so far, per
    currency, as the venue reports it; empty where the answer carries no fee (Binance's order look-up
    and futures answers), so the caller estimates it from the fee schedule."""

    venue: str
    symbol: str
    order_id: str | None
    client_order_id: str | None
    side: Side | None
    type: str | None
    amount: Decimal | None
    filled: Decimal | None
    price: Decimal | None
    average: Decimal | None
    status: OrderStatus
    timestamp_ms: int | None = None
    fees: tuple[VenueFee, ...] = ()


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One trade of an order, in base units, with its fee where the venue reports it."""

    venue: str
    symbol: str
    order_id: str | None
    client_order_id: str | None
    side: Side | None
    amount: Decimal
    price: Decimal
    timestamp_ms: int | None = None
    fees: tuple[VenueFee, ...] = ()


@dataclass(slots=True)
class CancelAllResult:
    """What one cancel-all pass did on one venue: the orders cancelled and the errors by account or
    symbol (collected, never raised mid-way).

    ``kinds`` gives each error's kind where a venue call failed (absent for "still open after the
    cancel"), so a caller can tell a venue that will answer again (5xx, 429, network, a garbled
    answer) from one that will not (keys, permissions); ``retry_after_s`` is the longest wait any of
    its calls was asked for. ``verified``: the read-back ran and found no open order anywhere it looked
    (what separates "acknowledged" from "sent")."""

    venue: str
    canceled: list[VenueOrder] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, VenueErrorKind] = field(default_factory=dict)
    retry_after_s: float | None = None
    verified: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def fail(self, key: str, error: BaseException | str, kind: VenueErrorKind | None = None) -> None:
        """Record one failure: a VenueError keeps its kind and Retry-After."""
        self.errors[key] = str(error) if isinstance(error, VenueError) else str(error) or type(error).__name__
        if isinstance(error, VenueError):
            kind = error.kind
            if error.retry_after_s is not None:
                self.retry_after_s = max(self.retry_after_s or 0.0, error.retry_after_s)
        if kind is not None:
            self.kinds[key] = kind


#: ``may_send()``: asked right before an order's HTTP request leaves the process; False drops it.
SendCheck = Callable[[], bool]


@runtime_checkable
class CexVenuePort(Protocol):
    """One exchange (all its accounts the workstation uses). Implemented by venues.cex."""

    @property
    def venue(self) -> str: ...

    def symbols(self, kind: MarketKind | None = None) -> list[str]:
        """Unified symbols this adapter is configured to trade (after markets are loaded)."""
        ...

    async def load_markets(self) -> None: ...

    async def fetch_market_snapshot(self, symbols: Sequence[str]) -> MarketSnapshot: ...

    async def fetch_balances(self) -> list[VenueBalance]: ...

    def balance_account(self, symbol: str) -> str:
        """The account (``VenueBalance.account``) whose balances pay for orders in ``symbol``
        (Binance: "spot" or "usdm"; one-account venues: that account)."""
        ...

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[VenuePosition]: ...

    async def fetch_cash(self, asset: str = "USDT") -> VenueCash:
        """The cash in ``asset`` excluding unrealised P&L; a missing or unparseable field raises
        VenueError(MALFORMED), never reads as 0."""
        ...

    async def fetch_funding_payments(self, symbols: Sequence[str], since_ms: int) -> list[VenueFundingPayment]:
        """Funding the venue settled into the account on ``symbols`` at or after ``since_ms``."""
        ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        """Find an order after an uncertain submit (timeout); None when the venue never saw it."""
        ...

    async def fetch_fills_by_client_id(self, symbol: str, client_order_id: str,
                                       since_ms: int | None = None) -> list[VenueFill] | None:
        """The trades of the order with this client id (the second look after an order look-up found
        nothing); None where the venue's trades do not carry client ids."""
        ...

    async def create_order(self, request: OrderRequest, *, may_send: SendCheck | None = None) -> VenueOrder:
        """Send one order. ``may_send`` is asked right before the HTTP request leaves (after any local
        rate-limit wait); False raises VenueError NOT_SENT and nothing is sent."""
        ...

    async def cancel_order(self, symbol: str, *, order_id: str | None = None,
                           client_order_id: str | None = None) -> VenueOrder: ...

    async def cancel_all_orders(self, symbol: str | None = None) -> CancelAllResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeadManSwitchStatus:
    """What an exchange-side cancel-after (dead-man switch) protects on one venue after an arm/disarm.

    ``covered`` names what the venue will cancel by itself if the workstation stops heart-beating
    (e.g. ``"all orders of the trading account"``, ``"usdm ETH/USDT:USDT"``); ``uncovered`` names what
    it cannot protect and why (Binance spot has no cancel-after). ``timeout_s`` is what the venue was
    actually given: venues clamp the range (OKX accepts 10-120 s), so it can differ from the request.
    """

    venue: str
    armed: bool
    timeout_s: float
    covered: tuple[str, ...] = ()
    uncovered: tuple[str, ...] = ()
    armed_at_ms: int | None = None


@runtime_checkable
class DeadManSwitchPort(Protocol):
    """Optional capability of a CEX adapter: keep an exchange-side cancel-after armed.

    The caller re-arms on every heartbeat; if the heartbeats stop (the workstation crashed or lost
    its network), the venue cancels the covered orders when ``timeout_s`` runs out.
    """

    async def arm_dead_man_switch(self, timeout_s: float) -> DeadManSwitchStatus: ...

    async def disarm_dead_man_switch(self) -> DeadManSwitchStatus: ...


@dataclass(frozen=True, slots=True)
class TokenBalance:
    """An ERC-20 (or native ETH, token address None) balance of the wallet."""

    symbol: str
    token: str | None
    raw: int
    decimals: int

    @property
    def amount(self) -> Decimal:
        return Decimal(self.raw).scaleb(-self.decimals)


@dataclass(frozen=True, slots=True)
class AaveAccountData:
    """AAVE v3 Pool.getUserAccountData, in the units the pool reports (base currency, 8 decimals)."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold_bps: int
    ltv_bps: int
    health_factor_wad: int
    emode_category: int
    base_decimals: int = 8

    @property
    def health_factor(self) -> Decimal | None:
        """None when there is no debt (the pool reports uint256 max)."""
        if self.total_debt_base == 0:
            return None
        return Decimal(self.health_factor_wad).scaleb(-18)

    @property
    def total_collateral(self) -> Decimal:
        return Decimal(self.total_collateral_base).scaleb(-self.base_decimals)

    @property
    def total_debt(self) -> Decimal:
        return Decimal(self.total_debt_base).scaleb(-self.base_decimals)


@dataclass(frozen=True, slots=True)
class ChainHead:
    chain_id: int
    block_number: int
    block_timestamp: int


@runtime_checkable
class OnchainReadPort(Protocol):
    """Read-only view of the chain the wallet lives on. Implemented by venues.onchain."""

    async def chain_head(self) -> ChainHead: ...

    async def native_balance(self, address: str) -> TokenBalance: ...

    async def token_balances(self, address: str, tokens: Sequence[str]) -> list[TokenBalance]:
        """Balances of the named tokens (names from the venue config, e.g. "USDT", "aWETH")."""
        ...

    async def allowance(self, token: str, owner: str, spender: str) -> TokenBalance: ...

    async def aave_account(self, address: str) -> AaveAccountData: ...

    async def lst_rate(self, lst: str) -> Decimal:
        """ETH per LST token (wstETH.stEthPerToken, weETH.getRate)."""
        ...

    async def close(self) -> None: ...
