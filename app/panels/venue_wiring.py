"""How the venue-facing panels reach the venues: one object shared by the venue checks panel, the
credentials dialog and the live dashboard.

The app uses the OS keyring and the venues' real endpoints (configs/venues). Tests and the
screenshot script pass a wiring that points at the loopback exchange emulator and an in-memory or
throwaway keyring; nothing else in the panels knows the difference. The live trading service is
built on first use (``live_service()``), so opening the app never touches the venues.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.services.live import LiveTradingService
from venues.checks import CheckSettings
from venues.credentials import CredentialStore

log = logging.getLogger(__name__)


@dataclass
class VenueWiring:
    #: The keyring store every panel reads and writes (the OS keyring unless a test passes another).
    store: CredentialStore = field(default_factory=CredentialStore)
    #: venue -> base URL replacing the venue's host (the loopback emulator in tests); empty = real venues.
    url_overrides: Mapping[str, str] = field(default_factory=dict)
    #: Timeouts and thresholds of the pre-live checks.
    check_settings: CheckSettings = field(default_factory=CheckSettings)
    #: Builds the live trading service; None = bootstrap.live_trading_service with this store and URLs.
    live_service_factory: Callable[[], LiveTradingService] | None = None
    _service: LiveTradingService | None = field(default=None, init=False, repr=False)

    @property
    def has_live_service(self) -> bool:
        return self._service is not None

    def live_service(self) -> LiveTradingService:
        """The one live trading service of the app (built on first call)."""
        if self._service is None:
            if self.live_service_factory is not None:
                self._service = self.live_service_factory()
            else:
                from bootstrap import live_trading_service

                self._service = live_trading_service(store=self.store,
                                                     url_overrides=dict(self.url_overrides) or None,
                                                     rate_limit_ms=self.check_settings.rate_limit_ms)
        return self._service

    def existing_live_service(self) -> LiveTradingService | None:
        """The service if one was built (an emergency stop never builds one just to find it empty)."""
        return self._service


#: Tasks started from Qt slots, kept referenced until done (asyncio holds only weak references).
_TASKS: set[asyncio.Task] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task:
    """Run a coroutine on the qasync loop from a Qt slot; an exception reaches the loop's exception
    handler (app.crash shows it), never vanishes.

    Slots are plain functions (a button click cannot await), so every async action of the panels goes
    through here. The returned task can be awaited or cancelled by the caller.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coro.close()
        raise RuntimeError("no asyncio loop is running: the venue and live panels need the app's qasync "
                           "loop (python main.py starts it)") from None
    task = loop.create_task(coro, name=name or None)
    _TASKS.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task) -> None:
    _TASKS.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        # The loop's exception handler (app.crash) shows uncaught errors; the panels catch the ones
        # they expect, so anything here is a bug worth a dialog.
        loop = task.get_loop()
        loop.call_exception_handler({"message": f"task {task.get_name()} failed", "exception": exc, "task": task})
