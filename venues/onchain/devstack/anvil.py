"""Start anvil on a free loopback port and stop exactly that process.

Offline (no fork), three funded accounts by default, the chain id the caller names (the stack uses
Sepolia's, so the testnet venue configs validate unchanged against a local chain).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from venues.onchain.devstack.peers import anvil_command, peers_dir


class Anvil:
    """One anvil process. ``url`` once started; ``stop()`` ends exactly this process (its own group)."""

    def __init__(
        self,
        chain_id: int,
        *,
        accounts: int = 3,
        port: int = 0,
        extra_args: Sequence[str] = (),
        start_timeout_s: float = 15.0,
    ) -> None:
        self.chain_id = chain_id
        self.accounts = accounts
        self.port = port
        self.extra_args = list(extra_args)
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path: Path | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> "Anvil":
        cmd = anvil_command() + [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            *self.extra_args,
        ]
        # anvil logs every request; into a file, never a pipe nobody drains (a full pipe would block it).
        log_file = tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log", delete=False)
        self._log = log_file
        self.log_path = Path(log_file.name)
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=peers_dir(),
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("Listening on "):
                    self.url = "http://" + line.split("Listening on ", 1)[1].strip()
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        tail = " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])
        exited = self.proc.poll() is not None
        self.stop()
        what = "anvil exited" if exited else f"anvil did not report a listening port within {self.start_timeout_s:g}s"
        raise RuntimeError(what + (f": {tail}" if tail else ""))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
