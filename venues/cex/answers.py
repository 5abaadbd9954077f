"""What a venue's HTTP answer said beyond what ccxt passes on: Retry-After, and whether it was an answer
of the venue's API at all.

ccxt drops the response headers before raising (a 429's ``Retry-After`` is lost) and hands a body it
cannot decode (an HTML maintenance page, JSON cut off by a proxy) to the unified parser, which then
returns an empty balance or order list, or trips over it with a TypeError. ccxt calls the exchange's
``handle_errors`` with the status, headers, body and decoded JSON of every answer, inside the task
that made the request; a probe wrapped around it records the headers into a per-call context
variable (concurrent calls of one client each see their own) and raises ``ccxt.BadResponse`` for a
2xx answer that is not the venue's JSON, before any parser can read it as "nothing".
"""
from __future__ import annotations

import contextvars
import email.utils
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import ccxt

#: HTTP statuses whose Retry-After a read honours (rate limited, Binance's IP ban, unavailable).
RETRY_AFTER_STATUSES = frozenset({418, 429, 503})
_TITLE = re.compile(r"<title>\s*([^<]{1,80})", re.IGNORECASE)


@dataclass
class Reply:
    """What the probe saw of the last answer of one call (one attempt)."""

    status: int | None = None
    retry_after_s: float | None = None

    @property
    def answered(self) -> bool:
        """A 2xx answer arrived (so a parser exception is about its content)."""
        return self.status is not None and 200 <= self.status < 300


_REPLY: contextvars.ContextVar[Reply | None] = contextvars.ContextVar("venue_reply", default=None)


def begin_call() -> tuple[Reply, contextvars.Token]:
    """Start recording the answers of the ccxt call made next in this task."""
    reply = Reply()
    return reply, _REPLY.set(reply)


def end_call(token: contextvars.Token) -> None:
    _REPLY.reset(token)


def install_probe(exchange: Any) -> None:
    """Wrap ``exchange.handle_errors`` once (instance attribute; the class is untouched)."""
    if getattr(exchange, "_basis_probe", False):
        return
    original = exchange.handle_errors

    def handle_errors(code, reason, url, method, headers, body, response, request_headers, request_body):
        reply = _REPLY.get()
        if reply is not None:
            reply.status = code
            if code in RETRY_AFTER_STATUSES:
                reply.retry_after_s = retry_after_seconds(headers)
        if isinstance(code, int) and 200 <= code < 300:
            problem = malformed(str(exchange.id), body, response, headers)
            if problem:
                raise ccxt.BadResponse(f"{exchange.id} {problem}")
        return original(code, reason, url, method, headers, body, response, request_headers, request_body)

    exchange.handle_errors = handle_errors
    exchange._basis_probe = True


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not headers:
        return None
    value = next((v for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def malformed(exchange_id: str, body: Any, response: Any, headers: Any) -> str | None:
    """Why a 2xx answer is not one of the venue's API answers, or None if it is.

    Every endpoint of these venues answers JSON: OKX ``{"code", "msg", "data": [...]}``, Bybit v5
    ``{"retCode", "retMsg", "result": {...}}``, Binance an object or a list. Only the envelope is
    checked here; the fields inside are the unified parsers' business."""
    if body is None or (isinstance(body, str) and not body.strip()):
        return "answered with an empty body instead of JSON"
    if response is None:
        content_type = next((v for k, v in dict(headers or {}).items() if str(k).lower() == "content-type"), "")
        text = str(body)
        if "html" in str(content_type).lower() or text.lstrip()[:1] == "<":
            title = _TITLE.search(text)
            return "answered with an HTML page instead of JSON" + (f" ({title.group(1).strip()!r})" if title else "")
        return f"answered with text that is not valid JSON ({len(text):,} characters: {text[:60]!r}…)"
    if exchange_id == "okx":
        if not isinstance(response, dict):
            return f"answered with a JSON {type(response).__name__} instead of an object"
        if str(response.get("code")) == "0" and not isinstance(response.get("data"), list):
            return f"answered code 0 with 'data' of type {type(response.get('data')).__name__}, expected a list"
    elif exchange_id == "bybit":
        if not isinstance(response, dict):
            return f"answered with a JSON {type(response).__name__} instead of an object"
        if str(response.get("retCode")) == "0" and not isinstance(response.get("result"), (dict, list)):
            return f"answered retCode 0 with 'result' of type {type(response.get('result')).__name__}"
    elif not isinstance(response, (dict, list)):
        return f"answered with a JSON {type(response).__name__} instead of an object or a list"
    return None
