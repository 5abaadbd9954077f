"""Keeps the venues' exchange-side cancel-after (dead-man switch) armed while a live session runs.

Each heartbeat re-arms the countdown on every venue that offers one; if the workstation
crashes or loses its network, the heartbeats stop and the venue cancels the open orders by itself
when the countdown runs out. Venues without one (Binance spot, Bybit over REST) are listed as
uncovered so the operator knows what is protected and what is not.

Heartbeats never hold up a trading tick: the session starts one as a background task and skips a
beat while the previous one is still out. Re-arms are spaced at least ``min_interval_s`` apart
(OKX allows one cancel-all-after per second) and each call has its own timeout.
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

    async def arm(self) -> None:
        """Arm every venue now (the session does this before its first order)."""
        await asyncio.gather(*(self._arm(v) for v in self.ports))

    def beat(self) -> None:
        """Start a re-arm in the background unless one is still running (never blocks the tick)."""
        if self.disarmed or (self._task is not None and not self._task.done()):
            return
        now = time.monotonic()
        due = [v for v in self.ports if now - self.last_beat.get(v, -1e9) >= self.interval * 0.95]
        if due:
            self._task = asyncio.ensure_future(asyncio.gather(*(self._arm(v) for v in due)))

    async def _arm(self, venue: str) -> None:
        try:
            st = await asyncio.wait_for(self.ports[venue].arm_dead_man_switch(self.timeout_s), self.call_timeout_s)
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
        """Switch the countdowns off (a clean stop; a crash never gets here, which is the point)."""
        self.disarmed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        results = await asyncio.gather(
            *(asyncio.wait_for(p.disarm_dead_man_switch(), self.call_timeout_s) for p in self.ports.values()),
            return_exceptions=True)
        for venue, res in zip(self.ports, results):
            if isinstance(res, BaseException):
                self.errors[venue] = f"disarm failed: {res or type(res).__name__} (the countdown will run out)"
            else:
                self.status[venue] = res

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
            elif st.armed:
                age = now - self.last_beat.get(venue, now)
                text = f"armed {st.timeout_s:g} s (beat {age:.1f} s ago): {', '.join(st.covered)}"
                out[venue] = text + (f"; not covered: {'; '.join(st.uncovered)}" if st.uncovered else "")
            else:
                out[venue] = ("off" if self.disarmed else "unavailable") + (
                    f": {'; '.join(st.uncovered)}" if st.uncovered else "")
        return out
