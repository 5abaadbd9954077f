"""Run a blocking call that may never return off the event loop, without tying process exit to it.

``asyncio.to_thread`` runs calls on the loop's default executor, whose worker threads the interpreter
*joins* at exit. That is right for finite work (parsing a config, building a ccxt client) and wrong for
a call that can block forever: a keyring read over D-Bus waiting on an unlock prompt nobody answers.
Callers bound such a call with ``asyncio.wait_for``, but the stuck worker would still keep the
workstation (or a test run) from exiting. Here each call gets its own daemon thread instead; callers
keep their timeouts, and a call that never returns is abandoned with its thread.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future, result: object, error: BaseException | None) -> None:
    if future.done():                       # the caller timed out or was cancelled: nobody is waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def run_abandonable(fn: Callable[..., T], *args: object, name: str | None = None) -> T:
    """``await`` ``fn(*args)`` run in a fresh daemon thread; cancelling the await abandons the call."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def work() -> None:
        result: object = None
        error: BaseException | None = None
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine as is
            error = exc
        try:
            loop.call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:                 # the loop closed while the call ran: nobody to tell
            pass

    threading.Thread(target=work, name=name or f"abandonable-{getattr(fn, '__name__', 'call')}",
                     daemon=True).start()
    return await future
