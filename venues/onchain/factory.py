"""Build a ChainReader for an environment from the on-chain venue configs and the rpc venue's keys.

Tokens and contracts of every on-chain venue file are merged into one table each, namespaced
``<venue>.<name>`` (``aave_v3.pool``, ``lido.wstETH``) since roles repeat and testnets deploy different
token contracts per protocol; plain token symbols are kept where all venues agree.
"""
from __future__ import annotations

from typing import Any, Mapping

from venues.cex.account import RetryPolicy
from venues.credentials import VenueCredentials
from venues.onchain.reader import RPC_VENUE, ChainReader


class OnchainConfigError(ValueError):
    """Venue files disagree or lack a key needed to read the chain (names file and key)."""


def _env(config: Any, environment: str, venue: str) -> Any:
    envs = getattr(config, "environments", None)
    env = getattr(envs, environment, None) if envs is not None else None
    if env is None:
        raise OnchainConfigError(f"configs/venues/{venue}.yaml: missing key 'environments.{environment}'")
    return env


def address_tables(venue_configs: Mapping[str, Any], environment: str
                   ) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(tokens, contracts) for ``environment`` over the on-chain venues.

    Both are keyed ``<venue>.<name>`` (``aave_v3.WETH``, ``lido.wsteth``). Tokens also get a plain
    symbol key (``WETH``) when every venue that lists the symbol agrees on its address: on Sepolia,
    AAVE's faucet WETH and Uniswap's WETH9 differ, so there only the qualified names exist.
    """
    tokens: dict[str, str | None] = {}
    by_symbol: dict[str, set[str]] = {}
    contracts: dict[str, str | None] = {}
    for venue, config in venue_configs.items():
        if getattr(config, "kind", None) != "onchain":
            continue
        env = _env(config, environment, venue)
        for role, address in env.contracts.items():
            contracts[f"{venue}.{role}"] = address
        for symbol, address in env.tokens.items():
            tokens[f"{venue}.{symbol}"] = address
            if address is not None:
                by_symbol.setdefault(symbol, set()).add(address.lower())
    for symbol, addresses in by_symbol.items():
        if len(addresses) == 1:
            tokens[symbol] = next(iter(addresses))
    return tokens, contracts


def expected_chain_id(rpc_config: Any, environment: str) -> int:
    return int(_env(rpc_config, environment, RPC_VENUE).chain_id)


def build_chain_reader(venue_configs: Mapping[str, Any], environment: str, credentials: VenueCredentials, *,
                       timeout_s: float = 10.0, retry: RetryPolicy = RetryPolicy()) -> ChainReader:
    """A reader on the RPC URL stored for the rpc venue (keyring ``rpc_url``) in ``environment``."""
    rpc_url = credentials.reveal("rpc_url")
    if rpc_url is None:
        raise OnchainConfigError(f"no rpc_url stored for {credentials.venue} ({environment})")
    tokens, contracts = address_tables(venue_configs, environment)
    return ChainReader(rpc_url, tokens=tokens, contracts=contracts, timeout_s=timeout_s, retry=retry,
                       venue=credentials.venue, secrets=credentials.secret_values())
