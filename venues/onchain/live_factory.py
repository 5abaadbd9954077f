"""Build the wallet's write side for a live session: ``OnchainExecution`` wrapped as the engine's
``OnchainInstructionPort``. Everything from configuration and the keyring (see venues.onchain.execution).

The native ETH a step never spends (its gas reserve) is derived from the environment's fee cap: enough
for ``RESERVE_GAS_UNITS`` of gas at the highest fee the transaction manager may pay, so the wallet can
always pay for an unwind or a cancel.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Mapping

from engine.domain.onchain_ports import NonceLedgerPort
from venues.credentials import CredentialStore
from venues.onchain.execution import build_onchain_execution
from venues.onchain.live_port import ChainInstructionExecutor
from venues.onchain.reader import RPC_VENUE

VENUES = ("aave_v3", "morpho", "uniswap", "lido", "etherfi", "alchemy")
RESERVE_GAS_UNITS = 1_500_000  # an executor entry (~0.7 M) plus approvals and a full exit
CHAIN = "ethereum"


def gas_reserve_eth(venue_configs: Mapping[str, Any], environment: str) -> Decimal:
    tx = getattr(venue_configs[RPC_VENUE].environments, environment).transactions
    return Decimal(repr(float(tx.max_fee_per_gas_gwei))) * Decimal(RESERVE_GAS_UNITS) / Decimal(10) ** 9


async def build_live_onchain(environment: str, *, store: CredentialStore, ledger: NonceLedgerPort,
                             venue_configs: Mapping[str, Any] | None = None,
                             timeout_s: float = 10.0,
                             on_close: Callable[[], None] | None = None) -> ChainInstructionExecutor:
    """``on_close`` runs after the RPC sessions are closed (the caller's nonce ledger)."""
    if venue_configs is None:
        from engine.config import load_venue_configs

        venue_configs = load_venue_configs(VENUES)
    execution = await build_onchain_execution(venue_configs, environment, store, ledger, timeout_s=timeout_s)
    try:
        return ChainInstructionExecutor(
            execution, chain=CHAIN, emode_category=int(venue_configs["aave_v3"].emode.category_id),
            gas_reserve_eth=gas_reserve_eth(venue_configs, environment), on_close=on_close)
    except BaseException:
        await execution.close()
        raise
