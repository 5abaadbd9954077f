"""Emergency stop: HALTED at once, then cancel-all on every venue concurrently.

A press is one synchronous call: the trading state is HALTED inside it, before it returns and before
anything awaits, so no instruction can reach a venue after the operator's press (every order passes
the OrderGate, which checks the state right before it sends). The cancel-all then runs as a task.
``LiveTradingService.emergency_stop`` presses every session at once and returns an `EStopHandle`:
the halt latency at once, ``await handle.done`` for the per-session reports.

Each venue gets its own task and its own budget (`VenueCanceller`: cancel-all, read-back, retries on
5xx/429/network within the budget, in-flight orders settled), so a hung venue is reported at its
deadline and never delays the others: the deadline is enforced with ``asyncio.wait`` and the late task
is cancelled *without being awaited* (``asyncio.wait_for`` would wait for the cancellation to finish,
which a stuck connection can drag out). Nothing here touches the journal or waits for a listener: a
listener's failure is logged and the stop goes on. Progress is reported per venue as it happens (the
dashboard and the headless CLI show it). Flatten is deliberately *not* part of this: it is a
separate, confirmed action.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import partial
from typing import Protocol

from engine.domain.venue_ports import CexVenuePort, OrderRequest, VenueError
from engine.services.live.canceller import RetryPacing, VenueCanceller
from engine.services.live.order_gate import OrderGate
from engine.services.live.state import TradingStateMachine


class CancelStatus(str, Enum):
    PENDING = "pending"
    CANCELLING = "cancelling"
    DONE = "done"            # a read-back after the cancels found no open order on the venue
    FAILED = "failed"        # the venue kept refusing, erred or answered unreadably within its budget (says which)
    TIMEOUT = "timeout"      # no confirmation within the venue's budget: open orders may remain


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


ProgressListener = Callable[[VenueCancelProgress], None]
#: (request id of the session, a copy of one venue's progress at that moment)
SessionProgressListener = Callable[[str, VenueCancelProgress], None]
log = logging.getLogger(__name__)


class EmergencyStop:
    """One session's emergency stop: its trading state, its venues and its order gate."""

    def __init__(self, state: TradingStateMachine, venues: Mapping[str, CexVenuePort], gate: OrderGate | None,
                 timeout_seconds: float | Mapping[str, float], listeners: Sequence[ProgressListener] = (),
                 pacing: RetryPacing = RetryPacing()) -> None:
        """``timeout_seconds``: each venue's budget (list -> cancel -> verify, with retries), one for
        all or per venue. ``listeners`` hear every venue's progress of every press (a copy per report)."""
        budgets = dict(timeout_seconds) if isinstance(timeout_seconds, Mapping) else \
            {v: timeout_seconds for v in venues}
        for venue in venues:
            budget = budgets.get(venue)
            if budget is None or not budget > 0:
                raise ValueError(f"cancel budget of {venue} must be positive, got {budget!r}")
        self.state = state
        self.venues = venues
        self.gate = gate
        self.budgets = budgets
        self.pacing = pacing
        self.listeners = tuple(listeners)
        self.last_halted_ms = 0.0             # press -> HALTED of the last press
        self.last_halted_at = 0.0             # time.perf_counter() when the last press took effect

    @property
    def timeout(self) -> float:
        """The longest venue budget (what a caller waits at most)."""
        return max(self.budgets.values(), default=0.0)

    def press(self, reason: str = "operator emergency stop",
              listeners: Sequence[ProgressListener] = ()) -> asyncio.Future[EmergencyStopReport]:
        """HALT now, synchronously, then cancel every open order on every venue in the background.

        The state is HALTED before this returns; the returned future resolves to the report when every
        venue is done, failed or timed out. ``listeners`` hear this press's progress (after the
        stop's own listeners), starting with every venue PENDING before this returns.
        """
        t0 = time.perf_counter()
        wall = time.time()
        change = self.state.halt(reason)
        halted_at = change.monotonic if change is not None else time.perf_counter()
        # Snapshot now: a submission that lands while the cancel-all runs leaves the gate's set
        # before the cancel-all returns, and must still be waited for and cancelled. One whose request
        # has not left yet (queued behind ccxt's rate limiter) never will: the state is HALTED, and
        # the adapter asks it right before the request would leave.
        inflight = {v: self.gate.inflight_requests(v, left_only=True) for v in self.venues} \
            if self.gate is not None else {}
        uncertain = {v: self.gate.uncertain_orders(v) for v in self.venues} if self.gate is not None else {}
        report = EmergencyStopReport(wall, max(0.0, (halted_at - t0) * 1000.0))
        self.last_halted_ms = report.halted_after_ms
        self.last_halted_at = halted_at
        report.venues = {v: VenueCancelProgress(v) for v in self.venues}
        if not self.venues:
            report.note = "no venue orders to cancel (paper session: fills are simulated)"
        hear = (*self.listeners, *listeners)
        for p in report.venues.values():
            _emit(hear, p)
        return asyncio.ensure_future(self._cancel_everything(report, t0, inflight, uncertain, hear))

    async def _cancel_everything(self, report: EmergencyStopReport, t0: float,
                                 inflight: dict[str, list[tuple[asyncio.Task, OrderRequest]]],
                                 uncertain: dict[str, list[OrderRequest]],
                                 hear: Sequence[ProgressListener]) -> EmergencyStopReport:
        await asyncio.gather(*(self._cancel_venue(v, report.venues[v], t0, inflight.get(v, []), uncertain.get(v, []),
                                                  hear) for v in self.venues))
        report.finished_after_ms = (time.perf_counter() - t0) * 1000.0
        return report

    async def _cancel_venue(self, venue: str, progress: VenueCancelProgress, t0: float,
                            inflight: list[tuple[asyncio.Task, OrderRequest]], uncertain: list[OrderRequest],
                            hear: Sequence[ProgressListener]) -> None:
        progress.status = CancelStatus.CANCELLING
        _emit(hear, progress)
        budget = self.budgets[venue]
        deadline = t0 + budget

        def retrying(line: str) -> None:
            progress.error = line
            _emit(hear, progress)

        canceller = VenueCanceller(venue, self.venues[venue], deadline, pacing=self.pacing, report=retrying)
        task = asyncio.ensure_future(canceller.run(inflight, uncertain))
        done, _ = await asyncio.wait({task}, timeout=max(deadline - time.perf_counter(), 0.0))
        out = canceller.outcome
        progress.canceled = out.canceled
        if not done:
            task.cancel()                     # not awaited: a stuck request must not hold the report
            task.add_done_callback(_swallow)
            progress.status = CancelStatus.TIMEOUT
            detail = f"; last: {out.error}" if out.error and out.passes > 1 else ""
            progress.error = f"no confirmation within {budget:g} s: open orders may remain{detail}"
        else:
            exc = task.exception()
            if exc is not None:               # an adapter bug must not stop the other venues' cancels
                progress.status = CancelStatus.FAILED
                progress.error = str(exc) if isinstance(exc, VenueError) else f"{type(exc).__name__}: {exc}"
            elif out.verified and not out.inflight_error:
                progress.status = CancelStatus.DONE
                progress.error = out.error    # what went wrong on the way, if anything (the read-back is clean)
            else:
                progress.status = CancelStatus.FAILED
                progress.error = "; ".join(e for e in (out.error, out.inflight_error) if e)
        progress.elapsed_ms = (time.perf_counter() - t0) * 1000.0
        _emit(hear, progress)


class StoppableSession(Protocol):
    """What an `EStopHandle` needs from a session."""

    @property
    def request_id(self) -> str: ...

    @property
    def halted_at(self) -> float:
        """time.perf_counter() when its last emergency stop took effect (the state became HALTED)."""
        ...

    def emergency_stop(self, reason: str,
                       on_progress: Sequence[ProgressListener] = ()) -> asyncio.Future[EmergencyStopReport]: ...


class EStopHandle:
    """One press of the emergency stop across every session it reached.

    Built by ``LiveTradingService.emergency_stop``, which has HALTED every running session before it
    returns the handle: ``halted_ms`` is the time from the press to the last of them HALTED. A
    session that was still starting at the press joins the handle the moment it is up (HALTED before
    its first tick), so ``done`` waits for those starts too. ``await handle.done`` gives the reports
    by request id; ``subscribers`` (given at construction, so no report can be missed) hear every
    venue's progress of this press as (request id, a copy of the progress).
    """

    def __init__(self, reason: str, subscribers: Sequence[SessionProgressListener] = (),
                 starts: Sequence[object] = ()) -> None:
        self.reason = reason
        self.pressed_at = time.time()
        self._t0 = time.perf_counter()
        self.halted_ms = 0.0
        self.finished_ms: float | None = None
        self.request_ids: list[str] = []
        self.reports: dict[str, EmergencyStopReport] = {}
        self.errors: dict[str, str] = {}
        self._subscribers = tuple(subscribers)
        self._starts = set(starts)              # session starts in flight at the press
        self._pending: dict[str, asyncio.Future[EmergencyStopReport]] = {}
        self._halted_at: list[float] = []
        self._done: asyncio.Future[dict[str, EmergencyStopReport]] = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> asyncio.Future[dict[str, EmergencyStopReport]]:
        """Resolves to {request id: report} when every reached session finished its cancel-all."""
        return self._done

    @property
    def waiting_for_starts(self) -> bool:
        return bool(self._starts)

    @property
    def all_cancelled(self) -> bool:
        return not self.errors and all(r.all_cancelled for r in self.reports.values())

    def stop(self, session: StoppableSession, reason: str | None = None) -> None:
        """Press ``session``'s stop as part of this handle (HALTED before this returns)."""
        rid = session.request_id
        self.request_ids.append(rid)
        try:
            future = session.emergency_stop(reason or self.reason, [partial(self._progress, rid)])
        except Exception as exc:              # a bug in one session must not spare the others
            log.exception("emergency stop of session %s failed", rid)
            self.errors[rid] = f"the press failed: {type(exc).__name__}: {exc}"
            return
        self._halted_at.append(session.halted_at)
        self._pending[rid] = future
        future.add_done_callback(partial(self._finished, rid))

    def halted(self) -> None:
        """Every session running at the press is HALTED: record the latency (press -> the last of
        their states HALTED, the same measure each session's report gives)."""
        self.halted_ms = max(((h - self._t0) * 1000.0 for h in self._halted_at), default=0.0)
        self._maybe_done()

    def start_ended(self, token: object) -> None:
        """A session start that was in flight at the press has ended (up and stopped, or failed)."""
        self._starts.discard(token)
        self._maybe_done()

    def awaits_start(self, token: object) -> bool:
        return token in self._starts

    def _progress(self, request_id: str, progress: VenueCancelProgress) -> None:
        for listener in self._subscribers:
            try:
                listener(request_id, replace(progress))
            except Exception:                 # a listener's bug must never hold up the e-stop
                log.exception("emergency-stop progress listener failed")

    def _finished(self, request_id: str, future: asyncio.Future[EmergencyStopReport]) -> None:
        if future.cancelled():
            self.errors[request_id] = "the cancel-all was cancelled (the app or command is shutting down)"
        elif future.exception() is not None:
            exc = future.exception()
            self.errors[request_id] = f"{type(exc).__name__}: {exc}"
        else:
            self.reports[request_id] = future.result()
        self._maybe_done()

    def _maybe_done(self) -> None:
        settled = len(self.reports) + sum(1 for rid in self.errors if rid in self._pending)
        if self._done.done() or self._starts or settled < len(self._pending):
            return
        self.finished_ms = (time.perf_counter() - self._t0) * 1000.0
        self._done.set_result(dict(self.reports))


def _emit(listeners: Sequence[ProgressListener], progress: VenueCancelProgress) -> None:
    for listener in listeners:
        try:
            listener(replace(progress))
        except Exception:                     # a view's bug must never hold up the e-stop
            log.exception("emergency-stop progress listener failed")


def _swallow(task: asyncio.Task) -> None:
    """Retrieve a cancelled/failed background task's outcome so asyncio does not log it."""
    if not task.cancelled():
        task.exception()
