"""Alerts: what the operator must hear about at once, wherever they are looking.

A live session raises an `Alert` when a risk limit is breached, the emergency stop is pressed, a venue
times out, an order fails or is refused, or a transaction fails. The `AlertBus` takes it from there:

* **Never in the way.** ``AlertBus.raise_alert`` is synchronous and cheap (a dedupe look-up and a
  ``loop.call_soon``); journaling, the listeners (the app's tray and sound) and the remote channels
  (webhook, Telegram) all run after the caller has returned. Remote sends are tasks with their own
  deadline that nobody awaits, so a hung webhook can never delay an order, a tick or the e-stop.
* **No spam.** Alerts with the same key (kind, session, venue) inside ``dedupe_seconds`` are counted,
  not repeated; the next one that goes out says how many were held back. A flapping venue gives one
  alert per window, not one per tick.
* **Journaled.** Every alert that goes out is an ``alert`` row in the session's journal (the events
  table), with the number it stood for.

The bus is Qt-free and knows no HTTP library: a channel is anything with ``name`` and an async
``send(alert)`` (venues/alert_channels.py has the webhook and the Telegram Bot API), and a listener is
a plain callable (the app's notifier).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

log = logging.getLogger(__name__)


class AlertKind(str, Enum):
    RISK_BREACH = "risk_breach"
    ESTOP = "emergency_stop"
    VENUE_TIMEOUT = "venue_timeout"
    ORDER_FAILED = "order_failed"        # failed at the venue, refused by the trading state or a pre-trade check
    TX_FAILED = "tx_failed"              # an on-chain transaction reverted, was dropped or replaced

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {AlertKind.RISK_BREACH: "Risk limit breached", AlertKind.ESTOP: "Emergency stop",
           AlertKind.VENUE_TIMEOUT: "Venue timeout", AlertKind.ORDER_FAILED: "Order failed or refused",
           AlertKind.TX_FAILED: "Transaction failed"}


class Severity(str, Enum):
    WARNING = "warning"
    CRITICAL = "critical"


DEFAULT_SEVERITY = {AlertKind.RISK_BREACH: Severity.CRITICAL, AlertKind.ESTOP: Severity.CRITICAL,
                    AlertKind.VENUE_TIMEOUT: Severity.WARNING, AlertKind.ORDER_FAILED: Severity.WARNING,
                    AlertKind.TX_FAILED: Severity.CRITICAL}


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    message: str
    session: str = ""
    venue: str = ""
    severity: Severity | None = None          # None: the kind's default
    at: float = field(default_factory=time.time)
    suppressed: int = 0                        # alerts of the same key held back before this one

    @property
    def level(self) -> Severity:
        return self.severity or DEFAULT_SEVERITY[self.kind]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind.value, self.session, self.venue)

    @property
    def title(self) -> str:
        where = f" · {self.venue}" if self.venue else ""
        return f"{self.kind.label}{where}"

    def text(self) -> str:
        """One plain line for a notification, a chat message or a log."""
        more = f" (+{self.suppressed} similar held back)" if self.suppressed else ""
        session = f" [session {self.session}]" if self.session else ""
        return f"{self.level.value.upper()}: {self.title}{session}: {self.message}{more}"

    def payload(self) -> dict:
        """The JSON body a webhook receives."""
        return {"kind": self.kind.value, "severity": self.level.value, "title": self.title,
                "message": self.message, "session": self.session, "venue": self.venue, "at": self.at,
                "suppressed": self.suppressed, "text": self.text(), "source": "basis-workstation"}


class AlertChannel(Protocol):
    """A remote destination (webhook, chat). ``send`` may take long: the bus bounds it."""

    name: str

    async def send(self, alert: Alert) -> None: ...


#: Journals one alert: (alert) -> None (the session binds its journal).
JournalHook = Callable[[Alert], None]
Listener = Callable[[Alert], None]


@dataclass
class AlertPolicy:
    """What goes out. ``enabled``: the kinds that alert at all (a kind not in it is only logged)."""

    enabled: frozenset[AlertKind] = frozenset(AlertKind)
    dedupe_seconds: float = 60.0
    send_timeout_seconds: float = 5.0
    max_pending_sends: int = 32                # per bus; beyond it a send is dropped and counted

    def __post_init__(self) -> None:
        for name in ("dedupe_seconds", "send_timeout_seconds"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"alert policy {name} must be a positive number of seconds, got {value!r}")
        if self.max_pending_sends < 1:
            raise ValueError(f"alert policy max_pending_sends must be at least 1, got {self.max_pending_sends!r}")


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one remote send (kept for the settings dialog and the tests)."""

    channel: str
    alert: Alert
    ok: bool
    error: str = ""
    elapsed_ms: float = 0.0


class AlertBus:
    def __init__(self, policy: AlertPolicy | None = None, channels: Iterable[AlertChannel] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or AlertPolicy()
        self.channels: list[AlertChannel] = list(channels)
        self.listeners: list[Listener] = []
        self._clock = clock
        self._last_sent: dict[tuple[str, str, str], float] = {}
        self._held: dict[tuple[str, str, str], int] = {}
        self._pending: set[asyncio.Task] = set()
        self.raised = 0            # alerts that went out (after dedupe)
        self.suppressed = 0        # alerts held back by dedupe
        self.dropped_sends = 0     # remote sends dropped because too many were pending
        self.deliveries: list[Delivery] = []       # the last ones, newest last
        self._delivery_limit = 100

    # ---- configuration -------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(alert)`` (on the loop, after the raiser returned) for every alert that goes
        out; returns the function that unsubscribes."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def configure(self, policy: AlertPolicy | None = None, channels: Iterable[AlertChannel] | None = None) -> None:
        if policy is not None:
            self.policy = policy
        if channels is not None:
            self.channels = list(channels)

    # ---- raising -------------------------------------------------------------------------------
    def raise_alert(self, alert: Alert, journal: JournalHook | None = None) -> bool:
        """Queue an alert; returns False when dedupe held it back or its kind is switched off.

        Synchronous and non-blocking: safe inside the emergency stop, an order path or a tick."""
        if alert.kind not in self.policy.enabled:
            log.info("alert (switched off): %s", alert.text())
            return False
        now = self._clock()
        key = alert.key
        last = self._last_sent.get(key)
        if last is not None and now - last < self.policy.dedupe_seconds:
            self._held[key] = self._held.get(key, 0) + 1
            self.suppressed += 1
            return False
        self._last_sent[key] = now
        held = self._held.pop(key, 0)
        if held:
            alert = replace(alert, suppressed=held)
        self.raised += 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:                       # no loop (a script, a sync test): deliver now
            self._deliver(alert, journal)
        else:
            loop.call_soon(self._deliver, alert, journal)
        return True

    def _deliver(self, alert: Alert, journal: JournalHook | None) -> None:
        log.warning("ALERT %s", alert.text())
        if journal is not None:
            try:
                journal(alert)
            except Exception:                      # the journal's trouble must not eat the alert
                log.exception("journaling an alert failed")
        for listener in list(self.listeners):
            try:
                listener(alert)
            except Exception:
                log.exception("alert listener failed")
        for channel in self.channels:
            if len(self._pending) >= self.policy.max_pending_sends:
                self.dropped_sends += 1
                log.warning("alert send to %s dropped: %d sends still pending", channel.name, len(self._pending))
                continue
            task = asyncio.ensure_future(self._send(channel, alert))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _send(self, channel: AlertChannel, alert: Alert) -> None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(channel.send(alert), self.policy.send_timeout_seconds)
        except TimeoutError:
            self._record(Delivery(channel.name, alert, False,
                                  f"no answer within {self.policy.send_timeout_seconds:g} s", _ms(started)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a channel's failure is reported, never raised
            self._record(Delivery(channel.name, alert, False, str(exc) or type(exc).__name__, _ms(started)))
        else:
            self._record(Delivery(channel.name, alert, True, "", _ms(started)))

    def _record(self, delivery: Delivery) -> None:
        if not delivery.ok:
            log.warning("alert to %s failed: %s", delivery.channel, delivery.error)
        self.deliveries.append(delivery)
        del self.deliveries[:-self._delivery_limit]

    # ---- shutdown and tests --------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the remote sends in flight (each is bounded by its own deadline anyway)."""
        await asyncio.sleep(0)                     # let call_soon deliveries spawn their sends
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


def journal_alert(journal, session: str) -> JournalHook:
    """The hook that writes an alert as an ``alert`` event of ``session`` in a live journal."""
    def write(alert: Alert) -> None:
        journal.event(session, alert.venue or "alerts", "alert", kind=alert.kind.value,
                      severity=alert.level.value, message=alert.message, suppressed=alert.suppressed)
    return write
