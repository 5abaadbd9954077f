"""The LeverageExecutor's identity: its source, how it is compiled, its ABI and its runtime code hash.

The contract (``contracts/LeverageExecutor.sol``) keeps its configuration in storage, not in
immutables, so every deployment carries the same runtime code. Its keccak-256 is pinned here
(``EXPECTED_RUNTIME_CODE_HASH``); the workstation signs nothing for an executor whose on-chain code
hashes to anything else, and check-venues reports such an executor as a FAIL. A test compiles the
source with the pinned solc-js and checks both the hash and the shipped ABI, so an edited source
cannot ship with a stale pin.

Compiling needs the npm peers (solc-js); reading the ABI and checking a deployed executor do not, so
a production install can verify an executor without a compiler.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from eth_utils import keccak

CONTRACT = "LeverageExecutor"
SOURCE_DIR = Path(__file__).resolve().parent / "contracts"
SOURCE_FILE = "LeverageExecutor.sol"
ABI_FILE = SOURCE_DIR / "LeverageExecutor.abi.json"
#: solc-js 0.8.37 (tests/integration/peers/package-lock.json); cancun is live on Ethereum and Sepolia.
COMPILER_SETTINGS = {"evmVersion": "cancun", "optimizer": {"enabled": True, "runs": 200}}
EXPECTED_RUNTIME_CODE_HASH = "0x3403b27bd7f27c406071b607ba2a8b8035c00534c5f40f545f87f43368635752"


def code_hash(code: bytes | str) -> str:
    """keccak-256 of runtime code (bytes or 0x-hex), as 0x-hex: what EXTCODEHASH returns."""
    raw = bytes.fromhex(code[2:] if code.startswith("0x") else code) if isinstance(code, str) else bytes(code)
    return "0x" + keccak(raw).hex()


@lru_cache(maxsize=1)
def executor_abi() -> list:
    """The shipped ABI (the compiler's, checked against the source by a test)."""
    return json.loads(ABI_FILE.read_text())


def compile_executor():
    """ABI, creation and runtime bytecode from the source (solc-js from the npm peers; cached)."""
    from venues.onchain.devstack.solc import collect_sources, compile_contracts

    sources = collect_sources(SOURCE_DIR, SOURCE_FILE)
    return compile_contracts(sources, {CONTRACT: SOURCE_FILE}, settings=COMPILER_SETTINGS, runtime=True)[CONTRACT]
