"""``python main.py demo``: try the workstation against a local exchange emulator and DeFi chain.

    python main.py demo [--mode eth_basis] [--execution paper|live]     the app, connected
    python main.py demo --no-window                                   the venues only, until Ctrl-C
    python main.py demo --screenshot live.png [--estop]                the live dashboard as a PNG
    python main.py demo --mode eth_leveraged --execution live --screenshot f.png --flatten-preview
                                                                      the flatten's pre-sign ticket as a PNG

It starts the exchange emulator (Binance, Bybit, OKX on 127.0.0.1) and the local chain with the real
AAVE v3 / Uniswap v3 / Morpho Blue bytecode (venues/demo.py), stores the demo keys for the testnet
environment (the OS keyring under ``basis-workstation-demo/...``, never the operator's own entries;
a clearly marked in-memory store without a keyring), and opens the app with the Live panel preset to
the mode on testnet, the chain's addresses in the session's configuration. Press Start, then the
EMERGENCY STOP, then Flatten. The demo's journal lives in a temporary folder, so a demo session never
shows up in the recovery of a real one; everything stops when the window closes.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.services import AppServices

EXIT_USAGE = 2
#: paper/live ticks the screenshot waits for before the grab (the charts and tables have content)
SCREENSHOT_TICKS = 6
#: the longest entry: usdt_market_neutral live builds its long leg in band-sized tranches (28 swaps and
#: 87 perp orders at 20,000 USDT) on a chain that mines a block a second, about 90 s
SCREENSHOT_TIMEOUT_S = 180


def register(subparsers: argparse._SubParsersAction, services: Callable[..., AppServices]) -> None:
    from engine.config import MODES

    p = subparsers.add_parser("demo", help="start a local exchange emulator and DeFi chain and open the app on them",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default="eth_basis", choices=MODES, metavar="MODE",
                   help=f"the mode the Live panel is preset to, one of: {', '.join(MODES)} (default eth_basis)")
    p.add_argument("--execution", default="paper", choices=("paper", "live"),
                   help="paper (live data, simulated fills) or live (orders to the emulator); default paper")
    p.add_argument("--capital", type=float, default=None,
                   help="the capital the Live panel is preset to (default: the panel's own; the demo wallet holds "
                        "50,000 USDT)")
    p.add_argument("--no-window", action="store_true",
                   help="start the emulator and the chain and store the keys, print them as JSON, wait for Ctrl-C")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="start the session, wait for a few ticks, save the window as a PNG and exit")
    p.add_argument("--estop", action="store_true", help="with --screenshot: press the emergency stop before the grab")
    p.add_argument("--flatten-preview", action="store_true",
                   help="with --screenshot: press Flatten and grab its pre-sign ticket once the plan is simulated "
                        "(nothing is confirmed)")
    p.add_argument("--size", default="1600x1000", help="window size for --screenshot (default 1600x1000)")
    p.add_argument("--anvil-port", type=int, default=0, help="loopback port of the chain's RPC (default: any free)")
    p.set_defaults(func=lambda args: run_demo(args, services))


def run_demo(args: argparse.Namespace, services: Callable[..., AppServices]) -> int:
    from venues.demo import DemoBackends
    from venues.onchain.devstack.peers import PeersMissing

    size = None
    if args.screenshot is not None:
        from app.cli import _parse_size

        try:
            size = _parse_size(args.size)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if args.screenshot.suffix.lower() != ".png":
            print(f"error: --screenshot {args.screenshot}: the file name must end in .png", file=sys.stderr)
            return EXIT_USAGE
    elif args.estop or args.flatten_preview:
        print(f"error: --{'estop' if args.estop else 'flatten-preview'} needs --screenshot", file=sys.stderr)
        return EXIT_USAGE
    backends = DemoBackends(anvil_port=args.anvil_port, log=lambda line: print(line, flush=True))
    try:
        venues = backends.start()
    except PeersMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        print("demo ready " + json.dumps(venues.summary()), flush=True)
        if args.no_window:
            return _wait_for_signal()
        with tempfile.TemporaryDirectory(prefix="basis-demo-") as journal:
            built = services(store=venues.store, url_overrides=venues.url_overrides, journal_dir=Path(journal),
                             onchain_configs=venues.onchain_configs)
            preset = _preset(args, venues.venue_overrides)
            if args.screenshot is not None:
                return _screenshot(built, args, preset, size)
            from app.main_window import run_app

            return run_app(lambda: built, on_ready=preset)
    finally:
        backends.stop()
        print("demo stopped: emulator and chain are down", flush=True)


def _wait_for_signal() -> int:
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("the emulator and the chain are up; Ctrl-C stops them", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _preset(args: argparse.Namespace, venue_overrides: dict[str, Any]) -> Callable[[Any], None]:
    def preset(window: Any) -> None:
        panel = window.live_panel
        # every session of the demo runs on the demo chain's addresses (the venue files' testnet ones otherwise)
        panel.request_defaults = {"config_overrides": {"venue_overrides": venue_overrides}}
        panel.set_form(mode=args.mode, execution=args.execution, environment="testnet", tick_seconds=1.0,
                       capital=getattr(args, "capital", None))
        window.show_panel("live")
        window.statusBar().showMessage(f"Demo: {args.mode} on the local exchange emulator and chain — press Start, "
                                       "then EMERGENCY STOP, then Flatten", 0)
    return preset


def _screenshot(services: AppServices, args: argparse.Namespace, preset: Callable[[Any], None],
                size: tuple[int, int] | None) -> int:
    """The app as a person sees it: a session started from the panel, a few ticks, the grab."""
    import asyncio

    import qasync
    from PySide6.QtCore import QTimer

    from app.main_window import MainWindow, create_application

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="basis-demo-state-") as state:
        os.environ["BASIS_WORKSTATION_STATE_DIR"] = state       # the user's saved layout is neither used nor changed
        app = create_application([sys.argv[0]])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        window = MainWindow(services, persist_layout=False, initial_mode=args.mode)
        if size is not None:
            window.resize(*size)
        window.show()
        preset(window)
        outcome: dict[str, str] = {}
        done = asyncio.Event()
        controller, panel = window.live_controller, window.live_panel

        def finish(error: str | None = None) -> None:
            if error is not None:
                outcome.setdefault("error", error)
            done.set()

        def grab() -> None:
            if args.flatten_preview:
                return open_flatten()
            save(window)

        def open_flatten() -> None:
            dialog = panel.confirm_flatten()
            if dialog is None:
                return finish("no session to flatten")

            def ready() -> None:
                if dialog.preview is None and "No preview" not in dialog.banner.text():
                    QTimer.singleShot(200, ready)
                    return
                QTimer.singleShot(300, lambda: save(dialog, close=dialog))
            ready()

        def save(widget: Any, close: Any = None) -> None:
            image = widget.grab()
            if close is not None:
                close.reject()                      # a screenshot never confirms anything
            if not image.save(str(args.screenshot), "PNG"):
                return finish(f"cannot write {args.screenshot}")
            outcome["saved"] = f"{image.width()}x{image.height()}"
            finish()

        def updated(snap: Any) -> None:
            if "ticked" in outcome or snap.ticks < SCREENSHOT_TICKS:
                return
            outcome["ticked"] = "yes"
            if args.estop:
                window.estop_action.trigger()
                controller.estop_finished.connect(lambda _press: QTimer.singleShot(800, grab))
            else:
                QTimer.singleShot(500, grab)

        controller.session_updated.connect(updated)
        panel.start_failed.connect(lambda message: finish(f"the session did not start: {message}"))
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, lambda: finish(f"timed out after {SCREENSHOT_TIMEOUT_S} s"))

        async def run() -> None:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            panel.start_session()
            await done.wait()
            await services.live.stop_all()
            await services.live.close()

        with loop:
            loop.run_until_complete(run())
        window.hide()
    if "error" in outcome:
        print(f"error: {outcome['error']}", file=sys.stderr)
        return 1
    print(f"saved {args.screenshot} ({outcome['saved']}, {args.mode} {args.execution} on the demo venues)")
    return 0
