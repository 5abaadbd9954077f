"""Run check-venues against the loopback emulator (test keys in an in-memory keyring), e.g. to time it:

    python -m tests.integration.emulator --mode eth_basis                      # healthy
    python -m tests.integration.emulator --mode eth_basis --fault binance:hang=true --timeout 5
    python -m tests.integration.emulator --mode btc_basis --fault okx:clock_skew_ms=1500 --json

Only the venues' URLs and the key store differ from ``python main.py check-venues``; the checks, the
ccxt clients and their real rate limits are the same.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from tests.integration.emulator import TEST_KEYS, ExchangeEmulator
from tests.integration.memory_keyring import MemoryKeyring
from venues.cli import run_check_venues
from venues.credentials import CredentialStore


def _fault(text: str) -> tuple[str, str, object]:
    try:
        venue, assignment = text.split(":", 1)
        name, value = assignment.split("=", 1)
        return venue, name, json.loads(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fault wants VENUE:NAME=JSON_VALUE, got {text!r}") from None


async def main(args: argparse.Namespace) -> int:
    store = CredentialStore(MemoryKeyring())
    for venue, keys in TEST_KEYS.items():
        store.set(args.env, venue, "api_key", keys.api_key)
        store.set(args.env, venue, "secret", keys.secret)
        if keys.passphrase:
            store.set(args.env, venue, "passphrase", keys.passphrase)
    async with ExchangeEmulator() as emulator:
        for venue, name, value in args.fault:
            emulator.set_faults(venue, **{name: value})
        started = time.perf_counter()
        code = await run_check_venues(args, store=store, url_overrides={v: emulator.base_url(v) for v in TEST_KEYS})
        print(f"check-venues against the emulator took {time.perf_counter() - started:.2f}s (exit {code})",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.integration.emulator")
    parser.add_argument("--mode", default="eth_basis")
    parser.add_argument("--env", default="production", choices=["testnet", "production"])
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fault", type=_fault, action="append", default=[])
    sys.exit(asyncio.run(main(parser.parse_args())))
