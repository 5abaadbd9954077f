"""Translate ccxt exceptions into the engine's VenueError kinds, with secrets redacted.

ccxt folds very different failures into few classes (a refused connection and an HTTP 503 are both
ExchangeNotAvailable; a clock-skew rejection is InvalidNonce, a NetworkError), so the translation
looks at the exception's cause as well. The message keeps what helps an operator (HTTP status, the
venue's error code and text) and drops what could carry a secret (redacted values, query strings,
which hold signatures and timestamps).
"""
from __future__ import annotations

import asyncio
import re
import socket
from typing import Iterable

import aiohttp
import ccxt

from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.credentials import Secret, redact

_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")
_MAX_DETAIL = 300


def _clean(text: str, secrets: Iterable[str | Secret | None]) -> str:
    text = redact(text, secrets)
    text = _QUERY.sub(r"\1?…", text)          # signatures, timestamps, recvWindow: noise at best
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "…"


def _network_cause(exc: BaseException) -> bool:
    """ccxt raises ExchangeNotAvailable both for HTTP 5xx (no cause) and for a failed connection."""
    return isinstance(exc.__cause__, (aiohttp.ClientConnectionError, socket.gaierror, OSError))


def classify(exc: BaseException) -> VenueErrorKind:
    """The VenueErrorKind of a ccxt (or asyncio) exception."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ccxt.RequestTimeout)):
        return VenueErrorKind.TIMEOUT
    if isinstance(exc, ccxt.InvalidNonce):
        return VenueErrorKind.CLOCK
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return VenueErrorKind.RATE_LIMIT
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return VenueErrorKind.NETWORK if _network_cause(exc) else VenueErrorKind.UNAVAILABLE
    if isinstance(exc, ccxt.NetworkError):
        return VenueErrorKind.NETWORK
    if isinstance(exc, ccxt.PermissionDenied):
        return VenueErrorKind.PERMISSION
    if isinstance(exc, ccxt.AuthenticationError):
        text = str(exc).lower()
        # Bybit/OKX report a stale timestamp as an auth error; it is the clock, not the key.
        if "timestamp" in text or "recv_window" in text or "recvwindow" in text:
            return VenueErrorKind.CLOCK
        return VenueErrorKind.AUTH
    if isinstance(exc, ccxt.OrderNotFound):
        return VenueErrorKind.NOT_FOUND
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.InsufficientFunds)):
        return VenueErrorKind.REJECTED
    if isinstance(exc, (ccxt.BadSymbol, ccxt.NotSupported, ccxt.ArgumentsRequired)):
        return VenueErrorKind.CONFIG
    if isinstance(exc, (aiohttp.ClientConnectionError, ConnectionError)):
        return VenueErrorKind.NETWORK
    return VenueErrorKind.UNKNOWN


def _describe(exc: BaseException, kind: VenueErrorKind) -> str:
    if kind is VenueErrorKind.TIMEOUT:
        return "no response before the timeout"
    if kind is VenueErrorKind.NETWORK:
        cause = exc.__cause__ or exc
        if isinstance(cause, socket.gaierror) or "Name or service not known" in str(cause) \
                or "Temporary failure in name resolution" in str(cause):
            return "host name could not be resolved (no network or DNS)"
        return f"connection failed ({type(cause).__name__})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(exc: BaseException, venue: str, operation: str,
              secrets: Iterable[str | Secret | None] = ()) -> VenueError:
    """A VenueError for ``exc``; raise it ``from None`` so the raw (unredacted) chain is dropped."""
    if isinstance(exc, VenueError):
        return exc
    kind = classify(exc)
    return VenueError(venue, kind, _clean(_describe(exc, kind), secrets), operation=operation)
