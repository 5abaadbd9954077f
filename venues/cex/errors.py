"""Translate ccxt exceptions into the engine's VenueError kinds, with secrets redacted.

ccxt folds very different failures into few classes (a refused connection and an HTTP 503 are both
ExchangeNotAvailable; a clock-skew rejection is InvalidNonce, a NetworkError; a connection cut in
the middle of an answer is a plain ExchangeError caused by aiohttp's ClientPayloadError, while one
cut before the answer is ExchangeNotAvailable caused by ServerDisconnectedError), so the
translation looks at the exception's cause as well. An answer that is not what the venue's API
returns (an HTML page, cut-off JSON; ccxt raises BadResponse, or its parser trips over it with a
TypeError/KeyError) is MALFORMED and named as such. The message keeps what helps an operator (HTTP status, the
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


#: What ccxt's parsers raise when an answer does not have the shape they expect.
PARSE_ERRORS = (TypeError, KeyError, AttributeError, IndexError, ValueError, ArithmeticError)


def _network_cause(exc: BaseException) -> bool:
    """ccxt raises ExchangeNotAvailable both for HTTP 5xx (no cause) and for a failed connection."""
    return isinstance(exc.__cause__, (aiohttp.ClientConnectionError, socket.gaierror, OSError))


def _dropped_mid_answer(exc: BaseException) -> bool:
    """ccxt turns aiohttp.ClientPayloadError (connection closed before the announced body arrived)
    into a plain ExchangeError; it is a network failure, not a venue error."""
    return isinstance(exc.__cause__, aiohttp.ClientPayloadError)


def classify(exc: BaseException, *, answered: bool = False) -> VenueErrorKind:
    """The VenueErrorKind of a ccxt (or asyncio) exception. ``answered``: the venue's 2xx answer had
    arrived, so a parser exception means the answer was malformed (not a bug in the call)."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ccxt.RequestTimeout)):
        return VenueErrorKind.TIMEOUT
    if isinstance(exc, ccxt.BadResponse):
        return VenueErrorKind.MALFORMED
    if isinstance(exc, ccxt.ExchangeError) and _dropped_mid_answer(exc):
        return VenueErrorKind.NETWORK
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
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError)):
        return VenueErrorKind.NETWORK
    if answered and isinstance(exc, PARSE_ERRORS) and not isinstance(exc, ccxt.BaseError):
        return VenueErrorKind.MALFORMED
    return VenueErrorKind.UNKNOWN


def _describe(exc: BaseException, kind: VenueErrorKind, venue: str) -> str:
    if kind is VenueErrorKind.TIMEOUT:
        return "no response before the timeout"
    if kind is VenueErrorKind.MALFORMED:
        if isinstance(exc, ccxt.BadResponse):
            return f"malformed answer from {venue}: {_strip_exchange_id(str(exc))}"
        return f"malformed answer from {venue}: the answer could not be parsed ({type(exc).__name__}: {exc})"
    if kind is VenueErrorKind.NETWORK:
        if _dropped_mid_answer(exc):
            return "the connection dropped in the middle of the answer (ClientPayloadError)"
        cause = exc.__cause__ or exc
        if isinstance(cause, socket.gaierror) or "Name or service not known" in str(cause) \
                or "Temporary failure in name resolution" in str(cause):
            return "host name could not be resolved (no network or DNS)"
        return f"connection failed ({type(cause).__name__})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _strip_exchange_id(text: str) -> str:
    first, _, rest = text.partition(" ")
    return rest if first in ("binance", "binanceusdm", "bybit", "okx") and rest else text


def translate(exc: BaseException, venue: str, operation: str,
              secrets: Iterable[str | Secret | None] = (), *, answered: bool = False) -> VenueError:
    """A VenueError for ``exc``; raise it ``from None`` so the raw (unredacted) chain is dropped."""
    if isinstance(exc, VenueError):
        return exc
    kind = classify(exc, answered=answered)
    return VenueError(venue, kind, _clean(_describe(exc, kind, venue), secrets), operation=operation)
