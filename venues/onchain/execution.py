"""Build the on-chain write side of one environment: TxManager + protocol adapters for the wallet.

Everything comes from configuration and the keyring, nothing is defaulted: the RPC venue's file
gives the chain id and ``environments.<env>.transactions``; the protocol venue files give the
contract and token addresses; the keyring (``basis-workstation/<env>/alchemy``) gives ``rpc_url``
and ``private_key`` (and ``wallet_address``, which must match the key when stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from engine.domain.onchain_ports import NonceLedgerPort, RecoveryReport, TransactionError, TxStage
from venues.blocking import run_abandonable
from venues.cex.account import RetryPolicy
from venues.credentials import CredentialError, CredentialStore
from venues.onchain.aave_v3 import AaveV3Adapter
from venues.onchain.etherfi import EtherFiAdapter
from venues.onchain.factory import OnchainConfigError, address_tables, expected_chain_id
from venues.onchain.executor_code import executor_abi
from venues.onchain.leverage import LeverageExecutorAdapter
from venues.onchain.lido import LidoAdapter
from venues.onchain.program import ProgramRunner
from venues.onchain.reader import RPC_VENUE, ChainReader
from venues.onchain.tx.manager import TxManager
from venues.onchain.tx.reverts import ErrorRegistry
from venues.onchain.tx.settings import TxSettings
from venues.onchain.tx.signer import WalletSigner
from venues.onchain.uniswap import UniswapV3Adapter
from venues.onchain.wallet import WalletContext
from venues.onchain.weth import WethAdapter


@dataclass
class OnchainExecution:
    """The wallet's write side on one chain. ``close()`` releases the RPC sessions."""

    tm: TxManager
    reader: ChainReader
    ctx: WalletContext
    aave: AaveV3Adapter | None
    lido: LidoAdapter | None
    etherfi: EtherFiAdapter | None
    uniswap: UniswapV3Adapter | None
    weth: WethAdapter | None
    recovery: RecoveryReport | None = None
    executor: LeverageExecutorAdapter | None = None  # the wallet's LeverageExecutor, when one is stored
    programs: ProgramRunner | None = None  # pre-sign tickets and execution of multi-call programs

    async def close(self) -> None:
        await self.tm.close()
        await self.reader.close()


def _env(config: Any, environment: str) -> Any:
    return getattr(config.environments, environment)


def _has(env: Any, *roles: str) -> bool:
    return all(env.contracts.get(role) is not None for role in roles)


def build_adapters(
    ctx: WalletContext, venue_configs: Mapping[str, Any], environment: str
) -> tuple[
    AaveV3Adapter | None,
    LidoAdapter | None,
    EtherFiAdapter | None,
    UniswapV3Adapter | None,
    WethAdapter | None,
]:
    """Adapters for every protocol venue whose contracts this environment has (None where it has none)."""
    aave = lido = etherfi = uniswap = weth = None
    if "aave_v3" in venue_configs and _has(_env(venue_configs["aave_v3"], environment), "pool"):
        env = _env(venue_configs["aave_v3"], environment)
        aave = AaveV3Adapter(ctx, env.contracts, env.tokens)
        if env.tokens.get("WETH") is not None:
            weth = WethAdapter(ctx, env.tokens["WETH"])
    if "lido" in venue_configs and _has(_env(venue_configs["lido"], environment), "steth", "wsteth"):
        lido = LidoAdapter(ctx, _env(venue_configs["lido"], environment).contracts)
    if "etherfi" in venue_configs and _has(
        _env(venue_configs["etherfi"], environment), "liquidity_pool", "weeth"
    ):
        env = _env(venue_configs["etherfi"], environment)
        if env.tokens.get("eETH") is not None:
            etherfi = EtherFiAdapter(ctx, env.contracts, env.tokens)
    if (
        "uniswap" in venue_configs
        and _has(_env(venue_configs["uniswap"], environment), "swap_router_02")
        and aave is not None
    ):
        config = venue_configs["uniswap"]
        env = _env(config, environment)
        oracle = aave

        async def oracle_price(token_in: str, token_out: str) -> Decimal:
            return await oracle.oracle_price(token_in) / await oracle.oracle_price(token_out)

        uniswap = UniswapV3Adapter(
            ctx,
            env.contracts,
            env.tokens,
            swap_pools=config.swap_pools,
            max_slippage_bps=config.max_slippage_bps,
            price_source=oracle_price,
        )
    return aave, lido, etherfi, uniswap, weth


def build_executor(
    ctx: WalletContext,
    address: str,
    venue_configs: Mapping[str, Any],
    environment: str,
    adapters: tuple[Any, ...],
) -> LeverageExecutorAdapter:
    """The LeverageExecutor adapter at ``address`` on the environment's AAVE, Uniswap and Morpho."""
    aave, lido, etherfi, uniswap, _ = adapters
    if aave is None or uniswap is None:
        raise OnchainConfigError(
            f"the leverage executor needs AAVE v3 (pool) and Uniswap (swap_router_02) on {environment}: "
            "see configs/venues/aave_v3.yaml and uniswap.yaml"
        )
    quoter = _env(venue_configs["uniswap"], environment).contracts.get("quoter_v2")
    if quoter is None:
        raise OnchainConfigError(
            f"configs/venues/uniswap.yaml: environments.{environment}.contracts.quoter_v2 is needed to size "
            "atomic exits"
        )
    morpho = None
    if "morpho" in venue_configs:
        morpho = _env(venue_configs["morpho"], environment).contracts.get("morpho_blue")
    return LeverageExecutorAdapter(
        ctx, address, aave=aave, uniswap=uniswap, quoter=quoter, morpho=morpho, lido=lido, etherfi=etherfi
    )


async def build_onchain_execution(
    venue_configs: Mapping[str, Any],
    environment: str,
    store: CredentialStore,
    ledger: NonceLedgerPort,
    *,
    timeout_s: float = 10.0,
    retry: RetryPolicy = RetryPolicy(),
    errors: ErrorRegistry | None = None,
    start: bool = True,
) -> OnchainExecution:
    """TxManager and adapters for ``environment``; ``start`` checks the chain and recovers the ledger."""
    if RPC_VENUE not in venue_configs:
        raise OnchainConfigError(f"configs/venues/{RPC_VENUE}.yaml is needed to send transactions")
    rpc_config = venue_configs[RPC_VENUE]
    settings = TxSettings.for_environment(rpc_config, environment)
    try:
        credentials = await run_abandonable(store.load, environment, RPC_VENUE, name="keyring-load")
    except CredentialError as exc:
        raise TransactionError(
            RPC_VENUE,
            TxStage.SIGNING,
            f"cannot read the keyring: {exc.message}",
            operation="load credentials",
        ) from None
    rpc_url = credentials.reveal("rpc_url")
    if rpc_url is None:
        raise OnchainConfigError(
            f"no rpc_url stored for {RPC_VENUE} ({environment}): python main.py credentials "
            f"set --env {environment} --venue {RPC_VENUE} --field rpc_url"
        )
    signer = await run_abandonable(
        WalletSigner.from_keyring, store, environment, RPC_VENUE, name="keyring-key"
    )
    tokens, contracts = address_tables(venue_configs, environment)
    secrets = credentials.secret_values()
    reader = ChainReader(
        rpc_url,
        tokens=tokens,
        contracts=contracts,
        timeout_s=timeout_s,
        retry=retry,
        venue=RPC_VENUE,
        secrets=secrets,
    )
    private = None
    if settings.private_rpc_url is not None:
        private = ChainReader(
            settings.private_rpc_url,
            tokens={},
            contracts={},
            timeout_s=timeout_s,
            retry=retry,
            venue=f"{RPC_VENUE}-private",
            secrets=secrets,
        )
    if errors is None:
        errors = ErrorRegistry([executor_abi()])  # the executor's custom errors, decoded by name
    tm = TxManager(
        reader,
        signer,
        settings,
        ledger,
        chain_id=expected_chain_id(rpc_config, environment),
        errors=errors,
        private_reader=private,
    )
    ctx = WalletContext(tm, reader)
    adapters = build_adapters(ctx, venue_configs, environment)
    executor_address = credentials.reveal("executor_address")
    execution = OnchainExecution(
        tm,
        reader,
        ctx,
        *adapters,
        executor=(
            build_executor(ctx, executor_address, venue_configs, environment, adapters)
            if executor_address
            else None
        ),
        programs=ProgramRunner(ctx),
    )
    if start:
        try:
            execution.recovery = await tm.start()
        except BaseException:
            await execution.close()
            raise
    return execution
