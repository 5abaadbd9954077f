"""The market-neutral entry in the backtest engine on the real shipped data: the margins reach the
venues before any ETH exposure, the long leg and its hedge are built in tranches whose net ETH delta
stays inside the band (`rebalancing.delta_drift_trigger` x the long leg) after every instruction,
and the loop runs once, at the end. (A refusal part-way: tests/unit/test_banded_entry.py; live:
tests/integration/test_live_market_neutral_entry.py.)

The delta after each step is replayed from the run's own event log (tests/entry_band.py) and checked
against the engine's hourly delta series at the end of the entry hour.
"""
from __future__ import annotations

import pandas as pd
import pytest

from engine.services.backtest import BacktestRequest
from engine.strategies.banded_growth import plan_tranches
from tests.entry_band import net_after_each_step

START = pd.Timestamp("2024-05-12 01:00", tz="UTC")       # the common window's first hour
END = pd.Timestamp("2024-05-13 23:00", tz="UTC")


def run(service, mode: str, capital: float | None = None, **kw):
    return service.run(BacktestRequest(mode=mode, start=START, end=END, capital=capital, **kw))


def entry_events(r) -> list:
    return [e for e in r.events if e.hour == 0 and e.reason.startswith("entry")]


@pytest.mark.parametrize("mode", ["usdt_market_neutral_no_leverage", "usdt_market_neutral"])
@pytest.mark.parametrize("capital", [None, 40_000.0, 1e6])
def test_the_entry_keeps_the_net_delta_in_the_band_after_every_step(backtest_service, mode, capital):
    r = run(backtest_service, mode, capital)
    assert r.summary["reconciliation_error"] < 0.01
    events = entry_events(r)
    eth = float(r.eth_price[0])
    oracle = float(r.data.columns["lst.weETH.oracle"][0]) if "lst.weETH.oracle" in r.data.columns else None
    assert oracle is not None and 1.0 < oracle < 1.2
    long_usd = sum(e.amount for e in events if e.type == "swap")
    plan = plan_tranches(r.params, long_usd)
    band = r.params.strategy.delta_drift_trigger * long_usd
    steps = net_after_each_step(events, oracle)
    worst = max(abs(s.net_eth) * eth for s in steps)
    assert worst <= plan.lead_usd * (1 + 1e-9) < band, (worst, plan.lead_usd, band)
    # the replay agrees with the engine's own delta at the end of the hour (nothing else trades then)
    assert steps[-1].net_eth == pytest.approx(r.output.delta_onchain[0] + r.output.delta_cex[0], abs=1e-9)
    # the shape: margins first, then shorts-then-swap rounds, the loop once at the end
    kinds = [e.type for e in events if e.parent is None]
    first = next(i for i, k in enumerate(kinds) if k in ("perp_trade", "swap"))
    assert kinds[:first] == ["transfer"] * 3
    assert kinds.count("swap") == plan.swaps == 28
    growth = ",".join(k for k in kinds if k in ("perp_trade", "swap"))
    assert "swap,swap" not in growth and growth.startswith("perp_trade")
    last_swap = max(i for i, k in enumerate(kinds) if k == "swap")
    assert all(k not in ("stake", "bundle") for k in kinds[:last_swap])
    assert kinds.count("bundle" if r.params.strategy.target_ltv else "stake") == 1
