"""Build the TransferService of one environment from configuration and the keyring.

CEX sides: each named exchange's spot/funding account through ccxt, keys from the keyring (the
venue's ``api_key``/``secret``/``passphrase``). The wallet side: the wallet's TxManager (``rpc_url``
and ``private_key`` of the RPC venue in the keyring) and the token addresses of the on-chain venue
files (the override file of ``python main.py devchain`` points them at a local chain). The journal is
the environment's live journal file, so transfers sit beside the orders and transactions they fund.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.services.live.transfers import TransferJournal, TransferService, load_transfer_settings
from venues.cex.account import RetryPolicy
from venues.cex.transfers import CcxtTransfers
from venues.credentials import CredentialStore

log = logging.getLogger(__name__)
ONCHAIN_VENUES = ("aave_v3", "lido", "etherfi", "morpho", "uniswap", "alchemy")


class TransferSetupError(ValueError):
    """A missing key or config that keeps the transfer service from being built (one line, no secret)."""


async def build_transfer_service(environment: str, store: CredentialStore, *, cex_venues: Sequence[str],
                                 journal_path: Path, wallet: bool = True, override_file: Path | None = None,
                                 url_overrides: Mapping[str, str] | None = None,
                                 extra_whitelist: Mapping[str, str] | None = None, timeout_s: float = 10.0,
                                 retry: RetryPolicy = RetryPolicy(), rate_limit_ms: int | None = None,
                                 venue_configs: Mapping[str, Any] | None = None
                                 ) -> tuple[TransferService, Any]:
    """(the service, an async ``close()`` releasing every connection it opened). ``venue_configs``:
    the on-chain venues' validated configs when the caller already has them (a live service pointed at
    a local chain), instead of reading the venue files with ``override_file``."""
    from engine.config import load_venue_config
    from engine.config.documents import load_venue_configs
    from engine.services.live.nonce_ledger import NonceLedger
    from venues.blocking import run_abandonable
    from venues.cex.factory import build_cex_adapter, required_credential_fields
    from venues.onchain.execution import build_onchain_execution
    from venues.onchain.factory import address_tables
    from venues.onchain.transfers import WalletTransfers

    settings = load_transfer_settings(environment)
    if extra_whitelist:
        settings = settings.with_whitelist(extra_whitelist)
    closers: list[Any] = []
    cex: dict[str, CcxtTransfers] = {}
    try:
        for venue in cex_venues:
            config: Any = load_venue_config(venue)
            if getattr(config, "kind", None) != "cex":
                raise TransferSetupError(f"{venue} is not an exchange (configs/venues/{venue}.yaml kind)")
            credentials = await run_abandonable(store.load, environment, venue, name="keyring-load")
            missing = credentials.missing(required_credential_fields(config.ccxt_id))
            if missing:
                raise TransferSetupError(f"{venue}: no {', '.join(missing)} stored for {environment}: python main.py "
                                         f"credentials set --env {environment} --venue {venue} --field {missing[0]}")
            adapter = await asyncio.to_thread(
                build_cex_adapter, venue, config, environment, credentials,
                url_override=(url_overrides or {}).get(venue), timeout_s=timeout_s, retry=retry,
                rate_limit_ms=rate_limit_ms)
            closers.append(adapter.close)
            cex[venue] = CcxtTransfers(adapter.accounts[0])
        wallet_port = None
        if wallet:
            configs = venue_configs if venue_configs is not None else \
                await asyncio.to_thread(load_venue_configs, ONCHAIN_VENUES, override_file=override_file)
            ledger = NonceLedger(journal_path)
            closers.append(_sync(ledger.close))
            execution = await build_onchain_execution(configs, environment, store, ledger, timeout_s=timeout_s,
                                                      retry=retry)
            closers.append(execution.close)
            tokens, _ = address_tables(configs, environment)
            plain = {symbol: address for symbol, address in tokens.items() if "." not in symbol and address}
            wallet_port = WalletTransfers(execution.ctx, plain, confirmations=settings.confirmations)
        journal = TransferJournal(journal_path)
        closers.append(_sync(journal.close))
    except BaseException:
        await _close_all(closers)
        raise
    return TransferService(journal, cex, wallet_port, settings), lambda: _close_all(closers)


def _sync(fn: Any) -> Any:
    async def run() -> None:
        fn()
    return run


async def _close_all(closers: list[Any]) -> None:
    for close in reversed(closers):
        try:
            await close()
        except Exception as exc:  # noqa: BLE001 - closing goes on: one failure must not leave the rest open
            log.warning("transfers: closing a connection failed: %s", exc)
