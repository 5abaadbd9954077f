"""run_abandonable: results and errors come back; a call that never returns cannot hold up process exit."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from venues.blocking import run_abandonable

REPO = Path(__file__).resolve().parents[2]


async def test_result_and_exception_come_back_from_the_thread():
    caller = threading.get_ident()
    assert await run_abandonable(lambda a, b: (a + b, threading.get_ident() != caller), 2, 3) == (5, True)

    def refuse() -> None:
        raise PermissionError("locked keyring")

    with pytest.raises(PermissionError, match="locked keyring"):
        await run_abandonable(refuse)


async def test_a_call_finishing_after_its_caller_gave_up_is_ignored():
    release = threading.Event()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(run_abandonable(release.wait), 0.05)
    release.set()                                  # the thread now settles a future nobody awaits
    await asyncio.sleep(0.05)
    assert await run_abandonable(lambda: "still usable") == "still usable"


def test_a_call_that_never_returns_does_not_block_interpreter_exit():
    script = textwrap.dedent("""
        import asyncio, threading
        from venues.blocking import run_abandonable

        async def main():
            try:
                await asyncio.wait_for(run_abandonable(threading.Event().wait, name="stuck"), 0.1)
            except asyncio.TimeoutError:
                print("timed out")

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "timed out"
