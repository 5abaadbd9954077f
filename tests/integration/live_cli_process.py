"""`main.py live` as a process of its own, wired to a loopback emulator another process runs (the
restart tests kill it with SIGKILL and start it again):

    python -m tests.integration.live_cli_process --emulator http://127.0.0.1:PORT --journal-dir D \\
        --cache-dir C -- --mode eth_basis --execution live ...

Only the venues' URLs, the key store (the emulator's test keys in memory) and the journal folder
differ from `python main.py live`: the command, its argument parsing, signal handling, the service
and the ccxt clients are the same.
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from bootstrap import DATA_DIR, live_trading_service
from engine.services.live.cli import add_live_parser
from tests.integration.emulator import TEST_KEYS, store_test_keys
from tests.integration.memory_keyring import MemoryKeyring
from venues.cex.account import RetryPolicy
from venues.credentials import CredentialStore


def main(argv: list[str]) -> int:
    own = argparse.ArgumentParser(prog="live_cli_process")
    own.add_argument("--emulator", required=True, help="base URL of the emulator, e.g. http://127.0.0.1:PORT")
    own.add_argument("--journal-dir", type=Path, required=True)
    own.add_argument("--cache-dir", type=Path, required=True)
    own.add_argument("--timeout", type=float, default=2.0, help="seconds per venue request")
    args, rest = own.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    store = store_test_keys(CredentialStore(MemoryKeyring()))
    factory = partial(live_trading_service, store=store,
                      url_overrides={v: f"{args.emulator.rstrip('/')}/{v}" for v in TEST_KEYS},
                      journal_dir=args.journal_dir, data_dir=DATA_DIR, cache_dir=args.cache_dir,
                      timeout_s=args.timeout, rate_limit_ms=1, retry=RetryPolicy(attempts=2, base_delay_s=0.01))
    parser = argparse.ArgumentParser(prog="main.py")
    add_live_parser(parser.add_subparsers(dest="command"), factory)
    parsed = parser.parse_args(["live", *rest])
    return parsed.func(parsed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
