"""The emergency stop and the dead-man switch against the loopback exchange emulator.

One press: HALTED at once, then cancel-all on every venue concurrently with per-venue progress; a
hung venue is reported at its own timeout and never delays the others; nothing new reaches a venue
afterwards. The dead-man switch stays armed while the session heart-beats and the venue cancels by
itself when the heartbeats stop.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from engine.domain.instructions import Instruction, Op
from engine.services.live import CancelStatus, TradingHalted, TradingState
from tests.integration.live_support import (
    make_service,
    open_orders,
    order_posts,
    place_resting,
    request,
    wait_until,
)


@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    yield svc
    await svc.close()


@pytest.fixture
async def paced_service(emulator, cex_store, tmp_path, cache_dir):
    """ccxt's real per-venue request pacing (Bybit: one cancel-all per second): the e-stop must meet
    its budget with it, not only with pacing switched off."""
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir, rate_limit_ms=None)
    yield svc
    await svc.close()


async def entered_live_session(service, **kw):
    rid = await service.start(request(**kw))
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 4 and s.ticks >= 2, timeout=10, what="the live entry")
    return rid, s


async def test_estop_cancels_50_open_orders_across_three_venues(paced_service, emulator):
    service = paced_service
    rid, s = await entered_live_session(service)
    place_resting(emulator, 50)
    assert sum(open_orders(emulator).values()) == 50
    progress = []
    service.on_cancel_progress = lambda request_id, p: progress.append((request_id, p.venue, p.status))
    reports = await service.emergency_stop().done
    report = reports[rid]
    assert s.state.state is TradingState.HALTED
    assert report.all_cancelled, [p.describe() for p in report.venues.values()]
    assert sum(p.canceled for p in report.venues.values()) == 50
    assert open_orders(emulator) == dict.fromkeys(emulator.venues, 0)
    assert report.halted_after_ms < 50
    # per-venue progress: each venue went cancelling -> done, reported as it happened
    for venue in emulator.venues:
        assert [st for r, v, st in progress if v == venue and r == rid] == \
            [CancelStatus.PENDING, CancelStatus.CANCELLING, CancelStatus.DONE]


async def test_hung_and_failing_venues_never_delay_the_healthy_one(service, emulator):
    rid, s = await entered_live_session(service)
    place_resting(emulator, 30)
    emulator.set_faults("okx", hang=True)
    emulator.set_faults("bybit", http_status=503)
    sent_before = order_posts(emulator)
    t0 = time.perf_counter()
    handle = service.emergency_stop("test press")
    assert s.state.state is TradingState.HALTED              # synchronously, inside the call
    assert handle.request_ids == [rid] and handle.halted_ms < 50
    report = (await handle.done)[rid]
    elapsed = time.perf_counter() - t0
    v = report.venues
    assert v["binance"].status is CancelStatus.DONE and v["binance"].elapsed_ms < 500
    assert open_orders(emulator)["binance"] == 0
    assert v["bybit"].status is CancelStatus.FAILED and "503" in v["bybit"].error
    assert v["okx"].status is CancelStatus.TIMEOUT
    assert 0.95 <= v["okx"].elapsed_ms / 1000 <= 1.3                     # at its own 1 s timeout, not later
    assert elapsed < 1.5
    # Nothing new can reach any venue: the strategy's own loop and a direct attempt are refused.
    t = len(s.feed.view.timestamps) - 1
    with pytest.raises(TradingHalted):
        await s.live_exec.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.5), t)
    emulator.clear_faults()
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 3, timeout=10, what="ticks after the stop")
    assert order_posts(emulator) == sent_before
    assert s.state.state is TradingState.HALTED and s.gate.refused >= 1


async def test_reset_is_the_only_way_out_of_halted(service, emulator):
    rid, s = await entered_live_session(service)
    await service.emergency_stop(request_id=rid).done
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 2, what="ticks while halted")
    assert s.state.state is TradingState.HALTED
    service.reset(rid)
    assert s.state.state is TradingState.ACTIVE


async def test_dead_man_switch_is_kept_armed_and_fires_when_heartbeats_stop(service, emulator):
    rid, s = await entered_live_session(service, dead_man_seconds=2.0)
    binance, okx = emulator.venues["binance"], emulator.venues["okx"]
    assert set(binance.dead_man) == {"perp:ETHUSDT"} and set(okx.dead_man) == {"*"}
    assert ("*", 10_000) in okx.dead_man_arms                   # OKX's minimum countdown is 10 s
    status = service.status(rid).dead_man
    assert status["binance"].startswith("armed 2 s") and "Binance spot" in status["binance"]
    assert status["okx"].startswith("armed 10 s") and status["bybit"].startswith("unavailable: Bybit")
    place_resting(emulator, 6)                                   # one per book, binance perp among them
    arms = len(binance.dead_man_arms)
    await asyncio.sleep(2.5)                                     # longer than the countdown: re-armed each beat
    assert len(binance.dead_man_arms) >= arms + 2 and binance.dead_man_fired == []
    assert open_orders(emulator) == {"binance": 2, "bybit": 2, "okx": 2}
    # The workstation "crashes": the loop stops without a clean stop (no disarm, no cancel-all).
    s._task.cancel()
    await asyncio.sleep(0.05)
    await wait_until(lambda: binance.dead_man_fired, timeout=3.0, what="Binance's countdown")
    assert [o.instrument.key for o in binance.open_orders()] == ["spot:ETHUSDT"]   # spot is not covered
    assert len(okx.open_orders()) == 2                                            # 10 s not over yet
    cancelled = okx.expire_dead_man(okx.now_ms() + 10_001)                        # let 10 s pass
    assert len(cancelled) == 2 and okx.open_orders() == []


async def test_a_clean_stop_disarms_the_dead_man_switch(service, emulator):
    rid, s = await entered_live_session(service, dead_man_seconds=2.0)
    assert emulator.venues["okx"].dead_man and emulator.venues["binance"].dead_man
    await service.stop(rid)
    assert emulator.venues["okx"].dead_man == {} and emulator.venues["binance"].dead_man == {}
    assert emulator.venues["okx"].dead_man_arms[-1] == ("*", 0)
    assert service.status(rid).phase == "stopped"


async def test_dead_man_countdown_must_outlast_the_heartbeat(service):
    from engine.services.live import LiveStartError
    with pytest.raises(LiveStartError, match="dead_man_seconds 1 is too short"):
        await service.start(request(dead_man_seconds=1.0))


async def test_a_press_while_a_session_starts_halts_it_the_moment_it_is_up(service, emulator):
    starting = asyncio.ensure_future(service.start(request()))
    await asyncio.sleep(0.01)                     # connecting: the session does not exist yet
    assert not starting.done() and service.sessions == {}
    handle = service.emergency_stop("pressed while starting")
    assert handle.request_ids == [] and handle.waiting_for_starts
    rid = await starting
    s = service.session(rid)
    assert s.state.state is TradingState.HALTED and handle.request_ids == [rid]
    reports = await asyncio.wait_for(handle.done, 5)
    assert reports[rid].all_cancelled
    ticks = s.ticks
    await wait_until(lambda: s.ticks >= ticks + 2, what="ticks after the start")
    assert s.status().trades == 0 and sum(order_posts(emulator).values()) == 0, "it never entered"
