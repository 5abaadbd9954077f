"""Translate web3 / aiohttp failures into VenueError kinds, with the RPC URL (it holds the provider
key) and any other registered secret redacted from the message."""
from __future__ import annotations

import asyncio
import socket
from typing import Iterable

import aiohttp
from web3 import exceptions as w3e

from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.credentials import Secret, redact

_MAX_DETAIL = 300


def classify(exc: BaseException) -> VenueErrorKind:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, w3e.RequestTimedOut, w3e.TimeExhausted)):
        return VenueErrorKind.TIMEOUT
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status in (401, 403):
            return VenueErrorKind.AUTH
        if exc.status == 429:
            return VenueErrorKind.RATE_LIMIT
        return VenueErrorKind.UNAVAILABLE
    if isinstance(exc, (aiohttp.ClientConnectionError, socket.gaierror, ConnectionError, OSError,
                        w3e.ProviderConnectionError)):
        return VenueErrorKind.NETWORK
    if isinstance(exc, w3e.TooManyRequests):
        return VenueErrorKind.RATE_LIMIT
    if isinstance(exc, (w3e.BadFunctionCallOutput, w3e.ContractLogicError, w3e.InvalidAddress,
                        w3e.MismatchedABI)):
        return VenueErrorKind.CONFIG
    if isinstance(exc, w3e.Web3RPCError):
        return VenueErrorKind.UNAVAILABLE
    return VenueErrorKind.UNKNOWN


def _describe(exc: BaseException, kind: VenueErrorKind) -> str:
    if kind is VenueErrorKind.TIMEOUT:
        return "no response before the timeout"
    if kind is VenueErrorKind.NETWORK:
        if isinstance(exc, socket.gaierror) or "name resolution" in str(exc) or "not known" in str(exc):
            return "RPC host name could not be resolved (no network or DNS)"
        return f"RPC connection failed ({type(exc).__name__})"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"RPC answered HTTP {exc.status} {exc.message}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(exc: BaseException, venue: str, operation: str,
              secrets: Iterable[str | Secret | None] = ()) -> VenueError:
    if isinstance(exc, VenueError):
        return exc
    kind = classify(exc)
    text = " ".join(redact(_describe(exc, kind), secrets).split())
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return VenueError(venue, kind, text, operation=operation)
