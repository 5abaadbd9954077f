"""Loopback exchange emulator for binance (spot + USD-M), bybit v5 and okx v5 (see core.py)."""
from tests.integration.emulator.core import (
    BODY_FAULTS,
    TEST_KEYS,
    ExchangeEmulator,
    FaultRule,
    Faults,
    Order,
    TestKeys,
    VenueState,
    store_test_keys,
)

__all__ = ["BODY_FAULTS", "TEST_KEYS", "ExchangeEmulator", "FaultRule", "Faults", "Order", "TestKeys", "VenueState", "store_test_keys"]
