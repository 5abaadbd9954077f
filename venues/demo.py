"""The demo's venues: the loopback exchange emulator and the local DeFi stack, with keys stored.

``python main.py demo`` (app/demo.py) uses this to give a newcomer something real to trade against
within a minute of installing, without an exchange account or a chain of their own:

- anvil with the real AAVE v3, Uniswap v3, Morpho Blue bytecode and the project's LSTs (the same
  deployment as ``python main.py devchain``), mining a block every second once deployed; the wallet
  is anvil's account 1 (a published development key) with ETH and USDT;
- the exchange emulator (Binance, Bybit, OKX on 127.0.0.1, checking signatures like the venues do)
  on its own thread and event loop, its wallets bridged to the chain (withdrawals paid by a hot
  wallet, anvil's account 2; deposits credited after confirmations);
- the emulator's test keys and the chain's rpc_url and wallet key stored for the testnet
  environment in the OS keyring under a separate service prefix (``basis-workstation-demo/...``),
  so an operator's own testnet keys are never read or overwritten. Without a usable OS keyring they
  go to an in-memory store, and everything that shows the store says so.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from jaraco.classes import properties
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from venues.credentials import SERVICE_PREFIX, CredentialStore, KeyringUnavailable, check_backend

ENVIRONMENT = "testnet"
DEMO_PREFIX = f"{SERVICE_PREFIX}-demo"
SEPOLIA = 11155111
# anvil's published development accounts (mnemonic "test test ... junk"): public, never for real funds
WALLET_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"      # account 1
HOT_WALLET_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # account 2
BLOCK_SECONDS = 1
CONFIRMATIONS = 2


class _NeverSelected(KeyringBackend):
    """A backend only ever passed explicitly (every subclass registers itself with keyring; a viable
    priority would make keyring pick it for the whole process)."""

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("the demo's keyring is passed explicitly, never selected")


class DemoKeyring(_NeverSelected):
    """The OS keyring, with every service renamed ``basis-workstation-demo/<env>/<venue>``."""

    def __init__(self, inner: KeyringBackend) -> None:
        super().__init__()
        self.inner = inner

    @staticmethod
    def _service(service: str) -> str:
        return DEMO_PREFIX + service.removeprefix(SERVICE_PREFIX) if service.startswith(SERVICE_PREFIX) else service

    def get_password(self, service: str, username: str) -> str | None:
        return self.inner.get_password(self._service(service), username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.inner.set_password(self._service(service), username, password)

    def delete_password(self, service: str, username: str) -> None:
        self.inner.delete_password(self._service(service), username)


class InMemoryDemoKeyring(_NeverSelected):
    """Where the demo keys go when no OS keyring is usable: this process only, forgotten on exit."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


def demo_store(inner: KeyringBackend | None = None) -> tuple[CredentialStore, str]:
    """(the store, what it is for people). The OS keyring under the demo prefix when usable."""
    import keyring

    backend = inner if inner is not None else keyring.get_keyring()
    try:
        check_backend(backend)
        store = CredentialStore(DemoKeyring(backend))
        store.describe_backend()
        probe = ("basis-workstation-demo-probe", "probe")
        backend.set_password(*probe, "ok")           # a locked or broken keyring fails here, not later
        backend.delete_password(*probe)
        return store, f"OS keyring ({type(backend).__module__}.{type(backend).__name__}), services {DEMO_PREFIX}/..."
    except (KeyringUnavailable, Exception) as exc:    # noqa: BLE001 - any failure: the marked fallback
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return (CredentialStore(InMemoryDemoKeyring()),
                f"IN-MEMORY store (no usable OS keyring: {reason}); the demo keys are forgotten on exit")


@dataclass
class DemoVenues:
    """What is running, for the app and for people."""

    rpc_url: str
    chain_id: int
    wallet: str
    hot_wallet: str
    url_overrides: dict[str, str]
    venue_overrides: dict[str, Any]
    store: CredentialStore
    store_description: str
    deposit_addresses: dict[str, str] = field(default_factory=dict)
    deploy_seconds: float = 0.0
    #: the on-chain venues' validated configs on the demo chain: the live write side (and the chain
    #: reads) must use the stack's contracts, not the environment's shipped testnet addresses
    onchain_configs: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {"rpc_url": self.rpc_url, "chain_id": self.chain_id, "wallet": self.wallet,
                "hot_wallet": self.hot_wallet, "exchanges": self.url_overrides, "keys": self.store_description,
                "environment": ENVIRONMENT, "deposit_addresses": self.deposit_addresses,
                "deploy_seconds": round(self.deploy_seconds, 2)}


class _LoopThread:
    """An event loop on its own thread (the emulator must answer while the app's loop is busy)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-exchange-emulator", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class DemoBackends:
    """Start and stop everything the demo runs on (``start()`` blocks for the few seconds it takes)."""

    def __init__(self, *, anvil_port: int = 0, store_factory: Callable[[], tuple[CredentialStore, str]] = demo_store,
                 log: Callable[[str], None] = print) -> None:
        self.anvil_port = anvil_port
        self.store_factory = store_factory
        self.log = log
        self._anvil: Any = None
        self._thread: _LoopThread | None = None
        self._emulator: Any = None
        self._bridge: Any = None
        self.venues: DemoVenues | None = None

    def start(self) -> DemoVenues:
        from venues.emulator import ExchangeEmulator, store_test_keys
        from venues.emulator.chain_bridge import ChainBridge, deposit_address_of
        from venues.onchain.devstack.admin import StackAdmin
        from venues.onchain.devstack.anvil import Anvil
        from venues.onchain.devstack.deploy import compile_local_contracts, deploy_stack
        from venues.onchain.devstack.overrides import local_venue_configs, venue_overrides
        from venues.onchain.devstack.rpc import DevChain

        try:
            compiled = compile_local_contracts()        # PeersMissing (npm packages) before anything starts
            self._anvil = Anvil(SEPOLIA, port=self.anvil_port).start()
            stack = deploy_stack(self._anvil.url, compiled=compiled)
            self.log(f"local chain {stack.url}: AAVE v3, Uniswap v3, Morpho Blue, Lido/EtherFi LSTs deployed in "
                     f"{stack.deploy_seconds:.1f}s")
            chain = DevChain(stack.url)
            admin = StackAdmin(stack, chain)
            try:
                from eth_account import Account

                hot_wallet = Account.from_key(HOT_WALLET_KEY).address
                admin.fund(stack.wallet, usdt=Decimal(50_000))
                admin.fund(hot_wallet, usdt=Decimal(1_000_000))
                chain.rpc("evm_setIntervalMining", BLOCK_SECONDS)   # the chain moves: confirmations, gas, indices
            finally:
                admin.close()
            self._thread = _LoopThread()
            self._emulator = ExchangeEmulator()
            self._thread.run(self._emulator.start())
            self._bridge = ChainBridge(stack.url, HOT_WALLET_KEY, {"USDT": stack.tokens["USDT"]},
                                       confirmations=CONFIRMATIONS, poll_s=0.25)
            self._thread.run(self._bridge.start(self._emulator.venues))
            urls = {v: self._emulator.base_url(v) for v in self._emulator.venues}
            self.log(f"exchange emulator on 127.0.0.1:{self._emulator.port} ({', '.join(urls)}), wallets bridged "
                     f"to the chain (deposits credited after {CONFIRMATIONS} blocks)")
            store, description = self.store_factory()
            store_test_keys(store, environments=(ENVIRONMENT,))
            store.set(ENVIRONMENT, "alchemy", "rpc_url", stack.url)
            store.set(ENVIRONMENT, "alchemy", "private_key", WALLET_KEY)
            store.set(ENVIRONMENT, "alchemy", "wallet_address", stack.wallet)
            store.set(ENVIRONMENT, "alchemy", "executor_address", stack.executor)
            self.log(f"demo keys stored for {ENVIRONMENT}: {description}")
            self.venues = DemoVenues(
                rpc_url=stack.url, chain_id=stack.chain_id, wallet=stack.wallet, hot_wallet=hot_wallet,
                url_overrides=urls, venue_overrides=venue_overrides(stack)["venue_overrides"], store=store,
                store_description=description, deposit_addresses={v: deposit_address_of(v) for v in urls},
                deploy_seconds=stack.deploy_seconds, onchain_configs=local_venue_configs(stack))
            return self.venues
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the emulator and the chain (safe to call twice, or after a failed start)."""
        if self._thread is not None:
            for part in (self._bridge, self._emulator):
                if part is not None:
                    try:
                        self._thread.run(part.stop(), timeout_s=10)
                    except Exception as exc:  # noqa: BLE001 - stopping goes on with the rest
                        self.log(f"demo: stopping {type(part).__name__} failed: {exc}")
            self._thread.stop()
            self._thread = self._bridge = self._emulator = None
        if self._anvil is not None:
            self._anvil.stop()
            self._anvil = None
