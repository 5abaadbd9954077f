"""The app's side of the alert bus: settings, the remote channels, and one Qt signal per alert.

The engine's `AlertBus` (on the live service) raises alerts without blocking anyone; this controller
subscribes to it and re-emits every alert as ``alert_raised`` for the desktop notifier (tray message
and sound, app/alert_notifier.py), and builds the bus's remote channels from the operator's
settings: a JSON webhook and Telegram. The settings live in QSettings (``alerts/*``); the Telegram bot
token lives only in the OS keyring (app secret ``telegram_bot_token``), read in an abandonable thread
so a hung D-Bus call never blocks the loop.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from app import settings as state
from engine.services.live.alerts import Alert, AlertBus, AlertChannel, AlertKind, AlertPolicy
from venues.alert_channels import TELEGRAM_API, TelegramChannel, WebhookChannel

__all__ = ["TELEGRAM_API", "AlertSettings", "AlertsController", "AppliedSettings", "ChannelProblem"]
from venues.blocking import run_abandonable
from venues.credentials import CredentialError, CredentialStore

log = logging.getLogger(__name__)

TOKEN_NAME = "telegram_bot_token"
_PREFIX = "alerts/"


@dataclass(frozen=True)
class AlertSettings:
    """What the operator chose in Settings › Alerts (the token is not here: it is in the keyring)."""

    kinds: frozenset[AlertKind] = frozenset(AlertKind)
    desktop: bool = True                     # tray message
    sound: bool = True                       # False = muted
    webhook_url: str = ""                    # empty = no webhook
    telegram_chat_id: str = ""               # empty = no Telegram
    telegram_api: str = TELEGRAM_API
    send_timeout_seconds: float = 5.0
    dedupe_seconds: float = 60.0

    def policy(self) -> AlertPolicy:
        return AlertPolicy(enabled=self.kinds, dedupe_seconds=self.dedupe_seconds,
                           send_timeout_seconds=self.send_timeout_seconds)

    # ---- QSettings ---------------------------------------------------------------------------
    @classmethod
    def load(cls) -> AlertSettings:
        s = state.app_settings()
        default = cls()

        def flag(name: str, fallback: bool) -> bool:
            value = s.value(_PREFIX + name)
            return fallback if value is None else str(value).lower() in ("true", "1")

        def number(name: str, fallback: float) -> float:
            try:
                value = float(s.value(_PREFIX + name, fallback))
            except (TypeError, ValueError):
                return fallback
            return value if value > 0 else fallback

        kinds = frozenset(k for k in AlertKind if flag(f"kind/{k.value}", True))
        return cls(kinds=kinds, desktop=flag("desktop", default.desktop), sound=flag("sound", default.sound),
                   webhook_url=str(s.value(_PREFIX + "webhook_url", "") or ""),
                   telegram_chat_id=str(s.value(_PREFIX + "telegram_chat_id", "") or ""),
                   telegram_api=str(s.value(_PREFIX + "telegram_api", TELEGRAM_API) or TELEGRAM_API),
                   send_timeout_seconds=number("send_timeout_seconds", default.send_timeout_seconds),
                   dedupe_seconds=number("dedupe_seconds", default.dedupe_seconds))

    def save(self) -> None:
        s = state.app_settings()
        for k in AlertKind:
            s.setValue(f"{_PREFIX}kind/{k.value}", k in self.kinds)
        for name in ("desktop", "sound", "webhook_url", "telegram_chat_id", "telegram_api",
                     "send_timeout_seconds", "dedupe_seconds"):
            s.setValue(_PREFIX + name, getattr(self, name))
        s.sync()


@dataclass
class ChannelProblem:
    channel: str
    message: str


@dataclass
class AppliedSettings:
    settings: AlertSettings
    channels: list[str] = field(default_factory=list)
    problems: list[ChannelProblem] = field(default_factory=list)


class AlertsController(QObject):
    #: (Alert) an alert went out (after dedupe): the notifier shows and sounds it
    alert_raised = Signal(object)
    #: (AppliedSettings) settings were applied to the bus
    settings_applied = Signal(object)

    def __init__(self, bus: AlertBus, store: CredentialStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bus = bus
        self.store = store
        self.settings = AlertSettings()
        self._unsubscribe = bus.subscribe(self._on_alert)
        self.destroyed.connect(lambda *_: self._unsubscribe())

    def _on_alert(self, alert: Alert) -> None:
        self.alert_raised.emit(alert)

    # ---- settings ------------------------------------------------------------------------------
    async def apply(self, settings: AlertSettings, *, persist: bool = True) -> AppliedSettings:
        """Use these settings from now on: the bus's policy and its webhook/Telegram channels."""
        applied = AppliedSettings(settings)
        channels: list[AlertChannel] = []
        if settings.webhook_url.strip():
            try:
                channels.append(WebhookChannel(settings.webhook_url, settings.send_timeout_seconds))
            except ValueError as exc:
                applied.problems.append(ChannelProblem("webhook", str(exc)))
        if settings.telegram_chat_id.strip():
            try:
                token = await run_abandonable(self.store.get_app_secret, TOKEN_NAME, name="keyring-alert-token")
            except CredentialError as exc:
                applied.problems.append(ChannelProblem("telegram", f"cannot read the bot token: {exc.message}"))
            else:
                if token is None:
                    applied.problems.append(ChannelProblem(
                        "telegram", "no bot token in the OS keyring: enter it in Settings › Alerts and save"))
                else:
                    try:
                        channels.append(TelegramChannel(token, settings.telegram_chat_id,
                                                        base_url=settings.telegram_api,
                                                        timeout_seconds=settings.send_timeout_seconds))
                    except ValueError as exc:
                        applied.problems.append(ChannelProblem("telegram", str(exc)))
        self.bus.configure(settings.policy(), channels)
        self.settings = settings
        applied.channels = [c.name for c in channels]
        if persist:
            settings.save()
        self.settings_applied.emit(applied)
        return applied

    async def has_token(self) -> bool:
        return await run_abandonable(self.store.get_app_secret, TOKEN_NAME, name="keyring-alert-token") is not None

    async def save_token(self, token: str) -> None:
        """Store the bot token in the OS keyring (raises CredentialError with a message and hint)."""
        await run_abandonable(self.store.set_app_secret, TOKEN_NAME, token, name="keyring-alert-token")

    async def delete_token(self) -> bool:
        return await run_abandonable(self.store.delete_app_secret, TOKEN_NAME, name="keyring-alert-token")

    def send_test(self) -> bool:
        """Raise a test alert through the whole path (journal excepted: no session)."""
        return self.bus.raise_alert(Alert(AlertKind.ORDER_FAILED, "test alert from Settings › Alerts "
                                          "(nothing happened)", venue="test"))
