"""Running coroutines from Qt slots on the app's qasync loop.

Slots are plain functions (a button click cannot await), so every async action of the panels and
controllers goes through `spawn`. asyncio keeps only weak references to tasks: the ones started here
are held until done, and an exception nobody handled reaches the loop's exception handler (the
crash dialog), never vanishes.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

#: Tasks started from Qt slots, kept referenced until done.
_TASKS: set[asyncio.Task] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task:
    """Run a coroutine on the qasync loop from a Qt slot. The returned task can be awaited or
    cancelled by the caller."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coro.close()
        raise RuntimeError("no asyncio loop is running: the venue and live panels need the app's qasync "
                           "loop (python main.py starts it)") from None
    task = loop.create_task(coro, name=name or None)
    _TASKS.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task) -> None:
    _TASKS.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        # The panels catch the errors they expect, so anything here is a bug worth a dialog.
        loop = task.get_loop()
        loop.call_exception_handler({"message": f"task {task.get_name()} failed", "exception": exc, "task": task})
