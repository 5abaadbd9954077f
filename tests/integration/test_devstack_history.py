"""Following the shipped history moves the real contracts: AAVE's oracle, the LST rates, the Uniswap
pools and the chain's clock, hour by hour."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from engine.data import DataRequirements, HistoricalDataProvider
from venues.onchain.devstack.history import HistoryFollower, hours

DATA = __import__("bootstrap").DATA_DIR


@pytest.fixture(scope="module")
def three_hours(tmp_path_factory):
    provider = HistoricalDataProvider(DATA, tmp_path_factory.mktemp("aligned"))
    data = provider.load(
        DataRequirements(spot=("ETH",), lsts=("weETH", "wstETH")), "2024-08-05 00:00", "2024-08-05 02:00"
    )  # the August 2024 sell-off: ETH moved hundreds of dollars
    return list(hours(data))


async def test_each_hour_sets_feeds_rates_pools_and_time(defi, execution, three_hours):
    follower = HistoryFollower(defi.admin)
    start = int(defi.chain.block()["timestamp"], 16)
    for k, hour in enumerate(three_hours, start=1):
        # The chain already runs at today's time; replay these hours after it, an hour apart.
        shifted = dataclasses.replace(hour, timestamp=start + 3600 * k)
        block = follower.apply(shifted)
        head = defi.chain.block()
        assert int(head["number"], 16) == block
        assert int(head["timestamp"], 16) == shifted.timestamp
        assert await execution.aave.oracle_price("WETH") == hour.eth_usd.quantize(D("0.00000001"))
        for lst, adapter in (("wstETH", execution.lido), ("weETH", execution.etherfi)):
            assert await adapter.rate() == hour.oracle[lst].quantize(D("1e-18"), rounding="ROUND_DOWN")
            usd = await execution.aave.oracle_price(lst)
            assert abs(usd - hour.eth_usd * hour.oracle[lst]) <= D("0.00000001")
            assert abs(defi.admin.pool_price(lst, "WETH") / hour.market[lst] - 1) < D("1e-9")
        assert abs(defi.admin.pool_price("WETH", "USDT") / hour.eth_usd - 1) < D("1e-9")
    moves = [h.eth_usd for h in three_hours]
    assert max(moves) - min(moves) > 50  # a real hour-to-hour move was replayed
