"""Loopback exchange emulator for binance (spot + USD-M), bybit v5 and okx v5 (see core.py)."""
from tests.integration.emulator.core import (
    TEST_KEYS,
    ExchangeEmulator,
    Faults,
    Order,
    TestKeys,
    VenueState,
    store_test_keys,
)

__all__ = ["TEST_KEYS", "ExchangeEmulator", "Faults", "Order", "TestKeys", "VenueState", "store_test_keys"]
