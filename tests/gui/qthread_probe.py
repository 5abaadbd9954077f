"""Run by test_gui_threads_are_joined in a child pytest: a GUI test that hands work to the qasync
loop's default executor (asyncio.to_thread, as the venues and live controllers do) and nothing else."""
from __future__ import annotations

import asyncio
import threading


def test_to_thread_on_the_qasync_loop(qtbot, qasync_loop):
    task = asyncio.ensure_future(asyncio.to_thread(threading.current_thread), loop=qasync_loop)
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.result() is not threading.main_thread()
