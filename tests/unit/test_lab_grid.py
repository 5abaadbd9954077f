"""Sweep axes from the command line and the trial keys."""
from __future__ import annotations

import pytest

from engine.lab.grid import Axis, GridError, expand, parse_axes, parse_axis


def test_values_are_read_like_set_values():
    axis = parse_axis("leverage.target_ltv=0.86,0.88,0.9")
    assert axis == Axis("leverage.target_ltv", (0.86, 0.88, 0.9))
    assert parse_axis("leverage.loop_method=atomic,sequential").values == ("atomic", "sequential")
    assert parse_axis("rebalancing.enabled=true,false").values == (True, False)
    assert parse_axis("staking.lst_type=weETH,wstETH").values == ("weETH", "wstETH")


def test_ranges_only_for_optuna():
    with pytest.raises(GridError, match="needs --optuna"):
        parse_axis("leverage.target_ltv=0.8..0.9")
    axis = parse_axis("leverage.target_ltv=0.8..0.9", allow_range=True)
    assert axis.is_range and (axis.low, axis.high) == (0.8, 0.9)
    assert parse_axis("leverage.max_iterations=1..5", allow_range=True).low == 1
    with pytest.raises(GridError, match="lo < hi"):
        parse_axis("leverage.target_ltv=0.9..0.8", allow_range=True)


@pytest.mark.parametrize("text, message", [
    ("leverage.target_ltv", "expected key=v1,v2"),
    ("=1,2", "expected key=v1,v2"),
    ("leverage.target_ltv=0.8,,0.9", "empty value"),
    ("leverage.target_ltv=0.8,0.8", "listed twice"),
    ("bad key=1", "invalid key segment"),
])
def test_malformed_axes_are_refused_with_the_reason(text, message):
    with pytest.raises(GridError, match=message):
        parse_axis(text)


def test_an_axis_given_twice_is_refused():
    with pytest.raises(GridError, match="more than once"):
        parse_axes(["a.b=1,2", "a.b=3"])


def test_expand_is_the_product_with_the_first_axis_slowest():
    grid = expand([Axis("a", (1, 2)), Axis("b", ("x", "y", "z"))])
    assert grid == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                    {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]
    assert expand([]) == [{}]


def test_trial_keys_change_with_config_scenario_and_data_and_not_with_spelling(backtest_service):
    from engine.lab.sweep import plan_point
    from engine.scenarios import load_scenario

    def key(overrides, scenario=None, at=None, end="2025-01-31T23:00:00Z"):
        return plan_point(backtest_service, "eth_basis", overrides, {}, scenario, at, "2025-01-01T00:00:00Z",
                          end, None, 0).key

    base = key({})
    assert key({"hedge.margin_ratio_target": 0.35}) == base        # the shipped value: same config
    assert key({"hedge.margin_ratio_target": 0.4}) != base
    crash = load_scenario("eth_crash_30pct_4h")
    assert key({}, crash, "2025-01-15T00:00:00Z") not in (base, key({}, crash, "2025-01-16T00:00:00Z"))
    assert key({}, end="2025-01-30T23:00:00Z") != base             # another window: other data
    assert plan_point(backtest_service, "eth_basis", {"hedge.margin_ratio_target": 5.0}, {}, None, None, None, None,
                      None, 0).invalid
