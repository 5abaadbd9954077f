"""Funding in the engine equals -size x mark x rate with the rate read straight from the raw CSVs."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

FUNDING_DIR = REPO_ROOT / "data/market_data/derivatives/funding_rates"


def raw_rates(venue: str) -> pd.Series:
    path = next(FUNDING_DIR.glob(f"{venue}_ETHUSDT_funding_rates_*.csv.gz"))
    df = pd.read_csv(path)
    return df.set_index(pd.to_datetime(df["funding_timestamp"], utc=True))["funding_rate"]


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_every_settlement_uses_the_raw_rate_on_current_notional(full_runs, venue):
    r = full_runs["eth_basis"]
    rates = raw_rates(venue)
    settlements = [e for e in r.events if e.type == "funding" and e.venue == venue]
    assert len(settlements) > 1500                    # every 8 h over the window
    for e in settlements:
        ts = pd.Timestamp(e.timestamp)
        assert ts.hour in (0, 8, 16)
        rate = rates[ts] if not isinstance(rates[ts], pd.Series) else rates[ts].iloc[-1]
        assert e.amount_out == pytest.approx(-e.amount * e.price * rate, rel=1e-9, abs=1e-9)
    total = sum(e.amount_out for e in r.events if e.type == "funding")
    assert total == pytest.approx(r.summary["pnl_components"]["funding"], rel=1e-9)
