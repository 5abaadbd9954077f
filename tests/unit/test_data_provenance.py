"""Data provenance on the shipped data: per-series substitute counts, the run-start warning for a
series that is mostly substitute, and the OKX duplicate-settlement rule checked by independent code."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import main
from bootstrap import DATA_DIR
from engine.data import DataRequirements, HistoricalDataProvider, catalog
from engine.data.funding import resolve_venue
from engine.data.raw_store import RawStore

BTC_BASIS = DataRequirements(spot=("BTC",), perps=(("binance", "BTC"), ("bybit", "BTC"), ("okx", "BTC")))


@pytest.fixture(scope="module")
def btc(cache_dir):
    req = BTC_BASIS
    return HistoricalDataProvider(DATA_DIR, cache_dir).load(req)


def test_every_series_accounts_for_every_hour(btc):
    for column, prov in btc.provenance.items():
        assert prov.own + sum(prov.substitutes.values()) + prov.forward_filled == prov.total, column
        assert prov.total == (len(btc) if prov.unit == "hours" else int(btc.is_funding_hour.sum()))


def test_okx_btc_perp_is_all_substitute_and_warned(btc):
    okx = btc.provenance["perp.okx.BTC"]
    assert okx.own == 0 and okx.substitute_share == 1.0
    assert set(okx.substitutes) == {"binance BTC perp close", "bybit BTC perp close"}
    binance = btc.provenance["perp.binance.BTC"]
    assert okx.substitutes["bybit BTC perp close"] == binance.substitutes["bybit BTC perp close"]  # binance's holes
    (warning,) = btc.substitute_warnings()
    assert warning.startswith("okx BTC perp is 100% substitute data: 15,048 of 15,048 hours come from other sources")


def test_provenance_survives_the_warm_cache(cache_dir, btc):
    req = BTC_BASIS
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    warm = provider.load(req)
    assert provider.last_load_from_cache
    assert warm.provenance_summary() == btc.provenance_summary()


def test_cli_warns_at_run_start_and_summary_counts_per_series(tmp_path: Path, capsys, cache_dir, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    code = main.main(["backtest", "--mode", "btc_basis", "--start", "2024-06-01", "--end", "2024-06-30",
                      "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.startswith("warning: okx BTC perp is 100% substitute data: 720 of 720 hours")
    assert "data                       okx BTC perp: 0 of 720 hours own; substitutes" in out
    import json
    summary = json.loads((tmp_path / "summary.json").read_text())
    okx = summary["data_fallbacks"]["perp.okx.BTC"]
    assert (okx["total"], okx["own"], okx["substitute_share"]) == (720, 0, 1.0)
    assert summary["data_warnings"] == [err.splitlines()[0].removeprefix("warning: ")]
    funding = summary["data_fallbacks"]["funding.okx.BTC"]
    assert funding["unit"] == "settlements" and funding["total"] == 90


def _independent_okx_rule(asset: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(rule, keep-last, keep-first) rates at the conflicting OKX settlements, from the raw files
    with pandas only: the rule keeps the row closest to the mean of Binance's and Bybit's rate."""
    def raw(venue: str) -> pd.DataFrame:
        frame = pd.read_csv(DATA_DIR / f"{catalog.FUNDING_FILES[(venue, asset)]}.gz")
        frame["t"] = pd.to_datetime(frame["funding_timestamp"], utc=True, format="ISO8601")
        return frame

    okx = raw("okx")
    conflicted = okx.groupby("t")["funding_rate"].nunique()
    conflicted = conflicted[conflicted > 1].index
    refs = [raw(v).drop_duplicates("t", keep=False).set_index("t")["funding_rate"] for v in ("binance", "bybit")]
    reference = pd.concat(refs, axis=1).reindex(conflicted).mean(axis=1)
    rows = okx[okx["t"].isin(conflicted)].sort_values("t", kind="stable")
    rows = rows.assign(distance=(rows["funding_rate"] - rows["t"].map(reference)).abs())
    rule = rows.loc[rows.groupby("t")["distance"].idxmin()].set_index("t")["funding_rate"]
    return rule, rows.groupby("t")["funding_rate"].last(), rows.groupby("t")["funding_rate"].first()


@pytest.mark.parametrize("asset", ["ETH", "BTC"])
def test_okx_duplicate_rule_matches_an_independent_computation(asset):
    rule, last, first = _independent_okx_rule(asset)
    resolved = resolve_venue(RawStore(DATA_DIR), "okx", asset)
    assert resolved.conflict_times.size == len(rule) == 210
    engine = pd.Series(resolved.values, index=pd.to_datetime(resolved.times, unit="s", utc=True))
    np.testing.assert_array_equal(engine.reindex(rule.index).to_numpy(), rule.to_numpy())
    # neither "keep last" nor "keep first" is the rule: each picks the implausible row about half the time
    assert 60 < int((last != rule).sum()) < 150 and 60 < int((first != rule).sum()) < 150
    # the rejected rows sit below the market: the rule keeps the higher rate on average
    assert rule.mean() > last.mean() and rule.mean() > first.mean()
