"""Run check-venues against the loopback emulator (test keys in an in-memory keyring), e.g. to time it:

    python -m tests.integration.emulator --mode eth_basis                      # healthy
    python -m tests.integration.emulator --mode eth_basis --fault binance:hang=true --timeout 5
    python -m tests.integration.emulator --mode btc_basis --fault okx:clock_skew_ms=1500 --json
    python -m tests.integration.emulator --fault-rule okx:GET:api/v5/account/balance:body=html

Only the venues' URLs and the key store differ from ``python main.py check-venues``; the checks, the
ccxt clients and their real rate limits are the same.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time

from engine.config import MODES
from tests.integration.emulator import TEST_KEYS, ExchangeEmulator
from tests.integration.emulator.core import BODY_FAULTS, FaultRule, Faults, RequestFaults
from tests.integration.memory_keyring import MemoryKeyring
from venues.cli import run_check_venues
from venues.credentials import CredentialStore

VENUES = tuple(TEST_KEYS)
#: What each fault does (the dataclasses' docstrings say the same at more length).
FAULT_HELP = {
    "latency_s": "seconds added before the venue answers",
    "hang": "true: never answer (until the emulator stops)",
    "http_status": "answer with this HTTP status (e.g. 503) without executing the request",
    "retry_after_s": "answer 429 with this Retry-After (seconds) and the venue's rate-limit error, not executing",
    "answer_late_s": "execute the request (an order is booked), then hold the answer this many seconds",
    "drop_answer": "true: execute, send half the answer, cut the connection (aiohttp: ClientPayloadError)",
    "body": f"execute, then answer 200 with a bad body: {' | '.join(BODY_FAULTS)}",
    "status_after": "execute, then answer with this HTTP status (e.g. 504: a gateway lost the venue's answer)",
    "bad_auth": "true: reject every signed request as an invalid key (venue-wide only)",
    "clock_skew_ms": "the venue's clock runs this many ms ahead (negative: behind) (venue-wide only)",
}
assert set(FAULT_HELP) == {f.name for f in dataclasses.fields(Faults)}, "document every fault"
RULE_FIELDS = ("times", "answer_json")


def _value(venue: str, assignment: str, allowed: set[str]) -> tuple[str, object]:
    name, sep, value = assignment.partition("=")
    if not sep or name not in allowed:
        raise argparse.ArgumentTypeError(f"unknown fault {name!r} for {venue}; allowed: {', '.join(sorted(allowed))}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value                  # a bare word is a string: body=html


def _fault(text: str) -> tuple[str, str, object]:
    venue, sep, assignment = text.partition(":")
    if not sep or venue not in VENUES:
        raise argparse.ArgumentTypeError(f"--fault wants VENUE:NAME=JSON_VALUE with VENUE one of "
                                         f"{', '.join(VENUES)}, got {text!r}")
    return (venue, *_value(venue, assignment, set(FAULT_HELP)))


def _rule(text: str) -> tuple[str, str, str, dict[str, object]]:
    parts = text.split(":", 3)
    if len(parts) != 4 or parts[0] not in VENUES:
        raise argparse.ArgumentTypeError(f"--fault-rule wants VENUE:METHOD:PATH:NAME=JSON[,NAME=JSON...], got {text!r}")
    venue, method, path, assignments = parts
    allowed = {f.name for f in dataclasses.fields(RequestFaults)} | set(RULE_FIELDS)
    faults = dict(_value(venue, a, allowed) for a in assignments.split(","))
    return venue, "" if method == "*" else method.upper(), path, faults


def build_parser() -> argparse.ArgumentParser:
    faults = "\n".join(f"  {name:<14} {text}" for name, text in FAULT_HELP.items())
    parser = argparse.ArgumentParser(
        prog="python -m tests.integration.emulator", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start the loopback exchange emulator (binance, bybit, okx on 127.0.0.1, test keys in an "
                    "in-memory keyring), inject faults, and run check-venues against it.",
        epilog=f"faults (NAME=VALUE, VALUE in JSON: 503, 0.5, true; a bare word is a string):\n{faults}\n\nA --fault-rule applies to one endpoint: METHOD is GET, "
               "POST, DELETE or * (any), PATH a prefix of the path after the venue (e.g. api/v5/trade/batch-orders, "
               "fapi/v1/order, v5/order/create); query=TEXT only matches requests whose query string contains TEXT "
               "(e.g. execType=Funding), times=N limits it to the next N matching requests, and "
               "answer_json=JSON answers with that body instead of the venue's own (a recorded real answer).")
    parser.add_argument("--mode", default="eth_basis", choices=MODES, metavar="MODE",
                        help=f"the mode whose venues are checked, one of: {', '.join(MODES)} (default eth_basis)")
    parser.add_argument("--env", default="production", choices=["testnet", "production"],
                        help="environment of the checks and of the stored test keys (default production)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per check, as check-venues (default 5)")
    parser.add_argument("--json", action="store_true", help="print the results as a JSON list, as check-venues --json")
    parser.add_argument("--fault", type=_fault, action="append", default=[], metavar="VENUE:NAME=JSON",
                        help="a venue-wide fault, e.g. okx:http_status=503 or bybit:body=html (repeatable)")
    parser.add_argument("--fault-rule", type=_rule, action="append", default=[],
                        metavar="VENUE:METHOD:PATH:NAME=JSON[,...]",
                        help="a fault on one endpoint, e.g. okx:GET:api/v5/account/balance:body=truncated,times=2 "
                             "(repeatable; the first matching rule wins over the venue-wide faults)")
    return parser


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
        for venue, method, path, faults in args.fault_rule:
            emulator.add_fault(venue, path, method, **faults)
        started = time.perf_counter()
        code = await run_check_venues(args, store=store, url_overrides={v: emulator.base_url(v) for v in TEST_KEYS})
        print(f"check-venues against the emulator took {time.perf_counter() - started:.2f}s (exit {code})",
              file=sys.stderr)
    return code


__all__ = ["FaultRule", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(asyncio.run(main(build_parser().parse_args())))
