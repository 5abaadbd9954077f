"""Where the npm peers live (anvil, solc-js, the protocol packages) and how to say they are missing.

The packages are installed by ``npm ci --prefix tests/integration/peers`` (``.ci/run`` and
``tests/run.sh`` do it). ``BASIS_PEERS_DIR`` points elsewhere (an installed copy outside the
repository).
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PEERS = REPO_ROOT / "tests" / "integration" / "peers"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class PeersMissing(RuntimeError):
    """A local peer (node, anvil, solc-js, a protocol package) is not installed; says how to get it."""


def peers_dir() -> Path:
    override = os.environ.get("BASIS_PEERS_DIR")
    return Path(override).expanduser().resolve() if override else DEFAULT_PEERS


def install_command() -> str:
    return f"npm ci --prefix {peers_dir()}"


def node_modules() -> Path:
    return peers_dir() / "node_modules"


def require_package(name: str) -> Path:
    """The folder of npm package ``name`` (``@aave/core-v3``), or PeersMissing with the command."""
    folder = node_modules() / name
    if not (folder / "package.json").is_file():
        raise PeersMissing(f"npm package {name} is not installed: run `{install_command()}`")
    return folder


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise PeersMissing(
            "node is not installed (needed for solc-js and anvil's npm wrapper): "
            "install Node.js 18+ (Debian: `apt-get install nodejs npm`)"
        )
    return node


def anvil_command() -> list[str]:
    """The anvil binary shipped by @foundry-rs/anvil for this platform, else its node wrapper."""
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    arch = _ARCH.get(platform.machine().lower(), "")
    binary = node_modules() / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if binary.is_file() and os.access(binary, os.X_OK):
        return [str(binary)]
    wrapper = node_modules() / "@foundry-rs" / "anvil" / "bin.mjs"
    if wrapper.is_file():
        return [node_binary(), str(wrapper)]
    raise PeersMissing(f"anvil is not installed: run `{install_command()}` (package @foundry-rs/anvil)")
