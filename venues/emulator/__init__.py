"""Loopback exchange emulator for binance (spot + USD-M), bybit v5 and okx v5 (see core.py).

A development tool the product ships: ``python main.py demo`` runs the workstation against it, and
the integration tests use it as the venues' stand-in (tests/integration/emulator re-exports it). It
speaks each venue's REST protocol to the real ccxt clients, checks their signatures with its own test
keys, and can bridge withdrawals and deposits to a local chain (venues/emulator/chain_bridge.py, with the wallet endpoints in transfers.py).
"""
from venues.emulator.core import (
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

__all__ = ["BODY_FAULTS", "TEST_KEYS", "ExchangeEmulator", "FaultRule", "Faults", "Order", "TestKeys", "VenueState",
           "store_test_keys"]
