"""Venue and share-class file validation, on a temporary copy of the shipped configs."""

from __future__ import annotations

import pytest

from engine.config import ConfigError, load_config, load_venue_config
from tests.unit.config_copy import edit, venue_errors


def test_inverted_margin_file_from_the_data_pack_is_rejected(root):
    # The data pack's margin file: initial 0.05, maintenance 0.10.
    path = root / "venues" / "binance.yaml"
    edit(path, "initial_margin_ratio: 0.10", "initial_margin_ratio: 0.05")
    edit(path, "maintenance_margin_ratio: 0.05", "maintenance_margin_ratio: 0.10")
    errors = venue_errors("binance", root)
    issue = next(e for e in errors if e.key == "maintenance_margin_ratio")
    assert issue.file == str(path)
    assert (
        issue.message
        == "0.1 must be below initial_margin_ratio 0.05 (allowed: 0 < maintenance_margin_ratio < 0.05)"
    )
    assert issue.line is not None and path.read_text().splitlines()[issue.line - 1].startswith(
        "maintenance_margin_ratio"
    )


def test_margin_warning_levels_must_be_ordered(root):
    path = root / "venues" / "okx.yaml"
    edit(path, "margin_urgent_ratio: 0.15", "margin_urgent_ratio: 0.25")
    (issue,) = venue_errors("okx", root)
    assert issue.key == "margin_warning_ratio"
    assert (
        issue.message == "0.2 must be above margin_urgent_ratio 0.25 (allowed: margin_warning_ratio > 0.25)"
    )


def test_venue_error_surfaces_through_the_mode_that_needs_it(root):
    edit(root / "venues" / "bybit.yaml", "perp_taker_bps: 5.5", "perp_taker_bps: lots")
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", config_root=root)
    (issue,) = info.value.errors
    assert (issue.file, issue.key) == (str(root / "venues" / "bybit.yaml"), "fees.perp_taker_bps")
    assert issue.message == "expected a number, got text 'lots'"
    # A mode that does not use bybit is unaffected.
    assert load_config("eth_leveraged", config_root=root).required_venues()[0] == "etherfi"


def test_production_addresses_cannot_be_null(root):
    edit(
        root / "venues" / "morpho.yaml",
        'morpho_blue: "0xBBBBBbbBBb9cC5e90e3b3Af64bdAF62C37EEFFCb"',
        "morpho_blue: null",
    )
    (issue,) = venue_errors("morpho", root)
    assert issue.key == "environments.production.contracts.morpho_blue"
    assert (
        issue.message
        == "production address is required; null is only allowed on testnet (allowed: a 0x address)"
    )


def test_testnet_must_list_every_production_role(root):
    edit(root / "venues" / "instadapp.yaml", "      flash_aggregator: null", "      other: null")
    keys = {e.key for e in venue_errors("instadapp", root)}
    assert keys == {"environments.testnet.contracts", "environments.testnet.contracts.other"}


def test_unquoted_and_malformed_addresses(root):
    path = root / "venues" / "lido.yaml"
    edit(
        path,
        'steth: "0xae7ab96520DE3A18E5e111B5EaAb095312D7fE84"',
        "steth: 0xae7ab96520DE3A18E5e111B5EaAb095312D7fE84",
    )
    edit(path, 'wsteth: "0x7f39C581F595B53c5cb19bD0b3f8dA6c935E2Ca0"', 'wsteth: "0x7f39"')
    errors = {e.key: e.message for e in venue_errors("lido", root)}
    assert "put the address in quotes" in errors["environments.production.contracts.steth"]
    assert "not an Ethereum address: '0x7f39'" in errors["environments.production.contracts.wsteth"]


def test_aave_risk_parameters_are_consistent(root):
    path = root / "venues" / "aave_v3.yaml"
    edit(
        path,
        "WETH: {ltv: 0.805, liquidation_threshold: 0.83",
        "WETH: {ltv: 0.85, liquidation_threshold: 0.83",
    )
    edit(path, "  liquidation_bonus: 0.01", "  liquidation_bonus: 0.08")
    errors = {e.key: e.message for e in venue_errors("aave_v3", root)}
    assert (
        errors["standard.WETH.ltv"]
        == "0.85 must be below liquidation_threshold 0.83 (allowed: 0 <= ltv < 0.83)"
    )
    assert errors["emode.liquidation_bonus"].startswith(
        "liquidation_threshold x (1 + liquidation_bonus) = 1.0260 exceeds 1"
    )


def test_wrong_chain_id(root):
    edit(root / "venues" / "uniswap.yaml", "chain_id: 11155111", "chain_id: 5")
    (issue,) = venue_errors("uniswap", root)
    assert (issue.key, issue.message) == (
        "environments.testnet.chain_id",
        "5 is not the testnet chain (allowed: 11155111)",
    )


def test_venue_name_must_match_its_file(root):
    edit(root / "venues" / "uniswap.yaml", "name: uniswap", "name: uniswap_v3")
    (issue,) = venue_errors("uniswap", root)
    assert (issue.key, issue.message) == ("name", "invalid value 'uniswap_v3' (allowed: uniswap)")


def test_staking_venue_issues_its_own_lst(root):
    edit(root / "venues" / "etherfi.yaml", "lst_symbol: weETH", "lst_symbol: wstETH")
    (issue,) = venue_errors("etherfi", root)
    assert (issue.key, issue.message) == ("lst_symbol", "etherfi issues weETH, not wstETH (allowed: weETH)")


def test_gas_units_must_list_every_operation(root):
    edit(root / "venues" / "alchemy.yaml", "  SET_EMODE_ONCE: 55000\n", "  SET_EMODE: 55000\n")
    errors = {e.key: e.message for e in venue_errors("alchemy", root)}
    assert errors["gas_units.SET_EMODE_ONCE"] == "required key is missing (expected: an integer)"
    assert errors["gas_units.SET_EMODE"].startswith("unknown key 'SET_EMODE' (allowed: STAKE_DEPOSIT,")


def test_unknown_and_missing_venue_files(root):
    with pytest.raises(ConfigError) as unknown:
        load_venue_config("kraken", root)
    assert "unknown venue 'kraken' (allowed: binance, bybit, okx" in unknown.value.errors[0].message
    (root / "venues" / "okx.yaml").unlink()
    (issue,) = venue_errors("okx", root)
    assert (issue.file, issue.message) == (
        str(root / "venues" / "okx.yaml"),
        "venue file for 'okx' not found",
    )


def test_share_class_file_checks(root):
    path = root / "share_classes" / "usdt_stable.yaml"
    edit(path, "allows_hedging: true", "allows_hedging: false")
    edit(path, "currency: USDT", "currency: EUR")
    with pytest.raises(ConfigError) as info:
        load_config("btc_basis", config_root=root)
    issue = next(e for e in info.value.errors if e.key == "currency")
    assert (issue.file, issue.message) == (str(path), "invalid value 'EUR' (allowed: USDT, ETH)")


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx", "uniswap"])
def test_the_depth_limit_is_a_required_key_of_every_trading_venue(root, venue):
    path = root / "venues" / f"{venue}.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith("max_order_usdt:")), encoding="utf-8")
    (issue,) = venue_errors(venue, root)
    assert issue.file == str(path) and issue.key == "max_order_usdt"
    assert "required key is missing" in issue.message


def test_the_depth_limit_must_be_above_the_order_floor(root):
    path = root / "venues" / "okx.yaml"
    edit(path, "max_order_usdt: 5000000.0", "max_order_usdt: 50.0")
    (issue,) = venue_errors("okx", root)
    assert issue.key == "max_order_usdt" and "must be above min_order_usdt 100" in issue.message


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_no_venue_parameter_may_be_infinite_or_nan(root, value):
    path = root / "venues" / "binance.yaml"
    edit(path, "max_position_usdt: 10000000.0", f"max_position_usdt: {value}")
    (issue,) = venue_errors("binance", root)
    assert issue.key == "max_position_usdt" and "finite number" in issue.message


def test_a_hedge_cannot_start_below_the_venues_initial_margin(root):
    for venue in ("binance", "bybit", "okx"):
        edit(root / "venues" / f"{venue}.yaml", "initial_margin_ratio: 0.10", "initial_margin_ratio: 0.40")
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", config_root=root)
    issue = next(e for e in info.value.errors if e.key == "hedge.margin_ratio_target")
    assert "must be above the venues' initial_margin_ratio 0.4" in issue.message


def test_a_share_class_default_capital_must_be_finite_and_bounded(root):
    path = root / "share_classes" / "usdt_stable.yaml"
    edit(path, "default_capital: 100000.0", "default_capital: 1.0e+30")
    with pytest.raises(ConfigError, match=r"default_capital.*above the largest accepted capital"):
        load_config("eth_basis", config_root=root)
    edit(path, "default_capital: 1.0e+30", "default_capital: .inf")
    with pytest.raises(ConfigError, match="finite number"):
        load_config("eth_basis", config_root=root)
