"""The shipped LeverageExecutor identity matches its source: the pinned runtime code hash and the
shipped ABI are what solc-js (the pinned npm version) builds from contracts/LeverageExecutor.sol, and
the code the local stack deploys is that code (storage, not immutables: every deployment is equal)."""

from __future__ import annotations

from venues.onchain.devstack.peers import PeersMissing
from venues.onchain.executor_code import EXPECTED_RUNTIME_CODE_HASH, code_hash, compile_executor, executor_abi


def test_the_pinned_hash_and_abi_are_the_sources(defi_session):
    try:
        compiled = compile_executor()
    except PeersMissing as exc:  # pragma: no cover - defi_session already skipped or failed
        raise AssertionError(str(exc)) from None
    assert code_hash(compiled.runtime) == EXPECTED_RUNTIME_CODE_HASH, (
        "contracts/LeverageExecutor.sol changed: update EXPECTED_RUNTIME_CODE_HASH and "
        "LeverageExecutor.abi.json in venues/onchain (and redeploy executors)")
    assert compiled.abi == executor_abi()
    deployed = defi_session.chain.rpc("eth_getCode", defi_session.stack.executor, "latest")
    assert code_hash(deployed) == EXPECTED_RUNTIME_CODE_HASH  # no immutables patched in at deployment
