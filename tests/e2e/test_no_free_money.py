"""No capital and no stress setting may make money appear (the invariant behind every liquidation).

Random capitals (log-uniform 50 .. 1e7 USDT) and stress overrides (tight margin targets and triggers,
no rebalancing, a lazy hedge, a hair-trigger margin ceiling) on random windows of every mode with CEX
legs, on the real data. For each run:
- the liquidation component is never positive, and no liquidation event reports a negative loss;
- every hour still reconciles (value change == sum of attributed components, < 0.01);
- no account ends with an unexplained negative balance: a CEX account below zero only after a
  liquidation that said the account owes the deficit; wallet tokens never below zero except the gas
  debt; AAVE scaled balances never below zero;
- a capital the mode cannot use is refused with the minimum capital named, never run unhedged.

The cases are a seeded random sample (each its own test id, so a failure names its case and
reproduces); the sample size keeps the whole file well under a minute.
"""
from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from engine.services.backtest import BacktestRequest, BacktestService
from engine.strategies.capacity import CapitalTooSmall
from venues.simulated.venue import ExecutionRejected, SimulatedVenues

CEX_MODES = ("btc_basis", "eth_basis", "usdt_market_neutral_no_leverage", "usdt_market_neutral")
STRESS = {
    "shipped": {},
    "tight margins": {"hedge.margin_ratio_target": 0.21, "rebalancing.margin_ratio_trigger": 0.06,
                      "risk.margin_ratio_floor": 0.055},
    "no rebalancing": {"rebalancing.enabled": False},
    "lazy hedge": {"hedge.margin_ratio_target": 0.21, "rebalancing.margin_ratio_trigger": 0.07,
                   "risk.margin_ratio_floor": 0.06, "rebalancing.delta_drift_trigger": 0.5},
    "hair-trigger ceiling": {"rebalancing.margin_ratio_ceiling": 0.4},
}
# The window's first day: the common window of the market-neutral modes starts 2024-05-12; the basis
# modes reach back to the Feb-Mar 2024 rally that liquidates unrebalanced shorts.
FIRST_DAY = {"btc_basis": "2024-01-01", "eth_basis": "2024-01-01",
             "usdt_market_neutral_no_leverage": "2024-05-13", "usdt_market_neutral": "2024-05-13"}
LAST_DAY = pd.Timestamp("2025-09-18", tz="UTC")


class RecordingVenues(SimulatedVenues):
    """The real simulated venues; remembers the portfolio so the test can read the final balances."""

    last: RecordingVenues | None = None

    def __init__(self, portfolio, market, params) -> None:
        super().__init__(portfolio, market, params)
        RecordingVenues.last = self


def sample_cases(count: int, seed: int = 20240805) -> list[tuple]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        mode = rng.choice(CEX_MODES)
        capital = round(10 ** rng.uniform(math.log10(50), 7), 2)
        stress = rng.choice(sorted(STRESS))
        first = pd.Timestamp(FIRST_DAY[mode], tz="UTC")
        days = rng.randint(60, 240)
        start = first + pd.Timedelta(days=rng.randint(0, (LAST_DAY - first).days - days))
        out.append((mode, capital, stress, start, start + pd.Timedelta(days=days, hours=23)))
    return out


CASES = sample_cases(48)


@pytest.fixture(scope="module")
def recording_service(backtest_service):
    return BacktestService(backtest_service.provider, RecordingVenues, ExecutionRejected)


@pytest.mark.parametrize("mode, capital, stress, start, end", CASES,
                         ids=[f"{c[0]}-{c[1]:g}-{c[2].replace(' ', '_')}-{c[3]:%Y%m%d}" for c in CASES])
def test_no_capital_or_stress_setting_makes_money_appear(recording_service, mode, capital, stress, start, end):
    request = BacktestRequest(mode=mode, start=start, end=end, capital=capital, cli_overrides=STRESS[stress])
    try:
        result = recording_service.run(request)
    except CapitalTooSmall as exc:
        minimum = float(str(exc).rsplit("minimum capital is ", 1)[1].split()[0].replace(",", ""))
        assert capital < minimum, exc
        return
    s = result.summary
    where = f"{mode} capital {capital:g} [{stress}] {start:%Y-%m-%d}..{end:%Y-%m-%d}"
    assert s["pnl_components"]["liquidation"] <= 0.0, where
    liquidations = [e for e in result.events if e.type == "liquidation"]
    assert all(e.execution_cost_usd >= 0.0 for e in liquidations), where
    assert s["reconciliation_error"] < 0.01, (where, s["reconciliation_error"])

    portfolio = RecordingVenues.last.p
    owing = {e.venue for e in liquidations if "owes" in e.reason}
    for venue, acct in portfolio.cex.items():
        assert acct.usdt >= -1e-6 or venue in owing, (where, venue, acct.usdt)
        assert all(q >= -1e-9 for q in acct.spot.values()), (where, venue, acct.spot)
    w = portfolio.wallet
    for token, amount in w.tokens.items():
        assert amount >= -1e-9 or token in ("ETH", "GAS_DEBT"), (where, token, amount)
    assert all(v >= -1e-12 for v in (*w.supply_scaled.values(), *w.debt_scaled.values())), where


def test_the_sample_covers_refused_and_running_capitals_and_every_stress():
    small = [c for c in CASES if c[1] < 1_000]
    assert 4 <= len(small) <= len(CASES) // 2
    assert {c[2] for c in CASES} == set(STRESS) and {c[0] for c in CASES} == set(CEX_MODES)


@pytest.mark.parametrize("mode", CEX_MODES)
def test_the_reported_stress_runs_book_no_liquidation_gain(backtest_service, mode):
    """The cases of the bug report, each over the full window: capital 1,000 (it used to book a
    liquidation gain of +4,379 USDT on eth_basis; then it was refused, because a 60 USDT margin transfer
    set the minimum at 1,700) and the tight-margin stress on 100,000.

    At 1,000 the hedge is built on every venue at entry (each margin transfer rounded up to the
    venue's 100 USDT floor), and the top-ups a venue in danger needs are rounded up too, so the
    shipped settings keep every account funded: no liquidation at all."""
    for capital, overrides in ((1_000.0, {}), (None, STRESS["tight margins"])):
        result = backtest_service.run(BacktestRequest(mode=mode, capital=capital, cli_overrides=overrides))
        s = result.summary
        assert s["pnl_components"]["liquidation"] <= 0.0, (mode, capital, s["pnl_components"])
        assert s["reconciliation_error"] < 0.01
        # A hedged book cannot out-earn its carry: well under the 31-49 % the write-off bug reported.
        assert s["apr"] < 0.15, (mode, capital, s["apr"])
        if capital == 1_000.0:
            entry = [e for e in result.events if e.hour == 0]
            shorts = {e.venue for e in entry if e.type == "perp_trade" and e.amount < 0}
            assert shorts == {"binance", "bybit", "okx"}, entry
            funded = [e for e in entry if e.type == "transfer"]
            assert funded and all(e.amount >= 100.0 for e in funded)
            assert s["liquidations"] == 0, (mode, [e for e in result.events if e.type == "liquidation"])
            topups = [e for e in result.events if e.type == "transfer" and "rounded up" in e.reason]
            assert all(e.amount == 100.0 for e in topups)
