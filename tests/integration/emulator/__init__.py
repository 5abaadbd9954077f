"""The loopback exchange emulator, now a product package (venues/emulator, used by ``python main.py
demo``), under its old name: ``tests.integration.emulator`` and its submodules ``core``, ``binance``,
``bybit`` and ``okx`` are the very same module objects as ``venues.emulator.*`` (aliases in
sys.modules, so patching one patches the other), and ``python -m tests.integration.emulator`` keeps
running the check-venues CLI in __main__.py."""
import sys

import venues.emulator as _package
from venues.emulator import *  # the package's own names, so the two lists stay one
from venues.emulator import binance, bybit, core, okx

for _module in (core, binance, bybit, okx):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module

__all__ = _package.__all__ + ["binance", "bybit", "core", "okx"]
