"""Manual orders: the operator's order ticket and the per-position Close button.

A manual order is held to every rule a strategy order is held to, on the same path:

* refused while the session is HALTED, while restart recovery waits for an acknowledgement, and
  (for anything that adds exposure) while REDUCING or while a wallet transaction is pending — the trading state is checked here for a clear
  message and again by the order gate right before the send, with no await in between;
* the same pre-trade checks (engine/services/live/pretrade.py: amount, order-size cap, position
  limits, and live the venue account's free funds read just now), run *before* the order is handed
  on, so a refusal names its reason and, unlike a strategy order, does not reduce the session (the
  operator simply sees why and changes the ticket);
* market orders go through the session's executor exactly as a flatten does (live: OrderGate,
  journal, blotter, the venue's fill applied to the strategy book; paper: the simulated venue at the
  live price), so the book and the venues keep agreeing and the per-tick position check stays quiet;
* every order carries a client order id with the ``man`` prefix and is journaled as a
  ``manual_order`` event (ticket, outcome) beside its order row.

Limit orders are live only (paper fills are simulated at the market price). What a limit order
fills at once is applied to the book; a remainder rests at the venue, is listed in the blotter, and is
followed until final (engine/services/live/resting_orders.py): each later fill is booked into the
strategy book exactly once, also across a restart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from engine.domain.instructions import Instruction, Op
from engine.domain.venue_ports import OrderRequest, OrderType, Side, VenueError, new_client_order_id
from engine.services.live.execution import MANUAL_PREFIX, MANUAL_REASON, TERMINAL, is_risk_reducing
from engine.services.live.market_feed import perp_symbol, spot_symbol
from engine.services.live.pretrade import PreTradeRefused, check_order, check_venue_funds
from engine.services.live.resting_orders import RestingOrder
from engine.services.live.state import TradingHalted, TradingState

if TYPE_CHECKING:
    from engine.services.live.session import LiveSession

KINDS = ("perp", "spot")


class ManualOrderRefused(ValueError):
    """The order was not sent; the message says why (shown on the ticket as it is)."""


@dataclass(frozen=True, slots=True)
class ManualOrder:
    """What the ticket says. ``amount`` in base units (ETH), always positive: ``side`` is the sign."""

    venue: str
    asset: str
    kind: str                            # perp | spot
    side: Side
    amount: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None         # LIMIT only
    reduce_only: bool = False

    def __post_init__(self) -> None:
        # Views hand over plain strings ("buy", "limit"): accept them, refuse anything else by name.
        for name, enum in (("side", Side), ("order_type", OrderType)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError:
                raise ManualOrderRefused(f"{name} {value!r} (allowed: {', '.join(e.value for e in enum)})") from None

    @property
    def symbol(self) -> str:
        return perp_symbol(self.asset) if self.kind == "perp" else spot_symbol(self.asset)

    def describe(self) -> str:
        price = f" @ {self.price}" if self.order_type is OrderType.LIMIT else ""
        flag = " reduce-only" if self.reduce_only else ""
        return f"{self.venue} {self.symbol} {self.order_type.value} {self.side.value} {self.amount}{price}{flag}"


@dataclass(frozen=True, slots=True)
class ManualQuote:
    """What the confirmation shows before anything is sent."""

    order: ManualOrder
    reference_price: float               # perp mark / spot price of the latest tick
    notional: float                      # USDT, at the limit price or the reference price
    fee: float                           # USDT, at the venue's taker rate (an upper bound for a limit)
    fee_bps: float
    reducing: bool                       # only reduces a position: allowed while REDUCING

    def lines(self) -> list[str]:
        o = self.order
        price = f"{o.price} (limit)" if o.order_type is OrderType.LIMIT else f"~{self.reference_price:,.2f} (market)"
        return [f"{o.side.value.upper()} {o.amount} {o.asset} {o.kind} on {o.venue} ({o.symbol})",
                f"Price: {price}", f"Notional: {self.notional:,.2f} USDT",
                f"Fee: {self.fee:,.2f} USDT ({self.fee_bps:g} bps taker)",
                "Reduce-only: " + ("yes" if o.reduce_only else "no")
                + ("" if self.reducing else " (adds exposure)")]


@dataclass(frozen=True, slots=True)
class ManualOrderResult:
    order: ManualOrder
    client_order_id: str
    status: str                          # closed | open | ... (the venue's), or "filled" for paper
    filled: float
    average: float | None
    message: str


def parse_amount(text: str, what: str = "size") -> Decimal:
    """A positive, finite Decimal from the ticket (message names the field)."""
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation:
        raise ManualOrderRefused(f"the {what} {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ManualOrderRefused(f"the {what} must be a positive number, got {text!r}")
    return value


def close_order(session: LiveSession, venue: str, kind: str, asset: str) -> ManualOrder:
    """The reduce-only market order that closes one position of the book, for its full size."""
    acct = session.portfolio.cex.get(venue)
    size = 0.0
    if acct is not None:
        size = acct.perps[asset].size if kind == "perp" and asset in acct.perps else acct.spot.get(asset, 0.0)
    if kind not in KINDS or not size:
        raise ManualOrderRefused(f"no {venue} {asset} {kind} position to close")
    if kind == "spot" and size < 0:
        raise ManualOrderRefused(f"the {venue} {asset} spot holding is negative ({size:g}): nothing to sell")
    return ManualOrder(venue, asset, kind, Side.SELL if size > 0 else Side.BUY, Decimal(repr(abs(size))),
                       OrderType.MARKET, None, reduce_only=True)


class ManualOrders:
    """The manual-order entry of one session (``LiveTradingService.manual_order`` uses it)."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session

    def _instruction(self, order: ManualOrder) -> Instruction:
        signed = float(order.amount) if order.side is Side.BUY else -float(order.amount)
        return Instruction(Op.PERP_TRADE if order.kind == "perp" else Op.SPOT_TRADE, order.venue, order.asset,
                           signed, reason=MANUAL_REASON)

    def _refuse_by_state(self) -> None:
        s = self.session
        if s.phase.value == "awaiting_acknowledgement":
            raise ManualOrderRefused("restart recovery is waiting for your acknowledgement: acknowledge it first")
        if s.phase.value == "stopped":
            raise ManualOrderRefused("the session is stopped")
        if s.state.state is TradingState.HALTED:
            reason = s.state.history[-1].reason if s.state.history else ""
            raise ManualOrderRefused("trading is HALTED" + (f" ({reason})" if reason else "")
                                     + ": nothing but cancels until the session is reset")

    def quote(self, order: ManualOrder) -> ManualQuote:
        """Validate the ticket and price it (no I/O). Raises ManualOrderRefused with the reason."""
        s = self.session
        self._refuse_by_state()
        if order.kind not in KINDS:
            raise ManualOrderRefused(f"kind {order.kind!r} (allowed: {', '.join(KINDS)})")
        if order.venue not in s.params.cex or order.venue not in s.venues:
            raise ManualOrderRefused(f"{order.venue} is not a venue of this session "
                                     f"(its venues: {', '.join(s.venues) or 'none'})")
        if not (isinstance(order.amount, Decimal) and order.amount.is_finite() and order.amount > 0):
            raise ManualOrderRefused(f"the size must be a positive Decimal, got {order.amount!r}")
        if order.order_type is OrderType.LIMIT:
            if order.price is None or not order.price.is_finite() or order.price <= 0:
                raise ManualOrderRefused("a limit order needs a positive limit price")
            if not s.execution.sends_orders:
                raise ManualOrderRefused("paper sessions fill at the market price: use a market order")
        mv = s.feed.view
        if not mv.timestamps:
            raise ManualOrderRefused("no market data yet: wait for the session's first tick")
        t = len(mv.timestamps) - 1
        ins = self._instruction(order)
        perp = order.kind == "perp"
        if perp and (order.venue, order.asset) not in mv.perp:
            raise ManualOrderRefused(f"the session has no {order.venue} {order.symbol} prices "
                                     f"(its perps: {', '.join(f'{v} {a}' for v, a in mv.perp) or 'none'})")
        ref = mv.perp[(order.venue, order.asset)][t] if perp else mv.price_usd(order.asset, t)
        if not (math.isfinite(ref) and ref > 0):
            raise ManualOrderRefused(f"no valid {order.symbol} price on {order.venue} yet")
        reducing = is_risk_reducing(ins, s.portfolio)
        if order.reduce_only and not reducing:
            raise ManualOrderRefused("reduce-only: this order would open or increase a position "
                                     f"({order.venue} {order.asset} {order.kind} held: {self._held(order):g})")
        if not s.state.allows(reducing):
            raise ManualOrderRefused(f"trading is {s.state.state.value}: only risk-reducing orders until the session "
                                     "is reset")
        if s.tx_hold.held and not reducing:
            raise ManualOrderRefused(f"this order adds exposure: {s.tx_hold.reason}")
        cex = s.params.cex[order.venue]
        bps = cex.perp_taker_bps if perp else cex.spot_taker_bps
        price = float(order.price) if order.order_type is OrderType.LIMIT and order.price is not None else ref
        notional = float(order.amount) * price
        return ManualQuote(order, ref, notional, notional * bps * 1e-4, bps, reducing)

    def _held(self, order: ManualOrder) -> float:
        acct = self.session.portfolio.cex.get(order.venue)
        if acct is None:
            return 0.0
        if order.kind == "perp":
            return acct.perps[order.asset].size if order.asset in acct.perps else 0.0
        return acct.spot.get(order.asset, 0.0)

    async def place(self, order: ManualOrder) -> ManualOrderResult:
        """Check and send one manual order; raises ManualOrderRefused (nothing sent) with the reason."""
        s = self.session
        async with s.lock:                      # never between two orders of a strategy program
            if s.tx_hold.enabled:
                s.refresh_tx_hold()            # between steps: whatever is pending now is left over
            quote = self.quote(order)
            t = len(s.feed.view.timestamps) - 1
            ins = self._instruction(order)
            try:
                price = check_order(ins, s.portfolio, s.feed.view, t, s.params, quote.reducing)
                if s.execution.sends_orders:
                    await check_venue_funds(ins, s.venues[order.venue], order.symbol, price, s.params, quote.reducing)
            except PreTradeRefused as exc:
                s.journal.event(s.request_id, order.venue, "manual_order", ticket=order.describe(),
                                outcome="refused", reason=exc.reason)
                raise ManualOrderRefused(str(exc)) from None
            self._refuse_by_state()             # the funds read awaited: an e-stop may have come in between
            if order.order_type is OrderType.LIMIT:
                result = await self._place_limit(order, quote)
            else:
                result = await self._place_market(order, ins, t)
            s.after_manual_trades(t)
        s.publish()
        return result

    async def _place_market(self, order: ManualOrder, ins: Instruction, t: int) -> ManualOrderResult:
        s = self.session
        previous = s.blotter.rows()[-1:]
        outcome = await s.run_instruction(ins, t)
        latest = s.blotter.rows()[-1:]
        cid = latest[0].client_order_id if latest and latest != previous else ""
        if not outcome.fills:
            stop = outcome.stop
            reason = str(stop) if stop is not None else "not filled"
            s.journal.event(s.request_id, order.venue, "manual_order", ticket=order.describe(), outcome="failed",
                            client_order_id=cid, reason=reason)
            raise ManualOrderRefused(f"{order.describe()}: {reason}")
        row = latest[0] if cid else None
        filled = float(row.filled or 0) if row is not None else 0.0
        price = float(row.average or 0) if row is not None else 0.0
        s.journal.event(s.request_id, order.venue, "manual_order", ticket=order.describe(), outcome="filled",
                        client_order_id=cid, filled=filled, average=price)
        return ManualOrderResult(order, cid, "closed" if s.execution.sends_orders else "filled", filled, price,
                                 f"{order.describe()}: filled {filled:.8g} at {price:,.2f}")

    async def _place_limit(self, order: ManualOrder, quote: ManualQuote) -> ManualOrderResult:
        s = self.session
        assert s.live_exec is not None and order.price is not None
        request = OrderRequest(symbol=order.symbol, side=order.side, type=OrderType.LIMIT, amount=order.amount,
                               client_order_id=new_client_order_id(MANUAL_PREFIX), price=order.price,
                               reduce_only=order.kind == "perp" and quote.reducing)
        try:
            venue_order = await s.gate.submit(order.venue, request, risk_reducing=quote.reducing)
        except (TradingHalted, VenueError) as exc:     # refused by the state or by the venue (the gate journals it)
            s.journal.event(s.request_id, order.venue, "manual_order", ticket=order.describe(), outcome="failed",
                            client_order_id=request.client_order_id, reason=str(exc))
            raise ManualOrderRefused(f"{order.describe()}: {exc}") from None
        filled = float(venue_order.filled or 0)
        average = float(venue_order.average or venue_order.price or order.price)
        if filled:
            signed = filled if order.side is Side.BUY else -filled
            ins = self._instruction(order)
            fee = s.live_exec.fill_fee(order.venue, order.symbol, venue_order, filled * average)
            s.live_exec.apply_fill(ins, signed, average, fee, order.kind == "perp")
        if venue_order.status not in TERMINAL and filled < float(order.amount):
            # The remainder rests at the venue: followed until final, each later fill booked once.
            s.resting.track(RestingOrder(order.venue, order.symbol, order.asset, order.kind == "perp",
                                         order.side.value, request.client_order_id, float(order.amount),
                                         booked=filled, booked_cost=filled * average if filled else 0.0))
        s.journal.event(s.request_id, order.venue, "manual_order", ticket=order.describe(),
                        outcome=venue_order.status.value, client_order_id=request.client_order_id, filled=filled,
                        average=average if filled else None)
        return ManualOrderResult(order, request.client_order_id, venue_order.status.value, filled,
                                 average if filled else None,
                                 f"{order.describe()}: {venue_order.status.value}, filled {filled:.8g}")
