"""Venue configs pointing at the contracts deployed on the local anvil chain (same files, same models:
only ``environments.<env>.contracts/tokens`` are replaced by the deployed addresses)."""
from __future__ import annotations

from typing import Any

from engine.config import load_venue_config
from tests.integration.chain.deploy import Deployment

ONCHAIN = ("aave_v3", "lido", "etherfi", "morpho", "instadapp", "uniswap")


def local_venue_configs(d: Deployment, environment: str = "testnet", chain_id: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ONCHAIN:
        config = load_venue_config(name)
        env = getattr(config.environments, environment)
        contracts = {role: d.contracts[name].get(role) for role in env.contracts}
        tokens = {symbol: d.tokens.get(symbol) for symbol in env.tokens}
        new_env = env.model_copy(update={"contracts": contracts, "tokens": tokens,
                                         **({"chain_id": chain_id} if chain_id else {})})
        out[name] = config.model_copy(update={
            "environments": config.environments.model_copy(update={environment: new_env})})
    return out
