"""Restart recovery: a new service with the same journal and the same venues finds the open positions,
shows the differences, and trades only after the operator acknowledges — resuming, not re-entering."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from engine.services.live import LiveStartError, SessionPhase
from tests.integration.live_support import (
    make_service,
    order_posts,
    request,
    venue_positions,
    wait_until,
)


async def run_and_stop_a_live_session(emulator, cex_store, journal_dir, cache_dir) -> dict[str, Decimal]:
    first = make_service(emulator, cex_store, journal_dir, cache_dir)
    try:
        rid = await first.start(request())
        s = first.session(rid)
        await wait_until(lambda: s.status().trades == 4 and s.ticks >= 2, what="the first session's entry")
    finally:
        await first.close()          # the "workstation" goes away; the positions stay at the venues
    return venue_positions(emulator)


async def test_restart_finds_the_open_positions_and_waits_for_acknowledgement(emulator, cex_store, tmp_path,
                                                                             cache_dir):
    journal = tmp_path / "journal"
    held = await run_and_stop_a_live_session(emulator, cex_store, journal, cache_dir)
    assert all(size < 0 for size in held.values())
    emulator.venues["okx"].place("ETH-USDT", "buy", "limit", Decimal("0.01"), Decimal("2000"), "manual1")
    sent = order_posts(emulator)

    second = make_service(emulator, cex_store, journal, cache_dir)
    try:
        rid = await second.start(request())
        s = second.session(rid)
        assert s.phase is SessionPhase.AWAITING_ACK and not s.running
        report = second.recovery(rid)
        found = {v: sum(p.size for p in ps) for v, ps in report.positions.items()}
        assert found == held                                         # every venue's position, exactly
        assert report.book is not None and report.needs_acknowledgement
        kinds = [(d.venue, d.kind) for d in report.differences]
        assert kinds == [("okx", "unknown_order_on_venue")]          # the order placed by hand
        assert any("manual1" in line for line in report.lines())
        assert "acknowledge" in " ".join(second.status(rid).warnings)
        await asyncio.sleep(0.3)                                     # three tick lengths
        assert order_posts(emulator) == sent and s.ticks == 0        # nothing traded while waiting

        second.acknowledge_recovery(rid)
        await wait_until(lambda: s.ticks >= 3, what="ticks after the acknowledgement")
        for venue, size in held.items():                             # resumed the book, did not re-enter
            assert s.portfolio.cex[venue].perps["ETH"].size == float(size)
        assert order_posts(emulator) == sent and not second.status(rid).breaches
        with pytest.raises(LiveStartError, match="not awaiting"):
            second.acknowledge_recovery(rid)
    finally:
        await second.close()


async def test_a_position_changed_while_away_is_a_difference_and_the_venue_wins(emulator, cex_store, tmp_path,
                                                                                cache_dir):
    journal = tmp_path / "journal"
    held = await run_and_stop_a_live_session(emulator, cex_store, journal, cache_dir)
    # Someone bought back 0.2 ETH of the Binance short by hand while the workstation was down.
    emulator.venues["binance"].place("perp:ETHUSDT", "buy", "market", Decimal("0.2"), None, "byhand1")

    second = make_service(emulator, cex_store, journal, cache_dir)
    try:
        rid = await second.start(request(acknowledge_recovery=True))
        s = second.session(rid)
        report = second.recovery(rid)
        assert [(d.venue, d.kind) for d in report.differences] == [("binance", "position_mismatch")]
        assert report.acknowledged and s.phase is SessionPhase.RUNNING
        assert s.portfolio.cex["binance"].perps["ETH"].size == pytest.approx(float(held["binance"] + Decimal("0.2")))
        # The book now shows the hedge short by 0.2 ETH (2 % of the book's value over the 2 % trigger):
        # the strategy's own rebalance restores it at the venue.
        await wait_until(lambda: venue_positions(emulator)["binance"] <= held["binance"] + Decimal("0.001"),
                         what="the rebalance of the binance hedge")
        assert not second.status(rid).breaches
    finally:
        await second.close()


async def test_a_clean_start_needs_no_acknowledgement(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    try:
        rid = await svc.start(request())
        report = svc.recovery(rid)
        assert report.clean and report.flat and not report.needs_acknowledgement
        assert svc.session(rid).phase is SessionPhase.RUNNING
        assert report.lines()[0].startswith("binance: USDT")      # balances are read and shown
    finally:
        await svc.close()


async def test_after_a_flatten_a_restart_starts_afresh(emulator, cex_store, tmp_path, cache_dir):
    journal = tmp_path / "journal"
    first = make_service(emulator, cex_store, journal, cache_dir)
    try:
        rid = await first.start(request())
        s = first.session(rid)
        await wait_until(lambda: s.status().trades == 4, what="the entry")
        await first.flatten(rid, confirmed=True)
    finally:
        await first.close()
    second = make_service(emulator, cex_store, journal, cache_dir)
    try:
        rid = await second.start(request())
        assert not second.recovery(rid).needs_acknowledgement
        s = second.session(rid)
        await wait_until(lambda: s.status().trades == 4, what="a fresh entry")
    finally:
        await second.close()


async def test_an_unreadable_account_stops_the_start_with_the_reason(emulator, cex_store, tmp_path, cache_dir):
    emulator.set_faults("bybit", bad_auth=True)
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    try:
        with pytest.raises(LiveStartError, match="cannot read the venue accounts.*bybit.*API key is invalid"):
            await svc.start(request())
        assert svc.sessions == {} and sum(order_posts(emulator).values()) == 0
    finally:
        await svc.close()
