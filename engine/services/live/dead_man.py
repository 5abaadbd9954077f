"""Keeps the venues' exchange-side cancel-after (dead-man switch) armed while a live session runs.

Each heartbeat re-arms the countdown on every venue that offers one; if the workstation
crashes or loses its network, the heartbeats stop and the venue cancels the open orders by itself
when the countdown runs out. Venues without one (Binance spot, Bybit over REST) are listed as
uncovered so the operator knows what is protected and what is not.

Heartbeats never hold up a trading tick: the session starts one as a background task and skips a
beat while the previous one is still out. Re-arms are spaced at least ``min_interval_s`` apart
(OKX allows one cancel-all-after per second) and each call has its own timeout.

After an emergency stop the switch is the backstop for whatever the cancels could not confirm: it is
re-armed at once with a short countdown (`hold`) and the heartbeat stops re-arming until the session
is reset, so the venue cancels by itself if our cancels failed. It is never switched off on exit while
orders may remain (`release` disarms only the venues known to have none and leaves the others on the
short countdown): switching it off there would leave those orders working for good.
"""
from __future__ import annotations

import asyncio
import math
import time
from typing import Mapping

from engine.domain.venue_ports import DeadManSwitchPort, DeadManSwitchStatus

MIN_INTERVAL_S = 1.0          # OKX: 1 request/s for cancel-all-after
HEARTBEATS_PER_TIMEOUT = 2.0  # the countdown must outlast at least this many missed-free heartbeats


def heartbeat_interval(tick_seconds: float) -> float:
    return max(tick_seconds, MIN_INTERVAL_S)


def check_timeout(timeout_s: float, tick_seconds: float) -> None:
    """The countdown must be long enough that a healthy session never lets it run out."""
    need = HEARTBEATS_PER_TIMEOUT * heartbeat_interval(tick_seconds)
    if not math.isfinite(timeout_s):
        # round(inf) fails inside the venue call, which left the switch unarmed while trading went on
        raise ValueError(f"dead_man_seconds must be a finite number of seconds, got {timeout_s!r}")
    if not timeout_s >= need:
        raise ValueError(f"dead_man_seconds {timeout_s:g} is too short: at least {need:g} s "
                         f"({HEARTBEATS_PER_TIMEOUT:g} x the heartbeat of {heartbeat_interval(tick_seconds):g} s)")


class DeadManHeartbeat:
    def __init__(self, venues: Mapping[str, object], timeout_s: float, tick_seconds: float,
                 call_timeout_s: float) -> None:
        self.ports: dict[str, DeadManSwitchPort] = {
            v: p for v, p in venues.items() if isinstance(p, DeadManSwitchPort)}
        self.timeout_s = timeout_s
        self.interval = heartbeat_interval(tick_seconds)
        self.call_timeout_s = call_timeout_s
        self.status: dict[str, DeadManSwitchStatus] = {}
        self.errors: dict[str, str] = {}
        self.last_beat: dict[str, float] = {}        # time.monotonic() of the last successful arm
        self._task: asyncio.Future[list[None]] | None = None
        self.disarmed = False
        self.held: float | None = None               # the short countdown left armed after an e-stop
        self.left_armed: dict[str, str] = {}         # venue -> why the switch was left on at exit

    async def arm(self) -> None:
        """Arm every venue now (the session does this before its first order)."""
        await asyncio.gather(*(self._arm(v) for v in self.ports))

    def beat(self) -> None:
        """Start a re-arm in the background unless one is still running (never blocks the tick)."""
        if self.disarmed or self.held is not None or (self._task is not None and not self._task.done()):
            return
        now = time.monotonic()
        due = [v for v in self.ports if now - self.last_beat.get(v, -1e9) >= self.interval * 0.95]
        if due:
            self._task = asyncio.ensure_future(asyncio.gather(*(self._arm(v) for v in due)))

    def hold(self, short_s: float) -> asyncio.Future[list[None]] | None:
        """Emergency stop: re-arm every venue's countdown at ``short_s`` now (in the background) and
        stop re-arming, so the venue cancels by itself what our cancels may have missed."""
        self.held = short_s
        if not self.ports:
            return None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.ensure_future(asyncio.gather(*(self._arm(v, short_s) for v in self.ports)))
        return self._task

    def resume(self) -> None:
        """The session was reset: heartbeats re-arm with the normal countdown again."""
        if self.held is not None:
            self.held = None
            for venue in self.ports:
                self.last_beat.pop(venue, None)

    async def _arm(self, venue: str, timeout_s: float | None = None) -> None:
        seconds = self.timeout_s if timeout_s is None else timeout_s
        try:
            st = await asyncio.wait_for(self.ports[venue].arm_dead_man_switch(seconds), self.call_timeout_s)
        except asyncio.TimeoutError:
            self.errors[venue] = f"re-arm got no answer within {self.call_timeout_s:g} s"
        except Exception as exc:      # a failed re-arm is shown; the session keeps running
            self.errors[venue] = str(exc) or type(exc).__name__
        else:
            self.status[venue] = st
            self.errors.pop(venue, None)
            if st.armed:
                self.last_beat[venue] = time.monotonic()

    async def disarm(self) -> None:
        """Switch every countdown off (a clean stop with nothing left open; a crash never gets here,
        which is the point)."""
        await self.release({v: "" for v in self.ports}, short_s=None)

    async def release(self, may_remain: dict[str, str], short_s: float | None) -> None:
        """The session is stopping. ``may_remain``: venue -> "" when no order of ours can be open there
        (disarmed), or why orders may remain (left armed, on ``short_s`` when given, so the venue
        cancels them soon; a crash-like exit is no worse than a crash)."""
        self.disarmed = True
        if self._task is not None and not self._task.done():
            if self.held is None:
                self._task.cancel()
            else:                                  # the e-stop's short re-arm: let it land first
                await asyncio.gather(self._task, return_exceptions=True)
        off = [v for v in self.ports if not may_remain.get(v)]
        keep = [v for v in self.ports if may_remain.get(v)]
        results = await asyncio.gather(
            *(asyncio.wait_for(self.ports[v].disarm_dead_man_switch(), self.call_timeout_s) for v in off),
            return_exceptions=True)
        for venue, res in zip(off, results):
            if isinstance(res, BaseException):
                self.errors[venue] = f"disarm failed: {res or type(res).__name__} (the countdown will run out)"
            else:
                self.status[venue] = res
        if keep and short_s is not None and self.held is None:
            await asyncio.gather(*(self._arm(v, short_s) for v in keep))
        for venue in keep:
            self.left_armed[venue] = may_remain[venue]

    def describe(self) -> dict[str, str]:
        """venue -> one line for the dashboard/CLI: armed with what timeout and coverage, or why not."""
        out: dict[str, str] = {}
        now = time.monotonic()
        for venue in self.ports:
            st = self.status.get(venue)
            if venue in self.errors:
                out[venue] = f"NOT ARMED: {self.errors[venue]}"
            elif st is None:
                out[venue] = "not armed yet"
            elif st.armed and venue in self.left_armed:
                out[venue] = (f"LEFT ARMED {st.timeout_s:g} s at exit: {self.left_armed[venue]}; the venue cancels "
                              f"{', '.join(st.covered)} when it runs out")
                continue
            elif st.armed and self.held is not None:
                out[venue] = (f"armed {st.timeout_s:g} s after the emergency stop, not re-armed until a reset: "
                              f"{', '.join(st.covered)} are cancelled by the venue if ours were not")
                continue
            elif st.armed:
                age = now - self.last_beat.get(venue, now)
                text = f"armed {st.timeout_s:g} s (beat {age:.1f} s ago): {', '.join(st.covered)}"
                out[venue] = text + (f"; not covered: {'; '.join(st.uncovered)}" if st.uncovered else "")
            else:
                out[venue] = ("off" if self.disarmed else "unavailable") + (
                    f": {'; '.join(st.uncovered)}" if st.uncovered else "")
        return out
