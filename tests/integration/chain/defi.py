"""Fixtures for the local DeFi stack (real AAVE v3, Uniswap v3, Morpho Blue bytecode on anvil).

One anvil and one deployment per test session; every test runs on an ``evm_snapshot`` and is
reverted afterwards (automine back on, mempool emptied), so tests cannot see each other's state.
Each test gets a fresh nonce ledger (a reverted chain forgets nonces a shared ledger would remember).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.services.live.nonce_ledger import NonceLedger
from tests.integration.memory_keyring import MemoryKeyring
from venues.credentials import CredentialStore
from venues.onchain.devstack.admin import StackAdmin
from venues.onchain.devstack.anvil import Anvil
from venues.onchain.devstack.deploy import DevStack, compile_local_contracts, deploy_stack
from venues.onchain.devstack.overrides import LOCAL_TRANSACTIONS, local_venue_configs
from venues.onchain.devstack.peers import PeersMissing
from venues.onchain.devstack.rpc import DevChain
from venues.onchain.execution import OnchainExecution, build_onchain_execution

SEPOLIA = 11155111
# anvil's published development accounts (mnemonic "test test ... junk"): public test data.
WALLET_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # account 1
WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
FAST_TRANSACTIONS = {**LOCAL_TRANSACTIONS, "poll_interval_s": 0.05, "stuck_after_s": 30.0}


def _unavailable(reason: str) -> None:
    if os.environ.get("BASIS_REQUIRE_PEERS") == "1":
        pytest.fail(f"{reason} (BASIS_REQUIRE_PEERS=1: CI must provide every peer)", pytrace=False)
    pytest.skip(reason)


@dataclass
class LocalStack:
    anvil: Anvil
    stack: DevStack
    chain: DevChain
    admin: StackAdmin

    @property
    def url(self) -> str:
        return self.anvil.url

    def configs(self, **transactions: Any) -> dict:
        return local_venue_configs(self.stack, transactions={**FAST_TRANSACTIONS, **transactions})


@pytest.fixture(scope="session")
def defi_session():
    node = None
    try:
        compiled = compile_local_contracts()
        node = Anvil(SEPOLIA).start()
        stack = deploy_stack(node.url, compiled=compiled)
    except BaseException as exc:
        if node is not None:
            node.stop()  # never leave an anvil behind a failed deployment
        if isinstance(exc, PeersMissing):
            _unavailable(str(exc))
        raise
    chain = DevChain(node.url)
    try:
        yield LocalStack(node, stack, chain, StackAdmin(stack, chain))
    finally:
        chain.close()
        node.stop()


@pytest.fixture
def defi(defi_session: LocalStack):
    """The shared deployment, reverted to its deployed state after the test."""
    chain = defi_session.chain
    snapshot = chain.snapshot()
    try:
        yield defi_session
    finally:
        chain.rpc("evm_setAutomine", True)
        chain.rpc("anvil_dropAllTransactions")
        assert chain.revert(snapshot), "evm_revert failed: later tests would see this test's state"


def wallet_store(
    url: str, *, key: str = WALLET_KEY, wallet: str | None = WALLET, executor: str | None = None
) -> CredentialStore:
    store = CredentialStore(MemoryKeyring())
    store.set("testnet", "alchemy", "rpc_url", url)
    store.set("testnet", "alchemy", "private_key", key)
    if wallet is not None:
        store.set("testnet", "alchemy", "wallet_address", wallet)
    if executor is not None:
        store.set("testnet", "alchemy", "executor_address", executor)
    return store


@pytest.fixture
def ledger(tmp_path: Path) -> NonceLedger:
    db = NonceLedger(tmp_path / "journal-testnet.sqlite3")
    yield db
    db.close()


async def open_execution(
    defi: LocalStack,
    ledger: NonceLedger,
    *,
    url: str | None = None,
    store: CredentialStore | None = None,
    timeout_s: float = 5.0,
    **transactions: Any,
) -> OnchainExecution:
    return await build_onchain_execution(
        defi.configs(**transactions),
        "testnet",
        store or wallet_store(url or defi.url, executor=defi.stack.executor),
        ledger,
        timeout_s=timeout_s,
    )


@pytest.fixture
async def execution(defi: LocalStack, ledger: NonceLedger):
    ex = await open_execution(defi, ledger)
    try:
        yield ex
    finally:
        await ex.close()
