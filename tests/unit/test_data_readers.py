"""Readers and funding de-duplication on small synthetic files written to tmp_path."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from engine.data import catalog
from engine.data.errors import DataFormatError, DataRangeError
from engine.data.funding import FundingColumn, resolve_venue
from engine.data.grid import hourly_grid
from engine.data.raw_store import RawStore
from engine.data.readers import (
    read_aave_snapshots,
    read_close,
    read_execution_costs,
    read_gas_units,
    read_lst_oracle,
)

T0 = 1_717_200_000  # 2024-06-01 00:00 UTC


def write(path: Path, text: str, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


OHLCV_HEADER = "timestamp,open,high,low,close,volume,source,symbol,data_type,turnover\n"


def test_close_reader_drops_identical_duplicates_and_counts_them(tmp_path: Path) -> None:
    text = OHLCV_HEADER + (
        "2024-06-01T00:00:00Z,1,1,1,100.0,1,bybit,X,spot,1\n"
        "2024-06-01T01:00:00Z,1,1,1,101.0,1,bybit,X,spot,1\n"
        "2024-06-01T01:00:00Z,1,1,1,101.0,1,bybit,X,spot,1\n"
        "2024-06-01T02:00:00Z,1,1,1,102.0,1,bybit,X,spot,1\n"
    )
    series = read_close(write(tmp_path / "x.csv", text, gz=True), "x.csv", "x close")
    assert series.times.tolist() == [T0, T0 + 3600, T0 + 7200]
    assert series.values.tolist() == [100.0, 101.0, 102.0]
    assert series.cleaning == {"duplicate rows identical to an earlier row dropped": 1}


def test_close_reader_rejects_a_conflicting_duplicate_naming_both_lines(tmp_path: Path) -> None:
    text = OHLCV_HEADER + (
        "2024-06-01T00:00:00Z,1,1,1,100.0,1,bybit,X,spot,1\n"
        "2024-06-01T01:00:00Z,1,1,1,101.0,1,bybit,X,spot,1\n"
        "2024-06-01T01:00:00Z,1,1,1,103.0,1,bybit,X,spot,1\n"
    )
    path = write(tmp_path / "x.csv", text, gz=True)
    with pytest.raises(DataFormatError) as info:
        read_close(path, "x.csv", "x close")
    message = str(info.value)
    assert message.startswith(f"{path}: lines 3 and 4: two rows for 2024-06-01 01:00 with different close")
    assert "(101.0 and 103.0)" in message


def test_close_reader_rejects_missing_columns_and_off_hour_timestamps(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['close'\]"):
        read_close(write(tmp_path / "a.csv", "timestamp,open\n2024-06-01T00:00:00Z,1\n"), "a.csv", "a")
    with pytest.raises(DataFormatError, match="line 2: timestamp 2024-06-01 00:30:00 is not on the hour"):
        read_close(
            write(tmp_path / "b.csv", OHLCV_HEADER + "2024-06-01T00:30:00Z,1,1,1,1,1,s,X,spot,1\n"),
            "b.csv",
            "b",
        )
    with pytest.raises(DataFormatError, match="line 3: column 'timestamp' 'yesterday' is not a timestamp"):
        read_close(write(tmp_path / "c.csv", OHLCV_HEADER + "2024-06-01T00:00:00Z,1,1,1,1,1,s,X,spot,1\n"
                         "yesterday,1,1,1,1,1,s,X,spot,1\n"), "c.csv", "c")


ORACLE = (
    "# Source: aave_oracle_derived\n# Asset_pair: weETH_ETH\n# Quote_currency: {quote}\n# Records: 2\n"
    "timestamp,oracle_price_eth,asset,source,quote_currency\n"
    "2024-06-01 00:00:00+00:00,1.04,weETH,aave_oracle_derived,ETH\n"
    "2024-06-01 01:00:00+00:00,1.05,weETH,aave_oracle_derived,ETH\n"
)


def test_oracle_reader_parses_the_comment_header(tmp_path: Path) -> None:
    series = read_lst_oracle(
        write(tmp_path / "o.csv", ORACLE.format(quote="ETH")), "o.csv", "weETH oracle", "weETH"
    )
    assert series.values.tolist() == [1.04, 1.05]
    with pytest.raises(DataFormatError, match="Quote_currency' is 'USD'"):
        read_lst_oracle(
            write(tmp_path / "u.csv", ORACLE.format(quote="USD")), "u.csv", "weETH oracle", "weETH"
        )
    with pytest.raises(DataFormatError, match="expected 'wstETH_ETH'"):
        read_lst_oracle(write(tmp_path / "w.csv", ORACLE.format(quote="ETH")), "w.csv", "oracle", "wstETH")


def test_aave_reader_rejects_ray_scaled_indices(tmp_path: Path) -> None:
    text = (
        "targetDate,timestamp,liquidityIndex,variableBorrowIndex\n"
        f"2024-06-01,{T0},1.0e27,1.0e27\n2024-06-02,{T0 + 86400},1.1e27,1.1e27\n"
    )
    with pytest.raises(DataFormatError, match="ray-scaled"):
        read_aave_snapshots(write(tmp_path / "r.csv", text), "r.csv", "AAVE X")


def test_json_readers_validate_keys(tmp_path: Path) -> None:
    good = write(tmp_path / "g.json", '{"operation_costs": {"SWAP": {"gas_units": 180000}}}', gz=True)
    assert read_gas_units(good) == {"SWAP": 180000}
    with pytest.raises(DataFormatError, match="operation_costs.SWAP.gas_units"):
        read_gas_units(write(tmp_path / "b.json", '{"operation_costs": {"SWAP": {"gas_units": -1}}}'))
    with pytest.raises(DataFormatError, match="'operation_costs'"):
        read_gas_units(write(tmp_path / "e.json", "{}"))
    costs = read_execution_costs(
        write(tmp_path / "c.json", '{"ETH_USDT": {"10k": {"2024-06-01": 5, "2024-06-02": 6}}}'), "c.json"
    )
    assert costs.days.tolist() == [T0, T0 + 86400]
    assert costs.bps[("ETH_USDT", "10k")].tolist() == [5.0, 6.0]


FUNDING_HEADER = "funding_timestamp,funding_rate,symbol,source\n"


def funding_dir(tmp_path: Path, okx: str, binance: str, bybit: str) -> Path:
    for venue, rows in (("okx", okx), ("binance", binance), ("bybit", bybit)):
        write(tmp_path / catalog.FUNDING_FILES[(venue, "ETH")], FUNDING_HEADER + rows, gz=True)
    return tmp_path


def test_okx_conflicts_pick_the_value_nearest_the_reference_mean(tmp_path: Path) -> None:
    data = funding_dir(
        tmp_path,
        okx=(
            "2024-06-01T00:00:00Z,0.0001,ETHUSDT,okx\n"
            "2024-06-01T00:00:00Z,0.00003,ETHUSDT,okx\n"
            "2024-06-01T08:00:00Z,0.0002,ETHUSDT,okx\n"
            "2024-06-01T08:00:00Z,0.0005,ETHUSDT,okx\n"
        ),
        binance="2024-06-01T00:00:00Z,0.00002,ETHUSDT,binance_futures\n",
        bybit="2024-06-01T00:00:00Z,0.00004,ETHUSDT,bybit\n",
    )
    resolved = resolve_venue(RawStore(data), "okx", "ETH")
    # 00:00: reference mean 0.00003 -> keep 0.00003 (the first row would be 0.0001, the last 0.00003)
    # 08:00: no reference rate -> keep the last occurrence 0.0005
    assert resolved.values.tolist() == [0.00003, 0.0005]
    assert resolved.conflict_times.tolist() == [T0, T0 + 8 * 3600]
    assert any("1 without a reference rate kept the last occurrence" in n for n in resolved.notes)


def test_funding_gap_uses_fallback_venue_and_unfillable_settlement_raises(tmp_path: Path) -> None:
    data = funding_dir(
        tmp_path,
        okx="2024-06-01T00:00:00Z,0.0001,ETHUSDT,okx\n2024-06-01T16:00:00Z,0.0003,ETHUSDT,okx\n",
        binance="2024-06-01T00:00:00Z,0.00002,ETHUSDT,binance_futures\n"
        "2024-06-01T08:00:00Z,0.00005,ETHUSDT,binance_futures\n",
        bybit="2024-06-01T00:00:00Z,0.00004,ETHUSDT,bybit\n",
    )
    raw = RawStore(data)
    built = FundingColumn("okx", "ETH").build(raw, hourly_grid(T0, T0 + 23 * 3600))
    column = built.columns["funding.okx.ETH"]
    assert column[0] == 0.0001 and column[8] == 0.00005 and column[16] == 0.0003
    assert np.count_nonzero(column) == 3
    assert any("1 of 3 settlements use the binance rate" in f for f in built.fallbacks)
    with pytest.raises(DataRangeError, match="no rate from okx/binance/bybit for 1 settlements"):
        FundingColumn("okx", "ETH").build(raw, hourly_grid(T0, T0 + 24 * 3600))
