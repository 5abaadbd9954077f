"""The real ccxt code paths of the CEX adapters against the loopback emulator (signatures verified)."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from engine.domain.venue_ports import (
    CexVenuePort,
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueError,
    VenueErrorKind,
    new_client_order_id,
)
from engine.config import load_venue_config
from tests.integration.emulator import TEST_KEYS
from venues.cex.account import RetryPolicy
from venues.cex.factory import build_cex_adapter
from venues.credentials import Secret, VenueCredentials

VENUES = ("binance", "bybit", "okx")


def creds(venue: str, secret: str | None = None) -> VenueCredentials:
    keys = TEST_KEYS[venue]
    values = {"api_key": Secret(keys.api_key), "secret": Secret(secret or keys.secret)}
    if keys.passphrase:
        values["passphrase"] = Secret(keys.passphrase)
    return VenueCredentials("production", venue, values)


def adapter(emulator, venue: str, *, credentials: VenueCredentials | None = None, timeout_s: float = 3.0,
            retry: RetryPolicy = RetryPolicy(attempts=3, base_delay_s=0.01)):
    return build_cex_adapter(venue, load_venue_config(venue), "production",
                             credentials if credentials is not None else creds(venue),
                             url_override=emulator.base_url(venue), timeout_s=timeout_s, retry=retry,
                             underlyings=["ETH", "BTC"], rate_limit_ms=1)


@pytest.mark.parametrize("venue", VENUES)
async def test_round_trip_orders_positions_and_cancel_all(emulator, venue):
    a = adapter(emulator, venue)
    assert isinstance(a, CexVenuePort)
    try:
        await a.load_markets()
        assert set(a.symbols()) == {"ETH/USDT", "BTC/USDT", "ETH/USDT:USDT", "BTC/USDT:USDT"}
        snap = await a.fetch_market_snapshot(a.symbols())
        eth_perp = snap.quotes["ETH/USDT:USDT"]
        assert eth_perp.kind is MarketKind.PERP and eth_perp.mark is not None and eth_perp.mark > 0
        assert eth_perp.funding_rate == Decimal("0.0001") and eth_perp.next_funding_time_ms > time.time() * 1000
        assert snap.quotes["ETH/USDT"].bid < snap.quotes["ETH/USDT"].ask

        # a market short of 0.5 ETH on the perp: a position of -0.5 ETH (OKX counts 5 contracts of 0.1)
        short = await a.create_order(OrderRequest("ETH/USDT:USDT", Side.SELL, OrderType.MARKET, Decimal("0.5"),
                                                  new_client_order_id()))
        assert short.amount == Decimal("0.5")
        positions = await a.fetch_positions()
        assert [(p.symbol, p.size) for p in positions] == [("ETH/USDT:USDT", Decimal("-0.5"))]
        state_qty = next(pos.qty for pos in emulator.venues[venue].positions.values())
        assert state_qty == (Decimal("-5") if venue == "okx" else Decimal("-0.5"))

        # resting limit orders on spot and perp, looked up and cancelled by client order id
        coid = new_client_order_id()
        await a.create_order(OrderRequest("ETH/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.25"), coid,
                                          price=Decimal("2000.005")))
        await a.create_order(OrderRequest("BTC/USDT:USDT", Side.BUY, OrderType.LIMIT, Decimal("0.02"),
                                          new_client_order_id(), price=Decimal("50000")))
        found = await a.fetch_order_by_client_id("ETH/USDT", coid)
        assert found is not None and found.status is OrderStatus.OPEN
        assert found.price == Decimal("2000.00")       # a buy is rounded down to the tick, never up
        open_orders = await a.fetch_open_orders()
        assert len(open_orders) == 2
        cancelled = await a.cancel_order("ETH/USDT", client_order_id=coid)
        assert cancelled.status is OrderStatus.CANCELED
        assert (await a.fetch_order_by_client_id("ETH/USDT", coid)).status is OrderStatus.CANCELED
        result = await a.cancel_all_orders()
        assert result.ok, result.errors
        assert await a.fetch_open_orders() == []
        assert emulator.venues[venue].open_orders() == []          # the venue's own book agrees
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_wrong_secret_is_an_auth_error_without_the_secret(emulator, venue):
    wrong = "definitely-not-the-secret-123"
    a = adapter(emulator, venue, credentials=creds(venue, secret=wrong))
    try:
        with pytest.raises(VenueError) as info:
            await a.fetch_balances()
        assert info.value.kind is VenueErrorKind.AUTH
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert wrong not in str(info.value) and TEST_KEYS[venue].api_key not in str(info.value)
    finally:
        await a.close()


async def test_reads_retry_with_backoff_writes_do_not(emulator):
    a = adapter(emulator, "bybit")
    try:
        await a.fetch_balances()          # loads markets and Bybit's account type (cached by ccxt)
        emulator.set_faults("bybit", http_status=503)
        emulator.venues["bybit"].requests.clear()
        with pytest.raises(VenueError) as read_err:
            await a.fetch_balances()
        assert read_err.value.kind is VenueErrorKind.UNAVAILABLE
        assert emulator.venues["bybit"].requests == [("GET", "v5/account/wallet-balance")] * 3
        emulator.venues["bybit"].requests.clear()
        with pytest.raises(VenueError):
            await a.create_order(OrderRequest("ETH/USDT:USDT", Side.SELL, OrderType.MARKET, Decimal("0.1"),
                                              new_client_order_id()))
        assert [r for r in emulator.venues["bybit"].requests if r[1] == "v5/order/create"] == [("POST", "v5/order/create")]
    finally:
        await a.close()


async def test_hung_venue_times_out_and_others_are_unaffected(emulator):
    hung = adapter(emulator, "okx", timeout_s=0.5, retry=RetryPolicy(attempts=1))
    healthy = adapter(emulator, "binance")
    try:
        await asyncio.gather(hung.load_markets(), healthy.load_markets())
        emulator.set_faults("okx", hang=True)
        t0 = time.perf_counter()
        results = await asyncio.gather(hung.cancel_all_orders(), healthy.cancel_all_orders(), return_exceptions=True)
        elapsed = time.perf_counter() - t0
        assert results[1].ok
        assert not results[0].ok and "timeout" in " ".join(results[0].errors.values())
        assert elapsed < 2.0
    finally:
        await asyncio.gather(hung.close(), healthy.close())


async def test_amount_below_the_venue_minimum_is_refused_before_sending(emulator):
    a = adapter(emulator, "okx")
    try:
        await a.load_markets()
        with pytest.raises(VenueError) as info:
            await a.create_order(OrderRequest("ETH/USDT:USDT", Side.SELL, OrderType.MARKET, Decimal("0.0001"),
                                              new_client_order_id()))
        assert info.value.kind is VenueErrorKind.REJECTED and "minimum" in info.value.detail
        assert not any(r[1].endswith("batch-orders") for r in emulator.venues["okx"].requests)
    finally:
        await a.close()
