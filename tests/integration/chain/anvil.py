"""Start anvil (from tests/integration/peers/node_modules, npm @foundry-rs/anvil) on a random loopback
port, offline, and stop it. Prefers the platform binary the npm package ships; falls back to the
package's node wrapper (which forwards signals to the binary)."""
from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import time

from tests.integration.chain.solidity import PEERS, PeerUnavailable

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def anvil_command() -> list[str]:
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    arch = _ARCH.get(platform.machine().lower(), "")
    binary = PEERS / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if binary.is_file() and os.access(binary, os.X_OK):
        return [str(binary)]
    wrapper = PEERS / "node_modules" / "@foundry-rs" / "anvil" / "bin.mjs"
    node = shutil.which("node")
    if wrapper.is_file() and node:
        return [node, str(wrapper)]
    raise PeerUnavailable(f"anvil is not installed: run `npm ci --prefix {PEERS}` (package @foundry-rs/anvil)")


class Anvil:
    """One anvil process. ``url`` once started; ``stop()`` ends exactly this process (its own group)."""

    def __init__(self, chain_id: int, *, start_timeout_s: float = 15.0) -> None:
        self.chain_id = chain_id
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "Anvil":
        cmd = anvil_command() + ["--host", "127.0.0.1", "--port", "0", "--chain-id", str(self.chain_id),
                                 "--accounts", "3"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, cwd=PEERS)
        deadline = time.monotonic() + self.start_timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("Listening on "):
                self.url = "http://" + line.split("Listening on ", 1)[1].strip()
                return self
        self.stop()
        raise RuntimeError(f"anvil did not report a listening port within {self.start_timeout_s:g}s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
