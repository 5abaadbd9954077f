"""Hostile data input: every broken or implausible file is an error naming the file (and line), or a
counted cleaning step in the run's data_fallbacks. Crafted files in tmp dirs; the shipped data is
read, never changed.

Before: a truncated .csv.gz raised EOFError, a plain file named .gz BadGzipFile and a missing file
FileNotFoundError (tracebacks on the CLI); a 100x tick, a conflicting duplicate close or a funding
rate of 5.0 changed results silently (the last made eth_basis report an APR of 1541 %).
"""
from __future__ import annotations

import argparse
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bootstrap import DATA_DIR, backtest_service
from engine.cli import run_backtest_command
from engine.data import DataRequirements, HistoricalDataProvider, catalog
from engine.data.errors import DataFormatError
from engine.data.funding import FundingColumn, resolve_venue
from engine.data.grid import hourly_grid
from engine.data.raw_store import RawStore
from engine.data.readers import read_bars, read_close, read_funding_rows, read_gas_gwei, read_lst_oracle

T0 = 1_717_200_000  # 2024-06-01 00:00 UTC
OHLCV_HEADER = "timestamp,open,high,low,close,volume,source,symbol,data_type,turnover\n"
FUNDING_HEADER = "funding_timestamp,funding_rate,symbol,source\n"


def hour(i: int) -> str:
    return pd.Timestamp(T0 + 3600 * i, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def closes(values: list[float | str], start: int = 0) -> str:
    return OHLCV_HEADER + "".join(f"{hour(start + i)},1,1,1,{v},1,x,X,perp,1\n" for i, v in enumerate(values))


def gz(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))
    return path


# ---------------------------------------------------------------------------------------- file bytes
def test_truncated_gzip_names_the_file(tmp_path: Path):
    path = gz(tmp_path / "p.csv.gz", closes([100.0 + i for i in range(2000)]))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFormatError) as info:
        read_close(path, "p.csv", "x perp")
    assert str(info.value).startswith(f"{path}: the file is truncated")


def test_corrupt_gzip_names_the_file(tmp_path: Path):
    path = gz(tmp_path / "p.csv.gz", closes([100.0 + i for i in range(2000)]))
    data = bytearray(path.read_bytes())
    for i in range(200, 400):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError) as info:
        read_close(path, "p.csv", "x perp")
    assert str(info.value).startswith(f"{path}: the file is ")
    assert "corrupt" in str(info.value) or "truncated" in str(info.value) or "CSV" in str(info.value)


def test_plain_text_named_gz_names_the_file(tmp_path: Path):
    path = tmp_path / "p.csv.gz"
    path.write_text(closes([100.0, 101.0]))
    with pytest.raises(DataFormatError) as info:
        read_close(path, "p.csv", "x perp")
    assert str(info.value) == (f"{path}: the file is named .gz but is not gzip-compressed "
                               "(compress it with gzip, or drop the .gz suffix)")


def test_missing_file_names_both_candidates(tmp_path: Path):
    with pytest.raises(DataFormatError, match="data file not found: neither .*okx_ETHUSDT_perp.*csv.gz nor"):
        RawStore(tmp_path).perp("okx", "ETH")


def test_empty_file_names_the_file(tmp_path: Path):
    path = gz(tmp_path / "p.csv.gz", "")
    with pytest.raises(DataFormatError, match="no CSV header line found"):
        read_close(path, "p.csv", "x perp")


# ---------------------------------------------------------------------------------------- rows
def test_bad_tick_is_an_error_naming_its_line(tmp_path: Path):
    path = gz(tmp_path / "p.csv.gz", closes([2500.0, 2510.0, 251000.0, 2505.0]))
    with pytest.raises(DataFormatError) as info:
        read_close(path, "p.csv", "x perp")
    message = str(info.value)
    assert message.startswith(f"{path}: line 4: close 251000.0 at 2024-06-01 02:00 is 100x the previous row's "
                              "2510.0 (line 3, 2024-06-01 01:00)")


def test_largest_real_move_passes_the_jump_rule(tmp_path: Path):
    # ETH's steepest hour in the data (2024-08-05) moved 13 %; a 30 % fall and a 45 % rise still pass
    series = read_close(gz(tmp_path / "p.csv.gz", closes([2500.0, 2200.0, 1540.0, 2233.0])), "p.csv", "x")
    assert series.values.tolist() == [2500.0, 2200.0, 1540.0, 2233.0]


@pytest.mark.parametrize("value, needle", [("0", "close 0.0"), ("-5", "close -5.0"), ("inf", "close inf")])
def test_non_positive_or_infinite_price_is_an_error_naming_its_line(value, needle, tmp_path: Path):
    path = gz(tmp_path / "p.csv.gz", closes([100.0, value, 100.0]))
    with pytest.raises(DataFormatError) as info:
        read_close(path, "p.csv", "x perp")
    assert str(info.value).startswith(f"{path}: line 3: {needle} at 2024-06-01 01:00 is outside (0, 1e+12]")


def test_empty_close_and_blank_line_are_dropped_and_counted(tmp_path: Path):
    text = closes([100.0, "", 102.0]) + "\n" + closes([103.0], start=3).split("\n", 1)[1]
    series = read_close(gz(tmp_path / "p.csv.gz", text), "p.csv", "x perp")
    assert series.times.tolist() == [T0, T0 + 7200, T0 + 3 * 3600]
    assert series.cleaning == {"blank lines skipped": 1, "rows with an empty close dropped": 1}


def test_rows_out_of_order_are_sorted_and_counted(tmp_path: Path):
    text = OHLCV_HEADER + f"{hour(1)},1,1,1,101,1,x,X,perp,1\n{hour(0)},1,1,1,100,1,x,X,perp,1\n"
    series = read_close(gz(tmp_path / "p.csv.gz", text), "p.csv", "x perp")
    assert series.values.tolist() == [100.0, 101.0]
    assert series.cleaning == {"rows out of time order sorted": 2}


def bars(rows: list[tuple[str, str, str, str]]) -> str:
    """OHLCV text from (open, high, low, close) rows, one hour each."""
    return OHLCV_HEADER + "".join(f"{hour(i)},{o},{h},{lo},{c},1,x,X,perp,1\n" for i, (o, h, lo, c) in enumerate(rows))


def test_bars_keep_their_high_and_low_with_the_closes(tmp_path: Path):
    text = bars([("100", "104", "99", "101"), ("101", "102", "97", "98"), ("98", "99", "96", "97")])
    series = read_bars(gz(tmp_path / "p.csv.gz", text), "p.csv", "x perp")
    assert series.close.values.tolist() == [101.0, 98.0, 97.0]
    assert series.high.tolist() == [104.0, 102.0, 99.0] and series.low.tolist() == [99.0, 97.0, 96.0]
    assert series.range_cleaning == {} and series.close.cleaning == {}


def test_a_bar_that_does_not_contain_its_open_and_close_is_widened_and_counted(tmp_path: Path):
    # high below the close, low above the open, an empty high and an empty low (with an empty open)
    text = bars([("100", "100.5", "99", "101"), ("101", "103", "101.5", "102"), ("102", "", "100", "101"),
                 ("", "103", "", "102")])
    series = read_bars(gz(tmp_path / "p.csv.gz", text), "p.csv", "x perp")
    assert series.high.tolist() == [101.0, 103.0, 102.0, 103.0]
    assert series.low.tolist() == [99.0, 101.0, 100.0, 102.0]
    assert series.range_cleaning == {"bars with an empty high or low given their open/close": 2,
                                     "bars with a high below max(open, close) raised to it": 1,
                                     "bars with a low above min(open, close) lowered to it": 1}


@pytest.mark.parametrize("high, low, needle", [
    ("251000", "99", "line 3: high 251000.0 at 2024-06-01 01:00 is 2.49e+03x the bar's max(open, close)"),
    ("102", "0.5", "line 3: low 0.5 at 2024-06-01 01:00 is 0.005x the bar's min(open, close)"),
    ("102", "-1", "line 3: low -1.0 at 2024-06-01 01:00 is not a positive price"),
])
def test_a_bad_tick_in_a_bars_high_or_low_is_an_error_naming_its_line(high, low, needle, tmp_path: Path):
    path = gz(tmp_path / "p.csv.gz", bars([("100", "101", "99", "100"), ("100", high, low, "101")]))
    with pytest.raises(DataFormatError) as info:
        read_bars(path, "p.csv", "x perp")
    assert str(info.value).startswith(f"{path}: {needle}")


def test_the_aligned_frame_carries_each_perps_and_spots_bar_range(backtest_service):
    from engine.data import DataRequirements
    data = backtest_service.provider.load(DataRequirements(spot=("ETH",), perps=(("binance", "ETH"), ("okx", "ETH"))))
    for close, high, low in (("spot.ETH", "spot_high.ETH", "spot_low.ETH"),
                             ("perp.binance.ETH", "perp_high.binance.ETH", "perp_low.binance.ETH"),
                             ("perp.okx.ETH", "perp_high.okx.ETH", "perp_low.okx.ETH")):
        assert (data[high] >= data[close]).all() and (data[low] <= data[close]).all()
        assert (data[high] > data[low]).mean() > 0.99
    # before its file starts (2024-08-01) OKX takes the Binance bar of each hour: close, high and low together
    before = np.asarray(data.index < pd.Timestamp("2024-08-01T00:00Z"))
    assert before.sum() > 5000
    for kind in ("perp", "perp_high", "perp_low"):
        np.testing.assert_array_equal(data[f"{kind}.okx.ETH"][before], data[f"{kind}.binance.ETH"][before])


def test_funding_rate_beyond_the_bound_is_an_error_naming_its_line(tmp_path: Path):
    text = FUNDING_HEADER + f"{hour(0)},0.0001,ETHUSDT,binance\n{hour(8)},5.0,ETHUSDT,binance\n"
    path = gz(tmp_path / "f.csv.gz", text)
    with pytest.raises(DataFormatError) as info:
        read_funding_rows(path, "f.csv", "binance ETH funding")
    message = str(info.value)
    assert message.startswith(f"{path}: line 3: funding_rate 5.0 at 2024-06-01 08:00 is outside [-0.03, 0.03]")
    assert "3285% a year" in message


def test_empty_funding_rate_is_dropped_and_the_settlement_taken_from_the_next_venue(tmp_path: Path):
    files = {
        "okx": f"{hour(0)},0.0001,ETHUSDT,okx\n{hour(8)},,ETHUSDT,okx\n{hour(16)},0.0003,ETHUSDT,okx\n",
        "binance": f"{hour(0)},0.00002,ETHUSDT,b\n{hour(8)},0.00005,ETHUSDT,b\n{hour(16)},0.00001,ETHUSDT,b\n",
        "bybit": f"{hour(0)},0.00004,ETHUSDT,y\n",
    }
    for venue, rows in files.items():
        gz(tmp_path / f"{catalog.FUNDING_FILES[(venue, 'ETH')]}.gz", FUNDING_HEADER + rows)
    built = FundingColumn("okx", "ETH").build(RawStore(tmp_path), hourly_grid(T0, T0 + 23 * 3600))
    assert built.columns["funding.okx.ETH"][8] == 0.00005
    prov = built.provenance["funding.okx.ETH"]
    assert (prov.total, prov.own, prov.substitutes) == (3, 2, {"binance rate": 1})
    assert prov.cleaning == {"rows with an empty funding_rate dropped": 1}


def test_conflicting_binance_funding_is_an_error_naming_the_lines(tmp_path: Path):
    rows = f"{hour(0)},0.0001,ETHUSDT,b\n{hour(0)},0.0004,ETHUSDT,b\n"
    gz(tmp_path / f"{catalog.FUNDING_FILES[('binance', 'ETH')]}.gz", FUNDING_HEADER + rows)
    with pytest.raises(DataFormatError, match="lines 2, 3: conflicting binance funding rates 0.0001, 0.0004"):
        resolve_venue(RawStore(tmp_path), "binance", "ETH")


def test_okx_conflicts_follow_the_stated_rule_and_are_counted(tmp_path: Path):
    files = {
        # 00:00 conflict: 0.0001 vs 0.00003, reference mean (0.00002 + 0.00004) / 2 = 0.00003
        # 08:00 conflict with no reference rate: the last row (0.0005) is kept
        "okx": f"{hour(0)},0.0001,E,o\n{hour(0)},0.00003,E,o\n{hour(8)},0.0002,E,o\n{hour(8)},0.0005,E,o\n",
        "binance": f"{hour(0)},0.00002,E,b\n",
        "bybit": f"{hour(0)},0.00004,E,y\n",
    }
    for venue, rows in files.items():
        gz(tmp_path / f"{catalog.FUNDING_FILES[(venue, 'ETH')]}.gz", FUNDING_HEADER + rows)
    resolved = resolve_venue(RawStore(tmp_path), "okx", "ETH")
    assert resolved.values.tolist() == [0.00003, 0.0005]
    assert resolved.cleaning == {
        "conflicting duplicate settlements: kept the value closest to the binance/bybit mean rate": 1,
        "conflicting duplicate settlements without a reference rate: kept the last row": 1,
    }


@pytest.mark.parametrize("value, needle", [("0.1", "oracle_price_eth 0.1"), ("1.40", "1.35x the previous")])
def test_lst_oracle_bounds_and_jumps(value, needle, tmp_path: Path):
    text = ("timestamp,oracle_price_eth\n" + f"{hour(0)},1.04\n{hour(1)},1.04\n{hour(2)},{value}\n")
    path = gz(tmp_path / "o.csv.gz", text)
    with pytest.raises(DataFormatError) as info:
        read_lst_oracle(path, "o.csv", "weETH/ETH AAVE oracle", "weETH")
    assert str(info.value).startswith(f"{path}: line 4: ") and needle in str(info.value)


def test_negative_gas_is_an_error(tmp_path: Path):
    text = "timestamp,base_fee_gwei,priority_fee_p50_gwei\n" + f"{hour(0)},5,1\n{hour(1)},-9,1\n"
    path = gz(tmp_path / "g.csv.gz", text)
    with pytest.raises(DataFormatError, match="line 3: base_fee_gwei \\+ priority_fee_p50_gwei -8.0"):
        read_gas_gwei(path, "g.csv", "gas price")


# ---------------------------------------------------------------------------------------- whole runs
def mirror_data(tmp_path: Path) -> Path:
    """A data dir of symlinks to the shipped files, so a test can replace one without copying 10 MB."""
    root = tmp_path / "data"
    for src in DATA_DIR.rglob("*"):
        if src.is_file():
            dst = root / src.relative_to(DATA_DIR)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, dst)
    return root


def replace_file(root: Path, rel: str, content: bytes) -> Path:
    path = catalog.resolve(root, rel)
    path.unlink()
    path.write_bytes(content)
    return path


def test_a_truncated_shipped_file_stops_the_run_with_its_name(tmp_path: Path):
    root = mirror_data(tmp_path)
    rel = catalog.PERP_FILES[("okx", "ETH")]
    path = replace_file(root, rel, (DATA_DIR / f"{rel}.gz").read_bytes()[:50_000])
    provider = HistoricalDataProvider(root, tmp_path / "cache")
    with pytest.raises(DataFormatError) as info:
        provider.load(DataRequirements(perps=(("okx", "ETH"),)))
    assert str(info.value).startswith(f"{path}: the file is truncated")


def test_funding_rate_of_5_is_refused_by_the_cli_with_file_and_line(tmp_path: Path, capsys):
    root = mirror_data(tmp_path)
    rel = catalog.FUNDING_FILES[("okx", "ETH")]
    text = gzip.decompress((DATA_DIR / f"{rel}.gz").read_bytes()).decode().splitlines(keepends=True)
    fields = text[100].split(",")
    fields[1] = "5.0"
    text[100] = ",".join(fields)
    path = replace_file(root, rel, gzip.compress("".join(text).encode()))
    args = argparse.Namespace(mode="eth_basis", start=None, end=None, capital=None, config=None, set=[],
                              out=tmp_path / "out", overwrite=False, scenario=None, at=None)
    code = run_backtest_command(args, lambda: backtest_service(root, tmp_path / "cache"))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {path}: line 101: funding_rate 5.0 at ")
    assert not (tmp_path / "out" / "summary.json").exists()


def test_an_empty_close_in_a_shipped_file_is_substituted_and_counted(tmp_path: Path):
    root = mirror_data(tmp_path)
    rel = catalog.PERP_FILES[("binance", "ETH")]
    text = gzip.decompress((DATA_DIR / f"{rel}.gz").read_bytes()).decode().splitlines(keepends=True)
    header = text[0].strip().split(",")
    victim = text[3000].split(",")
    victim[header.index("close")] = ""
    text[3000] = ",".join(victim)
    replace_file(root, rel, gzip.compress("".join(text).encode()))
    when = pd.Timestamp(victim[header.index("timestamp")])
    data = HistoricalDataProvider(root, tmp_path / "cache").load(DataRequirements(perps=(("binance", "ETH"),)))
    prov = data.provenance["perp.binance.ETH"]
    assert prov.cleaning["rows with an empty close dropped"] == 1
    shipped = HistoricalDataProvider(DATA_DIR, tmp_path / "cache2").load(DataRequirements(perps=(("binance", "ETH"),)))
    assert prov.substitutes["bybit ETH perp close"] == shipped.provenance["perp.binance.ETH"].substitutes[
        "bybit ETH perp close"] + 1
    i = int(np.flatnonzero(data.index == when)[0])
    bybit = read_close(DATA_DIR / f"{catalog.PERP_FILES[('bybit', 'ETH')]}.gz", "x", "bybit ETH perp")
    assert data["perp.binance.ETH"][i] == bybit.values[np.searchsorted(bybit.times, int(when.timestamp()))]


def test_truncated_json_gz_names_the_file(tmp_path: Path):
    from engine.data.readers import read_execution_costs
    path = gz(tmp_path / "c.json.gz", '{"ETH_USDT": {"10k": {"2024-06-01": 5, "2024-06-02": 6}}}' * 50)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataFormatError, match=f"^{path}: the file is truncated"):
        read_execution_costs(path, "c.json")


def test_conflicting_aave_snapshots_are_an_error_and_identical_ones_counted(tmp_path: Path):
    from engine.data.readers import read_aave_snapshots
    head = "targetDate,timestamp,liquidityIndex,variableBorrowIndex\n"
    day = 86400
    same = head + f"d,{T0},1.01,1.02\nd,{T0},1.01,1.02\nd,{T0 + day},1.02,1.03\n"
    snap = read_aave_snapshots(gz(tmp_path / "a.csv.gz", same), "a.csv", "AAVE X")
    assert snap.times.tolist() == [T0, T0 + day]
    assert snap.cleaning == {"duplicate rows identical to an earlier row dropped": 1}
    clash = head + f"d,{T0},1.01,1.02\nd,{T0},1.05,1.02\nd,{T0 + day},1.02,1.03\n"
    with pytest.raises(DataFormatError, match="lines 2 and 3: two snapshots at timestamp"):
        read_aave_snapshots(gz(tmp_path / "b.csv.gz", clash), "b.csv", "AAVE X")
