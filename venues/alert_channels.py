"""Remote alert channels: a JSON webhook and the Telegram Bot API, on aiohttp.

Each implements the engine's `AlertChannel` (``name`` and ``async send(alert)``); the `AlertBus`
runs every send as its own task with its own deadline, so these may simply await the network. Each
send also carries an aiohttp total timeout, so a channel used on its own cannot hang either.

The Telegram bot token is read from the OS keyring (venues.credentials, app secret
``telegram_bot_token``) by whoever builds the channel, and travels only inside the request URL. It is
registered for redaction, and every error this module raises is redacted, because aiohttp puts the
URL (token included) into some exception texts.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from venues.credentials import Secret, redact, register_secret

if TYPE_CHECKING:
    from engine.services.live.alerts import Alert

TELEGRAM_API = "https://api.telegram.org"
TELEGRAM_TEXT_LIMIT = 4096          # sendMessage refuses longer texts


class AlertSendError(RuntimeError):
    """The channel answered with an error (message redacted)."""


def _check_url(url: str, what: str) -> str:
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"{what} must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


class WebhookChannel:
    """POSTs the alert's JSON payload (`Alert.payload`) to a URL; any 2xx answer is success."""

    def __init__(self, url: str, timeout_seconds: float = 5.0) -> None:
        self.url = _check_url(url, "the webhook URL")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.name = "webhook"

    async def send(self, alert: Alert) -> None:
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as http:
                async with http.post(self.url, json=alert.payload()) as resp:
                    if resp.status // 100 != 2:
                        body = (await resp.text())[:200]
                        raise AlertSendError(f"webhook answered HTTP {resp.status}: {body}")
        except aiohttp.ClientError as exc:
            raise AlertSendError(f"webhook: {type(exc).__name__}: {redact(str(exc))}") from None


class TelegramChannel:
    """Telegram Bot API ``sendMessage`` to one chat. ``base_url`` points at a loopback fake in tests."""

    def __init__(self, token: Secret, chat_id: str, *, base_url: str = TELEGRAM_API,
                 timeout_seconds: float = 5.0) -> None:
        if not isinstance(token, Secret):
            raise TypeError("the Telegram bot token must be a venues.credentials.Secret (read from the keyring)")
        if not str(chat_id).strip():
            raise ValueError("the Telegram chat id is empty")
        register_secret(token.reveal())
        self._token = token
        self.chat_id = str(chat_id).strip()
        self.base_url = _check_url(base_url, "the Telegram API URL")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.name = "telegram"

    async def send(self, alert: Alert) -> None:
        url = f"{self.base_url}/bot{self._token.reveal()}/sendMessage"
        body = {"chat_id": self.chat_id, "text": alert.text()[:TELEGRAM_TEXT_LIMIT],
                "disable_web_page_preview": True}
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as http:
                async with http.post(url, json=body) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status != 200 or not (isinstance(answer, dict) and answer.get("ok")):
                        description = answer.get("description", "") if isinstance(answer, dict) else ""
                        raise AlertSendError(redact(f"telegram answered HTTP {resp.status}: {description}",
                                                    [self._token]))
        except aiohttp.ClientError as exc:
            raise AlertSendError(f"telegram: {type(exc).__name__}: {redact(str(exc), [self._token])}") from None
        except ValueError as exc:           # not JSON
            raise AlertSendError(f"telegram: unreadable answer ({redact(str(exc), [self._token])})") from None
