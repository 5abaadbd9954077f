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

import asyncio
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable

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


@dataclass(frozen=True)
class ExecutorIdentity:
    """What a deployed executor says about itself: its code hash ("" without code) and configuration."""

    address: str
    code_hash: str
    owner: str = ""
    pool: str = ""
    morpho: str = ""
    weth: str = ""
    swap_router: str = ""


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


async def read_identity(w3, address: str, read: Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
                        ) -> ExecutorIdentity:
    """Read the executor at ``address`` through ``read(operation, fn)`` (a reader's retrying call); its
    configuration only when its code is the shipped executor's."""
    code = await read("eth_getCode", lambda: w3.eth.get_code(address))
    if not code:
        return ExecutorIdentity(address, "")
    found = code_hash(bytes(code))
    if found != EXPECTED_RUNTIME_CODE_HASH:
        return ExecutorIdentity(address, found)  # other code: its functions mean nothing, none is called
    functions = w3.eth.contract(address=address, abi=executor_abi()).functions
    owner, pool, morpho, weth, router = await asyncio.gather(
        *(read(f"executor.{name}", getattr(functions, name)().call)
          for name in ("owner", "pool", "morpho", "weth", "swapRouter"))
    )
    return ExecutorIdentity(address, found, owner, pool, morpho, weth, router)


def identity_problems(found: ExecutorIdentity, *, owner: str, pool: str, morpho: str | None, weth: str,
                      swap_router: str) -> list[str]:
    """Why ``found`` is not the wallet's executor on the configured protocols (empty: it is)."""
    if not found.code_hash:
        return [f"no contract code at {found.address}"]
    if found.code_hash != EXPECTED_RUNTIME_CODE_HASH:
        return [f"runtime code hash {found.code_hash} is not the shipped LeverageExecutor's "
                f"{EXPECTED_RUNTIME_CODE_HASH}"]
    expected = {"owner": owner, "pool": pool, "morpho": morpho or ZERO_ADDRESS, "weth": weth,
                "swap router": swap_router}
    actual = {"owner": found.owner, "pool": found.pool, "morpho": found.morpho, "weth": found.weth,
              "swap router": found.swap_router}
    return [f"{k} {actual[k]} (expected {v})" for k, v in expected.items() if actual[k].lower() != v.lower()]
