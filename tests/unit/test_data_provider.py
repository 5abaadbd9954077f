"""HistoricalDataProvider on the real shipped data (data/): alignment, cleaning rules, flags, cache.

Expected values marked "from the raw file" were read by hand from the CSVs in data/ (gunzip -c).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data import AlignedMarketData, DataRangeError, DataRequirements, HistoricalDataProvider, catalog

DATA_DIR = Path(__file__).resolve().parents[2] / "data"

HEAVIEST = DataRequirements(
    spot=("BTC", "ETH"),
    perps=tuple((venue, asset) for venue in ("binance", "bybit", "okx") for asset in ("BTC", "ETH")),
    aave_reserves=("USDT", "WETH", "weETH", "wstETH"),
    lsts=("weETH", "wstETH"),
    etherfi_rewards=("eigen_weekly", "ethfi_topup", "ethfi_season"),
)
WINDOW_START = pd.Timestamp("2024-05-12 01:00", tz="UTC")
WINDOW_END = pd.Timestamp("2025-09-18 23:00", tz="UTC")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aligned-cache")


@pytest.fixture(scope="module")
def heavy(cache_dir: Path) -> AlignedMarketData:
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    data = provider.load(HEAVIEST)
    assert provider.last_load_from_cache is False
    return data


def at(data: AlignedMarketData, column: str, when: str) -> float:
    return float(data[column][data.index.get_loc(pd.Timestamp(when, tz="UTC"))])


def fallback(data: AlignedMarketData, prefix: str) -> str:
    matches = [f for f in data.fallbacks if f.startswith(prefix)]
    assert matches, f"no fallback starting with {prefix!r} in {data.fallbacks}"
    return matches[0]


def test_available_window_of_heaviest_set_is_the_design_common_window(cache_dir: Path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    assert provider.available_window(HEAVIEST) == (WINDOW_START, WINDOW_END)


def test_btc_only_window_starts_with_the_btc_files_and_ends_with_the_cost_lookup(cache_dir: Path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    req = DataRequirements(spot=("BTC",), perps=(("binance", "BTC"), ("okx", "BTC")))
    assert provider.available_window(req) == (
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2025-09-18 23:00", tz="UTC"),
    )


def test_grid_is_hourly_and_has_one_row_per_hour_of_the_window(heavy: AlignedMarketData) -> None:
    expected_hours = int((WINDOW_END - WINDOW_START) / pd.Timedelta(hours=1)) + 1
    assert len(heavy) == expected_hours == len(heavy.index)
    assert heavy.index[0] == WINDOW_START and heavy.index[-1] == WINDOW_END
    assert (np.diff(heavy.index.asi8) == 3_600_000_000_000).all()
    assert str(heavy.index.tz) == "UTC"


def test_every_column_is_float64_without_nan_and_read_only(heavy: AlignedMarketData) -> None:
    for name, values in heavy.columns.items():
        assert values.dtype == np.float64, name
        assert values.shape == (len(heavy),), name
        assert np.isfinite(values).all(), name
        assert not values.flags.writeable, name


def test_expected_columns_are_present(heavy: AlignedMarketData) -> None:
    expected = {"spot.BTC", "spot.ETH", "gas.gwei"}
    for venue in ("binance", "bybit", "okx"):
        for asset in ("BTC", "ETH"):
            expected |= {f"perp.{venue}.{asset}", f"funding.{venue}.{asset}"}
    for reserve in ("USDT", "WETH", "weETH", "wstETH"):
        expected |= {f"aave.{reserve}.liquidity_index", f"aave.{reserve}.borrow_index"}
    for lst in ("weETH", "wstETH"):
        expected |= {f"lst.{lst}.oracle", f"lst.{lst}.market"}
    expected |= {
        f"cost_bps.{pair}.{bucket}"
        for pair in ("ETH_USDT", "ETHUSDT-PERP", "BTCUSDT-PERP", "ETH_weETH")
        for bucket in ("10k", "100k", "1m")
    }
    assert expected <= set(heavy.columns)
    assert len([c for c in heavy.columns if c.startswith("cost_bps.")]) == 11 * 3


def test_eth_spot_gas_and_costs_are_loaded_even_with_empty_requirements(cache_dir: Path) -> None:
    data = HistoricalDataProvider(DATA_DIR, cache_dir).load(
        DataRequirements(), "2024-03-01", "2024-03-02 23:00"
    )
    assert "spot.ETH" in data and "gas.gwei" in data and "cost_bps.ETH_USDT.10k" in data
    assert "spot.BTC" not in data
    assert len(data) == 48


def test_spot_and_gas_values_match_the_raw_files(heavy: AlignedMarketData) -> None:
    # from the raw file: bybit ETHUSDT spot close at 2024-10-15 12:00 is read from the CSV here
    raw = pd.read_csv(DATA_DIR / (catalog.SPOT_FILES["ETH"] + ".gz"), usecols=["timestamp", "close"])
    row = raw[raw["timestamp"] == "2024-10-15T12:00:00Z"]
    assert at(heavy, "spot.ETH", "2024-10-15 12:00") == float(row["close"].iloc[0])
    # from the raw file: gas 2025-02-03 14:00 base_fee 9.49 + priority p50 1.31
    assert at(heavy, "gas.gwei", "2025-02-03 14:00") == pytest.approx(9.49 + 1.31, abs=1e-12)


def test_binance_24h_hole_takes_the_bybit_close_of_the_same_hour(heavy: AlignedMarketData) -> None:
    # from the raw files: binance BTCUSDT spot jumps from 2024-06-11 23:00 to 2024-06-12 23:00; the
    # bybit BTCUSDT spot closes in that hole are 67188.38 (00:00), 67782.3 (11:00), 68344.04 (22:00)
    for hour, bybit_close in (("2024-06-12 00:00", 67188.38), ("2024-06-12 11:00", 67782.3),
                              ("2024-06-12 22:00", 68344.04)):
        assert at(heavy, "spot.BTC", hour) == bybit_close
    assert at(heavy, "spot.BTC", "2024-06-12 23:00") == 68263.99       # binance again
    flag = fallback(heavy, "binance BTCUSDT spot:")
    assert "276 of 11879 hours use the bybit BTCUSDT spot close" in flag
    # the perps' holes are filled the same way, from the bybit perp
    assert "276 of 11879 hours use the bybit BTC perp close" in fallback(heavy, "binance BTC perp:")


def test_bybit_identical_duplicate_rows_are_dropped_and_counted(heavy: AlignedMarketData) -> None:
    step = "duplicate rows identical to an earlier row dropped"
    assert any("bybit BTC perp" in n and f"{step}: 15" in n for n in heavy.notes)
    assert heavy.provenance["perp.bybit.BTC"].cleaning == {step: 15}
    # the binance perp used the bybit file for its holes, so that file's cleaning is listed there too
    assert heavy.provenance["perp.binance.BTC"].cleaning == {f"bybit BTC perp close: {step}": 15}


def fallbacks_of(data: AlignedMarketData, prefix: str) -> list[str]:
    return [f for f in data.fallbacks if f.startswith(prefix)]


def test_okx_btc_perp_comes_entirely_from_binance_and_is_flagged(heavy: AlignedMarketData) -> None:
    np.testing.assert_array_equal(heavy["perp.okx.BTC"], heavy["perp.binance.BTC"])
    flag = fallback(heavy, "okx BTC perp:")
    assert f"{len(heavy) - 276} of {len(heavy)} hours use the binance BTC perp close" in flag
    assert "no okx BTC perp prices" in flag


def test_okx_eth_perp_uses_own_prices_and_binance_in_its_gaps(heavy: AlignedMarketData) -> None:
    # from the raw files, 2024-10-15 12:00 close: okx 2602.3, binance 2601.68
    assert at(heavy, "perp.okx.ETH", "2024-10-15 12:00") == 2602.3
    assert at(heavy, "perp.binance.ETH", "2024-10-15 12:00") == 2601.68
    # inside the okx gap 2024-08-31 16:00..2024-09-30 15:00: binance close 2409.8 (raw file)
    assert at(heavy, "perp.okx.ETH", "2024-09-15 12:00") == 2409.8
    flag = fallback(heavy, "okx ETH perp:")
    assert "2024-08-31 16:00..2024-09-30 15:00 (720 h)" in flag
    assert "2025-03-31 16:00..2025-04-30 15:00 (720 h)" in flag
    assert "3723 of 11879 hours use the binance ETH perp close" in flag
    # 92 of the okx gap hours fall in binance holes too: those take the bybit close of the hour
    assert "92 of 11879 hours use the bybit ETH perp close" in fallbacks_of(heavy, "okx ETH perp:")[1]


def test_funding_is_zero_outside_settlement_hours(heavy: AlignedMarketData) -> None:
    hours = heavy.hours_of_day
    assert set(np.unique(hours[heavy.is_funding_hour]).tolist()) == {0, 8, 16}
    for name in (c for c in heavy.columns if c.startswith("funding.")):
        values = heavy[name]
        assert (values[~heavy.is_funding_hour] == 0.0).all(), name
        assert np.count_nonzero(values[heavy.is_funding_hour]) > 0.9 * heavy.is_funding_hour.sum(), name


def test_funding_equals_the_raw_settlement_value(heavy: AlignedMarketData) -> None:
    # from the raw files, settlement 2024-06-01 08:00
    assert at(heavy, "funding.binance.ETH", "2024-06-01 08:00") == 0.00013009
    assert at(heavy, "funding.bybit.BTC", "2024-06-01 08:00") == 0.0001
    assert at(heavy, "funding.okx.ETH", "2024-06-01 08:00") == 7.1643506254e-05
    assert at(heavy, "funding.okx.ETH", "2024-06-01 09:00") == 0.0


def test_okx_conflicting_duplicates_keep_the_value_closest_to_binance_bybit(heavy: AlignedMarketData) -> None:
    # from the raw files, 2025-03-29 00:00:
    #   okx ETH rows: -9.8060587041e-06 then 0.0001; binance 3.56e-06, bybit 4.826e-05 (mean 2.591e-05)
    #   okx BTC rows: 0.0001 then -2.91725644984e-05; binance 5.364e-05, bybit 3.739e-05 (mean 4.5515e-05)
    # "keep last" would give 0.0001 and -2.917e-05; the cross-venue rule keeps the other value.
    assert at(heavy, "funding.okx.ETH", "2025-03-29 00:00") == -9.8060587041e-06
    assert at(heavy, "funding.okx.BTC", "2025-03-29 00:00") == 0.0001
    flag = fallback(heavy, "okx ETH funding: 210 of")
    assert "conflicting duplicate rows" in flag and "binance/bybit mean" in flag


def test_okx_funding_gaps_use_binance_rates_and_are_flagged(heavy: AlignedMarketData) -> None:
    # okx has no settlements 2024-08-01 00:00..2024-08-31 16:00 (its 31-day gap)
    assert at(heavy, "funding.okx.BTC", "2024-08-10 08:00") == at(
        heavy, "funding.binance.BTC", "2024-08-10 08:00"
    )
    flag = fallback(heavy, "okx BTC funding: 165 of")
    assert "use the binance rate" in flag and "2024-08-01 00:00..2024-08-31 16:00 (93 settlements)" in flag


def _raw_aave(reserve: str) -> pd.DataFrame:
    frame = pd.read_csv(
        DATA_DIR / (catalog.AAVE_RATE_FILES[reserve] + ".gz"),
        usecols=["timestamp", "liquidityIndex", "variableBorrowIndex"],
    )
    frame["when"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    return frame


@pytest.mark.parametrize("reserve", ["USDT", "WETH", "weETH", "wstETH"])
def test_aave_index_equals_daily_snapshot_at_snapshot_hours(heavy: AlignedMarketData, reserve: str) -> None:
    raw = _raw_aave(reserve)
    inside = raw[(raw["when"] >= heavy.start) & (raw["when"] <= heavy.end)]
    positions = heavy.index.get_indexer(pd.DatetimeIndex(inside["when"]))
    assert (positions >= 0).all() and len(positions) > 400
    np.testing.assert_array_equal(
        heavy[f"aave.{reserve}.liquidity_index"][positions], inside["liquidityIndex"]
    )
    np.testing.assert_array_equal(
        heavy[f"aave.{reserve}.borrow_index"][positions], inside["variableBorrowIndex"]
    )


@pytest.mark.parametrize("reserve", ["USDT", "WETH", "weETH", "wstETH"])
def test_aave_index_is_monotone_between_snapshots(heavy: AlignedMarketData, reserve: str) -> None:
    for kind in ("liquidity_index", "borrow_index"):
        assert (np.diff(heavy[f"aave.{reserve}.{kind}"]) >= 0).all(), kind


def test_aave_interpolation_is_geometric(heavy: AlignedMarketData) -> None:
    # from the raw file (weETH): 2024-06-01 liquidityIndex 1.000158680373465, 2024-06-02 1.0001693024882263
    i0, i1 = 1.000158680373465, 1.0001693024882263
    assert at(heavy, "aave.weETH.liquidity_index", "2024-06-01 12:00") == pytest.approx(
        math.sqrt(i0 * i1), rel=1e-15
    )
    assert at(heavy, "aave.weETH.liquidity_index", "2024-06-01 06:00") == pytest.approx(
        i0 * (i1 / i0) ** 0.25, rel=1e-15
    )
    # from the raw file (USDT), variableBorrowIndex:
    #   2025-01-15 1.1462841795710366, 2025-01-16 1.146598312183518
    b0, b1 = 1.1462841795710366, 1.146598312183518
    assert at(heavy, "aave.USDT.borrow_index", "2025-01-15 18:00") == pytest.approx(
        b0 * (b1 / b0) ** 0.75, rel=1e-15
    )


def test_lst_oracle_and_market_peg(heavy: AlignedMarketData) -> None:
    # from the raw files: weETH oracle 2024-05-12 02:00 = 1.038163027172193;
    # the peg file starts 2024-05-13 04:00 with market_rate 1.03754788941237
    assert at(heavy, "lst.weETH.oracle", "2024-05-12 02:00") == 1.038163027172193
    assert at(heavy, "lst.weETH.market", "2024-05-12 02:00") == 1.038163027172193
    assert at(heavy, "lst.weETH.market", "2024-05-13 04:00") == 1.03754788941237
    flag = fallback(heavy, "weETH market peg: 27 of")
    assert "use the AAVE oracle rate" in flag
    ratio = heavy["lst.wstETH.market"] / heavy["lst.wstETH.oracle"]
    assert 0.99 < ratio.min() and ratio.max() < 1.01


def test_etherfi_rewards_are_discrete_payouts_not_a_column(heavy: AlignedMarketData) -> None:
    """The reward seeds become payouts on their dates (tests/unit/test_data_rewards.py checks them
    against the raw files); no smoothed hourly yield column exists any more."""
    assert not any(name.startswith("rewards.") for name in heavy.columns)
    kinds = {p.kind for p in heavy.reward_payouts}
    assert kinds == {"eigen_weekly", "ethfi_topup", "ethfi_season"}
    assert all(0 <= p.payout_hour < len(heavy) for p in heavy.reward_payouts)


def test_cost_lookup_gas_units_and_risk_params(heavy: AlignedMarketData) -> None:
    assert (heavy["cost_bps.ETH_USDT.10k"] == 5.0).all()
    assert (heavy["cost_bps.ETHUSDT-PERP.1m"] == 8.0).all()
    assert (heavy["cost_bps.ETH_weETH.100k"] == 24.0).all()
    assert heavy.gas_units["ATOMIC_ENTRY"] == 1_250_000 and heavy.gas_units["APPROVAL_ONCE"] == 55_000
    assert heavy.aave_risk_params["emode"]["ltv_limits"]["weETH_WETH"] == 0.93


def test_missing_column_error_lists_available_columns(heavy: AlignedMarketData) -> None:
    with pytest.raises(KeyError, match="available columns: .*spot.BTC"):
        heavy["perp.kraken.BTC"]


def test_window_outside_data_names_series_and_ranges(cache_dir: Path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    req = DataRequirements(aave_reserves=("weETH",))
    with pytest.raises(DataRangeError) as info:
        provider.load(req, pd.Timestamp("2024-03-01 00:00"), pd.Timestamp("2024-06-01 00:00"))
    lines = str(info.value).splitlines()
    assert lines[0] == "the data covers 2024-05-12 00:00..2025-09-18 23:00 UTC for this run;"
    assert "requested window 2024-03-01 00:00..2024-06-01 00:00 UTC" in lines[1]
    assert "  2024-05-12 00:00..2025-09-29 00:00 UTC: AAVE weETH daily indices" in lines


def test_window_may_not_end_after_the_cost_lookup(cache_dir: Path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    with pytest.raises(
        DataRangeError, match=r"2024-01-01 00:00\.\.2025-09-18 23:00 UTC: execution cost ETH_USDT"
    ):
        provider.load(DataRequirements(), "2025-09-01", "2025-09-19 00:00")


def test_naive_and_aware_bounds_are_the_same_window(cache_dir: Path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    naive = provider.load(DataRequirements(), "2024-07-01 00:00", "2024-07-01 05:00")
    aware = provider.load(
        DataRequirements(),
        pd.Timestamp("2024-07-01 02:00", tz="Europe/Berlin"),
        pd.Timestamp("2024-07-01 05:00", tz="UTC"),
    )
    assert naive.index.equals(aware.index)
    with pytest.raises(ValueError, match="on the hour"):
        provider.load(DataRequirements(), "2024-07-01 00:30", "2024-07-01 05:00")
    with pytest.raises(DataRangeError, match="after the end"):
        provider.load(DataRequirements(), "2024-07-02", "2024-07-01")


def test_warm_load_returns_identical_arrays_from_cache(heavy: AlignedMarketData, cache_dir: Path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, cache_dir)
    warm = provider.load(HEAVIEST)
    assert provider.last_load_from_cache is True
    assert warm.index.equals(heavy.index)
    assert list(warm.columns) == list(heavy.columns)
    for name in heavy.columns:
        np.testing.assert_array_equal(warm[name], heavy[name], err_msg=name)
    assert warm.fallbacks == heavy.fallbacks and warm.notes == heavy.notes
    assert warm.gas_units == heavy.gas_units and warm.aave_risk_params == heavy.aave_risk_params
    assert warm.reward_payouts == heavy.reward_payouts and warm.reward_benchmark == heavy.reward_benchmark


def test_corrupt_cache_file_is_rebuilt(tmp_path: Path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, tmp_path)
    first = provider.load(DataRequirements(), "2024-07-01", "2024-07-02")
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"not a zip file")
    again = provider.load(DataRequirements(), "2024-07-01", "2024-07-02")
    assert provider.last_load_from_cache is False
    np.testing.assert_array_equal(again["spot.ETH"], first["spot.ETH"])
    assert provider.load(DataRequirements(), "2024-07-01", "2024-07-02") is not None
    assert provider.last_load_from_cache is True


def test_is_cached_answers_without_building(tmp_path) -> None:
    provider = HistoricalDataProvider(DATA_DIR, tmp_path)
    req = DataRequirements(spot=("ETH",), perps=(("bybit", "ETH"),))
    assert not provider.is_cached(req, "2024-06-01 00:00", "2024-06-02 23:00")
    assert not any(tmp_path.iterdir())                       # asking wrote nothing
    provider.load(req, "2024-06-01 00:00", "2024-06-02 23:00")
    assert provider.is_cached(req, "2024-06-01 00:00", "2024-06-02 23:00")
    assert not provider.is_cached(req, "2024-06-01 00:00", "2024-06-03 23:00")   # another window
