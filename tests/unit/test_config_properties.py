"""Property tests of the validation rules and of the YAML round trip."""

from __future__ import annotations

import copy
import math
from functools import cache

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.config import (
    CONFIG_ROOT,
    MODES,
    ConfigError,
    dump_mode_yaml,
    load_venue_config,
    validate_document,
    validate_yaml_text,
)

PROPERTY_SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _shipped(mode: str) -> dict:
    return yaml.safe_load((CONFIG_ROOT / "modes" / f"{mode}.yaml").read_text(encoding="utf-8"))


def doc(mode: str) -> dict:
    return copy.deepcopy(_shipped(mode))


def error_keys(mode: str, document: dict) -> set[str]:
    try:
        validate_document(mode, document, file=f"{mode}.yaml")
    except ConfigError as exc:
        return {issue.key for issue in exc.errors}
    return set()


weights = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=3, max_size=3)


# (a) allocations -----------------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(raw=weights)
def test_allocations_summing_to_one_validate(raw):
    total = math.fsum(raw)
    assume(total > 1e-3)
    document = doc("usdt_market_neutral")
    weights_sum_one = [w / total for w in raw]
    document["hedge"]["allocation"] = dict(zip(("binance", "bybit", "okx"), weights_sum_one, strict=True))
    assert error_keys("usdt_market_neutral", document) == set()


@PROPERTY_SETTINGS
@given(
    raw=weights, excess=st.floats(min_value=2e-9, max_value=0.5) | st.floats(min_value=-0.5, max_value=-2e-9)
)
def test_allocations_not_summing_to_one_fail(raw, excess):
    total = math.fsum(raw)
    assume(total > 1e-3)
    scaled = [w / total * (1 + excess) for w in raw]
    assume(abs(math.fsum(scaled) - 1) > 1.5e-9)
    document = doc("btc_basis")
    document["hedge"]["allocation"] = dict(zip(("binance", "bybit", "okx"), scaled, strict=True))
    assert "hedge.allocation" in error_keys("btc_basis", document)


@pytest.mark.parametrize("delta, valid", [(5e-10, True), (-5e-10, True), (2e-9, False), (-2e-9, False)])
def test_allocation_tolerance_boundary(delta, valid):
    document = doc("btc_basis")
    document["hedge"]["allocation"] = {"binance": 0.4 + delta, "bybit": 0.3, "okx": 0.3}
    assert (error_keys("btc_basis", document) == set()) is valid


# (b) target LTV -------------------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(
    target=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    emode=st.booleans(),
    lst=st.sampled_from(["weETH", "wstETH"]),
)
def test_target_ltv_valid_iff_below_max_ltv(target, emode, lst):
    max_ltv = load_venue_config("aave_v3").max_ltv(lst, emode)
    document = doc("eth_leveraged")
    document["staking"].update(lst_type=lst, rewards_mode="base_eigen" if lst == "weETH" else "base_only")
    document["leverage"].update(target_ltv=target, emode=emode)
    keys = error_keys("eth_leveraged", document)
    if target < max_ltv:
        assert keys == set()
    else:
        assert keys == {"leverage.target_ltv"}


# (c) dump -> load round trip --------------------------------------------------------------------------
unit_open = st.floats(min_value=1e-6, max_value=0.999999, allow_nan=False)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


@st.composite
def valid_documents(draw):
    mode = draw(st.sampled_from(MODES))
    document = doc(mode)
    document["description"] = draw(text.filter(lambda s: s.strip()))
    risk = document["risk"]
    risk["max_drawdown"] = draw(unit_open)
    risk["max_daily_loss"] = draw(unit_open)
    risk["max_position_usdt"] = draw(st.floats(min_value=1.0, max_value=1e12))
    risk["max_data_age_seconds"] = draw(st.floats(min_value=0.5, max_value=86400.0) | st.integers(1, 86400))
    risk["breach_action"] = draw(st.sampled_from(["halt", "reduce"]))
    document["rebalancing"]["delta_drift_trigger"] = draw(unit_open)
    document["rebalancing"]["enabled"] = draw(st.booleans())
    leverage = document["leverage"]
    if leverage["enabled"]:
        leverage["target_ltv"] = draw(st.floats(min_value=0.0, max_value=0.929))
        leverage["min_borrow_eth"] = draw(st.floats(min_value=1e-6, max_value=100.0))
        if draw(st.booleans()):
            leverage.update(
                loop_method="sequential",
                flash_venue=None,
                max_iterations=draw(st.none() | st.integers(0, 50)),
            )
        else:
            leverage["flash_venue"] = draw(st.sampled_from(["morpho", "instadapp"]))
    hedge = document["hedge"]
    if hedge["enabled"]:
        raw = draw(weights.filter(lambda w: math.fsum(w) > 1e-3))
        total = math.fsum(raw)
        hedge["allocation"] = {k: w / total for k, w in zip(("binance", "bybit", "okx"), raw, strict=True)}
    return mode, document


@PROPERTY_SETTINGS
@given(case=valid_documents())
def test_dump_then_load_is_identity(case):
    mode, document = case
    first = validate_document(mode, document, file=f"{mode}.yaml")
    text_out = dump_mode_yaml(first.mode)
    second = validate_yaml_text(mode, text_out, file=f"{mode}.yaml")
    assert second.mode == first.mode
    assert dump_mode_yaml(second.mode) == text_out
