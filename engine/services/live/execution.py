"""Executing strategy instructions in a live session.

Paper: the simulated venue layer fills at live prices with the backtest cost model.
Live: CEX trades become market orders (Decimal amounts, client order ids) sent through the OrderGate;
on-chain operations and inter-venue transfers are refused in live mode until on-chain execution and
withdrawals exist (the session refuses modes with on-chain legs before it starts).
Both check the trading state before every instruction: REDUCING lets only risk-reducing ones through.
"""
from __future__ import annotations

from decimal import Decimal

from engine.domain.instructions import Fill, Instruction, Op
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.domain.venue_ports import OrderRequest, OrderType, Side, new_client_order_id
from engine.services.live.market_feed import perp_symbol, spot_symbol, to_decimal
from engine.services.live.order_gate import OrderGate
from engine.services.live.state import TradingStateMachine


class LiveUnsupported(RuntimeError):
    """The instruction cannot be executed live yet (said plainly instead of pretending)."""


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
    if ins.op is Op.BUNDLE:
        return any(c.op is Op.REPAY for c in ins.children) and not any(c.op is Op.BORROW for c in ins.children)
    return False


class PaperExecutor:
    """Simulated fills at live prices, behind the same trading-state gate as live orders."""

    def __init__(self, world, state: TradingStateMachine, portfolio: Portfolio) -> None:
        self.world = world
        self.state = state
        self.portfolio = portfolio
        self.sent = 0

    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill:
        self.state.check(is_risk_reducing(ins, self.portfolio), f"{ins.venue} {ins.op.value}")
        self.sent += 1
        return self.world.execute(ins, t, charge_gas)


class LiveExecutor:
    """Real orders through the OrderGate; the Fill reports the venue's average price."""

    def __init__(self, gate: OrderGate, params: RunParams, market: MarketView, portfolio: Portfolio) -> None:
        self.gate = gate
        self.params = params
        self.mv = market
        self.portfolio = portfolio

    async def execute(self, ins: Instruction, t: int) -> Fill:
        if ins.op not in (Op.PERP_TRADE, Op.SPOT_TRADE):
            raise LiveUnsupported(
                f"{ins.op.value} on {ins.venue} is not executed live yet"
                + (" (move USDT between venues by hand)" if ins.op is Op.TRANSFER else " (on-chain legs run in paper mode)"))
        perp = ins.op is Op.PERP_TRADE
        symbol = perp_symbol(ins.asset) if perp else spot_symbol(ins.asset)
        request = OrderRequest(
            symbol=symbol, side=Side.BUY if ins.amount > 0 else Side.SELL, type=OrderType.MARKET,
            amount=to_decimal(abs(ins.amount)), client_order_id=new_client_order_id(),
            reduce_only=perp and is_risk_reducing(ins, self.portfolio))
        order = await self.gate.submit(ins.venue, request)
        filled = float(order.filled or Decimal(0))
        price = float(order.average or order.price or Decimal(0))
        signed = filled if ins.amount > 0 else -filled
        self._apply(ins, signed, price, perp)
        cex = self.params.cex[ins.venue]
        fee = abs(filled) * price * (cex.perp_taker_bps if perp else cex.spot_taker_bps) * 1e-4
        return Fill(ins, signed, signed, price, fee, 0.0)

    def _apply(self, ins: Instruction, qty: float, price: float, perp: bool) -> None:
        """Mirror the fill locally until the next tick re-reads the venue's balances and positions."""
        acct = self.portfolio.account(ins.venue)
        if perp:
            acct.usdt += acct.perp(ins.asset).trade(qty, price)
        else:
            acct.spot[ins.asset] = acct.spot.get(ins.asset, 0.0) + qty
            acct.usdt -= qty * price
