"""Compile Solidity with solc-js from the npm peers, caching the output by what went into it.

Each compilation is keyed by the SHA-256 of the standard-JSON input (every source text and setting)
and the compiler package's version, so a changed source recompiles and an unchanged one is read from
``<user cache dir>/basis-workstation/solc`` in milliseconds. That matters for Morpho Blue: compiled
with viaIR by solc 0.8.19 it takes 7-15 s, which only the first run on a machine pays.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import platformdirs

from venues.onchain.devstack.peers import (
    PeersMissing,
    install_command,
    node_binary,
    peers_dir,
    require_package,
)

_IMPORT = re.compile(r"""import\s+(?:[^"';]*?\bfrom\s+)?["']([^"']+)["']""")


@dataclass(frozen=True)
class Compiled:
    """One contract's ABI and creation bytecode (0x-hex, unlinked libraries already resolved), and its
    runtime bytecode when asked for (what ``eth_getCode`` returns once deployed, absent immutables)."""

    name: str
    abi: list
    bytecode: str
    runtime: str = ""


def default_cache_dir() -> Path:
    """``BASIS_SOLC_CACHE_DIR``, else ``<user cache dir>/basis-workstation/solc``."""
    override = os.environ.get("BASIS_SOLC_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("basis-workstation")) / "solc"


def collect_sources(root: Path, entry: str) -> dict[str, dict[str, str]]:
    """Standard-JSON ``sources`` for ``entry`` and everything it imports (relative imports only).

    Source unit names are paths relative to ``root`` (``src/Morpho.sol``), so the compiler resolves
    ``import "./libraries/MathLib.sol"`` to ``src/libraries/MathLib.sol`` without a callback.
    """
    sources: dict[str, dict[str, str]] = {}

    def add(unit: str) -> None:
        if unit in sources:
            return
        path = root / unit
        if not path.is_file():
            raise FileNotFoundError(f"Solidity import {unit!r} not found under {root}")
        text = path.read_text()
        sources[unit] = {"content": text}
        for match in _IMPORT.finditer(text):
            target = match.group(1)
            if not target.startswith("."):
                raise ValueError(f"{unit}: only relative imports are supported here, got {target!r}")
            add(posixpath.normpath(posixpath.join(posixpath.dirname(unit), target)))

    add(entry)
    return sources


def _compiler_version(package: str) -> str:
    folder = require_package(package)
    return json.loads((folder / "package.json").read_text())["version"]


def compile_standard_json(
    request: Mapping[str, Any],
    *,
    compiler: str = "solc",
    timeout_s: float = 180.0,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """solc's standard-JSON output for ``request`` (raises on compiler errors; cached)."""
    version = _compiler_version(compiler)
    payload = json.dumps(request, sort_keys=True)
    key = hashlib.sha256(f"{compiler}@{version}\n{payload}".encode()).hexdigest()
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    cached = folder / f"{key}.json"
    if cached.is_file():
        try:
            return json.loads(cached.read_text())
        except (OSError, ValueError):
            cached.unlink(missing_ok=True)  # a torn write from a killed run: compile again
    script = peers_dir() / "compile.cjs"
    if not script.is_file():
        raise PeersMissing(f"{script} is missing: restore it from git, then run `{install_command()}`")
    proc = subprocess.run(
        [node_binary(), str(script), compiler],
        input=payload,
        capture_output=True,
        text=True,
        cwd=peers_dir(),
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"solc-js ({compiler} {version}) failed: {proc.stderr.strip()[:500]}")
    output = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError(
            "Solidity errors: "
            + "; ".join(e.get("formattedMessage", e.get("message", "")) for e in errors)[:2000]
        )
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(output, handle)
    os.replace(tmp, cached)
    return output


def compile_contracts(
    sources: Mapping[str, Mapping[str, str]],
    contracts: Mapping[str, str],
    *,
    compiler: str = "solc",
    settings: Mapping[str, Any] | None = None,
    cache_dir: Path | None = None,
    runtime: bool = False,
) -> dict[str, Compiled]:
    """Compile ``sources`` and return ``contracts`` ({name: source unit}) as ABI + bytecode
    (+ runtime bytecode with ``runtime``)."""
    selection: dict[str, dict[str, list[str]]] = {}
    wanted = ["abi", "evm.bytecode.object"] + (["evm.deployedBytecode.object"] if runtime else [])
    for name, unit in contracts.items():
        selection.setdefault(unit, {})[name] = wanted
    request = {
        "language": "Solidity",
        "sources": dict(sources),
        "settings": {**(settings or {}), "outputSelection": selection},
    }
    output = compile_standard_json(request, compiler=compiler, cache_dir=cache_dir)
    out: dict[str, Compiled] = {}
    for name, unit in contracts.items():
        entry = output["contracts"][unit][name]
        bytecode = entry["evm"]["bytecode"]["object"]
        if not bytecode:
            raise RuntimeError(f"{unit}:{name} compiled to no bytecode (abstract contract or interface?)")
        deployed = entry["evm"].get("deployedBytecode", {}).get("object", "") if runtime else ""
        out[name] = Compiled(name, entry["abi"], "0x" + bytecode, "0x" + deployed if deployed else "")
    return out
