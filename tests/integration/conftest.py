"""Fixtures for the integration tests: the loopback exchange emulator, anvil + solc-js contracts, and
keyring stores. A missing peer SKIPs with the reason, except under BASIS_REQUIRE_PEERS=1 (CI), where it
FAILs: CI installs every peer, so a missing one is a broken install, not an optional extra."""
from __future__ import annotations

import os

import pytest

from tests.integration.chain.anvil import Anvil
from tests.integration.chain.configs import local_venue_configs
from tests.integration.chain.defi import defi, defi_session, execution, ledger  # noqa: F401 - fixtures
from tests.integration.chain.deploy import Deployment, deploy_all
from tests.integration.chain.solidity import Artifact, PeerUnavailable, compile_contracts
from tests.integration.emulator import ExchangeEmulator, store_test_keys
from tests.integration.memory_keyring import MemoryKeyring
from venues.credentials import CredentialStore, KeyringUnavailable

SEPOLIA = 11155111


def require_peers() -> bool:
    return os.environ.get("BASIS_REQUIRE_PEERS") == "1"


def peer_unavailable(reason: str) -> None:
    if require_peers():
        pytest.fail(f"{reason} (BASIS_REQUIRE_PEERS=1: CI must provide every peer)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    try:
        return compile_contracts()
    except PeerUnavailable as exc:
        peer_unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def anvil():
    try:
        node = Anvil(SEPOLIA).start()
    except PeerUnavailable as exc:
        peer_unavailable(str(exc))
        raise
    yield node
    node.stop()


@pytest.fixture(scope="session")
def deployment(anvil: Anvil, artifacts: dict[str, Artifact]) -> Deployment:
    return deploy_all(anvil.url, artifacts)


@pytest.fixture
def chain(deployment: Deployment) -> Deployment:
    """The deployment with a fresh block (the block-age check reads the latest block's time)."""
    deployment.mine()
    return deployment


@pytest.fixture
def local_configs(chain: Deployment) -> dict:
    return local_venue_configs(chain, "testnet")


@pytest.fixture
def memory_store() -> CredentialStore:
    return CredentialStore(MemoryKeyring())


@pytest.fixture
def cex_store(memory_store: CredentialStore) -> CredentialStore:
    """The emulator's test keys for every CEX in both environments."""
    return store_test_keys(memory_store)


@pytest.fixture
async def emulator():
    emu = ExchangeEmulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def os_keyring() -> CredentialStore:
    """The real OS keyring (gnome-keyring in tests/run.sh's D-Bus session)."""
    store = CredentialStore()
    try:
        store.describe_backend()
    except KeyringUnavailable as exc:
        peer_unavailable(f"no OS keyring backend: {exc.message} (run the tests through tests/run.sh)")
    return store
