"""`main.py live` headless: status lines, the keyboard and signal emergency stop with per-venue
progress, restart recovery on the command line, and prompt one-line errors."""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import signal
import time
from decimal import Decimal

import pytest

from bootstrap import DATA_DIR, live_trading_service
from engine.services.live.cli import add_live_parser, run_live
from tests.integration.live_support import (
    ExclusiveLock,
    make_service,
    open_orders,
    place_resting,
    request,
    venue_positions,
    wait_until,
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py")
    add_live_parser(parser.add_subparsers(dest="command"), lambda: None)
    return parser.parse_args(["live", *argv])


class Pipe:
    """A real pipe as stdin (the CLI watches it with the loop's add_reader)."""

    def __init__(self) -> None:
        r, self._w = os.pipe()
        self.reader = os.fdopen(r, "r")

    def type(self, text: str) -> None:
        os.write(self._w, text.encode())

    def close(self) -> None:
        os.close(self._w)
        self.reader.close()


@pytest.fixture
def stdin():
    pipe = Pipe()
    yield pipe
    pipe.close()


async def run_cli(argv, service, stdin: Pipe, **kw):
    out, err = io.StringIO(), io.StringIO()
    task = asyncio.ensure_future(run_live(parse(argv), lambda: service, stdin=stdin.reader, out=out, err=err, **kw))
    return task, out, err


FAST = ["--tick", "0.1", "--cancel-timeout", "1", "--data-timeout", "1", "--capital", "10000"]


async def test_typing_s_is_the_emergency_stop_with_per_venue_progress(emulator, cex_store, tmp_path, cache_dir,
                                                                      stdin):
    service = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    task, out, err = await run_cli(["--mode", "eth_basis", "--execution", "live", "--dead-man", "0", *FAST],
                                   service, stdin, install_signals=False)
    await wait_until(lambda: " #3 " in out.getvalue(), what="three status lines")
    place_resting(emulator, 12)
    stdin.type("s\n")
    assert await asyncio.wait_for(task, 10) == 0, err.getvalue()
    text = out.getvalue()
    lines = [line for line in text.splitlines() if " #" in line]
    assert lines[0].split("] ", 1)[1].startswith("#1 ACTIVE hb ") and "value " in lines[0] and "pnl " in lines[0]
    assert "EMERGENCY STOP ('s' typed): trading HALTED" in text
    assert re.search(r"HALTED \d+\.\d+ ms after the press; cancel-all finished in \d+ ms", text)
    for venue in ("binance", "bybit", "okx"):
        assert f"cancel-all {venue}: CANCELLING" in text and f"cancel-all {venue}: DONE, 4 order(s) cancelled" in text
    assert open_orders(emulator) == {"binance": 0, "bybit": 0, "okx": 0}
    assert err.getvalue() == ""


async def test_typing_f_prints_the_flatten_ticket_and_only_yes_sends_it(emulator, cex_store, tmp_path, cache_dir,
                                                                        stdin):
    service = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    task, out, err = await run_cli(["--mode", "eth_basis", "--execution", "live", "--dead-man", "0", *FAST],
                                   service, stdin, install_signals=False)
    await wait_until(lambda: " #3 " in out.getvalue(), what="three status lines")
    held = venue_positions(emulator)
    assert any(held.values())
    stdin.type("f\n")
    await wait_until(lambda: "type 'yes' + Enter to flatten" in out.getvalue(), what="the flatten ticket")
    text = out.getvalue()
    assert "flatten preview of" in text and "[cex] okx ETH perp buy" in text and "(reduce-only)" in text
    assert "ready: confirm to send exactly these steps" in text
    stdin.type("no\n")
    await wait_until(lambda: "flatten cancelled: nothing was sent" in out.getvalue(), what="the cancel")
    assert venue_positions(emulator) == held
    stdin.type("f\n")
    await wait_until(lambda: out.getvalue().count("type 'yes' + Enter to flatten") == 2, what="the ticket again")
    stdin.type("yes\n")
    await wait_until(lambda: "flatten finished; session HALTED" in out.getvalue(), what="the flatten")
    assert all(v == 0 for v in venue_positions(emulator).values())
    stdin.type("s\n")
    assert await asyncio.wait_for(task, 10) == 0, err.getvalue()
    assert err.getvalue() == ""


async def test_sigterm_is_the_emergency_stop(emulator, cex_store, tmp_path, cache_dir, stdin):
    service = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    task, out, err = await run_cli(["--mode", "eth_basis", "--execution", "paper", *FAST], service, stdin)
    await wait_until(lambda: " #2 " in out.getvalue(), what="two status lines")
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 10) == 0, err.getvalue()
    text = out.getvalue()
    assert "EMERGENCY STOP (SIGTERM): trading HALTED" in text and "paper session" in text
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL            # the handler was removed again


async def test_restart_recovery_on_the_command_line(emulator, cex_store, tmp_path, cache_dir, stdin):
    journal = tmp_path / "journal"
    first = make_service(emulator, cex_store, journal, cache_dir)
    rid = await first.start(request())
    await wait_until(lambda: first.status(rid).trades == 4, what="the first session's entry")
    await first.close()

    argv = ["--mode", "eth_basis", "--execution", "live", "--dead-man", "0", "--max-ticks", "2", *FAST]
    task, out, err = await run_cli(argv, make_service(emulator, cex_store, journal, cache_dir), stdin,
                                   install_signals=False)
    assert await asyncio.wait_for(task, 10) == 3                 # stdin is not a terminal: no silent takeover
    held = emulator.venues["binance"].positions["perp:ETHUSDT"].qty          # what the venue holds
    shown = re.search(r"binance: position ETH/USDT:USDT (-?[0-9.]+)", out.getvalue())
    assert "restart recovery" in out.getvalue() and shown and Decimal(shown.group(1)) == held < 0
    assert "--acknowledge-recovery" in err.getvalue() and " #1 " not in out.getvalue()

    task, out, err = await run_cli(argv + ["--acknowledge-recovery"],
                                   make_service(emulator, cex_store, journal, cache_dir), stdin, install_signals=False)
    assert await asyncio.wait_for(task, 10) == 0, err.getvalue()
    assert " #2 ACTIVE" in out.getvalue() and "trades 0" in out.getvalue()      # resumed, no re-entry
    assert "stopping after 2 tick(s)" in out.getvalue()


async def test_unreachable_venues_fail_promptly_with_one_line(tmp_path, cache_dir, stdin):
    # Nothing listens on port 9: like this sandbox's missing network, every venue refuses at once.
    service = live_trading_service(url_overrides={v: "http://127.0.0.1:9" for v in ("binance", "bybit", "okx")},
                                   journal_dir=tmp_path, data_dir=DATA_DIR, cache_dir=cache_dir, timeout_s=2.0)
    t0 = time.monotonic()
    task, out, err = await run_cli(["--mode", "eth_basis", *FAST], service, stdin, install_signals=False)
    assert await asyncio.wait_for(task, 15) == 2
    assert time.monotonic() - t0 < 5
    message = err.getvalue()
    assert message.count("\n") == 1 and "Traceback" not in message
    assert message.startswith("error: cannot connect to the venues: binance: ") and "okx" in message


@pytest.mark.parametrize("argv, expected", [
    (["--mode", "nope"], "--mode: unknown mode 'nope'"),
    (["--mode", "eth_basis", "--execution", "real"], "--execution 'real' (allowed: paper, live)"),
    (["--mode", "eth_basis", "--capital", "-5"], "--capital must be positive"),
    (["--mode", "eth_basis", "--set", "risk.max_drawdown=7"], "risk.max_drawdown"),
])
async def test_bad_input_is_one_line_and_exit_2(argv, expected, stdin, tmp_path, cache_dir):
    service = live_trading_service(journal_dir=tmp_path, data_dir=DATA_DIR, cache_dir=cache_dir)
    task, out, err = await run_cli(argv, service, stdin, install_signals=False)
    assert await task == 2
    assert err.getvalue().startswith("error: ") and expected in err.getvalue() and err.getvalue().count("\n") == 1


async def test_a_corrupt_journal_is_one_line_naming_its_path(emulator, cex_store, tmp_path, cache_dir, stdin):
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    corrupt = journal_dir / "journal-testnet.sqlite3"
    corrupt.write_bytes(b"not a database\n" * 200)
    service = make_service(emulator, cex_store, journal_dir, cache_dir)
    task, out, err = await run_cli(["--mode", "eth_basis", "--execution", "live", "--dead-man", "0", *FAST],
                                   service, stdin, install_signals=False)
    assert await asyncio.wait_for(task, 30) == 2
    assert err.getvalue().startswith(f"error: journal {corrupt} is not a usable SQLite database")
    assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()
    assert open_orders(emulator) == {"binance": 0, "bybit": 0, "okx": 0}


@pytest.mark.parametrize("how", ["s", "SIGTERM", "SIGINT"])
async def test_every_cli_stop_reaches_cancel_all_with_the_journal_locked(emulator, cex_store, tmp_path, cache_dir,
                                                                         stdin, how):
    journal_dir = tmp_path / "journal"
    service = make_service(emulator, cex_store, journal_dir, cache_dir)
    task, out, err = await run_cli(["--mode", "eth_basis", "--execution", "live", *FAST],
                                   service, stdin, install_signals=how != "s")
    await wait_until(lambda: " #3 " in out.getvalue(), what="three status lines")
    place_resting(emulator, 50)
    with ExclusiveLock(journal_dir / "journal-testnet.sqlite3"):       # another process holds it
        t0 = time.monotonic()
        if how == "s":
            stdin.type("s\n")
        else:                                       # SIGINT is Ctrl-C
            os.kill(os.getpid(), getattr(signal, how))
        await wait_until(lambda: open_orders(emulator) == {"binance": 0, "bybit": 0, "okx": 0}, timeout=5,
                         what="every venue's cancels, the journal locked")
        assert time.monotonic() - t0 < 1.5
        assert "EMERGENCY STOP" in out.getvalue()
    assert await asyncio.wait_for(task, 15) == 0, err.getvalue()
    for venue in ("binance", "bybit", "okx"):
        assert f"cancel-all {venue}: DONE" in out.getvalue()
