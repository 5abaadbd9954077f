"""The deployed stack as a configs/venues override: ``venue_overrides:`` for one environment.

Only the roles and tokens the venue files already list are filled (the files' own validation rules
stay in force: the testnet tables must list what production lists); a role the local stack does not
deploy (Lido's withdrawal queue, Instadapp) keeps its null. The RPC venue's transaction settings are
tuned to a local chain that mines on demand: one confirmation, short stuck timer, fast polling.
"""

from __future__ import annotations

from typing import Any

import yaml

from engine.config import load_venue_config, load_venue_configs
from venues.onchain.devstack.deploy import DevStack

ENVIRONMENT = "testnet"  # the stack runs with Sepolia's chain id, so testnet configs validate
PROTOCOL_VENUES = ("aave_v3", "lido", "etherfi", "morpho", "uniswap")
LOCAL_TRANSACTIONS = {
    "gas_limit_margin": 1.2,
    "max_fee_per_gas_gwei": 50.0,
    "max_priority_fee_gwei": 1.0,
    "confirmations": 1,
    "stuck_after_s": 15.0,
    "replacement_fee_bump": 0.125,
    "max_replacements": 3,
    "poll_interval_s": 0.2,
    "private_rpc_url": None,
}


def _roles(stack: DevStack, venue: str) -> dict[str, str]:
    return {
        "aave_v3": stack.aave,
        "lido": stack.lido,
        "etherfi": stack.etherfi,
        "morpho": stack.morpho,
        "uniswap": stack.uniswap,
    }[venue]


def venue_overrides(
    stack: DevStack, environment: str = ENVIRONMENT, transactions: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"venue_overrides": {venue: {"environments": {env: {...}}}}}`` for the deployed stack."""
    out: dict[str, Any] = {}
    for venue in PROTOCOL_VENUES:
        env = getattr(load_venue_config(venue).environments, environment)
        roles = _roles(stack, venue)
        out[venue] = {
            "environments": {
                environment: {
                    "chain_id": stack.chain_id,
                    "contracts": {role: roles.get(role) for role in env.contracts},
                    "tokens": {symbol: stack.tokens.get(symbol) for symbol in env.tokens},
                }
            }
        }
    out["alchemy"] = {
        "environments": {
            environment: {
                "chain_id": stack.chain_id,
                "transactions": dict(transactions or LOCAL_TRANSACTIONS),
            }
        }
    }
    return {"venue_overrides": out}


def local_venue_configs(
    stack: DevStack, environment: str = ENVIRONMENT, transactions: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The validated venue configs of every on-chain venue, pointing at the stack."""
    overrides = venue_overrides(stack, environment, transactions)
    return load_venue_configs((*PROTOCOL_VENUES, "instadapp", "alchemy"), overrides=overrides)


def overrides_yaml(stack: DevStack, environment: str = ENVIRONMENT) -> str:
    header = (
        f"# Local DeFi stack on {stack.url} (chain id {stack.chain_id}), "
        "written by `python main.py devchain`.\n"
        f"# Use with --config; the wallet is {stack.wallet} (anvil account 1).\n"
    )
    return header + yaml.safe_dump(venue_overrides(stack, environment), sort_keys=False)
