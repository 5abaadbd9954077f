"""Helpers for the live-trading integration tests: a LiveTradingService wired by bootstrap to the
loopback emulator (test keys in an in-memory keyring, journal in a temp dir), and small waits."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Callable

from bootstrap import DATA_DIR, live_trading_service
from engine.services.live import LiveStartRequest, LiveTradingService
from tests.integration.emulator import ExchangeEmulator
from venues.cex.account import RetryPolicy
from venues.credentials import CredentialStore

# POSTs that create an order, per venue (the emulator logs (method, path) of every request).
ORDER_PATHS = {
    "binance": {"api/v3/order", "fapi/v1/order"},
    "bybit": {"v5/order/create"},
    "okx": {"api/v5/trade/order", "api/v5/trade/batch-orders"},
}
# Resting orders per venue: (instrument key at the emulator, quantity in venue units).
RESTING = {
    "binance": [("spot:ETHUSDT", Decimal("0.01")), ("perp:ETHUSDT", Decimal("0.01"))],
    "bybit": [("spot:ETHUSDT", Decimal("0.01")), ("linear:ETHUSDT", Decimal("0.01"))],
    "okx": [("ETH-USDT", Decimal("0.01")), ("ETH-USDT-SWAP", Decimal("1"))],
}


def make_service(emulator: ExchangeEmulator, store: CredentialStore, journal_dir: Path, cache_dir: Path,
                 *, rate_limit_ms: int | None = 1, timeout_s: float = 2.0) -> LiveTradingService:
    """``rate_limit_ms`` None keeps ccxt's real per-venue pacing; ``timeout_s`` is each request's."""
    return live_trading_service(
        store=store, url_overrides={v: emulator.base_url(v) for v in emulator.venues}, journal_dir=journal_dir,
        data_dir=DATA_DIR, cache_dir=cache_dir, timeout_s=timeout_s, rate_limit_ms=rate_limit_ms,
        retry=RetryPolicy(attempts=2, base_delay_s=0.01), check_timeout_s=2.0)


def request(mode: str = "eth_basis", execution: str = "live", **kw) -> LiveStartRequest:
    defaults = dict(capital=10_000.0, tick_seconds=0.1, cancel_timeout_seconds=1.0, data_timeout_seconds=1.0,
                    dead_man_seconds=None)
    defaults.update(kw)
    return LiveStartRequest(mode=mode, execution=execution, **defaults)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> float:
    """Poll until ``condition()``; returns the seconds it took, fails the test on timeout."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def order_posts(emulator: ExchangeEmulator) -> dict[str, int]:
    """How many order-creating requests reached each venue so far."""
    return {v: sum(1 for method, path in st.requests if method == "POST" and path in ORDER_PATHS[v])
            for v, st in emulator.venues.items()}


def place_resting(emulator: ExchangeEmulator, count: int) -> int:
    """``count`` resting limit buys spread over every venue's spot and perp books (far below the touch)."""
    slots = [(v, key, qty) for v, rows in RESTING.items() for key, qty in rows]
    for i in range(count):
        venue, key, qty = slots[i % len(slots)]
        st = emulator.venues[venue]
        inst = st.instruments[key]
        st.place(key, "buy", "limit", qty, (inst.price * Decimal("0.8")).quantize(inst.tick), None)
    return count


def open_orders(emulator: ExchangeEmulator) -> dict[str, int]:
    return {v: len(st.open_orders()) for v, st in emulator.venues.items()}


def venue_positions(emulator: ExchangeEmulator) -> dict[str, Decimal]:
    """ETH perp position per venue in base units (OKX counts contracts of 0.1 ETH)."""
    out = {}
    for v, st in emulator.venues.items():
        total = Decimal(0)
        for key, pos in st.positions.items():
            inst = st.instruments[key]
            if inst.base == "ETH":
                total += pos.qty * inst.contract_size
        out[v] = total
    return out


class ExclusiveLock:
    """Another process's hold on a journal: a connection in a thread of its own inside BEGIN
    EXCLUSIVE until the block ends (what a second tool, a backup or a stuck process looks like)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, name="journal-locker", daemon=True)

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        try:
            db.execute("BEGIN EXCLUSIVE")
            self.held.set()
            self.release.wait(60)
            db.execute("ROLLBACK")
        finally:
            db.close()

    def __enter__(self) -> "ExclusiveLock":
        self.thread.start()
        if not self.held.wait(5):
            raise RuntimeError(f"could not lock {self.path}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(5)
