"""The app's side of the LiveTradingService: one QObject the live dashboard and the always-visible
emergency-stop button share.

The service runs on the qasync loop; its hooks (``on_update`` per tick, state change and e-stop
progress, ``on_cancel_progress`` per venue during an emergency stop) are called on that same thread,
so they are forwarded as plain Qt signals. Every update carries the session's immutable
`SessionSnapshot`: the dashboard and the safety bar render snapshots only, never a session.

The emergency stop is one call: ``emergency_stop()`` calls the service's ``emergency_stop``, which
HALTS every session inside its own body (before a single await) and returns a handle; the concurrent
cancel-all runs on the loop and its per-venue progress arrives as ``cancel_progress`` signals. A
press while a session is still starting halts that session the moment it is up (the service does).
"""
from __future__ import annotations

import asyncio
import logging

import shiboken6
from PySide6.QtCore import QObject, Signal

from app.tasks import spawn
from app.view_models import CancelRow, EStopPress
from engine.config import load_config
from engine.services.live import (
    EStopHandle,
    FlattenPreview,
    FlattenReport,
    LiveSession,
    LiveStartRequest,
    LiveTradingService,
    SessionPhase,
    SessionSnapshot,
    VenueCancelProgress,
)
from engine.services.live.manual_orders import ManualOrder, ManualOrderResult, ManualQuote
from engine.services.run_params import build_run_params, data_requirements

log = logging.getLogger(__name__)

ESTOP_REASON = "operator emergency stop"


def _prewarm(service: LiveTradingService, request: LiveStartRequest) -> None:
    """Load the session's data seed once off the loop (the provider caches it on disk), so the same
    load inside ``service.start`` is a ~15 ms cache read. Any error is left for ``start`` to report
    with its own message."""
    overrides = dict(request.config_overrides)
    overrides.update({f"risk.{k}": v for k, v in request.risk_overrides.items()})
    if request.share_class is not None:
        overrides["share_class"] = request.share_class
    try:
        params = build_run_params(load_config(request.mode, cli_overrides=overrides), request.capital)
        service.provider.load(data_requirements(params))
    except Exception:
        log.debug("prewarm of %s failed; start() will report it", request.mode, exc_info=True)


class LiveController(QObject):
    #: (SessionSnapshot) a session changed: a tick, a state change, a phase change, e-stop progress
    session_updated = Signal(object)
    #: the list of sessions changed (started, stopped)
    sessions_changed = Signal()
    #: (CancelRow) one venue's cancel-all progress during an emergency stop
    cancel_progress = Signal(object)
    #: (EStopPress) the emergency stop was pressed: every session is HALTED already
    estop_pressed = Signal(object)
    #: (EStopPress) the cancel-all of that press finished (reports, or the error)
    estop_finished = Signal(object)
    #: (bool) at least one session is starting or not yet stopped (the config editor locks)
    active_changed = Signal(bool)

    def __init__(self, service: LiveTradingService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        service.on_update = self._on_update
        service.on_cancel_progress = self._on_cancel_progress
        self._starting = 0
        self._active = False
        self._snapshots: dict[str, SessionSnapshot] = {}
        self.last_press: EStopPress | None = None
        self.cancel_rows: dict[tuple[str, str], CancelRow] = {}
        self._estop_task: asyncio.Task | None = None

    # ---- the service --------------------------------------------------------------------------
    def snapshots(self) -> list[SessionSnapshot]:
        """The latest snapshot of every session, in start order."""
        return [self.snapshot(rid) for rid in self.service.sessions]

    def snapshot(self, request_id: str) -> SessionSnapshot:
        """The latest snapshot of one session (KeyError names the sessions there are)."""
        snap = self._snapshots.get(request_id)
        if snap is None:
            snap = self._snapshots[request_id] = self.service.session(request_id).snapshot()
        return snap

    def active_snapshots(self) -> list[SessionSnapshot]:
        return [s for s in self.snapshots() if s.active]

    @property
    def active(self) -> bool:
        return self._active

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self, request: LiveStartRequest) -> str:
        """Start a session; raises LiveStartError (message says why) when it cannot."""
        service = self.service
        self._starting += 1
        self._refresh_active()
        try:
            # start() loads the mode's config and its data seed synchronously (0.3-0.4 s on a cold
            # cache): warm the provider's cache in a thread first so the loop never stalls that long.
            await asyncio.to_thread(_prewarm, service, request)
            request_id = await service.start(request)
        except BaseException:
            self._starting -= 1
            self._refresh_active()
            raise
        self._starting -= 1
        self.sessions_changed.emit()
        self._refresh_active()
        self._publish(service.session(request_id))
        return request_id

    async def stop(self, request_id: str) -> None:
        """Stop trading (positions stay as they are; the dead-man switch is disarmed)."""
        await self.service.stop(request_id)
        self.sessions_changed.emit()
        self._refresh_active()

    async def aclose(self, *, cancel_open_orders: bool = False) -> None:
        """Stop every session and close the journals (app shutdown); ``cancel_open_orders`` cancels
        every session's open orders on its venues first (positions stay)."""
        await self.service.close(cancel_open_orders=cancel_open_orders)
        if shiboken6.isValid(self):          # the window may be gone by now (app quitting)
            self.sessions_changed.emit()
            self._refresh_active()

    def acknowledge_recovery(self, request_id: str) -> None:
        self.service.acknowledge_recovery(request_id)
        self._refresh_active()

    def reset(self, request_id: str, reason: str = "operator reset (confirmed in the dashboard)") -> None:
        """Leave HALTED/REDUCING for ACTIVE: only ever after the operator confirmed it."""
        self.service.reset(request_id, reason)

    async def preview_flatten(self, request_id: str) -> FlattenPreview:
        """Every step of the flatten and each on-chain transaction's pre-sign ticket, simulated now."""
        return await self.service.preview_flatten(request_id)

    async def flatten(self, request_id: str, preview: FlattenPreview) -> FlattenReport:
        """Execute exactly the previewed plan the operator confirmed (raises FlattenPreviewStale with
        the fresh preview when it moved, FlattenRefused when it is refused now)."""
        return await self.service.flatten(request_id, confirmed=True, preview=preview)

    async def cancel_pending_transactions(self, request_id: str) -> list:
        """Replace every pending transaction of the session's wallet by a same-nonce cancel (the
        caller has asked the operator first); returns each nonce's outcome."""
        return await self.service.cancel_pending_transactions(request_id)

    # ---- manual orders ------------------------------------------------------------------------
    def quote_manual_order(self, request_id: str, order: ManualOrder) -> ManualQuote:
        """Check and price the ticket for the confirmation (raises ManualOrderRefused with the reason)."""
        return self.service.quote_manual_order(request_id, order)

    async def manual_order(self, request_id: str, order: ManualOrder) -> ManualOrderResult:
        """Send a confirmed ticket (same checks, gate, journal and e-stop as strategy orders)."""
        return await self.service.manual_order(request_id, order)

    def close_position_order(self, request_id: str, venue: str, kind: str, asset: str) -> ManualOrder:
        return self.service.close_position_order(request_id, venue, kind, asset)

    # ---- emergency stop -----------------------------------------------------------------------
    def emergency_stop(self, source: str = "button") -> EStopPress:
        """HALT every session now (inside the service's call), then cancel every open order on every
        venue.

        Returns at once; ``estop_pressed`` is emitted before returning, per-venue progress follows
        as ``cancel_progress`` and the end as ``estop_finished``."""
        try:
            handle = self.service.emergency_stop(f"{ESTOP_REASON} ({source})")
        except Exception as exc:  # noqa: BLE001 - never the crash dialog instead of the stop
            log.exception("emergency stop: the service's press failed; halting every session directly")
            return self._press_failed(source, exc)
        targets = list(handle.request_ids)
        press = EStopPress(handle.pressed_at, handle.halted_ms, targets, source)
        if not targets:
            press.note = ("no session is starting or running: nothing to halt" if not self._starting else
                          "a session is starting: it will be HALTED the moment it is up")
        self.last_press = press
        self.cancel_rows = {}
        self.estop_pressed.emit(press)
        if not handle.done.done():
            self._estop_task = spawn(self._cancel_all(handle, press), name="emergency-stop")
        else:
            press.finished_ms = handle.finished_ms
            self.estop_finished.emit(press)
        return press

    def _press_failed(self, source: str, exc: Exception) -> EStopPress:
        """The service's press raised (a bug): HALT each session's state directly (its own stop), so
        the operator's press still stops trading and cancels, and say what failed."""
        import time

        halted: list[str] = []
        for rid, session in list(self.service.sessions.items()):
            try:
                session.emergency_stop(f"{ESTOP_REASON} ({source}, after an error)")
                halted.append(rid)
            except Exception:  # noqa: BLE001
                log.exception("emergency stop of session %s failed", rid)
                session.state.halt(f"{ESTOP_REASON} ({source}, after an error)")
        press = EStopPress(time.time(), 0.0, halted, source)
        press.error = f"the emergency stop raised {type(exc).__name__}: {exc}; every session was halted directly"
        self.last_press = press
        self.cancel_rows = {}
        self.estop_pressed.emit(press)
        self.estop_finished.emit(press)
        return press

    async def _cancel_all(self, handle: EStopHandle, press: EStopPress) -> None:
        try:
            press.reports = await handle.done
        except Exception as exc:  # noqa: BLE001 - the e-stop must always report, whatever broke
            press.error = f"{type(exc).__name__}: {exc}"
        press.error = press.error or "; ".join(f"{rid}: {e}" for rid, e in handle.errors.items())
        press.request_ids = list(handle.request_ids)       # with sessions that were starting at the press
        press.finished_ms = handle.finished_ms
        notes = [r.note for r in (press.reports or {}).values() if r.note]
        if notes and not press.note:
            press.note = "; ".join(sorted(set(notes)))
        self.estop_finished.emit(press)

    # ---- service hooks (called on the loop thread) ----------------------------------------------
    def _on_update(self, session: LiveSession) -> None:
        self._publish(session)
        self._refresh_active()

    def _publish(self, session: LiveSession) -> None:
        if not shiboken6.isValid(self):       # the window is gone (app quitting)
            return
        snap = self._snapshots[session.request_id] = session.snapshot()
        self.session_updated.emit(snap)

    def _on_cancel_progress(self, request_id: str, progress: VenueCancelProgress) -> None:
        row = CancelRow(request_id, progress.venue, progress.status.value, progress.canceled, progress.error,
                        progress.elapsed_ms)
        self.cancel_rows[(request_id, progress.venue)] = row
        self.cancel_progress.emit(row)

    def _refresh_active(self) -> None:
        active = self._starting > 0 or any(s.phase is not SessionPhase.STOPPED for s in self.service.sessions.values())
        if active != self._active:
            self._active = active
            self.active_changed.emit(active)
