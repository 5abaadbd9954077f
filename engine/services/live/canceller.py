"""One venue's part of an emergency stop: cancel everything, prove it by reading back, retry what the
venue refused for a reason that passes, all within the venue's budget.

A pass is the adapter's cancel-all (every symbol of every account) followed by its read-back of the
open orders (the whole account, or each category, as the venue needs). The venue counts as DONE only
when a read-back answered and listed nothing: an unreadable answer (an HTML page with status 200, cut
JSON) is an error, never "nothing open". A pass that failed for a reason that passes — a 5xx, a 429
(its Retry-After is honoured), a dropped connection, a garbled answer — is repeated with backoff as
long as another pass fits in the budget; a reason that does not pass (keys, permissions, the clock)
ends it. The last error is the report.

Orders that were in flight at the press, or whose outcome was being looked up, are settled alongside:
each is awaited (its request already left: cancelling our wait would not recall it), and whatever it
opened — OPEN, or UNKNOWN as OKX and Bybit acknowledge — is cancelled by its client order id; a submit
that failed uncertainly is cancelled by client id too (a "not found" means it never became an open
order). Once they are settled another pass verifies the venue after them.

The caller (`EmergencyStop`) enforces the hard deadline around `run`; the canceller only decides
when trying again is pointless.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.domain.venue_ports import CancelAllResult, CexVenuePort, OrderRequest, OrderStatus, VenueError, \
    VenueErrorKind, VenueOrder
from engine.services.live.order_gate import UNCERTAIN
from engine.services.live.outcome_resolver import is_gone

#: Failures no retry inside an e-stop can fix.
PERMANENT = frozenset({VenueErrorKind.AUTH, VenueErrorKind.PERMISSION, VenueErrorKind.CLOCK, VenueErrorKind.CONFIG})


@dataclass(frozen=True, slots=True)
class RetryPacing:
    first_delay_s: float = 0.05
    max_delay_s: float = 1.0

    def delay(self, attempt: int) -> float:
        return min(self.first_delay_s * (2 ** max(0, attempt - 1)), self.max_delay_s)


@dataclass
class CancelOutcome:
    """What the canceller concluded (the caller maps it to the venue's progress)."""

    verified: bool = False
    canceled: int = 0
    passes: int = 0
    error: str = ""                  # the last pass's errors (or why no further pass was tried)
    inflight_error: str = ""         # an in-flight order that could not be settled


Report = Callable[[str], None]       # a progress line while the canceller works (retries)


class VenueCanceller:
    def __init__(self, venue: str, port: CexVenuePort, deadline: float, *, pacing: RetryPacing = RetryPacing(),
                 report: Report | None = None) -> None:
        """``deadline``: time.perf_counter() by which this venue must be finished."""
        self.venue = venue
        self.port = port
        self.deadline = deadline
        self.pacing = pacing
        self.report = report
        self.outcome = CancelOutcome()
        self._attempt_s = 0.0          # how long the slowest pass took (does another one fit?)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    async def run(self, inflight: Sequence[tuple[asyncio.Task, OrderRequest]] = (),
                  uncertain: Sequence[OrderRequest] = ()) -> CancelOutcome:
        settle = asyncio.ensure_future(self._settle_inflight(inflight, uncertain)) if inflight or uncertain else None
        await self._sweep_until_verified()
        if settle is not None:
            await settle
            # What the in-flight orders opened was cancelled by id; read the venue back after them.
            if self.outcome.verified or not self.outcome.error:
                self.outcome.verified = False
                await self._sweep_until_verified()
        return self.outcome

    # ---------------------------------------------------------------- passes
    async def _pass(self) -> CancelAllResult:
        try:
            return await self.port.cancel_all_orders()
        except VenueError as exc:            # an adapter that raises instead of collecting
            result = CancelAllResult(self.venue)
            result.fail("*", exc)
            return result

    async def _sweep_until_verified(self) -> None:
        out = self.outcome
        attempt = 0
        while True:
            attempt += 1
            out.passes += 1
            t0 = time.perf_counter()
            result = await self._pass()
            self._attempt_s = max(self._attempt_s, time.perf_counter() - t0)
            out.canceled += len(result.canceled)
            if result.verified:
                out.verified = True
                # A cancel whose answer was garbled but whose read-back proves the venue flat is done;
                # say what happened on the way.
                out.error = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
                return
            out.error = "; ".join(f"{k}: {v}" for k, v in result.errors.items()) or "not verified"
            permanent = sorted({kind.value for kind in result.kinds.values() if kind in PERMANENT})
            if permanent:
                out.error += f" (not retried: {', '.join(permanent)})"
                return
            wait = self.pacing.delay(attempt)
            if result.retry_after_s is not None:
                wait = max(wait, result.retry_after_s)
            if self.left() < wait + self._attempt_s:
                if result.retry_after_s is not None and self.left() < result.retry_after_s:
                    out.error += (f" (the venue asks to wait {result.retry_after_s:g} s, longer than the "
                                  f"{max(self.left(), 0.0):.1f} s left of the budget)")
                else:
                    out.error += f" (after {attempt} pass(es); no time left in the budget for another)"
                return
            if self.report is not None:
                self.report(f"pass {attempt} not confirmed ({out.error}); retrying in {wait:.2f} s")
            await asyncio.sleep(wait)

    # ---------------------------------------------------------------- orders in flight at the press
    async def _settle_inflight(self, inflight: Sequence[tuple[asyncio.Task, OrderRequest]],
                               uncertain: Sequence[OrderRequest]) -> None:
        problems: list[str] = []
        for task, request in inflight:
            try:
                # Shielded: our deadline must not turn a submit into an unknown outcome.
                order: VenueOrder | None = await asyncio.shield(task)
            except VenueError as exc:
                if exc.kind is VenueErrorKind.NOT_SENT or exc.kind not in UNCERTAIN:
                    continue                  # dropped before it left, or refused by the venue: nothing opened
                await self._cancel_one(request.symbol, request.client_order_id, None, problems)
                continue
            except Exception:                 # noqa: BLE001 - the submit failed: nothing was opened
                continue
            if order is None or order.status not in (OrderStatus.OPEN, OrderStatus.UNKNOWN):
                continue
            await self._cancel_one(order.symbol, order.client_order_id, order.order_id, problems)
        for request in uncertain:
            await self._cancel_one(request.symbol, request.client_order_id, None, problems)
        self.outcome.inflight_error = "; ".join(problems)

    async def _cancel_one(self, symbol: str, client_order_id: str | None, order_id: str | None,
                          problems: list[str]) -> None:
        """Cancel one order by its ids, retrying transient failures within the budget; an order no
        longer open (filled, cancelled, never booked) is fine."""
        attempt = 0
        while True:
            attempt += 1
            t0 = time.perf_counter()
            try:
                await self.port.cancel_order(symbol, order_id=order_id, client_order_id=client_order_id)
            except VenueError as exc:
                self._attempt_s = max(self._attempt_s, time.perf_counter() - t0)
                if is_gone(exc):
                    return
                wait = max(self.pacing.delay(attempt), exc.retry_after_s or 0.0)
                if exc.kind in PERMANENT or self.left() < wait + self._attempt_s:
                    problems.append(f"order {client_order_id or order_id} ({symbol}) in flight at the press: {exc}")
                    return
                await asyncio.sleep(wait)
                continue
            self.outcome.canceled += 1
            return
