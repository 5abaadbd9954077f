"""Emergency stop (DESIGN §7): HALTED at once, then cancel-all on every venue concurrently.

Each venue gets its own task and its own deadline, so a hung venue is reported at its timeout and
never delays the others: the deadline is enforced with ``asyncio.wait`` and the late task is
cancelled *without being awaited* (``asyncio.wait_for`` would wait for the cancellation to finish,
which a stuck connection can drag out). Progress is reported per venue as it happens (the dashboard
and the headless CLI show it). Flatten is deliberately *not* part of this: it is a separate,
confirmed action.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Mapping

from engine.domain.venue_ports import CexVenuePort, OrderStatus, VenueError, VenueErrorKind
from engine.services.live.order_gate import OrderGate
from engine.services.live.state import TradingStateMachine


class CancelStatus(str, Enum):
    PENDING = "pending"
    CANCELLING = "cancelling"
    DONE = "done"            # the venue acknowledged and no managed order is left open
    FAILED = "failed"        # the venue refused or answered an error (message says which)
    TIMEOUT = "timeout"      # no answer within the venue's timeout: open orders may remain


@dataclass(slots=True)
class VenueCancelProgress:
    venue: str
    status: CancelStatus = CancelStatus.PENDING
    canceled: int = 0
    error: str = ""
    elapsed_ms: float = 0.0          # press -> this venue finished (done, failed or timed out)

    def describe(self) -> str:
        text = f"{self.venue}: {self.status.value.upper()}"
        if self.status is CancelStatus.DONE:
            text += f", {self.canceled} order(s) cancelled"
        if self.status in (CancelStatus.DONE, CancelStatus.FAILED, CancelStatus.TIMEOUT):
            text += f" in {self.elapsed_ms:.0f} ms"
        return text + (f" ({self.error})" if self.error else "")


@dataclass(slots=True)
class EmergencyStopReport:
    pressed_at: float                         # time.time() of the press
    halted_after_ms: float                    # press -> state HALTED
    finished_after_ms: float = 0.0            # press -> every venue done, failed or timed out
    venues: dict[str, VenueCancelProgress] = field(default_factory=dict)
    note: str = ""

    @property
    def all_cancelled(self) -> bool:
        return all(p.status is CancelStatus.DONE for p in self.venues.values())


class EmergencyStop:
    def __init__(self, state: TradingStateMachine, venues: Mapping[str, CexVenuePort], gate: OrderGate | None,
                 timeout_seconds: float,
                 on_progress: Callable[[VenueCancelProgress], None] | None = None) -> None:
        if not timeout_seconds > 0:
            raise ValueError(f"cancel timeout must be positive, got {timeout_seconds!r}")
        self.state = state
        self.venues = venues
        self.gate = gate
        self.timeout = timeout_seconds
        self.on_progress = on_progress
        self._pressed_at: tuple[float, float] | None = None      # (perf_counter, time.time) of the first press
        self._inflight: dict[str, list[asyncio.Task]] = {}       # order submissions in flight at that press

    def halt_now(self, reason: str) -> tuple[float, float]:
        """The synchronous half of a press: HALTED before anything awaits.

        Returns (wall time of the press, press -> HALTED ms). The press time is remembered so that a
        cancel-all started a moment later (``press``) still measures from the operator's press.
        """
        t0 = time.perf_counter()
        wall = time.time()
        self.state.halt(reason)
        halted = time.perf_counter()
        if self._pressed_at is None:
            self._pressed_at = (t0, wall)
            # Snapshot now: a submission that lands while the cancel-all runs leaves the gate's set
            # before the cancel-all returns, and must still be waited for and cancelled.
            self._inflight = {v: self.gate.inflight_tasks(v) for v in self.venues} if self.gate is not None else {}
        return wall, (halted - t0) * 1000.0

    async def press(self, reason: str = "operator emergency stop") -> EmergencyStopReport:
        t_call = time.perf_counter()
        _, halted_ms = self.halt_now(reason)
        t0, wall = self._pressed_at if self._pressed_at is not None else (t_call, time.time())
        inflight, self._inflight = self._inflight, {}
        self._pressed_at = None
        if t0 < t_call:                         # halted earlier by halt_now(): report from that press
            halted_ms = self._halted_ms_since(t0)
        report = EmergencyStopReport(wall, halted_ms)
        report.venues = {v: VenueCancelProgress(v) for v in self.venues}
        if not self.venues:
            report.note = "no venue orders to cancel (paper session: fills are simulated)"
        for p in report.venues.values():
            self._emit(p)
        await asyncio.gather(*(self._cancel_venue(v, report.venues[v], t0, inflight.get(v, []))
                               for v in self.venues))
        report.finished_after_ms = (time.perf_counter() - t0) * 1000.0
        return report

    def _halted_ms_since(self, t0: float) -> float:
        for change in reversed(self.state.history):
            if change.current.value == "HALTED":
                return max(0.0, (change.monotonic - t0) * 1000.0)
        return 0.0

    async def _cancel_venue(self, venue: str, progress: VenueCancelProgress, t0: float,
                            inflight: list[asyncio.Task]) -> None:
        progress.status = CancelStatus.CANCELLING
        self._emit(progress)
        remaining = self.timeout - (time.perf_counter() - t0)
        task = asyncio.ensure_future(self._cancel_all(venue, progress, inflight))
        done, _ = await asyncio.wait({task}, timeout=max(remaining, 0.0))
        if not done:
            task.cancel()                     # not awaited: a stuck request must not hold the report
            task.add_done_callback(_swallow)
            progress.status = CancelStatus.TIMEOUT
            progress.error = f"no answer within {self.timeout:g} s: open orders may remain"
        else:
            exc = task.exception()
            if exc is None:
                progress.status = CancelStatus.DONE if not progress.error else CancelStatus.FAILED
            elif isinstance(exc, VenueError):
                progress.status = CancelStatus.FAILED
                progress.error = str(exc)
            else:                             # an adapter bug must not stop the other venues' cancels
                progress.status = CancelStatus.FAILED
                progress.error = f"{type(exc).__name__}: {exc}"
        progress.elapsed_ms = (time.perf_counter() - t0) * 1000.0
        self._emit(progress)

    async def _cancel_all(self, venue: str, progress: VenueCancelProgress, inflight: list[asyncio.Task]) -> None:
        port = self.venues[venue]
        result = await port.cancel_all_orders()
        progress.canceled = len(result.canceled)
        if result.errors:
            progress.error = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
        # Orders in flight when the stop was pressed may land after the cancel-all: wait for them
        # (shielded: our timeout must not turn a submit into an unknown outcome) and cancel whatever
        # they left open.
        for task in inflight:
            try:
                order = await asyncio.shield(task)
            except Exception:              # the submit failed: nothing was opened
                continue
            if order.status is not OrderStatus.OPEN:
                continue
            try:
                await port.cancel_order(order.symbol, order_id=order.order_id, client_order_id=order.client_order_id)
            except VenueError as exc:
                if exc.kind in (VenueErrorKind.NOT_FOUND, VenueErrorKind.REJECTED):
                    continue               # already gone: the cancel-all got it, or it filled
                raise
            progress.canceled += 1

    def _emit(self, progress: VenueCancelProgress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)


def _swallow(task: asyncio.Task) -> None:
    """Retrieve a cancelled/failed background task's outcome so asyncio does not log it."""
    if not task.cancelled():
        task.exception()
