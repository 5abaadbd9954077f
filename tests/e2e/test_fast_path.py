"""The closed-form quiet stretches (engine/execution/quiet.py) against the reference: the same run
stepped hour by hour. Every hourly value, P&L component, risk figure, event, rebalance, liquidation,
balance-sheet snapshot and summary figure must agree to float rounding (1e-9 relative; today they
agree exactly), on all seven modes over their full windows and on stress scenarios and overrides
that liquidate, deleverage, rebalance often, shock funding and take a venue down.
"""
from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest

from engine.components import stretch
from engine.config import MODES
from engine.scenarios import load_scenario
from engine.services.backtest import BacktestRequest, BacktestResult

RTOL = 1e-9
#: Summary figures that are timings or labels, not results.
NOT_RESULTS = {"engine_seconds", "engine_cpu_seconds", "hours_per_second", "data_load_seconds", "run_id",
               "code_version"}
#: The largest difference seen per case, for the report (pytest -s prints them).
MAX_DIFF: dict[str, float] = {}

STRESS_START, STRESS_END, AT = "2024-12-01T00:00Z", "2025-02-28T23:00Z", "2025-01-15T00:00Z"
#: name -> (mode, scenario, overrides, start, end, what the run must show: "liquidations" / "rebalances")
CASES = {
    "umn rally unrebalanced (CEX liquidations)":
        ("usdt_market_neutral", "eth_spike_50pct_24h", {"rebalancing.enabled": False}, STRESS_START, STRESS_END,
         "liquidations"),
    "umn rally with Binance down (outage, margin moves)":
        ("usdt_market_neutral", "eth_spike_30pct_4h_binance_down", {}, STRESS_START, STRESS_END, "rebalances"),
    "eth_leveraged CAPO misprice at 0.925 LTV (AAVE liquidation)":
        ("eth_leveraged", "oracle_capo_misprice_2_85pct", {"leverage.target_ltv": 0.925}, STRESS_START, STRESS_END,
         "liquidations"),
    "eth_leveraged stETH depeg (deleverages)":
        ("eth_leveraged", "steth_june2022_7pct_3d", {}, STRESS_START, STRESS_END, "rebalances"),
    "btc_basis funding -50 % APR":
        ("btc_basis", "funding_minus_50apr_14d", {}, STRESS_START, STRESS_END, None),
    "umn no leverage ETH halving, margin target 0.3":
        ("usdt_market_neutral_no_leverage", "eth_crash_50pct_24h", {"hedge.margin_ratio_target": 0.3},
         STRESS_START, STRESS_END, "rebalances"),
    "eth_basis 2024-02 thin margin, no rebalancing (intra-hour liquidations)":
        ("eth_basis", None, {"hedge.margin_ratio_target": 0.22, "rebalancing.margin_ratio_trigger": 0.15,
                       "rebalancing.enabled": False},
         "2024-02-07T00:00Z", "2024-03-31T23:00Z", "liquidations"),
    "eth_basis trigger next to its target (a margin move every few days)":
        ("eth_basis", None, {"hedge.margin_ratio_target": 0.25, "rebalancing.margin_ratio_trigger": 0.24}, None, None,
         "rebalances"),
}


def _request(mode: str, scenario: str | None = None, overrides: dict | None = None, start: str | None = None,
             end: str | None = None) -> BacktestRequest:
    req = BacktestRequest(mode=mode, start=pd.Timestamp(start) if start else None,
                          end=pd.Timestamp(end) if end else None, cli_overrides=dict(overrides or {}))
    return replace(req, scenario=load_scenario(scenario), scenario_at=AT) if scenario else req


def _close(name: str, fast, ref, scale: float, diffs: list[float]) -> None:
    """fast == ref to RTOL of `scale` (NaN where NaN); records the largest absolute difference."""
    a, b = np.asarray(fast, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert a.shape == b.shape, name
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
    finite = np.isfinite(b)
    np.testing.assert_array_equal(a[~finite & ~np.isnan(b)], b[~finite & ~np.isnan(b)], err_msg=name)
    if finite.any():
        diff = np.abs(a[finite] - b[finite])
        diffs.append(float(diff.max()))
        bound = RTOL * np.maximum(np.abs(b[finite]), scale)
        assert (diff <= bound).all(), f"{name}: max difference {diff.max():.3g}"


def _same_value(name: str, fast, ref, scale: float, diffs: list[float]) -> None:
    """Nested summary values: numbers within tolerance, everything else equal."""
    if isinstance(ref, dict):
        assert fast.keys() == ref.keys(), name
        for key in ref:
            _same_value(f"{name}.{key}", fast[key], ref[key], scale, diffs)
    elif isinstance(ref, (list, tuple)):
        assert len(fast) == len(ref), name
        for i, (x, y) in enumerate(zip(fast, ref)):
            _same_value(f"{name}[{i}]", x, y, scale, diffs)
    elif isinstance(ref, float) and not isinstance(ref, bool):
        if math.isnan(ref):
            assert math.isnan(fast), name
        else:
            _close(name, fast, ref, scale, diffs)
    else:
        assert fast == ref, name


def assert_same_run(fast: BacktestResult, ref: BacktestResult) -> float:
    """Every result of the two runs agrees; returns the largest absolute difference seen."""
    f, r = fast.output, ref.output
    scale = abs(r.initial_value)
    diffs: list[float] = [0.0]
    for name in ("values", "values_protocol", "components", "health_factor", "ltv", "delta_onchain", "delta_cex",
                 "hedge_notional"):
        _close(name, getattr(f, name), getattr(r, name), scale, diffs)
    # the reconciliation error is a difference of values: compared at the values' scale
    _close("reconciliation", f.reconciliation, r.reconciliation, scale, diffs)
    assert (f.reconciliation < 0.01).all()                  # the invariant, checked at every hour
    assert f.margin_ratio.keys() == r.margin_ratio.keys()
    for venue in r.margin_ratio:
        _close(f"margin_ratio[{venue}]", f.margin_ratio[venue], r.margin_ratio[venue], 1.0, diffs)
    assert f.rebalance_hours == r.rebalance_hours
    assert f.liquidation_count == r.liquidation_count
    assert f.risk_warnings == r.risk_warnings
    assert len(f.events) == len(r.events)
    for a, b in zip(f.events.events, r.events.events):
        for field in fields(b):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if isinstance(y, float):
                _close(f"event {b.order} {field.name}", x, y, scale, diffs)
            else:
                assert x == y, f"event {b.order} {field.name}: {x!r} != {y!r}"
    assert f.holdings.hours == r.holdings.hours
    for hour, x, y in zip(r.holdings.hours, f.holdings.states, r.holdings.states):
        assert x.keys() == y.keys(), hour
        _close(f"holdings at {hour}", [x[k] for k in y], [y[k] for k in y], 1.0, diffs)
    _same_value("ledger_totals", f.ledger_totals, r.ledger_totals, scale, diffs)
    if r.rewards is not None:
        assert f.rewards is not None
        _close("rewards.eligible", f.rewards.eligible, r.rewards.eligible, 1.0, diffs)
        _same_value("rewards.payments", [p.as_dict() for p in f.rewards.payments],
                    [p.as_dict() for p in r.rewards.payments], 1.0, diffs)
    assert f.final_portfolio == r.final_portfolio or _portfolios_close(f.final_portfolio, r.final_portfolio)
    summary = {k: v for k, v in ref.summary.items() if k not in NOT_RESULTS}
    _same_value("summary", {k: fast.summary[k] for k in summary}, summary, scale, diffs)
    return max(diffs)


def _portfolios_close(a, b) -> bool:
    wa, wb = a.wallet, b.wallet
    for x, y in ((wa.tokens, wb.tokens), (wa.supply_scaled, wb.supply_scaled), (wa.debt_scaled, wb.debt_scaled)):
        assert x.keys() == y.keys() and all(math.isclose(x[k], y[k], rel_tol=RTOL, abs_tol=1e-12) for k in y)
    for venue, acct in b.cex.items():
        other = a.cex[venue]
        assert math.isclose(other.usdt, acct.usdt, rel_tol=RTOL, abs_tol=1e-9)
        assert {k: (p.size, p.entry_price) for k, p in other.perps.items()} == pytest.approx(
            {k: (p.size, p.entry_price) for k, p in acct.perps.items()}, rel=RTOL)
    return True


@pytest.mark.parametrize("mode", MODES)
def test_the_fast_path_is_the_stepped_run_on_every_mode(backtest_service, full_runs, mode):
    fast = full_runs[mode]
    ref = backtest_service.run(BacktestRequest(mode=mode), stepwise=True)
    MAX_DIFF[mode] = assert_same_run(fast, ref)
    print(f"\n{mode}: largest fast-vs-stepped difference {MAX_DIFF[mode]:.3g}")


@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_is_the_stepped_run_under_stress(backtest_service, case):
    mode, scenario, overrides, start, end, shows = CASES[case]
    request = _request(mode, scenario, overrides, start, end)
    fast = backtest_service.run(request)
    ref = backtest_service.run(request, stepwise=True)
    MAX_DIFF[case] = assert_same_run(fast, ref)
    print(f"\n{case}: largest fast-vs-stepped difference {MAX_DIFF[case]:.3g}")
    if shows is not None:
        assert fast.summary[shows] > 0


def test_the_quiet_hours_are_reconciled_independently(backtest_service, monkeypatch):
    """The fast path's reconciliation is a check, not an identity: value and attribution come from
    separate closed forms. An attribution that forgets the perps' mark-to-market (for the quiet
    hours only) shows up as a reconciliation error in exactly those hours."""
    request = _request("eth_basis", None, {}, "2024-06-01T00:00Z", "2024-06-30T23:00Z")
    honest = backtest_service.run(request)
    attribute = stretch.attribute

    def without_perps(*args, **kwargs):
        move = attribute(*args, **kwargs)
        move.perp_mtm = np.zeros_like(move.perp_mtm)
        return move

    monkeypatch.setattr(stretch, "attribute", without_perps)
    broken = backtest_service.run(request)
    stepped = np.zeros(len(honest.output.values), dtype=bool)
    stepped[[0, *honest.output.rebalance_hours]] = True
    assert honest.summary["reconciliation_error"] < 0.01
    assert (broken.output.reconciliation[~stepped] > 0.01).mean() > 0.9     # the perps move most hours
    assert (broken.output.reconciliation[stepped] < 0.01).all()
