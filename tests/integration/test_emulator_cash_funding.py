"""The venue's cash (excluding unrealised P&L) and the funding it paid, through the real ccxt client
against the loopback emulator: Binance USD-M walletBalance (+ the spot wallet), Bybit unified
walletBalance, OKX cashBal; funding from fapi income, v5 execution/list (Funding), OKX bills."""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.venue_ports import OrderRequest, OrderType, Side, VenueError, VenueErrorKind
from tests.integration.test_emulator_adapters import VENUES, adapter

D = Decimal
PERP = "ETH/USDT:USDT"


async def _short(a, amount: str) -> None:
    await a.create_order(OrderRequest(PERP, Side.SELL, OrderType.MARKET, D(amount), client_order_id="bwcash1"))


@pytest.mark.parametrize("venue", VENUES)
async def test_cash_follows_fees_and_funding_not_unrealised_pnl(emulator, venue):
    a = adapter(emulator, venue)
    st = emulator.venues[venue]
    st.funding_on_clock = False
    try:
        before = await a.fetch_cash()
        assert before.amount == sum(b.get("USDT", D(0)) for b in st.balances.values())
        await _short(a, "1")
        inst = st.instruments[next(k for k, i in st.instruments.items() if i.kind == "perp" and i.base == "ETH")]
        fee = D(1) * inst.bid * st.taker_fee["perp"]            # a market sell fills at the bid
        after_fill = await a.fetch_cash()
        assert after_fill.amount == before.amount - fee
        # A price move is unrealised P&L: equity moves, cash does not (OKX eq / Bybit equity / marginBalance).
        inst.price += D(100)
        assert (await a.fetch_cash()).amount == after_fill.amount
        records = st.settle_funding(rate=D("0.0001"), at_ms=st.now_ms())
        paid = -D(-1) * inst.price * D("0.0001")                # a short receives at a positive rate
        assert [r.amount for r in records] == [paid]
        assert (await a.fetch_cash()).amount == after_fill.amount + paid
        got = await a.fetch_funding_payments([PERP], records[0].ts_ms - 1)
        assert [(p.symbol, p.amount, p.payment_id) for p in got] == [(PERP, paid, records[0].record_id)]
        assert await a.fetch_funding_payments([PERP], records[0].ts_ms + 1) == []
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_a_malformed_balance_answer_is_an_error_not_zero(emulator, venue):
    a = adapter(emulator, venue)
    path = {"binance": "fapi/v", "bybit": "v5/account/wallet-balance", "okx": "api/v5/account/balance"}[venue]
    emulator.add_fault(venue, path, "GET", times=10, body="html")
    try:
        with pytest.raises(VenueError) as info:
            await a.fetch_cash()
        assert info.value.kind is VenueErrorKind.MALFORMED, info.value
    finally:
        await a.close()


async def test_a_cash_row_without_its_number_is_malformed(emulator):
    """Bybit answers 200 with a USDT row whose walletBalance is empty: malformed, never 0."""
    a = adapter(emulator, "bybit")
    emulator.add_fault("bybit", "v5/account/wallet-balance", "GET", times=5, answer_json={
        "retCode": 0, "retMsg": "OK", "time": 1,
        "result": {"list": [{"accountType": "UNIFIED", "totalEquity": "1", "totalWalletBalance": "1",
                             "coin": [{"coin": "USDT", "equity": "1", "walletBalance": "", "locked": "0"}]}]}})
    try:
        with pytest.raises(VenueError) as info:
            await a.fetch_cash()
        assert info.value.kind is VenueErrorKind.MALFORMED and "walletBalance" in str(info.value)
    finally:
        await a.close()
