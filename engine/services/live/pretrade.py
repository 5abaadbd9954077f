"""Pre-trade checks: what every live or paper order must pass before it may leave for a venue.

1. The amount is a finite, non-zero number (the sign is the side).
2. An order that adds exposure stays within the order-size cap (the venue's depth limit,
   `max_order_usdt`) and leaves the position within `risk.max_position_usdt` and the exchange's own
   `max_position_usdt`.
3. Live only: the venue account, read just before the order, holds the funds: the quote currency
   for a spot buy (plus fee and a slippage allowance), the base asset for a spot sell, and for a perp
   order that adds exposure the free margin for its initial margin plus the fee.

Risk-reducing orders skip the size and funds checks that only make sense for new exposure (a flatten
must never be blocked by them); a spot sell still needs the asset it sells.

A refusal raises PreTradeRefused with a message naming the order, the limit and the figures. The live
session turns it into an event, a journal entry and the REDUCING state, so the same order is not
tried again on the next tick: the operator has to fix the cause (capital, funding, limits) and reset.
"""
from __future__ import annotations

import math
from decimal import Decimal

from engine.domain.instructions import Instruction, Op
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.domain.refusals import OrderRefused
from engine.domain.venue_ports import CexVenuePort

#: A market buy fills above the reference price by its slippage: the quote balance must cover that too.
SLIPPAGE_ALLOWANCE = 0.01


class PreTradeRefused(OrderRefused):
    """An order failed a pre-trade check; nothing was sent."""

    def __init__(self, ins: Instruction, reason: str) -> None:
        side = "buy" if ins.amount > 0 else "sell"
        kind = "perp" if ins.op is Op.PERP_TRADE else "spot"
        super().__init__(f"pre-trade check refused the {ins.venue} {ins.asset} {kind} {side} of "
                         f"{abs(ins.amount):.8g} {ins.asset}: {reason}")
        self.instruction = ins
        self.reason = reason


def check_amount(ins: Instruction) -> None:
    """Check 1, whatever the trading state."""
    if not math.isfinite(ins.amount) or ins.amount == 0.0:
        raise PreTradeRefused(ins, f"the amount {ins.amount!r} is not a finite, non-zero number")


def check_order(ins: Instruction, portfolio: Portfolio, mv: MarketView, t: int, params: RunParams,
                reducing: bool) -> float:
    """Checks 1-2 (no I/O). Returns the order's reference price (perp mark / spot price)."""
    check_amount(ins)
    perp = ins.op is Op.PERP_TRADE
    price = mv.perp[(ins.venue, ins.asset)][t] if perp else mv.price_usd(ins.asset, t)
    if not (math.isfinite(price) and price > 0.0):
        raise PreTradeRefused(ins, f"no valid reference price ({price!r})")
    if reducing:
        return price
    cex = params.cex[ins.venue]
    notional = abs(ins.amount) * price
    if notional > cex.max_order_usdt:
        raise PreTradeRefused(ins, f"its notional {notional:,.0f} USDT is above the order-size cap "
                                   f"{cex.max_order_usdt:,.0f} USDT ({ins.venue} max_order_usdt)")
    acct = portfolio.cex.get(ins.venue)
    if perp:
        held = acct.perps[ins.asset].size if acct is not None and ins.asset in acct.perps else 0.0
    else:
        held = acct.spot.get(ins.asset, 0.0) if acct is not None else 0.0
    after = abs(held + ins.amount) * price
    limit, name = min((params.strategy.max_position_usdt, "risk.max_position_usdt"),
                      (cex.max_position_usdt, f"{ins.venue} max_position_usdt"))
    if after > limit:
        raise PreTradeRefused(ins, f"the position would be {after:,.0f} USDT, above {name} {limit:,.0f} USDT")
    return price


async def check_venue_funds(ins: Instruction, port: CexVenuePort, symbol: str, price: float,
                            params: RunParams, reducing: bool) -> None:
    """Check 3: read the venue account now and refuse an order it cannot pay for."""
    perp = ins.op is Op.PERP_TRADE
    if perp and reducing:
        return
    account = port.balance_account(symbol)
    base, quote = symbol.split(":")[0].split("/")
    free: dict[str, Decimal] = {b.asset: b.free for b in await port.fetch_balances() if b.account == account}
    cex = params.cex[ins.venue]
    notional = abs(ins.amount) * price
    if perp:
        fee = notional * cex.perp_taker_bps * 1e-4
        need = cex.initial_margin_ratio * notional + fee
        what = f"its initial margin {cex.initial_margin_ratio:g} x {notional:,.2f} plus the fee"
        have, asset = free.get(quote, Decimal(0)), quote
    elif ins.amount > 0:
        need = notional * (1.0 + cex.spot_taker_bps * 1e-4) * (1.0 + SLIPPAGE_ALLOWANCE)
        what = "the purchase plus fee and slippage allowance"
        have, asset = free.get(quote, Decimal(0)), quote
    else:
        need, what = abs(ins.amount), "the amount sold"
        have, asset = free.get(base, Decimal(0)), base
    if float(have) < need:
        raise PreTradeRefused(ins, f"the {ins.venue} {account} account has {float(have):,.8g} {asset} free, "
                                   f"less than {what} ({need:,.8g} {asset})")
