"""Restarts under faults: the headless command killed with SIGKILL while its first order is in flight,
then started again; a positions answer that cannot be read during restart recovery; a second instance
on the same journal and accounts.

Each asserts: no duplicate exposure (one spot entry, the perps hedged once), an honest message for
what could not be known, and the journal closed for every order that was out.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import sqlite3
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from engine.services.live import LiveStartError, SessionPhase
from engine.services.live.cli import add_live_parser, run_live
from engine.services.live.journal import Journal, Lease
from tests.integration.live_support import make_service, order_posts, request, venue_positions, wait_until

REPO = Path(__file__).resolve().parents[2]
BYBIT_ETH_AT_START = Decimal("10")
ALLOCATION = {"binance": 0.4, "bybit": 0.3, "okx": 0.3}
FAST = ["--tick", "0.1", "--cancel-timeout", "1", "--data-timeout", "1", "--capital", "10000", "--dead-man", "0"]


def spot_orders(emulator) -> list:
    return [o for o in emulator.venues["bybit"].orders.values() if o.instrument.kind == "spot"]


def journal_path(journal_dir: Path) -> Path:
    return journal_dir / "journal-testnet.sqlite3"


def rows(journal_dir: Path) -> list[tuple]:
    db = sqlite3.connect(journal_path(journal_dir))
    try:
        return db.execute("SELECT symbol, side, status, filled FROM orders ORDER BY created_at").fetchall()
    finally:
        db.close()


async def cli(emulator, journal_dir: Path, cache_dir: Path, *argv: str) -> asyncio.subprocess.Process:
    """The headless live command in a process of its own, talking to this test's emulator."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.live_cli_process", "--emulator", f"http://127.0.0.1:{emulator.port}",
        "--journal-dir", str(journal_dir), "--cache-dir", str(cache_dir), "--",
        "--mode", "eth_basis", "--execution", "live", *FAST, *argv,
        cwd=REPO, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})


async def test_kill_9_with_the_first_order_in_flight_then_restart_doubles_nothing(emulator, tmp_path, cache_dir):
    journal_dir = tmp_path / "journal"
    # Bybit books the spot entry and holds its answer: the order is in flight when the process dies.
    emulator.add_fault("bybit", "v5/order/create", "POST", times=1, answer_late_s=30)
    first = await cli(emulator, journal_dir, cache_dir)
    try:
        await wait_until(lambda: spot_orders(emulator), timeout=60, what="the spot entry booked at Bybit")
    finally:
        first.kill()                                     # SIGKILL: no handler, no cancel, no journal close
        await first.wait()
    assert first.returncode == -9
    assert [r[:3] for r in rows(journal_dir)] == [("ETH/USDT", "buy", "submitted")]   # written before the send
    booked = spot_orders(emulator)[0]
    assert booked.status == "filled"

    second = await cli(emulator, journal_dir, cache_dir, "--acknowledge-recovery", "--max-ticks", "12")
    out, err = await asyncio.wait_for(second.communicate(), 90)
    text = out.decode()
    assert second.returncode == 0, err.decode()
    assert "took over the journal's lease" in text and "no longer running" in text
    assert "journal order resolved: buy" in text and "adopted into the book" in text
    # nothing doubled: one spot buy, and each perp hedges that one spot quantity once
    assert len(spot_orders(emulator)) == 1
    spot = emulator.venues["bybit"].balances["unified"]["ETH"] - BYBIT_ETH_AT_START
    assert booked.fee_asset == "ETH" and spot == booked.filled - booked.fee     # Bybit took the fee in ETH
    for venue, size in venue_positions(emulator).items():
        assert float(size) == pytest.approx(-ALLOCATION[venue] * float(spot), abs=0.002), venue
    perp_sells = [o for st in emulator.venues.values() for o in st.orders.values()
                  if o.instrument.kind == "perp" and o.side == "sell"]
    assert len(perp_sells) == 3
    journal = rows(journal_dir)
    assert journal[0][:3] == ("ETH/USDT", "buy", "closed") and Decimal(journal[0][3]) == booked.filled


async def test_a_second_command_on_the_same_journal_refuses_naming_the_holder(emulator, cex_store, tmp_path,
                                                                             cache_dir):
    journal_dir = tmp_path / "journal"
    first = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        rid = await first.start(request())
        await wait_until(lambda: first.status(rid).trades == 4 and all(venue_positions(emulator).values()),
                         what="the first instance's entry")
        sent = order_posts(emulator)
        out, err = io.StringIO(), io.StringIO()
        args = parse_live(["--mode", "eth_basis", "--execution", "live", *FAST, "--max-ticks", "3"])
        code = await run_live(args, lambda: make_service(emulator, cex_store, journal_dir, cache_dir),
                              stdin=io.StringIO(), out=out, err=err, install_signals=False)
        assert code == 2
        message = err.getvalue()
        assert message.startswith("error: journal ") and message.count("\n") == 1
        assert f"is in use for live trading by pid {os.getpid()} on " in message
        assert order_posts(emulator) == sent, "the refused instance sent nothing"
    finally:
        await first.close()


def parse_live(argv: list[str]):
    parser = argparse.ArgumentParser(prog="main.py")
    add_live_parser(parser.add_subparsers(dest="command"), lambda: None)
    return parser.parse_args(["live", *argv])


async def test_two_services_on_one_journal_the_second_refuses_and_may_start_after(emulator, cex_store, tmp_path,
                                                                                 cache_dir):
    journal_dir = tmp_path / "journal"
    first = make_service(emulator, cex_store, journal_dir, cache_dir)
    second = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        rid = await first.start(request())
        await wait_until(lambda: first.status(rid).trades == 4 and all(venue_positions(emulator).values()),
                         what="the first instance's entry")
        sent = order_posts(emulator)
        with pytest.raises(LiveStartError, match=f"in use for live trading by pid {os.getpid()} on "):
            await second.start(request(acknowledge_recovery=True))
        assert second.sessions == {} and order_posts(emulator) == sent
        paper = await second.start(request(execution="paper"))       # paper touches no account: allowed
        assert second.status(paper).phase == "running"
        await first.close()                                          # the holder goes away
        rid2 = await second.start(request(acknowledge_recovery=True))
        s2 = second.session(rid2)
        await wait_until(lambda: s2.ticks >= 3, what="the second instance's ticks")
        assert order_posts(emulator) == sent                         # it resumed the book, no re-entry
    finally:
        await first.close()
        await second.close()


def write_lease(journal_dir: Path, lease: Lease) -> None:
    journal = Journal(journal_path(journal_dir))
    try:
        journal.take_lease(lease, lambda current: None)
    finally:
        journal.close()


async def test_a_stale_lease_is_taken_over_with_a_warning_and_a_live_one_refused(emulator, cex_store, tmp_path,
                                                                                 cache_dir):
    journal_dir = tmp_path / "journal"
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()                                   # a pid that no longer runs
    now = time.time()
    write_lease(journal_dir, Lease("crashed", dead.pid, os.uname().nodename, now - 100, now - 1))
    svc = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        rid = await svc.start(request())
        assert any(f"took over the journal's lease from pid {dead.pid}" in w for w in svc.status(rid).warnings)
    finally:
        await svc.close()
    # another host's lease: refused while it heart-beats, taken over once it is 30 s stale
    write_lease(journal_dir, Lease("elsewhere", 4242, "other-host", now - 100, time.time()))
    svc = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        with pytest.raises(LiveStartError, match="in use for live trading by pid 4242 on other-host"):
            await svc.start(request())
        write_lease(journal_dir, Lease("elsewhere", 4242, "other-host", now - 100, time.time() - 31))
        rid = await svc.start(request(acknowledge_recovery=True))
        assert any("took over a stale lease from pid 4242 on other-host" in w for w in svc.status(rid).warnings)
    finally:
        await svc.close()


async def run_and_stop(emulator, cex_store, journal_dir, cache_dir) -> dict[str, Decimal]:
    first = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        rid = await first.start(request())
        s = first.session(rid)
        await wait_until(lambda: s.status().trades == 4 and s.ticks >= 2, what="the entry")
    finally:
        await first.close()
    return venue_positions(emulator)


@pytest.mark.parametrize("fault", [
    {"body": "html"}, {"body": "truncated"}, {"drop_answer": True},
    # well-formed JSON whose position has no size: never "no position"
    {"answer_json": {"code": "0", "msg": "", "data": [{"instId": "ETH-USDT-SWAP", "mgnMode": "cross",
                                                       "posSide": "net", "instType": "SWAP"}]}},
], ids=["html", "truncated", "dropped", "no-size"])
async def test_an_unreadable_positions_answer_in_recovery_blocks_trading(emulator, cex_store, tmp_path, cache_dir,
                                                                        fault):
    journal_dir = tmp_path / "journal"
    held = await run_and_stop(emulator, cex_store, journal_dir, cache_dir)
    sent = order_posts(emulator)
    emulator.add_fault("okx", "api/v5/account/positions", "GET", **fault)
    svc = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        with pytest.raises(LiveStartError, match="cannot read the venue accounts.*UNKNOWN.*okx"):
            await svc.start(request(acknowledge_recovery=True))
        assert svc.sessions == {} and order_posts(emulator) == sent and venue_positions(emulator) == held
        emulator.clear_faults()                       # the venue answers readably again
        rid = await svc.start(request(acknowledge_recovery=True))
        s = svc.session(rid)
        await wait_until(lambda: s.ticks >= 3, what="ticks after a good read")
        assert s.phase is SessionPhase.RUNNING and order_posts(emulator) == sent
        assert venue_positions(emulator) == held, "the OKX short was not doubled"
        assert s.portfolio.cex["okx"].perps["ETH"].size == float(held["okx"])
    finally:
        await svc.close()


async def test_a_single_garbled_positions_answer_is_read_again(emulator, cex_store, tmp_path, cache_dir):
    journal_dir = tmp_path / "journal"
    held = await run_and_stop(emulator, cex_store, journal_dir, cache_dir)
    sent = order_posts(emulator)
    emulator.add_fault("okx", "api/v5/account/positions", "GET", body="html", times=1)
    svc = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        rid = await svc.start(request(acknowledge_recovery=True))
        s = svc.session(rid)
        await wait_until(lambda: s.ticks >= 3, what="ticks")
        assert order_posts(emulator) == sent and venue_positions(emulator) == held
        journaled = [row for row in s.journal.events(limit=100) if row[3] == "recovery"]
        assert journaled, "the report is journaled also when acknowledged on the command line"
    finally:
        await svc.close()
