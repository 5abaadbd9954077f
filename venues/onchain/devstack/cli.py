"""``python main.py devchain``: a local chain with the real protocols, for demos and manual testing.

    python main.py devchain [--port 8545] [--out FILE]
    python main.py devchain --follow-history eth_leveraged [--start 2024-06-01] [--hours 48] [--pace 1.0]

Starts anvil, deploys the stack (AAVE v3, Uniswap v3, Morpho Blue, the LSTs, and the wallet's
LeverageExecutor), prints the addresses as a configs/venues override and writes it to a file it
names, then keeps the chain up until Ctrl-C.
With ``--follow-history MODE`` the oracle feeds, LST rates and pool prices move along the shipped
hourly data of the mode's window, one hour every ``--pace`` seconds.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

EXIT_USAGE = 2
SEPOLIA_CHAIN_ID = 11155111
ANVIL_DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def default_out() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("basis-workstation")) / "devchain" / "venue-overrides.yaml"


def add_devchain_parser(subparsers: argparse._SubParsersAction) -> None:
    from engine.config import MODES

    p = subparsers.add_parser(
        "devchain",
        help="start a local chain with AAVE v3, Uniswap v3, Morpho Blue and LSTs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--port", type=int, default=8545, help="loopback port for the RPC (default 8545; 0 = any free)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"where to write the venue override YAML (default {default_out()})",
    )
    p.add_argument(
        "--follow-history",
        metavar="MODE",
        choices=MODES,
        help=f"move prices and rates along the data of MODE's window ({', '.join(MODES)})",
    )
    p.add_argument("--start", help="first hour to follow, YYYY-MM-DD[THH] UTC (default: the window's start)")
    p.add_argument("--hours", type=int, help="stop following after this many hours (the chain stays up)")
    p.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="wall seconds per historical hour while following (default 1.0; 0 = as fast as possible)",
    )
    p.add_argument(
        "--exit-when-done",
        action="store_true",
        help="stop the chain after following the history instead of waiting for Ctrl-C",
    )
    p.set_defaults(func=cmd_devchain)


class _Stop:
    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, *_: object) -> None:
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


def _history(mode: str, start: str | None, hours: int | None):
    """The mode's window of ETH/USD and both LSTs' oracle and market rates."""
    import pandas as pd

    from engine.config import load_config
    from engine.data import DataRequirements, HistoricalDataProvider
    from engine.services.run_params import build_run_params, data_requirements
    from venues.onchain.devstack.peers import REPO_ROOT

    provider = HistoricalDataProvider(REPO_ROOT / "data")
    mode_start, mode_end = provider.available_window(data_requirements(build_run_params(load_config(mode))))
    req = DataRequirements(spot=("ETH",), lsts=("weETH", "wstETH"))
    lst_start, lst_end = provider.available_window(req)
    first, last = max(mode_start, lst_start), min(mode_end, lst_end)
    if start is not None:
        try:
            wanted = pd.Timestamp(start)
        except (ValueError, TypeError):
            raise ValueError(
                f"--start: cannot parse {start!r} (expected YYYY-MM-DD or YYYY-MM-DDTHH)"
            ) from None
        wanted = wanted.tz_localize("UTC") if wanted.tzinfo is None else wanted.tz_convert("UTC")
        if not first <= wanted <= last:
            raise ValueError(
                f"--start {start}: outside the data for {mode} with LST rates "
                f"({first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC)"
            )
        first = wanted.floor("h")
    if hours is not None:
        if hours <= 0:
            raise ValueError("--hours must be a positive number of hours")
        last = min(last, first + pd.Timedelta(hours=hours - 1))
    return provider.load(req, first, last)


def cmd_devchain(args: argparse.Namespace) -> int:
    from venues.onchain.devstack.peers import PeersMissing

    if args.pace < 0:
        print("error: --pace must be >= 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(args)
    except PeersMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    from venues.onchain.devstack.admin import StackAdmin
    from venues.onchain.devstack.anvil import Anvil
    from venues.onchain.devstack.deploy import compile_local_contracts, deploy_stack
    from venues.onchain.devstack.history import HistoryFollower, hours
    from venues.onchain.devstack.market import market_from_config
    from venues.onchain.devstack.overrides import overrides_yaml
    from venues.onchain.devstack.peers import anvil_command

    anvil_command()  # PeersMissing now, before anything starts
    compiled = compile_local_contracts()  # likewise for the npm packages and solc
    data = _history(args.follow_history, args.start, args.hours) if args.follow_history else None
    spec = market_from_config()
    extra: list[str] = []
    states = None
    if data is not None:
        states = list(hours(data))
        first = states[0]
        spec = market_from_config(
            eth_usd=first.eth_usd, wsteth_rate=first.oracle["wstETH"], weeth_rate=first.oracle["weETH"]
        )
        extra = ["--timestamp", str(first.timestamp - 3600)]  # chain time = history, one hour before

    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    anvil = Anvil(SEPOLIA_CHAIN_ID, port=args.port, extra_args=extra)
    try:
        try:
            anvil.start()
        except RuntimeError as exc:
            raise ValueError(
                f"anvil did not start on port {args.port} ({exc}); is the port in use? try --port 0"
            ) from None
        stack = deploy_stack(anvil.url, spec=spec, compiled=compiled)
        out = args.out or default_out()
        out.parent.mkdir(parents=True, exist_ok=True)
        text = overrides_yaml(stack)
        out.write_text(text)
        (out.parent / "devchain-stack.json").write_text(
            json.dumps(
                {
                    "url": stack.url,
                    "chain_id": stack.chain_id,
                    "deployer": stack.deployer,
                    "wallet": stack.wallet,
                    **stack.addresses(),
                },
                indent=2,
            )
        )
        _print_summary(stack, out, text)
        admin = StackAdmin(stack)
        try:
            if states is not None:
                follower = HistoryFollower(admin)
                print(
                    f"following {args.follow_history} history: {len(states)} hours, {args.pace:g}s per hour "
                    "(Ctrl-C stops)",
                    flush=True,
                )

                def on_hour(hour, block) -> None:
                    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(hour.timestamp))
                    print(
                        f"{when} UTC  block {block:>6}  ETH {hour.eth_usd:>9.2f} USD  "
                        f"wstETH {hour.oracle['wstETH']:.6f}  weETH {hour.oracle['weETH']:.6f} ETH",
                        flush=True,
                    )

                done = follower.run(
                    iter(states), pace_s=args.pace, on_hour=on_hour, stop=lambda: stop.requested
                )
                print(f"followed {done} hours", flush=True)
            if not args.exit_when_done:
                print(f"chain up at {stack.url}; Ctrl-C stops it", flush=True)
                while not stop.requested and anvil.running:
                    stop.event.wait(0.5)
        finally:
            admin.close()
    finally:
        anvil.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _print_summary(stack, out: Path, text: str) -> None:
    print(
        f"local chain {stack.url} (chain id {stack.chain_id}): {stack.transactions} transactions "
        "deployed the "
        f"stack in {stack.deploy_seconds:.2f}s (compile {stack.compile_seconds:.2f}s)"
    )
    print(text, end="")
    print(
        f"# written to {out} (all addresses, admin contracts included: {out.parent / 'devchain-stack.json'})"
    )
    print(
        "# The wallet is anvil's account 1; its key is anvil's published development key (never use it\n"
        "# on a real chain). To point the testnet credentials at this chain (replaces the stored testnet\n"
        "# alchemy values):"
    )
    print(
        f"#   printf %s {stack.url} | python main.py credentials set --env testnet --venue alchemy "
        "--field rpc_url"
    )
    print(
        f"#   printf %s {stack.wallet} | python main.py credentials set --env testnet --venue alchemy "
        "--field wallet_address"
    )
    print(
        f"#   printf %s {ANVIL_DEV_KEY_1} | python main.py credentials set --env testnet --venue alchemy "
        "--field private_key"
    )
    print(
        f"#   printf %s {stack.executor} | python main.py credentials set --env testnet --venue alchemy "
        "--field executor_address   # the wallet's LeverageExecutor, deployed with the stack",
        flush=True,
    )
