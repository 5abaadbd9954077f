"""The live executor on its own, against the loopback emulator through the real ccxt adapters and the
real OrderGate: what it sends for each instruction, what it books from the venue's answer, and what
it refuses without sending anything.

Prices at the emulator: Binance's ETH perp at 2,500 and Bybit's ETH spot at 2,501, each with a tick
of 0.01 on either side of the touch; a market sell fills at the bid, a buy at the ask.
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config import load_config, load_venue_config
from engine.domain.instructions import Instruction, Op
from engine.domain.portfolio import Portfolio
from engine.services.live.execution import LiveExecutor, LiveUnsupported
from engine.services.live.order_gate import OrderGate
from engine.services.live.pretrade import PreTradeRefused
from engine.services.live.state import TradingHalted, TradingStateMachine
from engine.services.run_params import build_run_params
from tests.integration.emulator import TEST_KEYS
from tests.integration.live_support import order_posts as all_order_posts
from tests.unit.market_support import market
from venues.cex.account import RetryPolicy
from venues.cex.factory import build_cex_adapter
from venues.credentials import Secret, VenueCredentials

PERP = 2_500.0          # Binance ETH perp at the emulator
SPOT = 2_501.0          # Bybit ETH spot
TICK = 0.01


def adapter(emulator, venue: str):
    keys = TEST_KEYS[venue]
    creds = VenueCredentials("production", venue, {"api_key": Secret(keys.api_key), "secret": Secret(keys.secret)})
    return build_cex_adapter(venue, load_venue_config(venue), "production", creds,
                             url_override=emulator.base_url(venue), timeout_s=3.0,
                             retry=RetryPolicy(attempts=2, base_delay_s=0.01), underlyings=["ETH", "BTC"],
                             rate_limit_ms=1)


@pytest.fixture
async def live(emulator):
    ports = {v: adapter(emulator, v) for v in ("binance", "bybit")}
    for port in ports.values():
        await port.load_markets()
    params = build_run_params(load_config("eth_basis"), 10_000.0)
    mv = market(marks=(PERP, PERP))
    mv.spot["ETH"][:] = [SPOT, SPOT]          # the spot reference of the book (MarketView.eth is this list)
    state = TradingStateMachine()
    book = Portfolio()
    book.account("binance").usdt = 5_000.0
    book.account("bybit").usdt = 5_000.0
    refused: list[PreTradeRefused] = []
    executor = LiveExecutor(OrderGate(state, ports), params, mv, book, state, on_refused=refused.append)
    try:
        yield executor, book, state, refused, params
    finally:
        for port in ports.values():
            await port.close()


def order_posts(emulator, venue: str) -> int:
    return all_order_posts(emulator)[venue]


async def test_a_perp_short_books_what_the_venue_filled(live, emulator):
    executor, book, _, refused, params = live
    fill = await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0, reason="entry"), 0)
    price = PERP - TICK                                        # a market sell fills at the bid
    fee = 1.0 * price * params.cex["binance"].perp_taker_bps * 1e-4
    assert fill.amount_in == -1.0 and fill.price == pytest.approx(price)
    # cost against the mark the book values at: the fee and the tick given up
    assert fill.execution_cost == pytest.approx(fee + TICK)
    pos = book.cex["binance"].perps["ETH"]
    assert pos.size == -1.0 and pos.entry_price == pytest.approx(price)
    assert book.cex["binance"].usdt == pytest.approx(5_000.0 - fee)
    [order] = emulator.venues["binance"].orders.values()
    assert (order.side, order.qty, order.reduce_only, order.status) == ("sell", Decimal(1), False, "filled")
    assert emulator.venues["binance"].positions["perp:ETHUSDT"].qty == Decimal(-1)
    assert order_posts(emulator, "binance") == 1 and not refused


async def test_a_spot_buy_books_the_units_and_pays_the_ask_and_the_fee(live, emulator):
    executor, book, _, _, params = live
    fill = await executor.execute(Instruction(Op.SPOT_TRADE, "bybit", "ETH", 0.5, reason="entry"), 0)
    price = SPOT + TICK
    # Bybit takes a spot buy's fee in the coin bought and reports it (cumFeeDetail): the book holds
    # what arrived, the cash pays the notional only, and the fee is a cost valued at the spot price
    fee_eth = 0.5 * params.cex["bybit"].spot_taker_bps * 1e-4
    assert book.cex["bybit"].spot["ETH"] == pytest.approx(0.5 - fee_eth, abs=1e-15)
    assert float(emulator.venues["bybit"].balances["unified"]["ETH"]) - 10 == pytest.approx(0.5 - fee_eth, abs=1e-12)
    assert book.cex["bybit"].usdt == pytest.approx(5_000.0 - 0.5 * price)
    assert fill.amount_out == pytest.approx(0.5 - fee_eth, abs=1e-15)
    assert fill.execution_cost == pytest.approx(fee_eth * SPOT + 0.5 * TICK)


async def test_reducing_lets_a_buy_back_through_as_reduce_only_and_refuses_growing_the_short(live, emulator):
    executor, book, state, _, _ = live
    await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0), 0)
    state.reduce("a risk limit breached")
    await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", 0.4), 0)
    assert order_posts(emulator, "binance") == 2
    back = [o for o in emulator.venues["binance"].orders.values() if o.side == "buy"]
    assert len(back) == 1 and back[0].reduce_only and back[0].qty == Decimal("0.4")
    assert book.cex["binance"].perps["ETH"].size == pytest.approx(-0.6)
    sent = order_posts(emulator, "binance")
    with pytest.raises(TradingHalted):
        await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.4), 0)
    assert order_posts(emulator, "binance") == sent and book.cex["binance"].perps["ETH"].size == pytest.approx(-0.6)


async def test_a_halted_session_sends_nothing_at_all(live, emulator):
    executor, _, state, _, _ = live
    state.halt("emergency stop")
    with pytest.raises(TradingHalted):
        await executor.execute(Instruction(Op.SPOT_TRADE, "bybit", "ETH", -0.1), 0)
    assert order_posts(emulator, "bybit") == 0


async def test_an_order_above_the_size_cap_is_refused_from_the_book_alone(live, emulator):
    """10,000 ETH at 2,500 is 25M notional, above Binance's 10M order-size cap: refused without a
    request, reported once through on_refused."""
    executor, _, _, refused, _ = live
    before = len(emulator.venues["binance"].requests)
    with pytest.raises(PreTradeRefused, match="above the order-size cap 10,000,000 USDT"):
        await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1e4), 0)
    assert len(refused) == 1 and executor.refused == 1
    assert len(emulator.venues["binance"].requests) == before


async def test_an_order_the_venue_account_cannot_fund_is_refused_before_sending(live, emulator):
    """A 220 ETH short (550,000 notional) is within every limit of the book, but its initial margin
    0.1 x 550,000 + the fee is more than the 50,000 USDT the emulator's USD-M account holds free: the
    executor reads the account, refuses, and sends no order."""
    executor, book, _, refused, _ = live
    with pytest.raises(PreTradeRefused, match="usdm account has 50,000 USDT free"):
        await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -220.0), 0)
    assert len(refused) == 1 and order_posts(emulator, "binance") == 0
    assert "ETH" not in book.cex["binance"].perps


async def test_a_transfer_between_exchanges_moves_the_book_only(live, emulator):
    executor, book, _, _, _ = live
    before = {v: len(s.requests) for v, s in emulator.venues.items()}
    fill = await executor.execute(Instruction(Op.TRANSFER, "bybit", "USDT", 1_200.0, to_venue="binance"), 0)
    assert fill.amount_out == 1_200.0 and fill.execution_cost == 0.0
    assert book.cex["bybit"].usdt == 3_800.0 and book.cex["binance"].usdt == 6_200.0
    assert {v: len(s.requests) for v, s in emulator.venues.items()} == before      # no withdrawal sent
    with pytest.raises(LiveUnsupported, match="cannot allocate"):
        await executor.execute(Instruction(Op.TRANSFER, "bybit", "USDT", 4_000.0, to_venue="binance"), 0)
    assert book.cex["bybit"].usdt == 3_800.0


@pytest.mark.parametrize("ins, hint", [
    (Instruction(Op.TRANSFER, "wallet", "USDT", 100.0, to_venue="binance"), "move USDT to/from the wallet by hand"),
    (Instruction(Op.STAKE, "etherfi", "ETH", 1.0, to_asset="weETH"), "on-chain legs run in paper mode"),
    (Instruction(Op.SWAP, "uniswap", "USDT", 100.0, to_asset="ETH"), "on-chain legs run in paper mode"),
])
async def test_operations_without_a_live_path_are_refused_plainly(live, emulator, ins, hint):
    executor = live[0]
    with pytest.raises(LiveUnsupported, match=hint):
        await executor.execute(ins, 0)
    assert order_posts(emulator, "binance") == order_posts(emulator, "bybit") == 0


async def test_a_pending_wallet_transaction_holds_orders_that_add_risk_and_lets_reducing_ones_through(live, emulator):
    from engine.domain.onchain_live import PendingChainTx
    from engine.services.live.pending_tx_hold import PendingTransactionHold, PendingTxHold

    executor, book, _, _, _ = live
    await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0), 0)
    pending = [PendingChainTx("sepolia", 7, "0x" + "ab" * 32, "wrap before the crash")]
    executor.gate.hold = hold = PendingTxHold(lambda: list(pending))
    hold.refresh()
    with pytest.raises(PendingTransactionHold, match="nonce 7 \\(wrap before the crash\\).*mined, replaced or cancelled"):
        await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.5), 0)
    assert order_posts(emulator, "binance") == 1 and book.cex["binance"].perps["ETH"].size == -1.0
    await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", 0.4), 0)     # reduce-only: goes
    assert order_posts(emulator, "binance") == 2
    pending.clear()                                   # the nonce is resolved: the hold lifts
    hold.refresh()
    await executor.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.5), 0)
    assert order_posts(emulator, "binance") == 3
