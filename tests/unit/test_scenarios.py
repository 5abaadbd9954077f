"""Scenario files: validation messages, shock shapes, and each shock applied to a synthetic frame,
checked against values written out by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import ConfigError
from engine.data.aligned import AlignedMarketData
from engine.scenarios import (
    ScenarioError,
    apply_scenario,
    available_scenarios,
    load_scenario,
    load_scenario_file,
)
from engine.scenarios.models import PriceShock, Scenario
from engine.scenarios.shocks import shape

LIBRARY = {"eth_crash_30pct_4h", "eth_crash_50pct_24h", "steth_june2022_7pct_3d", "oracle_capo_misprice_2_85pct",
           "funding_minus_50apr_14d", "eth_borrow_rate_12pct_7d", "binance_outage_6h", "gas_500gwei_24h"}


def test_the_library_ships_every_required_scenario_and_each_loads():
    names = set(available_scenarios())
    assert LIBRARY <= names
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name and scenario.shocks


def test_library_numbers_are_what_the_names_say():
    crash = load_scenario("eth_crash_30pct_4h").shocks[0]
    assert (crash.kind, crash.asset, crash.change, crash.ramp_hours, crash.hold_hours) == ("price", "ETH", -0.30, 4, None)
    capo = load_scenario("oracle_capo_misprice_2_85pct").shocks[0]
    assert capo.rates == ["oracle"] and capo.change == -0.0285 and capo.ramp_hours == 0
    assert set(capo.lsts) == {"weETH", "wstETH"}
    steth = load_scenario("steth_june2022_7pct_3d").shocks[0]
    assert steth.change == -0.07 and steth.ramp_hours == 72
    funding = load_scenario("funding_minus_50apr_14d").shocks[0]
    assert funding.apr == -0.5 and funding.duration_hours == 14 * 24
    borrow = load_scenario("eth_borrow_rate_12pct_7d").shocks[0]
    assert (borrow.reserve, borrow.side, borrow.apr, borrow.duration_hours) == ("WETH", "borrow", 0.12, 168)
    assert load_scenario("binance_outage_6h").shocks[0].duration_hours == 6
    assert load_scenario("gas_500gwei_24h").shocks[0].gwei == 500


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_errors_name_file_key_and_allowed_values(tmp_path):
    path = _write(tmp_path, "bad", """
name: bad
description: "x"
shocks:
  - kind: price
    asset: DOGE
    change: -1.5
    start_hours: 0
    ramp_hours: 4
    hold_hours: 3
  - kind: tsunami
  - kind: gas
    gwei: 500
    start_hours: 0
    duration_hours: 24
    colour: red
""")
    with pytest.raises(ConfigError) as info:
        load_scenario_file(path)
    text = str(info.value)
    assert f"{path}: shocks.0.asset: invalid value 'DOGE' (allowed: BTC, ETH)" in text
    assert "shocks.0.change: -1.5 is out of range" in text
    assert "shocks.0.recovery_hours" in text or "recovery_hours is required" in text
    assert "shocks.1.kind: unknown shock kind 'tsunami' (allowed: price, lst_rate, funding, aave_rate, gas, outage)" in text
    assert "shocks.2.colour: unknown key 'colour'" in text


def test_a_missing_key_is_an_error_not_a_default(tmp_path):
    path = _write(tmp_path, "gas_only", """
name: gas_only
description: "x"
shocks:
  - kind: gas
    gwei: 500
    start_hours: 0
""")
    with pytest.raises(ConfigError, match=r"gas_only.yaml: shocks.0.duration_hours: required key is missing"):
        load_scenario_file(path)


def test_the_name_must_match_the_file_and_unknown_names_list_the_library(tmp_path):
    path = _write(tmp_path, "one", 'name: two\ndescription: "x"\nshocks: [{kind: gas, gwei: 1, start_hours: 0, '
                                   'duration_hours: 1}]\n')
    with pytest.raises(ConfigError, match="name: must equal the file name 'one'"):
        load_scenario_file(path)
    with pytest.raises(ConfigError, match="unknown scenario 'nope' \\(allowed: .*eth_crash_30pct_4h"):
        load_scenario("nope")


def _price(change, ramp, hold, recovery, start=0):
    return PriceShock(kind="price", asset="ETH", change=change, start_hours=start, ramp_hours=ramp,
                      hold_hours=hold, recovery_hours=recovery)


def test_shapes_step_ramp_hold_recovery():
    # step at hour 2, no recovery
    assert shape(6, 2, _price(-0.1, 0, None, None)).tolist() == [0, 0, 1, 1, 1, 1]
    # four equal steps from hour 1: 1/4, 2/4, 3/4, 1
    assert shape(7, 1, _price(-0.3, 4, None, None)).tolist() == [0, 0.25, 0.5, 0.75, 1, 1, 1]
    # at once, held 3 h, back at once
    assert shape(7, 1, _price(-0.1, 0, 3, 0)).tolist() == [0, 1, 1, 1, 0, 0, 0]
    # two steps up, held 2 h at the top, two steps down
    assert shape(9, 0, _price(-0.1, 2, 2, 2)).tolist() == [0.5, 1, 1, 0.5, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="recovery_hours must be null"):
        _price(-0.1, 0, None, 3)


def _frame(hours: int = 48) -> AlignedMarketData:
    index = pd.date_range("2025-01-01T00:00Z", periods=hours, freq="h")
    rng = np.random.default_rng(7)
    eth = 3000 * np.exp(np.cumsum(rng.normal(0, 0.004, hours)))
    cols = {
        "spot.ETH": eth, "perp.binance.ETH": eth * 1.0002, "perp.okx.ETH": eth * 0.9998,
        "funding.binance.ETH": np.where(index.hour.isin([0, 8, 16]), 1e-4, 0.0),
        "funding.okx.ETH": np.where(index.hour.isin([0, 8, 16]), 2e-4, 0.0),
        "lst.weETH.oracle": np.linspace(1.05, 1.0501, hours), "lst.weETH.market": np.linspace(1.049, 1.0502, hours),
        "aave.WETH.borrow_index": 1.1 * np.exp(np.arange(hours) * 0.03 / 8760),
        "aave.WETH.liquidity_index": 1.05 * np.exp(np.arange(hours) * 0.02 / 8760),
        "gas.gwei": np.full(hours, 12.0),
    }
    return AlignedMarketData(index=index, columns={k: np.asarray(v, dtype=np.float64) for k, v in cols.items()})


def _scenario(*shocks: dict) -> Scenario:
    return Scenario.model_validate({"name": "t", "description": "t", "shocks": list(shocks)})


SHAPE_STEP = {"start_hours": 0, "ramp_hours": 0, "hold_hours": None, "recovery_hours": None}


def test_price_shock_moves_spot_and_every_perp_together_on_a_copy():
    data = _frame()
    at = data.index[10]
    shocked = apply_scenario(data, _scenario({"kind": "price", "asset": "ETH", "change": -0.3, "start_hours": 0,
                                              "ramp_hours": 4, "hold_hours": None, "recovery_hours": None}), at)
    factor = np.ones(48)
    factor[10:14] = [1 - 0.075, 1 - 0.15, 1 - 0.225, 0.7]
    factor[14:] = 0.7
    for col in ("spot.ETH", "perp.binance.ETH", "perp.okx.ETH"):
        np.testing.assert_allclose(shocked.data[col], data[col] * factor, rtol=1e-15)
        assert shocked.data[col] is not data[col]
    np.testing.assert_array_equal(shocked.data["lst.weETH.oracle"], data["lst.weETH.oracle"])
    assert shocked.changed_columns == ["perp.binance.ETH", "perp.okx.ETH", "spot.ETH"]
    assert data["spot.ETH"][20] == pytest.approx(shocked.data["spot.ETH"][20] / 0.7)   # the original is untouched
    assert not data["spot.ETH"].flags.writeable and not shocked.data["spot.ETH"].flags.writeable


def test_price_shock_moves_each_bars_high_and_low_with_the_path_inside_the_hour():
    """The shocked path inside hour t runs from the previous close (factor f[t-1]) to this close
    (f[t]): the high scales by the larger factor, the low by the smaller, so every bar still
    contains its open and close. A crash at once keeps the hour's pre-shock high; a rally lifts
    the high with it and leaves the low where the hour started."""
    data = _frame()
    eth = data["perp.binance.ETH"]
    last = np.concatenate([eth[:1], eth[:-1]])           # each bar opens at the previous close
    high, low = np.maximum(last, eth) * 1.004, np.minimum(last, eth) * 0.995
    cols = dict(data.columns) | {"perp_high.binance.ETH": high, "perp_low.binance.ETH": low,
                                 "spot_high.ETH": data["spot.ETH"] * 1.003, "spot_low.ETH": data["spot.ETH"] * 0.996}
    data = AlignedMarketData(index=data.index, columns={k: np.array(v) for k, v in cols.items()})
    for change in (-0.3, 0.5):
        shocked = apply_scenario(data, _scenario({"kind": "price", "asset": "ETH", "change": change,
                                                  "start_hours": 0, "ramp_hours": 4, "hold_hours": 6,
                                                  "recovery_hours": 2}), data.index[10]).data
        factor = shocked["perp.binance.ETH"] / eth
        before = np.concatenate([[1.0], factor[:-1]])
        np.testing.assert_allclose(shocked["perp_high.binance.ETH"], high * np.maximum(before, factor), rtol=1e-15)
        np.testing.assert_allclose(shocked["perp_low.binance.ETH"], low * np.minimum(before, factor), rtol=1e-15)
        np.testing.assert_allclose(shocked["spot_high.ETH"] / data["spot_high.ETH"], np.maximum(before, factor), rtol=1e-15)
        opens = np.concatenate([eth[:1], shocked["perp.binance.ETH"][:-1]])       # the path starts at the last close
        assert (shocked["perp_high.binance.ETH"] >= np.maximum(opens, shocked["perp.binance.ETH"]) * (1 - 1e-12)).all()
        assert (shocked["perp_low.binance.ETH"] <= np.minimum(opens, shocked["perp.binance.ETH"]) * (1 + 1e-12)).all()
        # the first shocked hour: a crash keeps that bar's high, a rally keeps its low
        kept = "perp_high.binance.ETH" if change < 0 else "perp_low.binance.ETH"
        assert shocked[kept][10] == data[kept][10]


def test_oracle_misprice_moves_the_oracle_and_not_the_market():
    data = _frame()
    shocked = apply_scenario(data, _scenario({"kind": "lst_rate", "lsts": ["weETH", "wstETH"], "rates": ["oracle"],
                                              "change": -0.0285, "start_hours": 0, "ramp_hours": 0, "hold_hours": 6,
                                              "recovery_hours": 0}), data.index[5])
    ratio = shocked.data["lst.weETH.oracle"] / data["lst.weETH.oracle"]
    assert ratio[:5].tolist() == [1.0] * 5
    np.testing.assert_allclose(ratio[5:11], 0.9715, rtol=1e-15)
    assert ratio[11:].tolist() == [1.0] * 37
    np.testing.assert_array_equal(shocked.data["lst.weETH.market"], data["lst.weETH.market"])
    assert shocked.changed_columns == ["lst.weETH.oracle"]        # wstETH is not in this run


def test_funding_override_sets_every_settlement_in_the_span_to_apr_over_1095():
    data = _frame()
    at = data.index[4]                      # 04:00: the first settlement in the span is 08:00
    shocked = apply_scenario(data, _scenario({"kind": "funding", "apr": -0.5, "venues": ["binance"],
                                              "assets": ["ETH"], "start_hours": 0, "duration_hours": 24}), at)
    new = shocked.data["funding.binance.ETH"]
    per_settlement = -0.5 / 1095
    settle_hours = [i for i in range(4, 28) if data.index[i].hour in (0, 8, 16)]
    assert settle_hours == [8, 16, 24]
    for i in range(48):
        expected = per_settlement if i in settle_hours else data["funding.binance.ETH"][i]
        assert new[i] == pytest.approx(expected, abs=1e-18)
    np.testing.assert_array_equal(shocked.data["funding.okx.ETH"], data["funding.okx.ETH"])


def test_borrow_rate_override_reintegrates_the_index():
    data = _frame()
    shocked = apply_scenario(data, _scenario({"kind": "aave_rate", "reserve": "WETH", "side": "borrow", "apr": 0.12,
                                              "start_hours": 0, "duration_hours": 7}), data.index[10])
    old, new = data["aave.WETH.borrow_index"], shocked.data["aave.WETH.borrow_index"]
    np.testing.assert_array_equal(new[:10], old[:10])
    hourly = 1 + 0.12 / 8760
    for k in range(1, 8):                                     # hours 10..16 accrue at 12 %
        assert new[9 + k] == pytest.approx(old[9] * hourly ** k, rel=1e-13)
    # afterwards the index keeps its own hourly growth, from the new level
    np.testing.assert_allclose(new[17:] / new[16], old[17:] / old[16], rtol=1e-12)
    np.testing.assert_array_equal(shocked.data["aave.WETH.liquidity_index"], data["aave.WETH.liquidity_index"])


def test_gas_and_outage_overrides():
    data = _frame()
    shocked = apply_scenario(data, _scenario({"kind": "gas", "gwei": 500, "start_hours": 2, "duration_hours": 3},
                                             {"kind": "outage", "venues": ["binance", "okx"], "start_hours": 0,
                                              "duration_hours": 6}), data.index[10], venues=["binance"])
    gas = shocked.data["gas.gwei"]
    assert gas[12:15].tolist() == [500.0] * 3 and gas[11] == 12.0 and gas[15] == 12.0
    down = shocked.data["outage.binance"]
    assert down[10:16].tolist() == [1.0] * 6 and down.sum() == 6
    assert "outage.okx" not in shocked.data          # the run does not trade on okx


def test_at_must_be_an_hour_of_the_run_after_the_entry_and_the_scenario_must_change_something():
    data = _frame()
    crash = _scenario({"kind": "price", "asset": "ETH", "change": -0.3, **SHAPE_STEP})
    with pytest.raises(ScenarioError, match="outside the run's window 2025-01-01T00:00Z..2025-01-02T23:00Z"):
        apply_scenario(data, crash, "2025-02-01T00:00Z")
    with pytest.raises(ScenarioError, match="first hour"):
        apply_scenario(data, crash, data.index[0])
    with pytest.raises(ScenarioError, match="not on the hour"):
        apply_scenario(data, crash, "2025-01-01T05:30Z")
    btc = _scenario({"kind": "price", "asset": "BTC", "change": -0.3, **SHAPE_STEP})
    with pytest.raises(ScenarioError, match="changes nothing this run reads"):
        apply_scenario(data, btc, data.index[3])


def test_a_span_past_the_end_is_cut_with_a_warning():
    data = _frame()
    shocked = apply_scenario(data, _scenario({"kind": "gas", "gwei": 500, "start_hours": 0, "duration_hours": 100}),
                             data.index[40])
    assert shocked.data["gas.gwei"][40:].tolist() == [500.0] * 8
    assert any("cut there" in w for w in shocked.warnings)


def test_outage_rejects_orders_and_transfers_on_the_venue_only():
    from engine.config import load_config
    from engine.domain.instructions import Instruction, Op
    from engine.domain.market import MarketView
    from engine.domain.portfolio import Portfolio
    from engine.services.run_params import build_run_params
    from venues.simulated.venue import ExecutionRejected, SimulatedVenues

    data = _frame()
    cost_cols = {f"cost_bps.ETHUSDT-PERP.{b}": np.full(48, 1.0) for b in ("10k", "100k", "1m")}
    data = AlignedMarketData(index=data.index, columns={**data.columns, **cost_cols})
    shocked = apply_scenario(data, _scenario({"kind": "outage", "venues": ["binance"], "start_hours": 0,
                                              "duration_hours": 6}), data.index[10])
    mv = MarketView.from_columns(shocked.data, [str(t) for t in shocked.data.index])
    assert mv.venue_down("binance", 10) and not mv.venue_down("binance", 16) and not mv.venue_down("okx", 10)
    params = build_run_params(load_config("eth_basis"))
    portfolio = Portfolio()
    portfolio.wallet.add("USDT", 10_000.0)
    portfolio.account("okx").usdt = 5_000.0
    portfolio.account("binance").usdt = 5_000.0   # initial margin for the short it opens after the outage
    world = SimulatedVenues(portfolio, mv, params)
    with pytest.raises(ExecutionRejected, match="binance is down"):
        world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.1), 12)
    with pytest.raises(ExecutionRejected, match="binance is down"):
        world.execute(Instruction(Op.TRANSFER, "okx", "USDT", 100.0, to_venue="binance"), 12)
    world.execute(Instruction(Op.PERP_TRADE, "okx", "ETH", -0.1), 12)          # other venues trade
    world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -0.1), 16)      # and binance is back after 6 h
    assert portfolio.cex["binance"].perps["ETH"].size == pytest.approx(-0.1)
    assert portfolio.cex["okx"].perps["ETH"].size == pytest.approx(-0.1)
