"""One ccxt client = one account at a venue, with the call discipline every adapter needs.

- reads (`read`) retry with exponential backoff on transient failures only (timeout, network —
  including a connection dropped mid-answer —, 5xx, rate limit, a malformed answer): 3 attempts by
  default; a venue's ``Retry-After`` (429/418/503) sets the pause, and one longer than the policy
  allows ends the retries with that wait named;
- writes (`write`) are never retried here: an order that timed out may exist, so the caller looks it
  up by client order id instead of submitting again;
- cancels on the emergency path skip ccxt's *local* request pacing (`priority=True`): ccxt spaces
  Bybit cancel-alls 1 s apart and queues every call behind the previous ones' cost, which alone
  would blow the e-stop's 500 ms budget; the venue's own limits still apply and a refusal is reported;
- every failure leaves as a redacted `VenueError` (``raise ... from None`` drops the raw chain, whose
  text could carry a key or an RPC URL).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from engine.domain.venue_ports import MarketKind, SendCheck, VenueError, VenueErrorKind
from venues.cex import answers, send_guard
from venues.cex.errors import translate
from venues.credentials import Secret, install_log_redaction, register_secret

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts include the first call; delays double from ``base_delay_s`` up to ``max_delay_s``."""

    attempts: int = 3
    base_delay_s: float = 0.2
    max_delay_s: float = 2.0
    #: the longest Retry-After a read waits for before retrying (a longer one ends the retries)
    max_retry_after_s: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be >= 1")

    def delay(self, attempt: int) -> float:
        """Pause after failed attempt number ``attempt`` (0-based)."""
        return min(self.base_delay_s * (2 ** attempt), self.max_delay_s)


class CcxtAccount:
    """A ccxt ``async_support`` exchange plus the market kinds it serves for this venue."""

    def __init__(self, venue: str, account: str, exchange: Any, kinds: Iterable[MarketKind], *,
                 secrets: Iterable[str | Secret | None] = (), retry: RetryPolicy = RetryPolicy()) -> None:
        self.venue = venue
        self.account = account
        self.exchange = exchange
        self.kinds = frozenset(kinds)
        self.retry = retry
        self._secrets = [s for s in secrets if s]
        # ccxt logs every signed URL and its key headers at DEBUG: mask them in every log record
        for secret in self._secrets:
            register_secret(secret)
        install_log_redaction()
        self._rate_limited = bool(getattr(exchange, "enableRateLimit", False))
        self._unthrottled = 0
        answers.install_probe(exchange)
        send_guard.install(exchange)

    @property
    def ccxt_id(self) -> str:
        return str(self.exchange.id)

    @property
    def has_credentials(self) -> bool:
        return bool(self.exchange.apiKey)

    def serves(self, kind: MarketKind) -> bool:
        return kind in self.kinds

    def error(self, exc: BaseException, operation: str, reply: answers.Reply | None = None) -> VenueError:
        error = translate(exc, self.venue, f"{self.ccxt_id}.{operation}", self._secrets,
                          answered=reply is not None and reply.answered)
        if reply is not None and reply.retry_after_s is not None and error.retry_after_s is None:
            error.retry_after_s = reply.retry_after_s
        return error

    @contextlib.contextmanager
    def unthrottled(self):
        """Bypass ccxt's local rate limiter while the block runs (counted: overlapping uses nest).

        ccxt reads ``enableRateLimit`` when a request starts, so calls that begin inside the block
        skip the queue; calls already waiting in it keep waiting (they are not the emergency).
        """
        self._unthrottled += 1
        self.exchange.enableRateLimit = False
        try:
            yield
        finally:
            self._unthrottled -= 1
            if self._unthrottled == 0:
                self.exchange.enableRateLimit = self._rate_limited

    async def read(self, operation: str, fn: Callable[..., Awaitable[Any]], *args: Any,
                   attempts: int | None = None, priority: bool = False, **kwargs: Any) -> Any:
        """Call an idempotent ccxt method with retries on transient errors.

        ``attempts`` overrides the policy (1 on the emergency path: a verification read must not
        spend the e-stop's time budget retrying); ``priority`` skips the local rate limiter.
        """
        if priority:
            with self.unthrottled():
                return await self.read(operation, fn, *args, attempts=attempts, **kwargs)
        last: VenueError | None = None
        tries = self.retry.attempts if attempts is None else max(1, attempts)
        for attempt in range(tries):
            reply, token = answers.begin_call()
            try:
                return await fn(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated below, nothing escapes raw
                last = self.error(exc, operation, reply)
            finally:
                answers.end_call(token)
            if not last.retryable or attempt == tries - 1:
                break
            delay = self.retry.delay(attempt)
            if reply.retry_after_s is not None:
                if reply.retry_after_s > self.retry.max_retry_after_s:
                    last = VenueError(last.venue, last.kind, f"{last.detail}; the venue asks to wait "
                                      f"{reply.retry_after_s:g} s (Retry-After), longer than a read waits "
                                      f"({self.retry.max_retry_after_s:g} s)", operation=last.operation)
                    break
                delay = max(delay, reply.retry_after_s)
            log.info("%s: %s failed (%s), retry %d/%d in %.2fs", self.venue, operation, last.kind.value,
                     attempt + 1, tries - 1, delay)
            await asyncio.sleep(delay)
        assert last is not None
        raise last from None

    async def write(self, operation: str, fn: Callable[..., Awaitable[Any]], *args: Any, priority: bool = False,
                    may_send: SendCheck | None = None, **kwargs: Any) -> Any:
        """Call a state-changing ccxt method once (``priority``: skip the local rate limiter).

        ``may_send`` is asked right before each HTTP request of the call leaves the process, after
        ccxt's local rate limiter released it: False drops the request (VenueError NOT_SENT). An order
        queued behind the limiter when the emergency stop is pressed is dropped there."""
        if priority:
            with self.unthrottled():
                return await self.write(operation, fn, *args, may_send=may_send, **kwargs)
        reply, token = answers.begin_call()
        guard = send_guard.begin(may_send)
        try:
            return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            raise
        except send_guard.RequestDropped:
            raise VenueError(self.venue, VenueErrorKind.NOT_SENT, "not sent: the trading state refused the order "
                             "right before its request left", operation=f"{self.ccxt_id}.{operation}") from None
        except Exception as exc:  # noqa: BLE001
            raise self.error(exc, operation, reply) from None
        finally:
            send_guard.end(guard)
            answers.end_call(token)

    async def load_markets(self) -> None:
        await self.read("load_markets", self.exchange.load_markets)

    async def server_time_ms(self, samples: int = 2) -> tuple[int, float, float]:
        """(server time ms, local ms at the request midpoint, round trip ms) of the fastest sample.

        The first request of a session also pays for connection setup, which skews both the latency
        and the clock estimate (the server stamps its time late in a long round trip); the fastest of
        a few samples bounds the clock error by half its round trip.
        """
        best: tuple[int, float, float] | None = None
        for _ in range(samples):
            t0 = time.time()
            server = await self.read("fetch_time", self.exchange.fetch_time)
            t1 = time.time()
            sample = (int(server), (t0 + t1) / 2 * 1000.0, (t1 - t0) * 1000.0)
            if best is None or sample[2] < best[2]:
                best = sample
        assert best is not None
        return best

    async def close(self) -> None:
        try:
            await self.exchange.close()
        except Exception as exc:  # noqa: BLE001 - closing must never raise into an e-stop path
            log.debug("%s: closing %s failed: %s", self.venue, self.ccxt_id, type(exc).__name__)
