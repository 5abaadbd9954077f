"""Wiring in one place: which venue implementations back the engine's ports.

main.py builds every service here, for the headless commands and for the app (`app_services`, handed
to the window), so a backtest in the GUI and on the command line run exactly the same code, and
nothing under app/ or engine/ ever picks a venue implementation itself (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

import functools
from pathlib import Path

from engine.data import HistoricalDataProvider
from engine.services.backtest import BacktestService
from venues.simulated.venue import ExecutionRejected, SimulatedVenues

REPO_ROOT = Path(__file__).resolve().parent
DATA_DIR = REPO_ROOT / "data"


def backtest_service(data_dir: Path = DATA_DIR, cache_dir: Path | None = None) -> BacktestService:
    provider = HistoricalDataProvider(data_dir, cache_dir)
    return BacktestService(provider, SimulatedVenues, ExecutionRejected)


def live_trading_service(*, store=None, url_overrides: dict[str, str] | None = None,
                         journal_dir: Path | None = None, data_dir: Path = DATA_DIR, cache_dir: Path | None = None,
                         timeout_s: float = 10.0, rate_limit_ms: int | None = None, retry=None,
                         check_timeout_s: float = 5.0, onchain_configs=None, transfers=None,
                         transfer_timeout_s: float | None = None):
    """The live/paper trading service wired to the real venues.

    - CEX adapters from configs/venues + the environment's endpoints; keys from the OS keyring
      (``store``: a venues.credentials.CredentialStore; the OS keyring by default). Paper sessions
      build public-only adapters (no exchange key is read).
    - Modes with on-chain legs read the chain each tick (AAVE indices, LST rates, gas) through the RPC
      venue's ``rpc_url`` in the keyring; without one they run on the last historical values, and say so.
    - The journal in the platformdirs user data dir (``journal_dir`` overrides: tests).
    - Production live runs check-venues (venues.checks) first and refuses on any FAIL.
    ``url_overrides`` (venue -> base URL) and ``rate_limit_ms`` point the adapters at the loopback
    emulator in tests and benchmarks.
    - Live modes with on-chain legs get the wallet's write side (venues.onchain.live_factory: key and
      RPC from the keyring, the nonce ledger in the environment's journal); ``onchain_configs``
      replaces the venue files' contract addresses (the local DeFi stack in tests and demos).
    - ``transfers``: the transfer port (engine.domain.onchain_live.TransferPort). Without one, each
      live session with on-chain legs gets the journaled transfer service (venues.transfer_factory:
      the wallet's key and RPC and the session's exchange keys from the keyring, configs/transfers.yaml)
      behind engine.services.live.transfer_port.ServiceTransfers, each transfer step given
      ``transfer_timeout_s`` to arrive (None: the environment's ``transfer_timeout_s`` in
      configs/transfers.yaml; a test or a demo may pass its own); where those are missing the
      session keeps NoTransfers (a transfer step refused plainly) and its warnings say why.
    """
    import asyncio

    from engine.config import load_venue_config
    from engine.services.live import LiveStartError, LiveTradingService
    from engine.services.live.journal import Journal, default_journal_path
    from venues.blocking import run_abandonable
    from venues.cex.account import RetryPolicy
    from venues.cex.factory import build_cex_adapter, required_credential_fields
    from venues.checks import CheckSettings, Status, load_plan, run_checks
    from venues.credentials import CredentialError, CredentialStore

    overrides = dict(url_overrides or {})
    policy = retry if retry is not None else RetryPolicy()

    def get_store() -> CredentialStore:
        nonlocal store
        if store is None:
            store = CredentialStore()
        return store

    async def venue_factory(venue: str, environment: str, *, private: bool, underlyings: list[str]):
        config = load_venue_config(venue)
        credentials = None
        if private:
            ids = [config.ccxt_id] + ([config.ccxt_perp_id] if config.ccxt_perp_id else [])
            required = sorted({f for i in ids for f in required_credential_fields(i)},
                              key=["api_key", "secret", "passphrase"].index)
            try:
                credentials = await run_abandonable(get_store().load, environment, venue, name="keyring-load")
            except CredentialError as exc:
                raise LiveStartError(f"{venue}: cannot read the keyring: {exc.message}"
                                     + (f" ({exc.hint})" if exc.hint else "")) from None
            missing = credentials.missing(required)
            if missing:
                raise LiveStartError(
                    f"{venue}: no {', '.join(missing)} stored for {environment}: "
                    f"python main.py credentials set --env {environment} --venue {venue} --field {missing[0]}")
        return await asyncio.to_thread(
            build_cex_adapter, venue, config, environment, credentials, url_override=overrides.get(venue),
            timeout_s=timeout_s, retry=policy, underlyings=underlyings, rate_limit_ms=rate_limit_ms)

    async def checks_runner(mode: str, environment: str) -> list[str]:
        plan = await load_plan(mode, environment)
        results = await run_checks(plan, store=get_store(),
                                   settings=CheckSettings(timeout_s=check_timeout_s, rate_limit_ms=rate_limit_ms),
                                   url_overrides=overrides)
        return [f"{r.venue} {r.check}: {r.message}" for r in results if r.status is Status.FAIL]

    async def chain_market_factory(venue_configs, environment: str, needs):
        from engine.domain.chain_market import ChainFeedUnavailable
        from venues.onchain.factory import OnchainConfigError, expected_chain_id
        from venues.onchain.market_reader import connect_chain_market
        from venues.onchain.reader import RPC_VENUE, ChainReader

        if onchain_configs is not None:
            # the same contract addresses as the write side (the local DeFi stack in tests and demos):
            # reads and writes must see one chain
            venue_configs = {**venue_configs, **onchain_configs}
        rpc_config = venue_configs[RPC_VENUE] if RPC_VENUE in venue_configs else load_venue_config(RPC_VENUE)
        try:
            credentials = await asyncio.wait_for(
                run_abandonable(get_store().load, environment, RPC_VENUE, ["rpc_url"], name="keyring-load"), timeout_s)
        except CredentialError as exc:
            return ChainFeedUnavailable(f"cannot read the keyring: {exc.message}")
        except TimeoutError:
            return ChainFeedUnavailable(f"the keyring did not answer within {timeout_s:g} s")
        rpc_url = credentials.reveal("rpc_url")
        if rpc_url is None:
            return ChainFeedUnavailable(f"no rpc_url stored for {RPC_VENUE} ({environment}): python main.py credentials "
                                        f"set --env {environment} --venue {RPC_VENUE} --field rpc_url")
        reader = ChainReader(rpc_url, tokens={}, contracts={}, timeout_s=timeout_s, retry=policy, venue=RPC_VENUE,
                             secrets=credentials.secret_values())
        try:
            return await connect_chain_market(reader, venue_configs, environment, needs,
                                              expected_chain_id=expected_chain_id(rpc_config, environment),
                                              block_age_limit_s=rpc_config.max_block_age_seconds, rpc_venue=RPC_VENUE)
        except OnchainConfigError as exc:
            await reader.close()
            return ChainFeedUnavailable(str(exc))

    def journal_factory(environment: str) -> Journal:
        path = (journal_dir / f"journal-{environment}.sqlite3") if journal_dir is not None \
            else default_journal_path(environment)
        return Journal(path)

    async def onchain_factory(environment: str):
        from engine.services.live.nonce_ledger import NonceLedger
        from venues.onchain.live_factory import build_live_onchain

        path = (journal_dir / f"journal-{environment}.sqlite3") if journal_dir is not None \
            else default_journal_path(environment)
        ledger = NonceLedger(path)
        try:
            return await build_live_onchain(environment, store=get_store(), ledger=ledger,
                                            venue_configs=onchain_configs, timeout_s=timeout_s,
                                            on_close=ledger.close)
        except BaseException:
            ledger.close()
            raise

    async def transfer_factory(environment: str, cex_venues):
        from engine.domain.onchain_live import NoTransfers
        from engine.services.live.journal import default_journal_path
        from engine.services.live.transfer_port import ServiceTransfers
        from venues.transfer_factory import build_transfer_service

        path = (journal_dir / f"journal-{environment}.sqlite3") if journal_dir is not None \
            else default_journal_path(environment)
        try:
            service, close = await build_transfer_service(
                environment, get_store(), cex_venues=list(cex_venues), journal_path=path,
                url_overrides=overrides, timeout_s=timeout_s, retry=policy, rate_limit_ms=rate_limit_ms,
                venue_configs=onchain_configs)
        except Exception as exc:  # noqa: BLE001 - no wallet key, no transfers.yaml entry, no exchange key: said
            return NoTransfers(), f"transfers: no transfer service ({exc})"
        wallet = service.wallet
        return ServiceTransfers(service, environment=environment, timeout_s=transfer_timeout_s,
                                gas_paid=getattr(wallet, "gas_paid", None), close=close), ""

    return LiveTradingService(HistoricalDataProvider(data_dir, cache_dir), venue_factory, SimulatedVenues,
                              ExecutionRejected, journal_factory, checks_runner,
                              chain_market_factory=chain_market_factory, onchain_factory=onchain_factory,
                              transfers=transfers, transfer_factory=transfer_factory)


def app_services(*, store=None, url_overrides: dict[str, str] | None = None, check_settings=None,
                 journal_dir: Path | None = None, data_dir: Path = DATA_DIR, cache_dir: Path | None = None,
                 backtest: BacktestService | None = None, **live_options):
    """Everything the desktop app runs on, built once (no venue is contacted until it is used).

    ``store``: the keyring store the credentials dialog, the checks and live sessions share (the OS
    keyring by default); ``url_overrides`` and ``check_settings`` point the checks and the live
    adapters at the loopback emulator in tests; ``live_options`` go to `live_trading_service`.
    """
    from app.controllers.venues import VenueAccess
    from app.services import AppServices
    from venues.checks import CheckSettings
    from venues.credentials import CredentialStore

    store = store if store is not None else CredentialStore()
    settings = check_settings if check_settings is not None else CheckSettings()
    live_options.setdefault("rate_limit_ms", settings.rate_limit_ms)
    live = live_trading_service(store=store, url_overrides=url_overrides, journal_dir=journal_dir,
                                data_dir=data_dir, cache_dir=cache_dir, **live_options)
    return AppServices(backtest=backtest if backtest is not None else backtest_service(data_dir, cache_dir),
                       live=live, venues=VenueAccess(store, dict(url_overrides or {}), settings),
                       lab_worker_factory=functools.partial(backtest_service, data_dir, cache_dir))
