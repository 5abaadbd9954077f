"""`main.py live`: run one mode live or on paper, headless, with an emergency stop.

    python main.py live --mode eth_basis --execution paper --env testnet [--capital 10000]
                        [--set risk.max_drawdown=0.05] [--tick 5] [--dead-man 60] [--max-ticks N]
                        [--acknowledge-recovery] [--yes-production]

One status line per tick (state, heartbeat age, data age, value, P&L). Ctrl-C, SIGTERM, or typing
``s`` + Enter is the emergency stop: trading is HALTED at once (before anything awaits), every
venue's open orders are cancelled concurrently with per-venue progress printed, then the program
exits: 0 when every venue acknowledged, 1 when a venue failed or timed out (its orders may remain),
2 on bad input or when the session cannot start, 3 when restart recovery was not acknowledged.
Typing ``f`` + Enter flattens: the plan is printed first as the dashboard's ticket shows it (every
step, each on-chain transaction's pre-sign ticket simulated on the current block) and only ``yes`` +
Enter sends exactly that plan; a plan that moved meanwhile is printed again and asked again.
``--max-ticks`` stops cleanly after N ticks (positions stay; the dead-man switch is disarmed).
Errors are one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from functools import partial
from collections.abc import Awaitable
from typing import Callable, TextIO

from engine.cli_args import check_range
from engine.config import MODES, ConfigError, parse_cli_overrides
from engine.services.live.emergency_stop import CancelStatus, EStopHandle, VenueCancelProgress
from engine.services.live.flatten_preview import FlattenPreviewStale, FlattenRefused
from engine.services.live.service import (
    ENVIRONMENTS,
    EXECUTIONS,
    LiveStartError,
    LiveStartRequest,
    LiveTradingService,
)
from engine.services.live.session import LiveSession, SessionPhase

EXIT_OK, EXIT_CANCEL_UNCONFIRMED, EXIT_USAGE, EXIT_NOT_ACKNOWLEDGED = 0, 1, 2, 3
MAX_TICKS = 10**9


class UsageError(ValueError):
    """Bad command-line input."""


def add_live_parser(subparsers: argparse._SubParsersAction,
                    service_factory: Callable[[], LiveTradingService]) -> None:
    p = subparsers.add_parser(
        "live", help="run a mode live or on paper (headless); Ctrl-C or 's' + Enter = emergency stop")
    p.add_argument("--mode", required=True, help=f"one of: {', '.join(MODES)}")
    p.add_argument("--execution", default="paper", help=f"{' | '.join(EXECUTIONS)} (default paper)")
    p.add_argument("--env", default="testnet", help=f"{' | '.join(ENVIRONMENTS)} (default testnet)")
    p.add_argument("--capital", type=float, help="capital in the share-class currency (default: the share class's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set risk.max_drawdown=0.05")
    p.add_argument("--yes-production", action="store_true",
                   help="confirm live trading with real money in production (check-venues must pass too)")
    p.add_argument("--acknowledge-recovery", action="store_true",
                   help="take over the positions/orders restart recovery finds without asking")
    p.add_argument("--tick", type=float, default=5.0, help="seconds between ticks, 0.05..3600 (default 5)")
    p.add_argument("--cancel-timeout", type=float, default=None,
                   help="per-venue budget of the emergency cancel-all (list, cancel, read back, retries), "
                        "0.05..120 seconds (default: each venue's emergency_stop.cancel_budget_seconds)")
    p.add_argument("--data-timeout", type=float, default=5.0,
                   help="per-venue timeout of market-data and account reads, 0.1..600 seconds (default 5)")
    p.add_argument("--dead-man", type=float, default=60.0,
                   help="live: exchange-side cancel-after countdown, 1..3600 seconds; 0 = off (default 60)")
    p.add_argument("--max-ticks", type=int, help="stop cleanly after this many ticks (scripted runs)")
    p.add_argument("--resolve-budget", type=float, default=30.0,
                   help="seconds an order whose outcome is unknown is looked up before trading halts, "
                        "0.1..600 (default 30)")
    p.set_defaults(func=lambda args: run_live_command(args, service_factory))


def run_live_command(args: argparse.Namespace, service_factory: Callable[[], LiveTradingService]) -> int:
    try:
        return asyncio.run(run_live(args, service_factory))
    except KeyboardInterrupt:          # only reachable before the signal handlers are installed
        print("error: interrupted before the session started", file=sys.stderr)
        return EXIT_USAGE


def build_request(args: argparse.Namespace) -> LiveStartRequest:
    if args.mode not in MODES:
        raise UsageError(f"--mode: unknown mode {args.mode!r} (allowed: {', '.join(MODES)})")
    if args.execution not in EXECUTIONS:
        raise UsageError(f"--execution {args.execution!r} (allowed: {', '.join(EXECUTIONS)})")
    if args.env not in ENVIRONMENTS:
        raise UsageError(f"--env {args.env!r} (allowed: {', '.join(ENVIRONMENTS)})")
    if args.capital is not None and not args.capital > 0:
        raise UsageError(f"--capital must be positive, got {args.capital}")
    check_range(args.max_ticks, "--max-ticks", 1, MAX_TICKS)
    check_range(args.tick, "--tick", 0.05, 3600, unit="s")
    check_range(args.cancel_timeout, "--cancel-timeout", 0.05, 120, unit="s")
    check_range(args.data_timeout, "--data-timeout", 0.1, 600, unit="s")
    check_range(args.dead_man, "--dead-man", 1, 3600, unit="s", zero_means="off")
    check_range(args.resolve_budget, "--resolve-budget", 0.1, 600, unit="s")
    return LiveStartRequest(
        mode=args.mode, execution=args.execution, environment=args.env, capital=args.capital,
        config_overrides=parse_cli_overrides(args.set), confirm_production=args.yes_production,
        acknowledge_recovery=args.acknowledge_recovery, tick_seconds=args.tick,
        cancel_timeout_seconds=args.cancel_timeout, data_timeout_seconds=args.data_timeout,
        dead_man_seconds=args.dead_man or None, resolve_budget_seconds=args.resolve_budget)


def _one_line(exc: Exception) -> str:
    text = exc.describe() if isinstance(exc, ConfigError) else str(exc)
    return " | ".join(line.strip() for line in text.splitlines())


def format_status(session: LiveSession) -> str:
    st = session.snapshot()
    cur = st.currency
    dp = session.manager.numeraire.decimals()

    def age(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}s"

    value = "-" if st.value is None else f"{st.value:,.{dp}f} {cur}"
    pnl = "-" if st.pnl is None else f"{st.pnl:+,.{dp}f} ({st.pnl / st.capital * 100:+.2f}%)"
    line = (f"[{time.strftime('%H:%M:%S')}] #{st.ticks} {st.badge.text} hb {age(st.heartbeat_age_seconds)} "
            f"data {age(st.data_age_seconds)} value {value} pnl {pnl} dd {st.drawdown * 100:.2f}% "
            f"trades {st.trades}")
    if st.breaches:
        line += " | BREACH " + "; ".join(st.breaches)
    if st.last_error:
        line += f" | error: {st.last_error}"
    return line


class _Console:
    """Prints session updates and cancel progress; tracks what was already shown."""

    def __init__(self, out: TextIO, max_ticks: int | None, done: asyncio.Event) -> None:
        self.out = out
        self.max_ticks = max_ticks
        self.done = done
        self.ticks_shown = -1
        self.dead_man_shown: dict[str, str] = {}

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def update(self, session: LiveSession) -> None:
        if session.ticks == self.ticks_shown or session.ticks == 0:
            return
        self.ticks_shown = session.ticks
        self.print(format_status(session))
        dead_man = session.dead_man.describe() if session.dead_man is not None else {}
        for venue, text in dead_man.items():
            state = text.split(" ", 1)[0]
            if self.dead_man_shown.get(venue) != state:
                self.dead_man_shown[venue] = state
                self.print(f"  dead-man switch {venue}: {text}")
        if self.max_ticks is not None and session.ticks >= self.max_ticks:
            self.done.set()

    def cancel_progress(self, request_id: str, progress: VenueCancelProgress) -> None:
        if progress.status is CancelStatus.PENDING:
            return
        self.print(f"  cancel-all {progress.describe()}")


async def run_live(args: argparse.Namespace, service_factory: Callable[[], LiveTradingService], *,
                   stdin: TextIO | None = None, out: TextIO | None = None, err: TextIO | None = None,
                   install_signals: bool = True) -> int:
    """The command on the running loop (tests call it directly with their own streams)."""
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    loop = asyncio.get_running_loop()
    try:
        req = build_request(args)
    except (UsageError, ConfigError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=err)
        return EXIT_USAGE
    service = service_factory()
    stop = asyncio.Event()
    lines: asyncio.Queue[str] = asyncio.Queue()
    console = _Console(out, args.max_ticks, stop)
    service.on_update = console.update
    service.on_cancel_progress = console.cancel_progress
    pressed: list[EStopHandle] = []
    failures: list[str] = []

    def press(reason: str) -> None:
        """Signal/keyboard handler: the emergency stop (every session HALTED inside the call, a session
        still starting HALTED the moment it is up), then wake the main task — whatever fails around
        it (a console that cannot be written, a bug), the main task is woken and waits for the cancels."""
        try:
            if pressed:
                console.print("emergency stop already in progress")
                return
            pressed.append(service.emergency_stop(f"emergency stop ({reason})"))
            console.print(f"EMERGENCY STOP ({reason}): trading HALTED; cancelling open orders on every venue ...")
        except Exception as exc:                     # noqa: BLE001 - a signal handler must not raise
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            stop.set()

    installed = _install_handlers(loop, press, lines, stdin, install_signals)
    code = EXIT_OK
    try:
        try:
            console.print(f"starting {req.mode} ({req.execution}, {req.environment}) ...")
            request_id = await service.start(req)
        except (LiveStartError, ConfigError, ValueError) as exc:
            print(f"error: {_one_line(exc)}", file=err)
            return EXIT_USAGE
        session = service.session(request_id)
        if pressed and request_id not in pressed[0].request_ids:
            # pressed before the start began: this session was not there to halt yet
            pressed[0] = service.emergency_stop(pressed[0].reason, request_id=request_id)
        elif not pressed and session.phase is SessionPhase.AWAITING_ACK:
            code = await _acknowledge(service, session, args, stdin, lines, stop, console, err)
            if code != EXIT_OK:
                return code
        elif session.recovery is not None and session.recovery.needs_acknowledgement:
            # taken over without asking (--acknowledge-recovery): the report is shown all the same
            console.print("restart recovery (taken over with --acknowledge-recovery):")
            for line in session.recovery.lines():
                console.print(f"  {line}")
        if not pressed:
            console.print(f"session {request_id} running: Ctrl-C or 's' + Enter = emergency stop; 'f' + Enter = "
                          "flatten (shows the plan and its pre-sign tickets first)")
            for w in session.snapshot().warnings:
                console.print(f"  warning: {w}")
            await _wait(stop, lines, press,
                        lambda: _flatten(service, request_id, lines, stop, console))
        if failures and not pressed:
            # the press itself failed before it reached the service: stop every session now
            pressed.append(service.emergency_stop("emergency stop (after a failed press)"))
        if pressed:
            reports = await pressed[0].done
            report = reports.get(request_id)
            if report is not None:
                console.print(f"HALTED {report.halted_after_ms:.2f} ms after the press; cancel-all finished in "
                              f"{report.finished_after_ms:.0f} ms" + (f" ({report.note})" if report.note else ""))
                if not report.all_cancelled:
                    bad = [p.describe() for p in report.venues.values() if p.status is not CancelStatus.DONE]
                    print("error: not every venue confirmed its cancels: " + "; ".join(bad), file=err)
                    code = EXIT_CANCEL_UNCONFIRMED
        else:
            console.print(f"stopping after {session.ticks} tick(s); positions are left as they are")
        return code
    except Exception as exc:                         # never a traceback; a live session is e-stopped
        print(f"error: {type(exc).__name__}: {exc}", file=err)
        if service.sessions:
            await service.emergency_stop("headless command failed").done
        return EXIT_USAGE
    finally:
        for undo in installed:
            undo()
        await service.close()
        for s in list(service.sessions.values()):
            for venue, why in (s.dead_man.left_armed.items() if s.dead_man is not None else ()):
                print(f"warning: dead-man switch {venue} left armed ({why}): the venue cancels the remaining "
                      "orders when its countdown runs out", file=err)


async def _acknowledge(service: LiveTradingService, session: LiveSession, args: argparse.Namespace,
                       stdin: TextIO, lines: asyncio.Queue[str], stop: asyncio.Event, console: _Console,
                       err: TextIO) -> int:
    console.print("restart recovery (trading waits until this is acknowledged):")
    for line in session.recovery.lines() if session.recovery else []:
        console.print(f"  {line}")
    if args.acknowledge_recovery:
        service.acknowledge_recovery(session.request_id)
        return EXIT_OK
    if not _interactive(stdin):
        print("error: restart recovery needs acknowledging: review the lines above and rerun with "
              "--acknowledge-recovery", file=err)
        return EXIT_NOT_ACKNOWLEDGED
    console.print("type 'yes' + Enter to take these over and start trading (anything else quits)")
    getter = asyncio.ensure_future(lines.get())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in (getter, stopper):
        task.cancel()
    if stop.is_set() or not getter.done() or getter.cancelled():
        return EXIT_OK if stop.is_set() else EXIT_NOT_ACKNOWLEDGED
    if getter.result().strip().lower() != "yes":
        print("error: recovery not acknowledged; nothing was traded", file=err)
        return EXIT_NOT_ACKNOWLEDGED
    service.acknowledge_recovery(session.request_id)
    return EXIT_OK


async def _wait(stop: asyncio.Event, lines: asyncio.Queue[str], press: Callable[[str], None],
                flatten: Callable[[], Awaitable[None]] | None = None) -> None:
    """Until the e-stop or --max-ticks: keyboard lines 's' press the e-stop, 'f' starts a flatten."""
    while not stop.is_set():
        getter = asyncio.ensure_future(lines.get())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter.done() and not getter.cancelled():
            command = getter.result().strip().lower()
            if command == "s":
                press("'s' typed")
            elif command == "f" and flatten is not None:
                await flatten()
        else:
            getter.cancel()


async def _next_line(lines: asyncio.Queue[str], stop: asyncio.Event) -> str | None:
    """The next typed line, or None when the e-stop (or --max-ticks) ends the wait first."""
    getter = asyncio.ensure_future(lines.get())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    getter.cancel()
    return None


async def _flatten(service: LiveTradingService, request_id: str, lines: asyncio.Queue[str], stop: asyncio.Event,
                   console: _Console) -> None:
    """The headless flatten: the same preview as the dashboard's ticket (every step, each on-chain
    transaction simulated on the current block), then 'yes' sends exactly that plan. A plan that moved
    meanwhile is printed again and asked again; nothing stale is ever sent."""
    console.print("flatten: simulating the plan (nothing is sent) ...")
    try:
        preview = await service.preview_flatten(request_id)
    except Exception as exc:             # noqa: BLE001 - said in one line; the session goes on as it was
        console.print(f"flatten: no preview ({_one_line(exc)}); nothing was sent")
        return
    while True:
        for line in preview.lines():
            console.print(f"  {line}")
        if not preview.ready:
            console.print("flatten refused: nothing was sent")
            return
        console.print("type 'yes' + Enter to flatten exactly this plan (anything else cancels)")
        answer = await _next_line(lines, stop)
        if answer is None or answer.strip().lower() != "yes":
            console.print("flatten cancelled: nothing was sent")
            return
        try:
            report = await service.flatten(request_id, confirmed=True, preview=preview)
        except FlattenPreviewStale as stale:
            console.print(f"flatten not sent: the plan changed since the preview ({stale.why}); the new plan:")
            preview = stale.fresh
            continue
        except (FlattenRefused, LiveStartError) as refused:
            console.print(f"flatten not sent: {_one_line(refused)}")
            return
        for line in report.lines():
            console.print(f"  flatten: {line}")
        console.print("flatten " + ("finished with failures" if report.failed else "finished") + "; session HALTED")
        return


def _interactive(stdin: TextIO) -> bool:
    try:
        return stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _install_handlers(loop: asyncio.AbstractEventLoop, press: Callable[[str], None], lines: asyncio.Queue[str],
                      stdin: TextIO, install_signals: bool) -> list[Callable[[], object]]:
    """SIGINT/SIGTERM -> press; stdin lines -> the queue. Returns the undo callables."""
    undo: list[Callable[[], object]] = []
    if install_signals:
        for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
            try:
                loop.add_signal_handler(sig, press, name)
                undo.append(partial(loop.remove_signal_handler, sig))
            except (NotImplementedError, RuntimeError, ValueError):   # not the main thread / platform
                pass
    try:
        fd = stdin.fileno()
    except (AttributeError, ValueError, OSError):
        fd = None
    if fd is not None:
        def readable() -> None:
            line = stdin.readline()
            if line == "":                       # EOF: stop watching (a closed stdin is not an e-stop)
                loop.remove_reader(fd)
                return
            lines.put_nowait(line)
        try:
            loop.add_reader(fd, readable)
            undo.append(lambda: loop.remove_reader(fd))
        except (NotImplementedError, ValueError, OSError, PermissionError):
            pass
    return undo
