"""The shipped configs load clean and agree with the data pack and the external sources they cite."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.config import (
    CONFIG_ROOT,
    MODES,
    VENUES,
    AaveConfig,
    CexVenueConfig,
    FlashLoanVenueConfig,
    RpcVenueConfig,
    StakingVenueConfig,
    load_config,
    load_venue_config,
)

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"

EXPECTED_VENUES = {
    "pure_lending": ["aave_v3", "alchemy"],
    "btc_basis": ["binance", "bybit", "okx"],
    "eth_basis": ["binance", "bybit", "okx"],
    "eth_staking_only": ["etherfi", "alchemy"],
    "eth_leveraged": ["etherfi", "aave_v3", "morpho", "uniswap", "alchemy"],
    "usdt_market_neutral_no_leverage": ["binance", "bybit", "okx", "etherfi", "uniswap", "alchemy"],
    "usdt_market_neutral": ["binance", "bybit", "okx", "etherfi", "aave_v3", "morpho", "uniswap", "alchemy"],
}


def test_config_root_is_the_repository_configs_folder():
    assert CONFIG_ROOT == REPO / "configs"
    assert sorted(p.stem for p in (CONFIG_ROOT / "modes").glob("*.yaml")) == sorted(MODES)
    assert sorted(p.stem for p in (CONFIG_ROOT / "venues").glob("*.yaml")) == sorted(VENUES)


@pytest.mark.parametrize("mode", MODES)
def test_every_shipped_mode_loads_without_errors_or_warnings(mode):
    cfg = load_config(mode)
    assert cfg.mode.mode == mode
    assert cfg.warnings == []
    assert cfg.required_venues() == EXPECTED_VENUES[mode]
    assert list(cfg.venues) == EXPECTED_VENUES[mode]
    assert CONFIG_ROOT / "modes" / f"{mode}.yaml" in cfg.source_files


def test_mode_defaults_match_design_table():
    assert load_config("pure_lending").mode.lending.asset == "USDT"
    btc = load_config("btc_basis").mode.hedge
    assert (btc.underlying, btc.spot_venue, btc.allocation) == (
        "BTC",
        "binance",
        {"binance": 0.4, "bybit": 0.3, "okx": 0.3},
    )
    eth = load_config("eth_basis").mode.hedge
    assert (eth.underlying, eth.spot_venue) == ("ETH", "bybit")
    staking = load_config("eth_staking_only")
    assert staking.share_class.currency == "ETH"
    assert (staking.mode.staking.lst_type, staking.mode.staking.rewards_mode) == ("weETH", "base_eigen")
    lev = load_config("eth_leveraged").mode.leverage
    assert (lev.emode, lev.loop_method, lev.flash_venue, lev.target_ltv) == (True, "atomic", "morpho", 0.90)
    neutral = load_config("usdt_market_neutral").mode
    assert neutral.leverage.enabled and neutral.hedge.enabled and neutral.hedge.spot_venue is None
    assert load_config("usdt_market_neutral_no_leverage").share_class.currency == "USDT"


def test_share_class_capital_defaults():
    assert load_config("btc_basis").share_class.default_capital == 100_000
    assert load_config("eth_leveraged").share_class.default_capital == 40


def test_every_venue_file_validates_with_its_model():
    kinds = {name: type(load_venue_config(name)) for name in VENUES}
    assert kinds["binance"] is CexVenueConfig and kinds["okx"] is CexVenueConfig
    assert kinds["aave_v3"] is AaveConfig
    assert kinds["morpho"] is FlashLoanVenueConfig and kinds["instadapp"] is FlashLoanVenueConfig
    assert kinds["etherfi"] is StakingVenueConfig and kinds["lido"] is StakingVenueConfig
    assert kinds["alchemy"] is RpcVenueConfig


def test_cex_margin_thresholds_are_ordered_despite_the_inverted_data_pack_file():
    for name in ("binance", "bybit", "okx"):
        venue = load_venue_config(name)
        assert venue.maintenance_margin_ratio < venue.margin_urgent_ratio < venue.margin_warning_ratio
        assert venue.maintenance_margin_ratio < venue.initial_margin_ratio
        assert venue.funding_interval_hours == 8
        assert venue.environments.testnet.sandbox and not venue.environments.production.sandbox
    assert load_venue_config("binance").ccxt_perp_id == "binanceusdm"


def test_ccxt_ids_exist_in_ccxt():
    ccxt = pytest.importorskip("ccxt")
    for name in ("binance", "bybit", "okx"):
        venue = load_venue_config(name)
        assert venue.ccxt_id in ccxt.exchanges
        assert venue.ccxt_perp_id is None or venue.ccxt_perp_id in ccxt.exchanges


def test_aave_risk_parameters():
    aave = load_venue_config("aave_v3")
    assert (aave.emode.ltv, aave.emode.liquidation_threshold, aave.emode.liquidation_bonus) == (
        0.93,
        0.95,
        0.01,
    )
    assert aave.max_ltv("weETH", emode=True) == 0.93
    assert aave.max_ltv("weETH", emode=False) == 0.775
    assert aave.collateral_risk("USDT", emode=True).ltv == 0.75  # USDT is not in the ETH e-mode category
    assert (aave.close_factor, aave.full_liquidation_hf) == (0.5, 0.95)
    pool = aave.environments.production.contracts["pool"]
    assert pool == "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data pack not beside the repository")
def test_aave_standard_parameters_match_the_data_pack_csv():
    csv_path = SHARED_DATA / "manual_sources" / "aave_params" / "aave_current_v3_prams_etherum_mainnet.csv"
    rows = [line.split(",") for line in csv_path.read_text(encoding="utf-8-sig").splitlines()]
    header, table = rows[0], {row[0]: row for row in rows[1:]}

    def pct(label: str, asset: str) -> float:
        return round(float(table[label][header.index(asset)].rstrip("%")) / 100, 6)

    aave = load_venue_config("aave_v3")
    for asset in ("USDT", "WETH", "weETH", "wstETH"):
        risk = getattr(aave.standard, asset)
        assert risk.ltv == pct("LTV", asset)
        assert risk.liquidation_threshold == pct("Liquidation Threshold", asset)
        assert risk.liquidation_bonus == pct("Liquidation Bonus", asset)


def test_gas_units_match_the_shipped_data_file():
    summary = next(
        (REPO / "data" / "blockchain_data" / "gas_prices").glob("operation_gas_costs_summary_*.json")
    )
    expected = {op: v["gas_units"] for op, v in json.loads(summary.read_text())["operation_costs"].items()}
    assert load_venue_config("alchemy").gas_units.as_dict() == expected


def _all_addresses():
    for name in VENUES:
        venue = load_venue_config(name)
        environments = getattr(venue, "environments", None)
        for env_name in ("production", "testnet"):
            env = getattr(environments, env_name)
            for table in ("contracts", "tokens"):
                for key, address in getattr(env, table, {}).items():
                    yield name, env_name, table, key, address


def test_every_address_is_eip55_checksummed():
    eth_utils = pytest.importorskip("eth_utils")
    checked = 0
    for name, env, table, key, address in _all_addresses():
        if address is not None:
            assert eth_utils.is_checksum_address(address), f"{name}.{env}.{table}.{key}: {address}"
            checked += 1
    assert checked > 30


def test_production_token_addresses_agree_across_venues():
    seen: dict[str, tuple[str, str]] = {}
    for name, env, table, key, address in _all_addresses():
        if env != "production" or table != "tokens":
            continue
        if key in seen:
            assert seen[key][1] == address, f"{key}: {seen[key][0]} and {name} disagree"
        seen[key] = (name, address)
    assert {"WETH", "USDT", "weETH", "wstETH"} <= set(seen)


def test_cited_addresses_requested_by_the_design():
    assert (
        load_venue_config("lido").environments.production.tokens["wstETH"]
        == "0x7f39C581F595B53c5cb19bD0b3f8dA6c935E2Ca0"
    )
    assert (
        load_venue_config("etherfi").environments.production.tokens["weETH"]
        == "0xCd5fE23C85820F7B72D0926FC9b05b43E359b7ee"
    )
    assert (
        load_venue_config("morpho").environments.production.contracts["morpho_blue"]
        == "0xBBBBBbbBBb9cC5e90e3b3Af64bdAF62C37EEFFCb"
    )
    assert load_venue_config("morpho").flash_loan_fee_rate == 0.0


def test_every_address_line_cites_a_source_or_explains_a_null():
    """Each address in the venue YAML carries a comment (the source, or why it is null)."""
    for path in (CONFIG_ROOT / "venues").glob("*.yaml"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if re.search(r"0x[0-9a-fA-F]{40}", line):
                assert "#" in line.split("0x", 1)[1], f"{path.name}:{number} has no source comment"
            elif re.match(r"^\s+\w+: null\b", line) and any("environments:" in x for x in lines[:number]):
                assert "#" in line, f"{path.name}:{number}: null address without a comment saying why"


def test_venue_files_hold_no_secrets():
    forbidden = re.compile(r"(api[_-]?key|secret|passphrase|private[_-]?key|password)\s*:", re.IGNORECASE)
    for path in (CONFIG_ROOT).rglob("*.yaml"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not forbidden.search(code), f"{path}:{number} looks like a secret field"
            assert "https://" not in code, f"{path}:{number}: URLs with keys belong in the keyring"
