"""Compile the test contracts with solc-js (tests/integration/peers/node_modules/solc) at test time."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from venues.onchain.devstack.peers import PeersMissing, peers_dir

PEERS = peers_dir()
SOURCE = Path(__file__).resolve().parent / "TestContracts.sol"

# A test peer (node, solc-js, anvil) is not installed; the message says how to install it.
PeerUnavailable = PeersMissing


@dataclass(frozen=True)
class Artifact:
    abi: list
    bytecode: str


def compile_contracts(source: Path = SOURCE, timeout_s: float = 60.0) -> dict[str, Artifact]:
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable("node is not installed (needed for solc-js)")
    if not (PEERS / "node_modules" / "solc").is_dir():
        raise PeerUnavailable(f"solc-js is not installed: run `npm ci --prefix {PEERS}`")
    request = {
        "language": "Solidity",
        "sources": {source.name: {"content": source.read_text()}},
        "settings": {"evmVersion": "cancun", "optimizer": {"enabled": False},
                     "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }
    proc = subprocess.run([node, str(PEERS / "compile.cjs")], input=json.dumps(request), capture_output=True,
                          text=True, cwd=PEERS, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"solc-js failed: {proc.stderr.strip()[:500]}")
    output = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("solidity errors: " + "; ".join(e["formattedMessage"] for e in errors))
    return {name: Artifact(c["abi"], "0x" + c["evm"]["bytecode"]["object"])
            for name, c in output["contracts"][source.name].items()}
