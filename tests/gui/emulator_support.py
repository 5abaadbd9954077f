"""Helpers for the GUI tests that talk to venues: the loopback exchange emulator and keyring stores,
run on the *qasync* loop the widgets use.

pytest-asyncio would run an async fixture on its own loop, which nothing drives while qtbot waits; so
the emulator is started with ``run_on_loop`` (schedule on the qasync loop, spin Qt until done).
Test modules load the fixtures with ``pytest_plugins = ["tests.gui.emulator_support"]`` and import the
helpers directly (hence PYTEST_DONT_REWRITE: the module holds no assertion to rewrite).
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

import pytest

from tests.integration.emulator import ExchangeEmulator, store_test_keys
from tests.integration.memory_keyring import MemoryKeyring
from venues.checks import CheckSettings
from venues.credentials import CredentialStore, KeyringUnavailable

CEX = ("binance", "bybit", "okx")


def run_on_loop(qtbot, coro: Coroutine[Any, Any, Any], timeout_ms: int = 15000) -> Any:
    """Run `coro` on the running qasync loop, spinning Qt until it is done; returns its result."""
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=timeout_ms)
    return task.result()


def os_keyring_or_none() -> CredentialStore | None:
    """The real OS keyring, but only inside tests/run.sh's throwaway D-Bus session: a test must never
    write to (or delete from) a developer's real keyring."""
    if os.environ.get("BASIS_IN_KEYRING_SESSION") != "1":
        return None
    store = CredentialStore()
    try:
        store.describe_backend()
    except KeyringUnavailable:
        return None
    return store


def fast_checks(timeout_s: float = 2.0) -> CheckSettings:
    return CheckSettings(timeout_s=timeout_s, rate_limit_ms=1)


@pytest.fixture
def emulator(qtbot, qasync_loop):
    emu = ExchangeEmulator()
    run_on_loop(qtbot, emu.start())
    yield emu
    run_on_loop(qtbot, emu.stop())


@pytest.fixture
def memory_store(qasync_loop) -> CredentialStore:
    return CredentialStore(MemoryKeyring())


@pytest.fixture
def cex_store(memory_store: CredentialStore) -> CredentialStore:
    return store_test_keys(memory_store)
