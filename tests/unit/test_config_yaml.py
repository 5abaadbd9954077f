"""YAML handling: malformed files with positions, duplicate keys, missing files, editor text, dumping."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import (
    CONFIG_ROOT,
    MODES,
    ConfigError,
    dump_mode_yaml,
    load_config,
    validate_yaml_text,
)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(CONFIG_ROOT, target)
    return target


def shipped_text(mode: str) -> str:
    return (CONFIG_ROOT / "modes" / f"{mode}.yaml").read_text(encoding="utf-8")


def test_malformed_yaml_reports_file_line_and_column(root):
    path = root / "modes" / "btc_basis.yaml"
    path.write_text(
        "mode: btc_basis\nhedge:\n  allocation: {binance: 0.4, bybit: 0.3\nrisk: {}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_config("btc_basis", config_root=root)
    (issue,) = info.value.errors
    assert issue.file == str(path)
    assert issue.line == 4 and issue.column is not None
    assert issue.message.startswith("malformed YAML at line 4, column")
    assert str(issue).startswith(f"{path}: (document): malformed YAML at line 4")


def test_bad_indentation_is_located():
    with pytest.raises(ConfigError) as info:
        validate_yaml_text("btc_basis", "mode: btc_basis\n  share_class: usdt_stable\n", file="editor.yaml")
    (issue,) = info.value.errors
    assert (issue.file, issue.line) == ("editor.yaml", 2)


def test_duplicate_keys_are_errors_with_both_lines():
    text = shipped_text("eth_leveraged").replace(
        "  target_ltv: 0.90", "  target_ltv: 0.90\n  target_ltv: 0.80", 1
    )
    with pytest.raises(ConfigError) as info:
        validate_yaml_text("eth_leveraged", text, file="editor.yaml")
    (issue,) = info.value.errors
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("  target_ltv: 0.90"))
    assert issue.key == "leverage.target_ltv"
    assert issue.line == first + 1
    assert (
        issue.message
        == f"duplicate key (first defined at line {first}; YAML would silently keep the last one)"
    )


def test_validation_errors_carry_the_line_of_the_key():
    text = shipped_text("eth_basis").replace("  delta_drift_trigger: 0.02", "  delta_drift_trigger: 2.0", 1)
    with pytest.raises(ConfigError) as info:
        validate_yaml_text("eth_basis", text, file="editor.yaml")
    (issue,) = info.value.errors
    expected_line = next(
        i for i, line in enumerate(text.splitlines(), 1) if "delta_drift_trigger: 2.0" in line
    )
    assert (issue.key, issue.line, issue.column) == ("rebalancing.delta_drift_trigger", expected_line, 3)
    assert str(issue).endswith(f"(allowed: 0 < delta_drift_trigger < 1) [line {expected_line}]")


def test_missing_key_points_at_its_section():
    text = shipped_text("eth_basis").replace("  breach_action: halt\n", "", 1)
    with pytest.raises(ConfigError) as info:
        validate_yaml_text("eth_basis", text, file="editor.yaml")
    (issue,) = info.value.errors
    risk_line = text.splitlines().index("risk:") + 1
    assert (issue.key, issue.line) == ("risk.breach_action", risk_line)


def test_unquoted_hex_value_hint():
    text = shipped_text("eth_basis").replace('description: "', 'description: 0x1234 #"', 1)
    with pytest.raises(ConfigError) as info:
        validate_yaml_text("eth_basis", text, file="editor.yaml")
    assert info.value.errors[0].message == "expected text, got integer 4660"


def test_empty_and_non_mapping_documents():
    for text, got in (("", "null"), ("- a\n", "list"), ("42\n", "integer")):
        with pytest.raises(ConfigError) as info:
            validate_yaml_text("eth_basis", text, file="editor.yaml")
        assert info.value.errors[0].message == f"expected a mapping of mode keys, got {got}"


def test_missing_mode_file_in_a_custom_root(root):
    (root / "modes" / "eth_basis.yaml").unlink()
    with pytest.raises(ConfigError) as info:
        load_config("eth_basis", config_root=root)
    (issue,) = info.value.errors
    assert (issue.file, issue.message) == (
        str(root / "modes" / "eth_basis.yaml"),
        "mode file for 'eth_basis' not found",
    )


def test_unknown_mode_via_load_config():
    with pytest.raises(ConfigError) as info:
        load_config("eth_moon")
    assert info.value.errors[0].message == (
        "unknown mode 'eth_moon' (allowed: pure_lending, btc_basis, eth_basis, eth_staking_only, "
        "eth_leveraged, usdt_market_neutral_no_leverage, usdt_market_neutral)"
    )


def test_edited_file_is_read_again(root):
    path = root / "modes" / "eth_leveraged.yaml"
    assert load_config("eth_leveraged", config_root=root).mode.leverage.target_ltv == 0.90
    path.write_text(
        path.read_text(encoding="utf-8").replace("target_ltv: 0.90", "target_ltv: 0.885"), encoding="utf-8"
    )
    assert load_config("eth_leveraged", config_root=root).mode.leverage.target_ltv == 0.885


@pytest.mark.parametrize("mode", MODES)
def test_dump_round_trips_every_shipped_mode(mode):
    cfg = load_config(mode)
    text = dump_mode_yaml(cfg)
    again = validate_yaml_text(mode, text, file=f"{mode}.yaml")
    assert again.mode == cfg.mode
    assert dump_mode_yaml(again.mode) == text
    assert text.splitlines()[0] == f"mode: {mode}"


def test_dump_writes_the_auto_corrected_values():
    text = shipped_text("eth_staking_only").replace(
        "  enabled: false               # the ETH share class never hedges", "  enabled: true", 1
    )
    cfg = validate_yaml_text("eth_staking_only", text, file="editor.yaml")
    assert cfg.warnings and "hedge:\n  enabled: false" in dump_mode_yaml(cfg)
