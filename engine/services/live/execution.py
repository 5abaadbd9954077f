"""Executing strategy instructions in a live session.

Paper: the simulated venue layer fills at live prices with the backtest cost model.
Live: CEX trades become market orders (Decimal amounts, client order ids) sent through the OrderGate;
the fill (quantity and average price) is read back from the venue — Bybit and OKX acknowledge an
order with ids only — and applied to the strategy's book. On-chain operations are refused in live
mode until on-chain execution exists (the service refuses modes with on-chain legs before starting).

Transfers between CEX accounts are *allocations of the book*: no withdrawal is sent (withdrawal keys
are not asked for, on purpose). The operator pre-funds each venue's perp account; a venue that turns
out short of margin refuses the order itself, which stops the program and is shown.

Both executors check the trading state before every instruction: REDUCING lets only risk-reducing
ones through, HALTED nothing. Both run the pre-trade checks (engine.services.live.pretrade) on every
CEX trade before it may leave; live also reads the venue account's free balance/margin first. A
refusal is reported through ``on_refused`` (the session reduces trading, so it is not retried every
tick) and raised, which stops the program.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Callable

from engine.domain.instructions import Fill, Instruction, Op
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.domain.venue_ports import OrderRequest, OrderStatus, OrderType, Side, VenueOrder, new_client_order_id
from engine.services.live.book_store import FillFee, apply_fill, fill_fee
from engine.services.live.market_feed import perp_symbol, spot_symbol, to_decimal
from engine.services.live.onchain_routing import OnchainRouter, routes_onchain, touches_wallet
from engine.services.live.order_gate import OrderGate
from engine.services.live.pretrade import PreTradeRefused, check_amount, check_order, check_venue_funds
from engine.services.live.state import TradingStateMachine

TERMINAL = (OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
#: An instruction from the operator's order ticket (engine/services/live/manual_orders.py): its
#: orders carry the MANUAL_PREFIX client id, so the journal and the blotter tell them apart.
MANUAL_REASON = "manual"
MANUAL_PREFIX = "man"
STRATEGY_PREFIX = "bw"
PAPER_PREFIX = "ppr"


class LiveUnsupported(RuntimeError):
    """The instruction cannot be executed live yet (said plainly instead of pretending)."""


class FillNotConfirmed(RuntimeError):
    """An order was accepted but its fill could not be read back in time (reconciliation follows)."""


def is_risk_reducing(ins: Instruction, portfolio: Portfolio) -> bool:
    """Does this instruction only reduce exposure or add safety margin?"""
    if ins.op is Op.PERP_TRADE:
        acct = portfolio.cex.get(ins.venue)
        size = acct.perps[ins.asset].size if acct and ins.asset in acct.perps else 0.0
        return size != 0.0 and (size > 0) != (ins.amount > 0) and abs(ins.amount) <= abs(size) + 1e-12
    if ins.op is Op.SPOT_TRADE:
        return ins.amount < 0
    if ins.op in (Op.REPAY, Op.TRANSFER):
        return True
    if ins.op is Op.SWAP:                   # out of the long leg: LST -> ETH, ETH/LST -> USDT
        return ins.asset != "USDT" and ins.to_asset in ("ETH", "USDT")
    if ins.op is Op.WITHDRAW:               # collateral out is only safe with no debt against it
        return not any(portfolio.wallet.debt_scaled.values())
    if ins.op is Op.BUNDLE:
        return any(c.op is Op.REPAY for c in ins.children) and not any(c.op is Op.BORROW for c in ins.children)
    return False


RefusedHook = Callable[[PreTradeRefused], None]


class PaperExecutor:
    """Simulated fills at live prices, behind the same trading-state gate and pre-trade checks as
    live orders (the simulated book stands in for the venue account's funds)."""

    def __init__(self, world, state: TradingStateMachine, portfolio: Portfolio, *, params: RunParams,
                 market: MarketView, on_refused: RefusedHook | None = None,
                 on_filled: Callable[[Fill, bool], None] | None = None) -> None:
        self.world = world
        self.on_filled = on_filled
        self.state = state
        self.portfolio = portfolio
        self.params = params
        self.mv = market
        self.on_refused = on_refused
        self.sent = 0
        self.refused = 0

    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill:
        reducing = is_risk_reducing(ins, self.portfolio)
        self.state.check(reducing, f"{ins.venue} {ins.op.value}")
        if ins.op in (Op.PERP_TRADE, Op.SPOT_TRADE):
            try:
                check_order(ins, self.portfolio, self.mv, t, self.params, reducing)
            except PreTradeRefused as exc:
                self.refused += 1
                if self.on_refused is not None:
                    self.on_refused(exc)
                raise
        self.sent += 1
        fill = self.world.execute(ins, t, charge_gas)
        if self.on_filled is not None and ins.op in (Op.PERP_TRADE, Op.SPOT_TRADE):
            self.on_filled(fill, reducing and ins.op is Op.PERP_TRADE)
        return fill


SettledHook = Callable[[str, OrderRequest, VenueOrder], None]


class LiveExecutor:
    """Real orders through the OrderGate; the Fill reports the venue's quantity and average price."""

    def __init__(self, gate: OrderGate, params: RunParams, market: MarketView, portfolio: Portfolio,
                 state: TradingStateMachine, *, settle_timeout_s: float = 3.0,
                 on_settled: SettledHook | None = None, on_allocation: Callable[[Instruction], None] | None = None,
                 on_refused: RefusedHook | None = None, router: OnchainRouter | None = None) -> None:
        self.gate = gate
        self.router = router  # on-chain instructions and wallet transfers (None: refused, said plainly)
        self.params = params
        self.mv = market
        self.portfolio = portfolio
        self.state = state
        self.settle_timeout_s = settle_timeout_s
        self.on_settled = on_settled
        self.on_allocation = on_allocation
        self.on_refused = on_refused
        self.refused = 0

    async def execute(self, ins: Instruction, t: int) -> Fill:
        if ins.op is Op.TRANSFER and ins.to_venue in self.params.cex and ins.venue in self.params.cex:
            return self._allocate(ins)
        if self.router is not None and routes_onchain(ins):
            return await self.router.execute(ins, t, reducing=is_risk_reducing(ins, self.portfolio))
        if self.router is not None and touches_wallet(ins):
            return await self.router.transfer(ins, t)
        if ins.op not in (Op.PERP_TRADE, Op.SPOT_TRADE):
            raise LiveUnsupported(
                f"{ins.op.value} on {ins.venue} is not executed live yet"
                + (" (move USDT to/from the wallet by hand)" if ins.op is Op.TRANSFER
                   else " (on-chain legs run in paper mode)"))
        perp = ins.op is Op.PERP_TRADE
        symbol = perp_symbol(ins.asset) if perp else spot_symbol(ins.asset)
        reducing = is_risk_reducing(ins, self.portfolio)
        # An amount no venue could take is refused in any state. A session whose state refuses the
        # order reads nothing more (the gate refuses it below); otherwise the pre-trade checks run on
        # the book and on the venue account read just now.
        try:
            check_amount(ins)
            if self.state.allows(reducing):
                price = check_order(ins, self.portfolio, self.mv, t, self.params, reducing)
                await check_venue_funds(ins, self.gate.venues[ins.venue], symbol, price, self.params, reducing)
        except PreTradeRefused as exc:
            self.refused += 1
            if self.on_refused is not None:
                self.on_refused(exc)
            raise
        request = OrderRequest(
            symbol=symbol, side=Side.BUY if ins.amount > 0 else Side.SELL, type=OrderType.MARKET,
            amount=to_decimal(abs(ins.amount)),
            client_order_id=new_client_order_id(MANUAL_PREFIX if ins.reason == MANUAL_REASON else STRATEGY_PREFIX),
            reduce_only=perp and reducing)
        order = await self.gate.submit(ins.venue, request, risk_reducing=reducing)
        if order.status not in TERMINAL or order.filled is None:
            order = await self._settle(ins.venue, request, order)
            if self.on_settled is not None:
                self.on_settled(ins.venue, request, order)
        filled = float(order.filled or Decimal(0))
        price = float(order.average or order.price or Decimal(0))
        if filled and not price:
            raise FillNotConfirmed(f"{ins.venue} {symbol}: filled {filled} without a price")
        signed = filled if ins.amount > 0 else -filled
        ref = self.mv.perp[(ins.venue, ins.asset)][t] if perp else self.mv.price_usd(ins.asset, t)
        fee = self.fill_fee(ins.venue, symbol, order, abs(filled) * price)
        self._apply(ins, signed, price, fee, perp)
        # Execution cost against the price the book values at (mark / spot): fee + slippage, so the
        # change in the book's value equals the booked components (as in the backtest). A fee taken
        # in the coin bought is a cost of the coin's value, so it is valued at that same price.
        cost = fee.value(ref) + signed * (price - ref)
        return Fill(ins, signed, signed - fee.coin, price, cost, 0.0)

    def fill_fee(self, venue: str, symbol: str, order: VenueOrder, notional: float,
                 share: float = 1.0) -> FillFee:
        """The fee of (``share`` of) ``order``: as the venue reported it, else the configured taker rate."""
        cex = self.params.cex[venue]
        bps = cex.perp_taker_bps if ":" in symbol else cex.spot_taker_bps
        return fill_fee(order.fees, symbol, notional, bps, share)

    async def _settle(self, venue: str, request: OrderRequest, order: VenueOrder) -> VenueOrder:
        """Read the order back until the venue reports it finished (market orders: milliseconds)."""
        port = self.gate.venues[venue]
        deadline = asyncio.get_running_loop().time() + self.settle_timeout_s
        delay = 0.02
        while True:
            found = await port.fetch_order_by_client_id(request.symbol, request.client_order_id)
            if found is not None and found.status in TERMINAL and found.filled is not None:
                return found
            if asyncio.get_running_loop().time() + delay > deadline:
                raise FillNotConfirmed(
                    f"{venue} {request.symbol} order {request.client_order_id} accepted but not reported "
                    f"filled within {self.settle_timeout_s:g} s (last status: "
                    f"{found.status.value if found else 'not found'}); the next tick reconciles positions")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _allocate(self, ins: Instruction) -> Fill:
        """Book-only move of USDT between CEX accounts (see module docstring)."""
        self.state.check(True, f"{ins.venue} -> {ins.to_venue} allocation")
        src, dst = self.portfolio.account(ins.venue), self.portfolio.account(ins.to_venue)
        if ins.amount > src.usdt + 1e-6:
            raise LiveUnsupported(f"{ins.venue}: the book holds {src.usdt:.2f} USDT, cannot allocate {ins.amount:.2f}")
        src.usdt -= ins.amount
        dst.usdt += ins.amount
        if self.on_allocation is not None:
            self.on_allocation(ins)
        return Fill(ins, ins.amount, ins.amount, 1.0, 0.0, 0.0)

    def apply_fill(self, ins: Instruction, qty: float, price: float, fee: FillFee, perp: bool) -> None:
        """Apply a venue's fill to the strategy's book (also a manual limit order's immediate fill)."""
        self._apply(ins, qty, price, fee, perp)

    def _apply(self, ins: Instruction, qty: float, price: float, fee: FillFee, perp: bool) -> None:
        """Apply the venue's fill to the strategy's book."""
        apply_fill(self.portfolio, ins.venue, ins.asset, perp, qty, price, fee)
