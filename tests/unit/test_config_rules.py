"""Mode validation rules: each contradiction is an error naming the file, the key and the
allowed values; derivable fixes are applied with a warning."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache

import pytest
import yaml

from engine.config import CONFIG_ROOT, ConfigError, ConfigIssue, validate_document


@cache
def _shipped(mode: str) -> dict:
    return yaml.safe_load((CONFIG_ROOT / "modes" / f"{mode}.yaml").read_text(encoding="utf-8"))


def doc(mode: str) -> dict:
    return copy.deepcopy(_shipped(mode))


def file_of(mode: str) -> str:
    return f"configs/modes/{mode}.yaml"


def errors_of(mode: str, mutate: Callable[[dict], None]) -> list[ConfigIssue]:
    document = doc(mode)
    mutate(document)
    with pytest.raises(ConfigError) as info:
        validate_document(mode, document, file=file_of(mode))
    assert all(e.severity == "error" for e in info.value.errors)
    return info.value.errors


def only(errors: list[ConfigIssue], key: str) -> ConfigIssue:
    matching = [e for e in errors if e.key == key]
    assert len(matching) == 1, "\n".join(map(str, errors))
    return matching[0]


def test_usdt_share_class_with_staking_requires_hedging():
    errors = errors_of("usdt_market_neutral_no_leverage", lambda d: d["hedge"].update(enabled=False))
    assert [str(e) for e in errors] == [
        (
            "configs/modes/usdt_market_neutral_no_leverage.yaml: hedge.enabled: share class 'usdt_stable' "
            "is market neutral in USDT: holding weETH needs its ETH exposure hedged with perps "
            "(allowed: true)"
        )
    ]
    assert errors[0].file == file_of("usdt_market_neutral_no_leverage")


def test_eth_share_class_hedge_is_switched_off_with_a_warning():
    document = doc("eth_leveraged")
    document["hedge"]["enabled"] = True
    cfg = validate_document("eth_leveraged", document, file=file_of("eth_leveraged"))
    assert cfg.mode.hedge.enabled is False
    assert cfg.warnings == [
        ConfigIssue(
            file_of("eth_leveraged"),
            "hedge.enabled",
            "share class 'eth_directional' (ETH) never hedges: hedge.enabled switched off",
            "warning",
        )
    ]
    assert "binance" not in cfg.required_venues()


def test_eth_share_class_on_a_basis_mode_is_an_error_not_a_correction():
    document = doc("btc_basis")
    document["share_class"] = "eth_directional"
    with pytest.raises(ConfigError) as info:
        validate_document("btc_basis", document, file=file_of("btc_basis"))
    issue = only(info.value.errors, "share_class")
    assert issue.message.endswith("(allowed: usdt_stable)")
    assert info.value.warnings == []


def test_allocation_must_sum_to_one():
    issue = only(
        errors_of("btc_basis", lambda d: d["hedge"]["allocation"].update(okx=0.4)), "hedge.allocation"
    )
    assert issue.message == (
        "weights sum to 1.1; they must sum to 1 within 1e-09 "
        "(allowed: non-negative weights for binance, bybit, okx summing to 1)"
    )


def test_allocation_venue_outside_the_cex_set_and_negative_weight():
    errors = errors_of("btc_basis", lambda d: d["hedge"]["allocation"].update(kraken=0.0, okx=-0.3))
    assert (
        only(errors, "hedge.allocation.kraken").message
        == "unknown key 'kraken' (allowed: binance, bybit, okx)"
    )
    assert only(errors, "hedge.allocation.okx").message == "-0.3 is out of range (allowed: okx >= 0)"


def test_basis_mode_needs_a_spot_venue():
    issue = only(errors_of("eth_basis", lambda d: d["hedge"].update(spot_venue=None)), "hedge.spot_venue")
    assert issue.message.endswith("(allowed: binance, bybit, okx)")


def test_lst_mode_needs_spot_venue_null():
    issue = only(
        errors_of("usdt_market_neutral", lambda d: d["hedge"].update(spot_venue="binance")),
        "hedge.spot_venue",
    )
    assert issue.message.endswith("(allowed: null)")


def test_basis_underlying_must_match_the_mode():
    issue = only(errors_of("btc_basis", lambda d: d["hedge"].update(underlying="ETH")), "hedge.underlying")
    assert issue.message.endswith("(allowed: BTC)")


def test_spot_venue_without_historical_spot_data_warns():
    document = doc("eth_basis")
    document["hedge"]["spot_venue"] = "binance"
    cfg = validate_document("eth_basis", document, file=file_of("eth_basis"))
    (warning,) = cfg.warnings
    assert warning.key == "hedge.spot_venue" and warning.severity == "warning"
    assert "venues with data: bybit" in warning.message


def test_leverage_requires_staking():
    errors = errors_of("eth_leveraged", lambda d: d["staking"].update(enabled=False))
    assert "needs staking.enabled: true" in only(errors, "leverage.enabled").message
    assert (
        only(errors, "staking.enabled").message
        == "mode eth_leveraged is built on liquid staking (allowed: true)"
    )


@pytest.mark.parametrize(
    "emode, target, limit", [(True, 0.93, 0.93), (True, 0.95, 0.93), (False, 0.80, 0.775)]
)
def test_target_ltv_must_be_below_the_max_ltv(emode, target, limit):
    issue = only(
        errors_of("eth_leveraged", lambda d: d["leverage"].update(emode=emode, target_ltv=target)),
        "leverage.target_ltv",
    )
    assert issue.message.endswith(f"(allowed: 0 <= target_ltv < {limit})")
    assert issue.file == file_of("eth_leveraged")


def test_target_ltv_for_wsteth_uses_the_wsteth_standard_ltv():
    issue = only(
        errors_of(
            "eth_leveraged",
            lambda d: (
                d["staking"].update(lst_type="wstETH", rewards_mode="base_only"),
                d["leverage"].update(emode=False, target_ltv=0.79),
            ),
        ),
        "leverage.target_ltv",
    )
    assert "max LTV 0.785 of wstETH" in issue.message


def test_target_ltv_with_a_low_entry_health_factor_warns():
    document = doc("eth_leveraged")
    document["leverage"]["target_ltv"] = 0.925
    cfg = validate_document("eth_leveraged", document, file=file_of("eth_leveraged"))
    (warning,) = cfg.warnings
    assert warning.key == "leverage.target_ltv" and "deleverage right after entering" in warning.message


def test_loop_method_is_an_enum():
    issue = only(
        errors_of("eth_leveraged", lambda d: d["leverage"].update(loop_method="fast")), "leverage.loop_method"
    )
    assert issue.message == "invalid value 'fast' (allowed: atomic, sequential)"


def test_flash_venue_only_for_atomic_loops():
    sequential = errors_of("eth_leveraged", lambda d: d["leverage"].update(loop_method="sequential"))
    assert only(sequential, "leverage.flash_venue").message.endswith("(allowed: null)")
    atomic = errors_of("eth_leveraged", lambda d: d["leverage"].update(flash_venue=None))
    assert only(atomic, "leverage.flash_venue").message.endswith("(allowed: morpho, instadapp)")
    iterations = errors_of("eth_leveraged", lambda d: d["leverage"].update(max_iterations=3))
    assert only(iterations, "leverage.max_iterations").message.endswith("(allowed: null)")


def test_sequential_loop_with_iteration_cap_is_valid():
    document = doc("eth_leveraged")
    document["leverage"].update(loop_method="sequential", flash_venue=None, max_iterations=5)
    cfg = validate_document("eth_leveraged", document, file=file_of("eth_leveraged"))
    assert cfg.mode.leverage.max_iterations == 5
    assert "morpho" not in cfg.required_venues()


@pytest.mark.parametrize("trigger", [0.05, 0.04, 0.32, 0.4])
def test_margin_ratio_trigger_between_maintenance_and_target(trigger):
    issue = only(
        errors_of("btc_basis", lambda d: d["rebalancing"].update(margin_ratio_trigger=trigger)),
        "rebalancing.margin_ratio_trigger",
    )
    assert issue.message.endswith("(allowed: 0.05 < margin_ratio_trigger < 0.32)")


def test_margin_ratio_target_must_exceed_the_warning_ratio():
    errors = errors_of("btc_basis", lambda d: d["hedge"].update(margin_ratio_target=0.2))
    assert only(errors, "hedge.margin_ratio_target").message.endswith(
        "(allowed: 0.2 < margin_ratio_target <= 1)"
    )


def test_risk_margin_floor_between_maintenance_and_trigger():
    issue = only(
        errors_of("btc_basis", lambda d: d["risk"].update(margin_ratio_floor=0.23)), "risk.margin_ratio_floor"
    )
    assert issue.message.endswith("(allowed: 0.05 < margin_ratio_floor < 0.22)")


def test_health_factor_ordering():
    errors = errors_of("eth_leveraged", lambda d: d["rebalancing"].update(hf_floor=1.05, hf_target=1.04))
    assert (
        only(errors, "rebalancing.hf_target").message == "1.04 must be above hf_floor 1.05 (allowed: > 1.05)"
    )
    below_one = errors_of("eth_leveraged", lambda d: d["rebalancing"].update(hf_floor=1.0))
    assert only(below_one, "rebalancing.hf_floor").message == "1.0 is out of range (allowed: hf_floor > 1)"
    risk = errors_of("eth_leveraged", lambda d: d["risk"].update(hf_floor=1.02))
    assert only(risk, "risk.hf_floor").message.endswith("(allowed: 1 < hf_floor < 1.015)")


def test_unknown_keys_name_the_allowed_keys():
    errors = errors_of("pure_lending", lambda d: (d.update(extra=1), d["risk"].update(max_drawdwn=0.1)))
    assert only(errors, "extra").message == (
        "unknown key 'extra' (allowed: mode, share_class, description, lending, staking, leverage, hedge, "
        "rebalancing, risk)"
    )
    assert only(errors, "risk.max_drawdwn").message == (
        "unknown key 'max_drawdwn' (allowed: max_drawdown, max_daily_loss, max_position_usdt, hf_floor, "
        "margin_ratio_floor, max_data_age_seconds, breach_action)"
    )


def test_wrong_types_say_the_expected_type():
    errors = errors_of(
        "eth_leveraged",
        lambda d: (
            d["leverage"].update(target_ltv="0.9", max_iterations=2.5),
            d["staking"].update(enabled="yes"),
        ),
    )
    assert only(errors, "leverage.target_ltv").message.startswith("expected a number, got text '0.9'")
    assert only(errors, "leverage.max_iterations").message == "expected an integer or null, got number 2.5"
    assert only(errors, "staking.enabled").message == "expected true or false, got text 'yes'"


def test_missing_keys_are_errors_not_defaults():
    errors = errors_of("eth_basis", lambda d: (d["risk"].pop("breach_action"), d.pop("rebalancing")))
    assert (
        only(errors, "risk.breach_action").message
        == "required key is missing (expected: one of halt, reduce)"
    )
    assert only(errors, "rebalancing").message.startswith(
        "required key is missing (expected: a mapping with keys"
    )


def test_all_errors_of_a_document_are_reported_together():
    def break_three_things(d):
        d["hedge"]["allocation"]["okx"] = 0.5
        d["leverage"]["target_ltv"] = 0.99
        d["risk"]["breach_action"] = "panic"

    errors = errors_of("usdt_market_neutral", break_three_things)
    assert {e.key for e in errors} == {"hedge.allocation", "leverage.target_ltv", "risk.breach_action"}
    assert all(e.file == file_of("usdt_market_neutral") for e in errors)


@pytest.mark.parametrize("rewards_mode", ["base_eigen", "base_eigen_seasonal"])
def test_wsteth_allows_base_only_rewards(rewards_mode):
    """Lido pays no reward tokens: asking wstETH for EIGEN/ETHFI rewards is an error naming the
    allowed value, never a silent switch-off."""
    issue = only(
        errors_of("eth_staking_only",
                  lambda d: d["staking"].update(lst_type="wstETH", rewards_mode=rewards_mode)),
        "staking.rewards_mode",
    )
    assert issue.message.endswith("(allowed: base_only)")
    assert "wstETH" in issue.message and "no reward tokens" in issue.message
    assert issue.file == file_of("eth_staking_only")
    document = doc("eth_staking_only")
    document["staking"].update(lst_type="wstETH", rewards_mode="base_only")
    cfg = validate_document("eth_staking_only", document, file=file_of("eth_staking_only"))
    assert cfg.mode.staking.rewards_mode == "base_only" and cfg.warnings == []
    assert cfg.required_venues() == ["lido", "alchemy"]


def test_the_old_rewards_flag_names_its_replacement():
    def old_flag(d: dict) -> None:
        d["staking"]["rewards"] = d["staking"].pop("rewards_mode") != "base_only"
    issue = only(errors_of("eth_staking_only", old_flag), "staking.rewards")
    assert "replaced by staking.rewards_mode" in issue.message


def test_mode_must_match_the_file_and_share_class_must_exist():
    errors = errors_of("eth_basis", lambda d: d.update(mode="btc_basis", share_class="gold"))
    assert only(errors, "mode").message == "'btc_basis' does not match the file name (allowed: eth_basis)"
    assert (
        only(errors, "share_class").message
        == "unknown share class 'gold' (allowed: eth_directional, usdt_stable)"
    )


def test_unknown_mode_lists_the_allowed_modes():
    with pytest.raises(ConfigError) as info:
        validate_document("eth_moon", {}, file="configs/modes/eth_moon.yaml")
    (issue,) = info.value.errors
    assert issue.key == "mode"
    assert issue.message.startswith("unknown mode 'eth_moon' (allowed: pure_lending, btc_basis, eth_basis")


def test_mode_shape_rejects_sections_the_mode_does_not_use():
    errors = errors_of(
        "eth_staking_only",
        lambda d: d["leverage"].update(
            enabled=True,
            emode=True,
            target_ltv=0.9,
            loop_method="atomic",
            max_iterations=None,
            flash_venue="morpho",
        ),
    )
    assert (
        only(errors, "leverage.enabled").message
        == "mode eth_staking_only does not use a leverage loop (allowed: false)"
    )


def test_lending_asset_follows_the_share_class_currency():
    errors = errors_of("pure_lending", lambda d: d.update(share_class="eth_directional"))
    assert only(errors, "lending.asset").message.endswith("(allowed: WETH)")
    document = doc("pure_lending")
    document.update(share_class="eth_directional")
    document["lending"]["asset"] = "WETH"
    assert (
        validate_document("pure_lending", document, file=file_of("pure_lending")).mode.lending.asset == "WETH"
    )


def test_config_error_message_lists_every_issue_one_per_line():
    errors = errors_of("btc_basis", lambda d: d["hedge"]["allocation"].update(okx=0.4))
    text = str(ConfigError(errors))
    assert text.splitlines()[0] == "1 configuration error:"
    assert (
        text.splitlines()[1].strip().startswith("configs/modes/btc_basis.yaml: hedge.allocation: weights sum")
    )


@pytest.mark.parametrize("ceiling", [0.1, 0.32])
def test_margin_ratio_ceiling_must_be_above_the_target(ceiling):
    issue = only(
        errors_of("btc_basis", lambda d: d["rebalancing"].update(margin_ratio_ceiling=ceiling)),
        "rebalancing.margin_ratio_ceiling",
    )
    assert issue.message.endswith("(allowed: margin_ratio_ceiling > 0.32)")
