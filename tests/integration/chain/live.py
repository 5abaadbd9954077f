"""Live sessions on the loopback exchange emulator + the local DeFi stack.

``LoopbackTransfers`` is the tests' TransferPort (the transfer service is another module's job): a
wallet -> CEX move is a real ERC-20 transfer of the wallet's USDT to a deposit address on the local
chain, signed and confirmed by the wallet's own TxManager, then credited to the venue account at the
emulator; CEX -> wallet debits the emulator account and the deployer pays the USDT out on chain.
Both ends are real state the session's reconciliation reads back.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from bootstrap import DATA_DIR, live_trading_service
from engine.config import load_config
from engine.data import HistoricalDataProvider
from engine.domain.onchain_live import NoTransfers, TransferReceipt
from engine.services.run_params import build_run_params, data_requirements
from tests.integration.chain.defi import FAST_TRANSACTIONS, WALLET, WALLET_KEY, LocalStack
from tests.integration.emulator import ExchangeEmulator
from venues.cex.account import RetryPolicy
from venues.credentials import CredentialStore
from venues.onchain.devstack.overrides import local_venue_configs

DEPOSIT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # anvil account 3: the exchanges' deposit address
MARGIN_ACCOUNT = {"binance": "usdm", "bybit": "unified", "okx": "trading"}
EMULATOR_ETH = Decimal(2500)


def store_wallet(store: CredentialStore, defi: LocalStack) -> CredentialStore:
    store.set("testnet", "alchemy", "rpc_url", defi.url)
    store.set("testnet", "alchemy", "private_key", WALLET_KEY)
    store.set("testnet", "alchemy", "wallet_address", WALLET)
    store.set("testnet", "alchemy", "executor_address", defi.stack.executor)
    return store


def onchain_service(emulator: ExchangeEmulator, store: CredentialStore, defi: LocalStack, journal_dir: Path,
                    cache_dir: Path, transfers=None):
    """``transfers``: the session's TransferPort (None: NoTransfers, not the keyring-built service)."""
    return live_trading_service(
        store=store_wallet(store, defi), url_overrides={v: emulator.base_url(v) for v in emulator.venues},
        journal_dir=journal_dir, data_dir=DATA_DIR, cache_dir=cache_dir, timeout_s=5.0, rate_limit_ms=1,
        retry=RetryPolicy(attempts=2, base_delay_s=0.01), check_timeout_s=2.0,
        onchain_configs=local_venue_configs(defi.stack, transactions=FAST_TRANSACTIONS),
        transfers=transfers if transfers is not None else NoTransfers())


@pytest.fixture(name="make_service")
async def onchain_service_factory(emulator, cex_store, defi, tmp_path, cache_dir):
    """``make_service(transfers=None)``: on-chain live services on the test's emulator and stack,
    closed at the test's end (import it into a test module to use it)."""
    made = []

    def build(transfers=None):
        svc = onchain_service(emulator, cex_store, defi, tmp_path, cache_dir, transfers)
        made.append(svc)
        return svc
    yield build
    for svc in made:
        await svc.close()


def align_stack(defi: LocalStack, mode: str, cache_dir: Path) -> dict[str, float]:
    """Put the stack's oracle, LST rates and pools at the prices the live feed values with: ETH at the
    emulator's price, the LSTs at the last shipped hour's oracle and market rates (the feed holds
    on-chain series there). Returns those rates."""
    params = build_run_params(load_config(mode))
    seed = HistoricalDataProvider(DATA_DIR, cache_dir).load(data_requirements(params))
    cols = seed.columns
    rates = {}
    admin = defi.admin
    for lst in ("wstETH", "weETH"):
        oracle = cols.get(f"lst.{lst}.oracle")
        market = cols.get(f"lst.{lst}.market")
        if oracle is None:
            continue
        o, m = Decimal(repr(float(oracle[-1]))), Decimal(repr(float(market[-1])))
        admin.set_lst_rate(lst, o)
        admin.set_pool_price(lst, "WETH", m)
        rates[lst] = float(o)
    admin.set_prices(EMULATOR_ETH, {lst: Decimal(repr(r)) for lst, r in rates.items()})
    admin.set_pool_price("WETH", "USDT", EMULATOR_ETH)
    return rates


@dataclasses.dataclass
class LoopbackTransfers:
    """TransferPort over the local chain and the emulator (see the module docstring)."""

    defi: LocalStack
    emulator: ExchangeEmulator
    moved: list = dataclasses.field(default_factory=list)

    async def transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> TransferReceipt:
        if asset != "USDT":
            raise ValueError(f"the loopback transfers move USDT only, not {asset}")
        raw = int((amount * Decimal(10) ** 6).to_integral_value(rounding="ROUND_DOWN"))
        sent = Decimal(raw) / Decimal(10) ** 6
        gas = 0.0
        ref = ""
        if source == "wallet":
            # The wallet's own account sends the deposit (anvil holds its key unlocked); the TxManager
            # takes its next nonce from the chain, so the two never collide.
            chain = self.defi.chain
            token = self.defi.stack.contract(chain, "MintableERC20", self.defi.stack.tokens["USDT"])
            receipt = chain.transact(WALLET, token, "transfer", DEPOSIT, raw)
            gas = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16) / 1e18
            ref = receipt["transactionHash"]
        else:
            bal = self.emulator.venues[source].balances[MARGIN_ACCOUNT[source]]
            bal["USDT"] = bal.get("USDT", Decimal(0)) - sent
        if destination == "wallet":
            self.defi.admin.fund(WALLET, usdt=sent)
        else:
            bal = self.emulator.venues[destination].balances[MARGIN_ACCOUNT[destination]]
            bal["USDT"] = bal.get("USDT", Decimal(0)) + sent
        self.moved.append((source, destination, sent))
        return TransferReceipt(asset, source, destination, sent, sent, reference=ref, gas_eth=gas)
