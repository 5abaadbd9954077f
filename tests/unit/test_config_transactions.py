"""Validation of the transaction settings (configs/venues/alchemy.yaml) and the live swap settings
(configs/venues/uniswap.yaml): every key required, contradictions named with file and key."""

from __future__ import annotations

import shutil

from engine.config import CONFIG_ROOT, load_venue_config
from tests.unit.config_copy import edit, venue_errors
from venues.onchain.tx.settings import TxSettings

errors = venue_errors


def test_shipped_settings_convert_to_wei():
    settings = TxSettings.for_environment(load_venue_config("alchemy"), "production")
    assert settings.max_fee_per_gas_wei == 100 * 10**9 and settings.max_priority_fee_wei == 2 * 10**9
    assert settings.confirmations == 3 and settings.replacement_fee_bump == 0.125
    assert settings.gas_limit(100_000) == 125_000 and settings.private_rpc_url is None


def test_a_missing_key_is_an_error_naming_it(root):
    path = root / "venues" / "alchemy.yaml"
    edit(path, "      confirmations: 3               # two blocks on top of the inclusion block\n", "")
    (issue,) = errors("alchemy", root)
    assert issue.file == str(path) and issue.key == "environments.production.transactions.confirmations"


def test_a_bump_below_what_nodes_accept_is_refused(root):
    path = root / "venues" / "alchemy.yaml"
    edit(path, "replacement_fee_bump: 0.125    # +12.5 %", "replacement_fee_bump: 0.05")
    (issue,) = errors("alchemy", root)
    assert issue.key == "environments.production.transactions.replacement_fee_bump"


def test_tip_above_the_cap_is_a_contradiction(root):
    path = root / "venues" / "alchemy.yaml"
    edit(path, "max_priority_fee_gwei: 2.0     # tip ceiling", "max_priority_fee_gwei: 150.0   # tip ceiling")
    (issue,) = errors("alchemy", root)
    assert issue.key == "environments.production.transactions.max_priority_fee_gwei"
    assert "must not exceed max_fee_per_gas_gwei 100.0" in issue.message


def test_private_rpc_must_use_tls_unless_loopback(root):
    path = root / "venues" / "alchemy.yaml"
    edit(path, "private_rpc_url: null          # e.g.", "private_rpc_url: http://relay.example.com  # e.g.")
    (issue,) = errors("alchemy", root)
    assert issue.key == "environments.production.transactions.private_rpc_url" and "TLS" in issue.message
    edit(path, "http://relay.example.com", "http://127.0.0.1:8545")
    assert load_venue_config("alchemy", root).environments.production.transactions.private_rpc_url


def test_swap_pools_name_known_tokens_and_valid_tiers(root):
    path = root / "venues" / "uniswap.yaml"
    edit(path, "  weETH/WETH: 100 ", "  weETH/EIGEN: 100 ")
    issues = errors("uniswap", root)
    assert {i.key for i in issues} == {"swap_pools.weETH/EIGEN"}
    assert "EIGEN is not in environments.production.tokens" in issues[0].message
    shutil.copy(CONFIG_ROOT / "venues" / "uniswap.yaml", path)
    edit(path, "  wstETH/WETH: 100 ", "  wstETH/WETH: 250 ")
    assert any(i.key.startswith("swap_pools") for i in errors("uniswap", root))
