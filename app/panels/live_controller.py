"""The app's side of the LiveTradingService: one QObject the live dashboard and the always-visible
emergency-stop button share (DESIGN §7, §10).

The service runs on the qasync loop; its hooks (``on_update`` per tick and state change,
``on_cancel_progress`` per venue during an emergency stop) are called on that same thread, so they
are forwarded as plain Qt signals. Values that the service mutates later (cancel progress) are copied
at the moment they are reported.

The emergency stop is one call: ``emergency_stop()`` calls the service's ``emergency_stop``, which
HALTS every session inside its own body (before a single await) and returns a handle; the concurrent
cancel-all runs on the loop and its per-venue progress arrives as ``cancel_progress`` signals. A
press while a session is still starting halts that session the moment it is up (the service does).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import shiboken6
from PySide6.QtCore import QObject, Signal

from app.panels.venue_wiring import VenueWiring, spawn
from engine.config import load_config
from engine.services.live import (
    EmergencyStopReport,
    EStopHandle,
    FlattenReport,
    LiveSession,
    LiveStartRequest,
    LiveTradingService,
    SessionPhase,
    VenueCancelProgress,
)
from engine.services.run_params import build_run_params, data_requirements

log = logging.getLogger(__name__)

ESTOP_REASON = "operator emergency stop"


@dataclass(frozen=True)
class CancelRow:
    """One venue's cancel-all progress at one moment (a copy: the service keeps mutating its own)."""

    request_id: str
    venue: str
    status: str               # pending | cancelling | done | failed | timeout
    canceled: int
    error: str
    elapsed_ms: float


@dataclass
class EStopPress:
    """What one press did, synchronously: which sessions are HALTED and how long that took."""

    at: float                                   # time.time() of the press
    halted_ms: float                            # press -> every session HALTED
    request_ids: list[str] = field(default_factory=list)
    source: str = "button"
    note: str = ""
    reports: dict[str, EmergencyStopReport] | None = None   # filled when the cancel-all finished
    error: str = ""
    finished_ms: float | None = None            # press -> every venue done, failed or timed out


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
    #: (request id) a session changed: a tick, a state change, a phase change
    session_updated = Signal(str)
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

    def __init__(self, wiring: VenueWiring, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.wiring = wiring
        self._starting = 0
        self._active = False
        self.last_press: EStopPress | None = None
        self.cancel_rows: dict[tuple[str, str], CancelRow] = {}
        self._estop_task: asyncio.Task | None = None

    # ---- the service --------------------------------------------------------------------------
    @property
    def service(self) -> LiveTradingService | None:
        """The service if it exists (never built just to look at it)."""
        return self.wiring.existing_live_service()

    def _ensure_service(self) -> LiveTradingService:
        first = not self.wiring.has_live_service
        service = self.wiring.live_service()
        if first or service.on_update is None:
            service.on_update = self._on_update
            service.on_cancel_progress = self._on_cancel_progress
        return service

    def sessions(self) -> list[LiveSession]:
        service = self.service
        return list(service.sessions.values()) if service is not None else []

    def session(self, request_id: str) -> LiveSession:
        if self.service is None:
            raise KeyError(f"no live session {request_id!r} (no session was started)")
        return self.service.session(request_id)

    def active_sessions(self) -> list[LiveSession]:
        return [s for s in self.sessions() if s.phase is not SessionPhase.STOPPED]

    @property
    def active(self) -> bool:
        return self._active

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self, request: LiveStartRequest) -> str:
        """Start a session; raises LiveStartError (message says why) when it cannot."""
        service = self._ensure_service()
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
        self.session_updated.emit(request_id)
        return request_id

    async def stop(self, request_id: str) -> None:
        """Stop trading (positions stay as they are; the dead-man switch is disarmed)."""
        service = self.service
        if service is None:
            return
        await service.stop(request_id)
        self.sessions_changed.emit()
        self._refresh_active()

    async def aclose(self) -> None:
        """Stop every session and close the journals (app shutdown)."""
        service = self.service
        if service is not None:
            await service.close()
        if shiboken6.isValid(self):          # the window may be gone by now (app quitting)
            self.sessions_changed.emit()
            self._refresh_active()

    def acknowledge_recovery(self, request_id: str) -> None:
        self._require().acknowledge_recovery(request_id)
        self.session_updated.emit(request_id)
        self._refresh_active()

    def reset(self, request_id: str, reason: str = "operator reset (confirmed in the dashboard)") -> None:
        """Leave HALTED/REDUCING for ACTIVE: only ever after the operator confirmed it."""
        self._require().reset(request_id, reason)
        self.session_updated.emit(request_id)

    async def flatten(self, request_id: str) -> FlattenReport:
        """Close the CEX legs (reduce-only); the caller has asked the operator first."""
        report = await self._require().flatten(request_id, confirmed=True)
        self.session_updated.emit(request_id)
        return report

    def _require(self) -> LiveTradingService:
        if self.service is None:
            raise KeyError("no live session was started")
        return self.service

    # ---- emergency stop -----------------------------------------------------------------------
    def emergency_stop(self, source: str = "button") -> EStopPress:
        """HALT every session now (inside the service's call), then cancel every open order on every
        venue.

        Returns at once; ``estop_pressed`` is emitted before returning, per-venue progress follows
        as ``cancel_progress`` and the end as ``estop_finished``."""
        service = self.service
        reason = f"{ESTOP_REASON} ({source})"
        handle = service.emergency_stop(reason) if service is not None else None
        targets = list(handle.request_ids) if handle is not None else []
        press = EStopPress(handle.pressed_at if handle else time.time(), handle.halted_ms if handle else 0.0,
                           targets, source)
        if not targets:
            press.note = ("no session is starting or running: nothing to halt" if not self._starting else
                          "a session is starting: it will be HALTED the moment it is up")
        self.last_press = press
        self.cancel_rows = {}
        self.estop_pressed.emit(press)
        for request_id in targets:
            self.session_updated.emit(request_id)
        if handle is not None and not handle.done.done():
            self._estop_task = spawn(self._cancel_all(handle, press), name="emergency-stop")
        else:
            press.finished_ms = 0.0 if handle is None else handle.finished_ms
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
        for request_id in press.request_ids:
            self.session_updated.emit(request_id)

    # ---- service hooks (called on the loop thread) ----------------------------------------------
    def _on_update(self, session: LiveSession) -> None:
        self.session_updated.emit(session.request_id)
        self._refresh_active()

    def _on_cancel_progress(self, request_id: str, progress: VenueCancelProgress) -> None:
        row = CancelRow(request_id, progress.venue, progress.status.value, progress.canceled, progress.error,
                        progress.elapsed_ms)
        self.cancel_rows[(request_id, progress.venue)] = row
        self.cancel_progress.emit(row)

    def _refresh_active(self) -> None:
        active = self._starting > 0 or bool(self.active_sessions())
        if active != self._active:
            self._active = active
            self.active_changed.emit(active)
