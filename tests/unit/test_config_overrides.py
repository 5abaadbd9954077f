"""Override precedence (mode file < override YAML < command line) and where errors are attributed."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigError, load_config, parse_cli_overrides

CLI = "<command line>"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_file_then_override_yaml_then_cli(tmp_path):
    override = write(tmp_path / "ov.yaml", "leverage:\n  target_ltv: 0.85\n")
    assert load_config("eth_leveraged").mode.leverage.target_ltv == 0.90
    assert load_config("eth_leveraged", override_file=override).mode.leverage.target_ltv == 0.85
    cfg = load_config("eth_leveraged", override_file=override, cli_overrides={"leverage.target_ltv": 0.8})
    assert cfg.mode.leverage.target_ltv == 0.8
    assert override in cfg.source_files


def test_deep_merge_keeps_sibling_keys(tmp_path):
    override = write(tmp_path / "ov.yaml", "hedge:\n  allocation:\n    binance: 0.5\n    bybit: 0.2\n")
    cfg = load_config("btc_basis", override_file=override)
    assert cfg.mode.hedge.allocation == {"binance": 0.5, "bybit": 0.2, "okx": 0.3}
    assert cfg.mode.hedge.underlying == "BTC" and cfg.mode.hedge.spot_venue == "binance"


def test_cli_dotted_keys_reach_nested_values():
    cfg = load_config(
        "btc_basis", cli_overrides={"hedge.allocation.binance": 0.5, "hedge.allocation.okx": 0.2}
    )
    assert cfg.mode.hedge.allocation == {"binance": 0.5, "bybit": 0.3, "okx": 0.2}


def test_zero_weight_venue_is_not_required():
    cfg = load_config("btc_basis", cli_overrides={"hedge.allocation.okx": 0.0, "hedge.allocation.bybit": 0.6})
    assert cfg.required_venues() == ["binance", "bybit"]
    assert set(cfg.venues) == {"binance", "bybit"}


def test_share_class_and_venue_overrides(tmp_path):
    override = write(
        tmp_path / "ov.yaml",
        (
            "share_class_overrides:\n  default_capital: 250000.0\n"
            "venue_overrides:\n  binance:\n    fees:\n      perp_taker_bps: 4.0\n"
        ),
    )
    cfg = load_config(
        "btc_basis",
        override_file=override,
        cli_overrides={"venue_overrides.binance.fees.perp_maker_bps": 1.0},
    )
    assert cfg.share_class.default_capital == 250000.0
    assert cfg.venues["binance"].fees.perp_taker_bps == 4.0
    assert cfg.venues["binance"].fees.perp_maker_bps == 1.0
    assert cfg.venues["binance"].fees.spot_taker_bps == 10.0  # untouched sibling


def test_cli_wins_over_the_override_file_for_share_class(tmp_path):
    override = write(tmp_path / "ov.yaml", "share_class_overrides:\n  default_capital: 1000.0\n")
    cfg = load_config(
        "btc_basis",
        override_file=override,
        cli_overrides=parse_cli_overrides(["share_class_overrides.default_capital=5e5"]),
    )
    assert cfg.share_class.default_capital == 500000.0


def test_errors_name_the_override_file_with_line_and_namespaced_key(tmp_path):
    override = write(
        tmp_path / "ov.yaml",
        (
            "hedge:\n"
            "  margin_ratio_target: 0.25\n"
            "  typo_key: 1\n"
            "venue_overrides:\n"
            "  okx:\n"
            "    maintenance_margin_ratio: 0.12\n"
        ),
    )
    with pytest.raises(ConfigError) as info:
        load_config("btc_basis", override_file=override, cli_overrides={"risk.breach_action": "panic"})
    issues = {e.key: e for e in info.value.errors}
    typo = issues["hedge.typo_key"]
    assert (typo.file, typo.line) == (str(override), 3)
    assert typo.message.startswith("unknown key 'typo_key' (allowed: enabled, underlying")
    venue = issues["venue_overrides.okx.maintenance_margin_ratio"]
    assert (venue.file, venue.line) == (str(override), 6)
    assert venue.message.startswith("0.12 must be below initial_margin_ratio 0.1")
    cli = issues["risk.breach_action"]
    assert (cli.file, cli.line) == (CLI, None)
    assert cli.message == "invalid value 'panic' (allowed: halt, reduce)"


def test_cli_value_replacing_a_mapping_is_reported_on_the_command_line():
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", cli_overrides={"hedge.enabled.really": True})
    (issue,) = info.value.errors
    assert (issue.file, issue.key) == (CLI, "hedge.enabled")
    assert issue.message == "expected true or false, got mapping {'really': True}"


def test_bad_override_namespaces(tmp_path):
    override = write(tmp_path / "ov.yaml", "share_class_overrides: 3\nvenue_overrides:\n  kraken: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config("btc_basis", override_file=override)
    messages = {e.key: e.message for e in info.value.errors}
    assert messages["share_class_overrides"] == "expected a mapping of share-class keys, got integer"
    assert messages["venue_overrides.kraken"].startswith(
        "unknown venue 'kraken' (allowed: binance, bybit, okx"
    )


def test_override_file_must_be_a_mapping_and_exist(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config("btc_basis", override_file=write(tmp_path / "ov.yaml", "- a\n- b\n"))
    assert info.value.errors[0].message == "expected a mapping of keys at the top level, got list"
    with pytest.raises(ConfigError) as missing:
        load_config("btc_basis", override_file=tmp_path / "nope.yaml")
    assert missing.value.errors[0].message == "override file not found"


@pytest.mark.parametrize(
    "text, value",
    [
        ("0.5", 0.5),
        ("3", 3),
        ("true", True),
        ("false", False),
        ("null", None),
        ("atomic", "atomic"),
        ("5e5", 500000.0),
        ("1e-9", 1e-9),
        ("'0.5'", "0.5"),
        ("[BTC, ETH]", ["BTC", "ETH"]),
        (" 0.25 ", 0.25),
    ],
)
def test_parse_cli_overrides_reads_yaml_scalars(text, value):
    assert parse_cli_overrides([f"hedge.margin_ratio_target={text}"]) == {"hedge.margin_ratio_target": value}


def test_parse_cli_overrides_errors_are_all_reported():
    with pytest.raises(ConfigError) as info:
        parse_cli_overrides(["noequals", "a=", "=3", "c.d=[1,", "x..y=1", "k=1", "k=2"])
    assert [(e.file, e.key) for e in info.value.errors] == [
        (CLI, "noequals"),
        (CLI, "a"),
        (CLI, "=3"),
        (CLI, "c.d"),
        (CLI, "x..y"),
        (CLI, "k"),
    ]
    assert info.value.errors[-1].message == "given more than once on the command line"


def test_conflicting_dotted_keys():
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", cli_overrides={"hedge": {"enabled": True}, "hedge.enabled": True})
    assert info.value.errors[0].message == "conflicts with 'hedge' (set one or the other)"
