"""DataRequirements validation and normalization, and the cache key built from it."""

from __future__ import annotations

import pytest

from engine.data import DataRequirements
from engine.data.cache import cache_key


def test_unknown_values_are_rejected_with_the_allowed_list() -> None:
    with pytest.raises(
        ValueError, match=r"perps \(venue\): unknown value 'kraken'; allowed values: binance, bybit, okx"
    ):
        DataRequirements(perps=(("kraken", "BTC"),))
    with pytest.raises(ValueError, match="aave_reserves: unknown value 'DAI'"):
        DataRequirements(aave_reserves=("DAI",))
    with pytest.raises(ValueError, match="lsts: unknown value 'rETH'"):
        DataRequirements(lsts=("rETH",))
    with pytest.raises(TypeError, match="sequence of names"):
        DataRequirements(spot="BTC")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\(venue, asset\) pair"):
        DataRequirements(perps=("okx",))  # type: ignore[arg-type]


def test_lists_are_accepted_and_stored_as_tuples() -> None:
    req = DataRequirements(spot=["BTC"], perps=[["okx", "ETH"]], lsts=["weETH"])  # type: ignore[arg-type]
    assert req.spot == ("BTC",) and req.perps == (("okx", "ETH"),) and req.lsts == ("weETH",)
    hash(req)


def test_normalized_adds_eth_spot_dedupes_and_orders() -> None:
    a = DataRequirements(
        spot=("BTC",),
        perps=(("okx", "ETH"), ("binance", "BTC"), ("okx", "ETH")),
        aave_reserves=("wstETH", "USDT"),
    )
    b = DataRequirements(
        spot=("ETH", "BTC"), perps=(("binance", "BTC"), ("okx", "ETH")), aave_reserves=("USDT", "wstETH")
    )
    assert a.normalized() == b.normalized()
    assert a.normalized().spot == ("BTC", "ETH")
    assert a.normalized().perps == (("binance", "BTC"), ("okx", "ETH"))
    assert a.normalized().funding == a.normalized().perps


def test_cache_key_depends_on_requirements_window_and_file_digests() -> None:
    req = DataRequirements(spot=("BTC",)).normalized()
    files = {"a.csv": "d1", "b.csv": "d2"}
    base = cache_key("aligned", req, "1", "2", files)
    assert base == cache_key("aligned", req, "1", "2", dict(reversed(list(files.items()))))
    assert base != cache_key("aligned", req, "1", "3", files)
    assert base != cache_key("aligned", req, "1", "2", {"a.csv": "d1", "b.csv": "changed"})
    assert base != cache_key("aligned", DataRequirements(lsts=("weETH",)).normalized(), "1", "2", files)
    assert base != cache_key("window", req, "1", "2", files)
