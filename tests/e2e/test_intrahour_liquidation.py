"""Liquidation checks inside the hour: a short is liquidated when the hour's HIGH mark takes its
margin ratio below maintenance, not only its close. Hand computation from the raw CSV files (read
here with the csv module, not through the data layer).

The case: 2024-02-14, ETH rallies from 2,654 to 2,775 in six hours. eth_basis entered on
2024-02-07 00:00 with a thin margin target of 0.22 (the validated minimum is just above the 0.20
warning ratio) and no rebalancing: the Binance short's breach price is about 2,761. The 10:00 bar
reaches 2,763.60 and closes at 2,754.91; the next closes above 2,761 come only at 13:00 (2,766.79).
A close-only check liquidated at 13:00; the high liquidates it at 10:00, three hours earlier.
"""
from __future__ import annotations

import csv
import gzip

import pandas as pd
import pytest

from bootstrap import DATA_DIR
from engine.config import load_config
from engine.data import catalog
from engine.services.backtest import BacktestRequest
from engine.services.run_params import build_run_params

START, END = "2024-02-07T00:00Z", "2024-02-16T23:00Z"
OVERRIDES = {"rebalancing.enabled": False, "hedge.margin_ratio_target": 0.22, "rebalancing.margin_ratio_trigger": 0.15}


def _raw_rows(rel: str) -> list[dict[str, str]]:
    with gzip.open(DATA_DIR / f"{rel}.gz", "rt", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _bars(venue: str) -> dict[str, tuple[float, float]]:
    """ISO hour -> (close, high) of the venue's raw ETH perp file; an hour the file lacks takes the
    fallback venue's bar for that hour (the data layer's rule: Binance has a 24-hour hole on
    2024-02-10, filled from Bybit)."""
    def own(v: str) -> dict[str, tuple[float, float]]:
        return {r["timestamp"][:16]: (float(r["close"]), float(r["high"]))
                for r in _raw_rows(catalog.PERP_FILES[(v, "ETH")])}
    bars = own(venue)
    for fallback in catalog.PERP_FALLBACK[venue]:
        bars = own(fallback) | bars
    return bars


def _funding(venue: str) -> dict[str, float]:
    return {r["funding_timestamp"][:16]: float(r["funding_rate"])
            for r in _raw_rows(catalog.FUNDING_FILES[(venue, "ETH")])}


def _hand_liquidation_hours(venue: str, margin_at_entry: float, mmr: float) -> tuple[str, str, float]:
    """(first hour whose high breaches, first hour whose close breaches, breach price) for the short
    entered at START and left alone: equity per unit E moves by (previous close - close) and, at a
    settlement, by close x rate (a short receives positive funding); the ratio at the high is
    (E + close - high) / high, and the breach price P* solves E + close - P* = mmr x P*."""
    bars, funding = _bars(venue), _funding(venue)
    hours = pd.date_range(START, END, freq="h").strftime("%Y-%m-%dT%H:%M")
    close0 = bars[hours[0]][0]
    equity = margin_at_entry * close0
    previous = close0
    by_high = by_close = None
    breach = float("nan")
    for hour in hours[1:]:
        close, high = bars[hour]
        equity += previous - close + close * funding.get(hour, 0.0)
        previous = close
        if by_high is None and (equity + close - high) / high < mmr:
            by_high, breach = hour, (equity + close) / (1 + mmr)
        if by_close is None and equity / close < mmr:
            by_close = hour
    assert by_high is not None and by_close is not None
    return by_high, by_close, breach


def test_the_hours_high_liquidates_the_2024_02_14_short_eight_hours_before_its_close(backtest_service):
    request = BacktestRequest(mode="eth_basis", start=pd.Timestamp(START), end=pd.Timestamp(END),
                              cli_overrides=dict(OVERRIDES))
    result = backtest_service.run(request)
    params = build_run_params(load_config("eth_basis", cli_overrides=dict(OVERRIDES)))
    liqs = {e.venue: e for e in result.events if e.type == "liquidation"}

    mmr = params.cex["binance"].maintenance_margin_ratio
    by_high, by_close, breach = _hand_liquidation_hours("binance", result.output.margin_ratio["binance"][0], mmr)
    # Entered at a margin ratio of 0.2192 (the 0.22 target less the entry's costs), the short's
    # equity reaches maintenance inside the 13:00 bar (high 2,775.00); no close gets there before 21:00.
    assert (by_high, by_close) == ("2024-02-14T13:00", "2024-02-14T21:00")
    binance = liqs["binance"]
    assert binance.timestamp == "2024-02-14T13:00:00Z"
    assert binance.price == pytest.approx(breach, rel=1e-9)
    assert 2_766.79 < binance.price < 2_775.00         # above the 13:00 close, below its high
    assert "at the hour's high mark" in binance.reason

    # Bybit's own bars: its short reaches its breach price in the 13:00 bar, and no earlier close does
    by_high, by_close, breach = _hand_liquidation_hours("bybit", result.output.margin_ratio["bybit"][0],
                                                        params.cex["bybit"].maintenance_margin_ratio)
    assert liqs["bybit"].timestamp[:16] == by_high
    assert liqs["bybit"].price == pytest.approx(breach, rel=1e-9)
    assert by_high <= by_close
    # The pack has no OKX perp prices before 2024-08-01: OKX's hours are Binance's bars (flagged in
    # the run's data_fallbacks), so its short goes in the same hour.
    assert liqs["okx"].hour == binance.hour
    assert result.summary["data_fallbacks"]["perp.okx.ETH"]["substitutes"]
