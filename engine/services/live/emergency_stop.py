"""Emergency stop (DESIGN §7): HALTED at once, then cancel-all on every venue concurrently.

Each venue gets its own task and its own timeout, so a hung venue is reported at its timeout and
never delays the others; progress is reported per venue as it happens (the dashboard shows it).
Flatten is deliberately *not* part of this: it is a separate, confirmed action.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Mapping

from engine.domain.venue_ports import CexVenuePort, OrderStatus, VenueError
from engine.services.live.order_gate import OrderGate
from engine.services.live.state import TradingStateMachine


class CancelStatus(str, Enum):
    PENDING = "pending"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    TIMEOUT = "timeout"


@dataclass(slots=True)
class VenueCancelProgress:
    venue: str
    status: CancelStatus = CancelStatus.PENDING
    canceled: int = 0
    error: str = ""
    elapsed_ms: float = 0.0


@dataclass(slots=True)
class EmergencyStopReport:
    pressed_at: float                         # time.time() of the press
    halted_after_ms: float                    # press -> state HALTED
    finished_after_ms: float = 0.0            # press -> every venue done, failed or timed out
    venues: dict[str, VenueCancelProgress] = field(default_factory=dict)

    @property
    def all_cancelled(self) -> bool:
        return all(p.status is CancelStatus.DONE for p in self.venues.values())


class EmergencyStop:
    def __init__(self, state: TradingStateMachine, venues: Mapping[str, CexVenuePort], gate: OrderGate | None,
                 timeout_seconds: float,
                 on_progress: Callable[[VenueCancelProgress], None] | None = None) -> None:
        self.state = state
        self.venues = venues
        self.gate = gate
        self.timeout = timeout_seconds
        self.on_progress = on_progress

    def halt_now(self, reason: str) -> tuple[float, float]:
        """The synchronous half of a press: returns (wall time, press->HALTED ms)."""
        t0 = time.perf_counter()
        wall = time.time()
        self.state.halt(reason)
        return wall, (time.perf_counter() - t0) * 1000.0

    async def press(self, reason: str = "operator emergency stop") -> EmergencyStopReport:
        t0 = time.perf_counter()
        wall, halted_ms = self.halt_now(reason)
        report = EmergencyStopReport(wall, halted_ms)
        report.venues = {v: VenueCancelProgress(v) for v in self.venues}
        for p in report.venues.values():
            self._emit(p)
        await asyncio.gather(*(self._cancel_venue(v, report.venues[v], t0) for v in self.venues))
        report.finished_after_ms = (time.perf_counter() - t0) * 1000.0
        return report

    async def _cancel_venue(self, venue: str, progress: VenueCancelProgress, t0: float) -> None:
        progress.status = CancelStatus.CANCELLING
        self._emit(progress)
        try:
            await asyncio.wait_for(self._cancel_all(venue, progress), self.timeout)
        except asyncio.TimeoutError:
            progress.status = CancelStatus.TIMEOUT
            progress.error = f"no answer within {self.timeout:g} s"
        except VenueError as exc:
            progress.status = CancelStatus.FAILED
            progress.error = str(exc)
        except Exception as exc:            # an adapter bug must not stop the other venues' cancels
            progress.status = CancelStatus.FAILED
            progress.error = f"{type(exc).__name__}: {exc}"
        else:
            progress.status = CancelStatus.DONE if not progress.error else CancelStatus.FAILED
        progress.elapsed_ms = (time.perf_counter() - t0) * 1000.0
        self._emit(progress)

    async def _cancel_all(self, venue: str, progress: VenueCancelProgress) -> None:
        port = self.venues[venue]
        result = await port.cancel_all_orders()
        progress.canceled = len(result.canceled)
        if result.errors:
            progress.error = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
        # Orders in flight when the stop was pressed may land after the cancel-all: wait for them
        # and cancel whatever they opened.
        if self.gate is not None:
            for task in self.gate.inflight_tasks(venue):
                try:
                    order = await task
                except Exception:          # the submit failed: nothing was opened
                    continue
                if order.status is OrderStatus.OPEN:
                    await port.cancel_order(order.symbol, order_id=order.order_id,
                                            client_order_id=order.client_order_id)
                    progress.canceled += 1

    def _emit(self, progress: VenueCancelProgress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)
