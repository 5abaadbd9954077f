"""Liquidations and rebalances happen when prices force them, and the books still reconcile."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bootstrap import DATA_DIR
from engine.data import HistoricalDataProvider
from engine.services.backtest import BacktestRequest, BacktestService
from venues.simulated.venue import ExecutionRejected, SimulatedVenues

RALLY = dict(start=pd.Timestamp("2024-02-01 00:00", tz="UTC"), end=pd.Timestamp("2024-03-31 23:00", tz="UTC"))


def test_unrebalanced_basis_is_liquidated_in_the_2024_rally(backtest_service):
    """ETH went ~$2,300 -> ~$4,000 in Feb-Mar 2024: a short with 25% margin and no top-ups
    falls through maintenance (5%) on every venue and is closed with the liquidation fee."""
    req = BacktestRequest(mode="eth_basis", cli_overrides={"rebalancing.enabled": False}, **RALLY)
    r = backtest_service.run(req)
    s = r.summary
    assert s["liquidations"] >= 3                       # each of the three perp venues
    assert s["rebalances"] == 0
    assert s["pnl_components"]["liquidation"] < 0
    assert s["reconciliation_error"] < 0.01
    liq = [e for e in r.events if e.type == "liquidation"]
    assert {e.venue for e in liq} == {"binance", "bybit", "okx"}
    # after the liquidation the spot leg is unhedged: the net delta equals the spot holding
    assert r.output.delta_cex[-1] > 0


def test_rebalanced_basis_survives_the_same_rally(backtest_service):
    req = BacktestRequest(mode="eth_basis", **RALLY)
    r = backtest_service.run(req)
    s = r.summary
    assert s["liquidations"] == 0
    assert s["rebalances"] >= 1
    assert s["min_margin_ratio"] > 0.05                 # never reached maintenance
    assert s["reconciliation_error"] < 0.01
    transfers = [e for e in r.events if e.type == "transfer" and e.reason.startswith("margin")]
    assert transfers, "margin rebalances move USDT to the short venues"


class ShockedProvider(HistoricalDataProvider):
    """The real data with the weETH oracle falling by `drop` over `hours` hours from `at` (a depeg)."""

    def __init__(self, *args, at: int, drop: float, hours: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.drop, self.hours = at, drop, hours

    def load(self, req, start=None, end=None):
        data = super().load(req, start, end)
        oracle = np.array(data.columns["lst.weETH.oracle"], dtype=np.float64)
        ramp = np.clip((np.arange(len(oracle)) - self.at) / self.hours, 0.0, 1.0)
        oracle *= 1.0 - self.drop * ramp
        data.columns["lst.weETH.oracle"] = oracle
        data.columns["lst.weETH.market"] = np.array(data.columns["lst.weETH.market"]) * (1.0 - self.drop * ramp)
        return data


def shocked_service(tmp_path, drop: float, hours: int) -> BacktestService:
    provider = ShockedProvider(DATA_DIR, tmp_path, at=200, drop=drop, hours=hours)
    return BacktestService(provider, SimulatedVenues, ExecutionRejected)


WINDOW = dict(start=pd.Timestamp("2024-06-01 00:00", tz="UTC"), end=pd.Timestamp("2024-06-30 23:00", tz="UTC"))


def test_sudden_depeg_liquidates_the_loop_on_aave(tmp_path):
    """An 8% oracle drop in one hour takes HF from ~1.056 to ~0.97: the liquidator repays half the
    debt and seizes 1.01x of it in collateral."""
    r = shocked_service(tmp_path, 0.08, 1).run(BacktestRequest(mode="eth_leveraged", **WINDOW))
    s = r.summary
    assert s["liquidations"] >= 1
    liq = next(e for e in r.events if e.type == "liquidation")
    assert liq.venue == "aave_v3" and liq.hour == 201
    assert s["pnl_components"]["liquidation"] < 0
    hf_at_liquidation = float(liq.reason.split()[2])
    assert 0.95 < hf_at_liquidation < 1.0            # partial (close factor) liquidation range
    assert r.output.health_factor[201] > hf_at_liquidation   # half the debt repaid lifts HF
    assert s["reconciliation_error"] < 0.01


def test_gradual_depeg_is_deleveraged_before_liquidation(tmp_path):
    """The same 8% drop spread over two days: the HF floor trigger deleverages in time."""
    r = shocked_service(tmp_path, 0.08, 48).run(BacktestRequest(mode="eth_leveraged", **WINDOW))
    s = r.summary
    assert s["liquidations"] == 0
    assert s["rebalances"] >= 1
    assert s["min_health_factor"] > 1.0
    bundles = [e for e in r.events if e.type == "bundle" and e.reason == "hf_floor"]
    assert bundles and all(any(c.parent == b.order for c in r.events) for b in bundles)
    assert s["reconciliation_error"] < 0.01


@pytest.mark.parametrize("method", ["atomic", "sequential"])
def test_loop_methods_reach_their_leverage(backtest_service, method):
    overrides = {"leverage.loop_method": method}
    if method == "sequential":
        overrides.update({"leverage.flash_venue": None, "leverage.max_iterations": None})
    r = backtest_service.run(BacktestRequest(mode="eth_leveraged", cli_overrides=overrides, **WINDOW))
    ltv0 = r.output.ltv[0]
    target = r.params.strategy.target_ltv
    if method == "atomic":
        assert ltv0 == pytest.approx(target, rel=1e-9)
        assert sum(e.type == "bundle" for e in r.events if e.hour == 0) == 1
    else:
        iterations = {e.iteration for e in r.events if e.hour == 0 and e.iteration is not None}
        assert len(iterations) > 5                      # many stake/supply/borrow rounds
        assert target * 0.9 < ltv0 < target             # a finite loop stays just under the target
    assert r.summary["reconciliation_error"] < 0.01


def test_surplus_margin_goes_back_to_the_spot_leg(backtest_service):
    """ETH fell ~$4,000 -> ~$2,200 in Jun-Aug 2024: the shorts' profit pushes the margin ratio past the
    ceiling, the surplus is realised, sent to the spot venue and buys spot; the hedge follows."""
    req = BacktestRequest(mode="eth_basis", start=pd.Timestamp("2024-06-01", tz="UTC"),
                          end=pd.Timestamp("2024-08-31 23:00", tz="UTC"),
                          cli_overrides={"rebalancing.margin_ratio_ceiling": 0.6})
    r = backtest_service.run(req)
    s = r.summary
    hours = [e.hour for e in r.events if e.type == "rebalance" and e.reason.startswith("margin_excess")]
    assert hours, "a margin ratio above the ceiling triggers a redeploy"
    redeploy = [e for e in r.events if e.hour == hours[0] and e.type != "rebalance"]
    assert any(e.type == "transfer" and e.to_asset == "bybit" for e in redeploy)     # home to the spot venue
    assert any(e.type == "spot_trade" and e.amount > 0 for e in redeploy)            # buys spot
    # when cash alone does not cover the surplus, the unrealised profit is realised first
    assert any("realise" in e.reason for e in r.events if e.hour in hours)
    ratios = np.column_stack([a for a in r.output.margin_ratio.values()])
    assert np.nanmax(ratios[hours[0] + 1]) < 0.6
    net_usd = r.output.delta_cex * r.underlying_price
    assert np.max(np.abs(net_usd) / r.output.values) < r.params.strategy.delta_drift_trigger
    assert s["reconciliation_error"] < 0.01
