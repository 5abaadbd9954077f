"""One trading instance per journal (and so per environment's accounts): an OS file lock plus a
lease row in the journal.

Two workstations, or a workstation and a headless `main.py live`, trading the same accounts from the
same journal would both enter, each believing the other's fills are foreign. The first to start live
trading takes an OS lock on a file beside the journal (``filelock``: fcntl on POSIX, msvcrt on
Windows), which the OS drops the moment the process dies however it dies, and writes a lease row
(holder, pid, host, start, heartbeat) that names it to anyone else. A second instance is refused
with the holder's name. A lease whose holder is gone — its pid no longer runs on this host, or its
heartbeat stopped longer ago than ``stale_after_s`` (another host sharing the file) — is taken over
with a warning.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from pathlib import Path

import filelock

from engine.services.live.journal import Journal, Lease

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0             # the holder refreshes its lease this often
STALE_AFTER_S = 30.0          # a lease not refreshed for this long is taken over


class InstanceLocked(RuntimeError):
    """Another instance holds the journal; the message names it."""


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:            # it runs, under another user
        return True
    except OSError:
        return False
    return True


def describe(lease: Lease, now: float | None = None) -> str:
    now = time.time() if now is None else now
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lease.started_at))
    return (f"pid {lease.pid} on {lease.host} (started {started}, last heartbeat "
            f"{max(0.0, now - lease.heartbeat_at):.0f} s ago)")


class InstanceLock:
    """The live-trading lock of one journal. ``acquire`` returns the warnings of a takeover."""

    def __init__(self, journal: Journal, *, stale_after_s: float = STALE_AFTER_S) -> None:
        self.journal = journal
        self.stale_after_s = stale_after_s
        self.path = Path(f"{journal.path}.lock")
        self._file = filelock.FileLock(str(self.path), timeout=0, thread_local=False)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held = False

    def acquire(self) -> list[str]:
        if self.held:
            return []
        try:
            self._file.acquire(timeout=0)
        except filelock.Timeout:
            current = self.journal.lease()
            who = describe(current) if current is not None else "another process (its lease is not written yet)"
            raise InstanceLocked(
                f"journal {self.journal.path} is in use for live trading by {who}: one instance per journal and "
                "accounts; stop that workstation or command first") from None
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass
        warnings: list[str] = []
        now = time.time()
        host = socket.gethostname()

        def may_take(current: Lease | None) -> None:
            if current is None or current.holder == self.holder:
                return
            if current.host == host and current.pid == os.getpid():
                return                  # an earlier service of this process that did not release it
            if current.host == host and not pid_alive(current.pid):
                warnings.append(f"took over the journal's lease from {describe(current, now)}: that process "
                                "is no longer running")
                return
            if now - current.heartbeat_at > self.stale_after_s:
                warnings.append(f"took over a stale lease from {describe(current, now)}: no heartbeat for more "
                                f"than {self.stale_after_s:g} s")
                return
            raise InstanceLocked(
                f"journal {self.journal.path} is in use for live trading by {describe(current, now)}: one "
                "instance per journal and accounts; stop it first (its lease goes stale "
                f"{self.stale_after_s:g} s after its last heartbeat)")

        try:
            self.journal.take_lease(Lease(self.holder, os.getpid(), host, now, now), may_take)
        except BaseException:
            self._file.release()
            raise
        self.held = True
        for w in warnings:
            log.warning("%s", w)
        return warnings

    def heartbeat(self) -> None:
        if self.held:
            self.journal.lease_heartbeat(self.holder)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        self.journal.drop_lease(self.holder)
        self.journal.flush(2.0)
        self._file.release()
