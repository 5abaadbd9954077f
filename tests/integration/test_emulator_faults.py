"""The emulator's answer faults, seen from the real ccxt client, and what the adapters' read path
makes of them.

Each fault is shown to be real from the client's side: the order is in the emulator's book while
ccxt raised (late answer: RequestTimeout; cut answer: ExchangeError caused by aiohttp's
ClientPayloadError; garbled answer: the probe's BadResponse). Reads honour Retry-After, retry a
dropped connection, and name a malformed answer as such. (What a live session does with these
outcomes is the live side's business and tested there.)
"""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import ccxt
import pytest

from engine.domain.venue_ports import (
    OrderRequest,
    OrderType,
    Side,
    VenueError,
    VenueErrorKind,
    new_client_order_id,
)
from tests.integration.test_emulator_adapters import adapter
from venues.cex.account import RetryPolicy

CREATE = {"binance": ("api/v3/order", "POST"), "bybit": ("v5/order/create", "POST"),
          "okx": ("api/v5/trade/batch-orders", "POST")}
BALANCE = {"binance": "api/v3/account", "bybit": "v5/account/wallet-balance", "okx": "api/v5/account/balance"}
VENUES = tuple(CREATE)


def limit_buy(coid: str) -> OrderRequest:
    return OrderRequest("ETH/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"), coid, price=Decimal(2000))


def booked(emulator, venue: str, coid: str):
    return emulator.venues[venue].find_order(client_id=coid)


async def raw_ccxt_error(a, request: OrderRequest) -> BaseException:
    """The exception ccxt itself raises for the order (the adapter's translation bypassed)."""
    account = a.account_for(request.symbol)
    params = {"clientOrderId": request.client_order_id}
    with pytest.raises(Exception) as info:
        await account.exchange.create_order(request.symbol, "limit", "buy", 0.01, 2000, params)
    return info.value


@pytest.mark.parametrize("venue", VENUES)
async def test_execute_then_answer_late_books_the_order_while_ccxt_times_out(emulator, venue):
    a = adapter(emulator, venue, timeout_s=0.5)
    try:
        await a.load_markets()
        path, method = CREATE[venue]
        emulator.add_fault(venue, path, method, answer_late_s=1.5, times=2)
        coid = new_client_order_id()
        raw = await raw_ccxt_error(a, limit_buy(coid))
        assert isinstance(raw, ccxt.RequestTimeout)
        assert booked(emulator, venue, coid) is not None and booked(emulator, venue, coid).status == "open"
        coid2 = new_client_order_id()
        with pytest.raises(VenueError) as info:
            await a.create_order(limit_buy(coid2))
        assert info.value.kind is VenueErrorKind.TIMEOUT
        assert booked(emulator, venue, coid2) is not None
        found = await a.fetch_order_by_client_id("ETH/USDT", coid2)       # the lookup that resolves it
        assert found is not None and found.client_order_id == coid2
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_execute_then_drop_books_the_order_while_aiohttp_raises_a_payload_error(emulator, venue):
    a = adapter(emulator, venue)
    try:
        await a.load_markets()
        path, method = CREATE[venue]
        emulator.add_fault(venue, path, method, drop_answer=True, times=2)
        coid = new_client_order_id()
        raw = await raw_ccxt_error(a, limit_buy(coid))
        assert type(raw) is ccxt.ExchangeError and isinstance(raw.__cause__, aiohttp.ClientPayloadError)
        assert booked(emulator, venue, coid) is not None
        coid2 = new_client_order_id()
        with pytest.raises(VenueError) as info:
            await a.create_order(limit_buy(coid2))
        assert info.value.kind is VenueErrorKind.NETWORK          # outcome unknown: look it up, never resend
        assert "dropped in the middle of the answer" in str(info.value)
        assert booked(emulator, venue, coid2) is not None
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("body, needle", [("html", "an HTML page instead of JSON ('Service Unavailable')"),
                                          ("truncated", "text that is not valid JSON"),
                                          ("empty", "an empty body instead of JSON")])
async def test_garbled_answer_to_an_order_is_malformed_and_the_order_exists(emulator, venue, body, needle):
    a = adapter(emulator, venue)
    try:
        await a.load_markets()
        path, method = CREATE[venue]
        emulator.add_fault(venue, path, method, body=body, times=1)
        coid = new_client_order_id()
        with pytest.raises(VenueError) as info:
            await a.create_order(limit_buy(coid))
        assert info.value.kind is VenueErrorKind.MALFORMED
        assert f"malformed answer from {venue}: answered with {needle}" in str(info.value)
        assert booked(emulator, venue, coid) is not None
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_malformed_balance_is_named_after_the_retries(emulator, venue):
    a = adapter(emulator, venue, retry=RetryPolicy(attempts=2, base_delay_s=0.01))
    try:
        await a.load_markets()
        rule = emulator.add_fault(venue, BALANCE[venue], "GET", body="truncated")
        with pytest.raises(VenueError) as info:
            await a.fetch_balances()
        assert info.value.kind is VenueErrorKind.MALFORMED and rule.hits == 2     # retried once: reads are idempotent
        assert f"malformed answer from {venue}" in str(info.value)
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_a_dropped_read_is_retried_and_succeeds(emulator, venue):
    a = adapter(emulator, venue)
    try:
        await a.load_markets()
        rule = emulator.add_fault(venue, BALANCE[venue], "GET", drop_answer=True, times=1)
        balances = await a.fetch_balances()
        assert rule.hits == 1 and any(b.asset == "USDT" for b in balances)
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_429_with_retry_after_is_honoured(emulator, venue):
    a = adapter(emulator, venue, retry=RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02))
    try:
        await a.load_markets()
        rule = emulator.add_fault(venue, BALANCE[venue], "GET", retry_after_s=0.6, times=1)
        started = time.monotonic()
        balances = await a.fetch_balances()
        waited = time.monotonic() - started
        assert rule.hits == 1 and balances
        assert waited >= 0.6, f"retried after {waited:.3f} s, before the venue's Retry-After of 0.6 s"
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_a_retry_after_longer_than_a_read_waits_ends_the_retries_and_says_so(emulator, venue):
    a = adapter(emulator, venue, retry=RetryPolicy(attempts=3, base_delay_s=0.01, max_retry_after_s=5))
    try:
        await a.load_markets()
        rule = emulator.add_fault(venue, BALANCE[venue], "GET", retry_after_s=60)
        started = time.monotonic()
        with pytest.raises(VenueError) as info:
            await a.fetch_balances()
        assert time.monotonic() - started < 2 and rule.hits == 1
        assert info.value.kind is VenueErrorKind.RATE_LIMIT
        assert "the venue asks to wait 60 s (Retry-After), longer than a read waits (5 s)" in str(info.value)
    finally:
        await a.close()


async def test_faults_target_one_endpoint_and_expire(emulator):
    a = adapter(emulator, "okx")
    try:
        await a.load_markets()
        rule = emulator.add_fault("okx", "api/v5/account/balance", "GET", http_status=503, times=5)
        snap = await a.fetch_market_snapshot(["ETH/USDT"])         # other endpoints are healthy
        assert snap.quotes["ETH/USDT"].last is not None
        with pytest.raises(VenueError) as info:
            await a.fetch_balances()
        assert info.value.kind is VenueErrorKind.UNAVAILABLE and rule.hits == 3
        assert await a.fetch_balances()                             # hits 4 and 5, then the rule expires
        assert rule.hits == 5
        emulator.clear_faults("okx")
        assert emulator.venues["okx"].fault_rules == []
    finally:
        await a.close()


async def test_concurrent_reads_keep_their_own_retry_after(emulator):
    """The Retry-After of one call must not delay another call of the same client."""
    a = adapter(emulator, "binance", retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.02))
    try:
        await a.load_markets()
        emulator.add_fault("binance", "api/v3/account", "GET", retry_after_s=1.0, times=1)
        started = time.monotonic()
        slow = asyncio.ensure_future(a.fetch_balances())
        await asyncio.sleep(0.05)
        await a.fetch_open_orders("ETH/USDT")
        assert time.monotonic() - started < 0.8
        await slow
        assert time.monotonic() - started >= 1.0
    finally:
        await a.close()


@pytest.mark.parametrize("body", ["html", "truncated"])
async def test_bybit_cancel_all_with_a_garbled_answer_is_an_error_not_done(emulator, body):
    """200 with an HTML page used to parse as "nothing to cancel"; it is now an error per account."""
    from tests.integration.live_support import place_resting
    a = adapter(emulator, "bybit")
    try:
        await a.load_markets()
        place_resting(emulator, 6)
        emulator.add_fault("bybit", "v5/order/cancel-all", "POST", body=body)
        result = await a.cancel_all_orders()
        assert not result.ok
        assert any("malformed answer from bybit" in e for e in result.errors.values()), result.errors
    finally:
        await a.close()
