"""The last check before an order's HTTP request leaves the process.

ccxt queues every request behind its local rate limiter (``fetch2`` awaits ``throttle`` before it
calls ``fetch``), so an order handed to ccxt just before an emergency stop can leave 20-100 ms after
the press, when the trading state already says HALTED. The order gate checks the state before it
hands the order over; this checks it again at the lowest point ccxt lets us reach, the instance's
``fetch``, which sends the request with no await before it. The check is a per-call context
variable (set by `CcxtAccount.write` for the call it makes, seen by that call's task only), so reads
and cancels running concurrently are never affected.
"""
from __future__ import annotations

import contextvars
from typing import Any

from engine.domain.venue_ports import SendCheck

_MAY_SEND: contextvars.ContextVar[SendCheck | None] = contextvars.ContextVar("may_send", default=None)


class RequestDropped(Exception):
    """The request was not sent: the call's ``may_send`` said no right before it would have left."""


def begin(may_send: SendCheck | None) -> contextvars.Token:
    return _MAY_SEND.set(may_send)


def end(token: contextvars.Token) -> None:
    _MAY_SEND.reset(token)


def install(exchange: Any) -> None:
    """Wrap ``exchange.fetch`` once (an instance attribute; the class is untouched)."""
    if getattr(exchange, "_basis_send_guard", False):
        return
    original = exchange.fetch

    async def fetch(url, method="GET", headers=None, body=None):
        may_send = _MAY_SEND.get()
        if may_send is not None and not may_send():
            raise RequestDropped(f"{method} {url.split('?', 1)[0]}")
        return await original(url, method, headers, body)

    exchange.fetch = fetch
    exchange._basis_send_guard = True
