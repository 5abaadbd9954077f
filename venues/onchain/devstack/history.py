"""Drive the local market along the shipped hourly history.

Each hour: the LST exchange rates become the hour's AAVE oracle rate (ETH per LST, what the CAPO
adapters read on mainnet), the AAVE feeds become ETH/USD and rate x ETH/USD, the Uniswap pools are
arbitraged to the hour's prices (WETH/USDT to ETH/USD, the LST pools to the market peg), and the
chain's clock moves to the hour (``evm_setNextBlockTimestamp`` + ``evm_mine``), so AAVE's indices
accrue for exactly the elapsed time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterator

import numpy as np

from venues.onchain.devstack.admin import StackAdmin

LSTS = ("wstETH", "weETH")


@dataclass(frozen=True)
class HourState:
    index: int
    timestamp: int  # unix seconds of the hour (UTC)
    eth_usd: Decimal
    oracle: dict[str, Decimal]  # ETH per LST, AAVE oracle
    market: dict[str, Decimal]  # ETH per LST, DEX peg


def _d(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def hours(data, start_index: int = 0, count: int | None = None) -> Iterator[HourState]:
    """HourStates from an engine.data AlignedMarketData with spot.ETH and both LSTs' columns."""
    index = np.asarray(data.index.asi8) // 1_000_000_000
    end = len(index) if count is None else min(len(index), start_index + count)
    eth = data["spot.ETH"]
    oracle = {lst: data[f"lst.{lst}.oracle"] for lst in LSTS}
    market = {lst: data[f"lst.{lst}.market"] for lst in LSTS}
    for i in range(start_index, end):
        yield HourState(
            i,
            int(index[i]),
            _d(eth[i]),
            {lst: _d(oracle[lst][i]) for lst in LSTS},
            {lst: _d(market[lst][i]) for lst in LSTS},
        )


class HistoryFollower:
    """Applies HourStates to a deployed stack through its StackAdmin."""

    def __init__(self, admin: StackAdmin) -> None:
        self.admin = admin

    def apply(self, hour: HourState, *, oracle_only: bool = False) -> int:
        """Set the hour's prices and rates, then mine a block at the hour; returns the block number.

        ``oracle_only`` moves AAVE's feeds and the clock only, leaving the LST contracts' rates and the
        Uniswap pools where they are: what AAVE's accounting reads (it prices from its oracle, never
        from a pool or an LST contract), five transactions an hour cheaper."""
        admin = self.admin
        if not oracle_only:
            for lst in LSTS:
                admin.set_lst_rate(lst, hour.oracle[lst])
        admin.set_prices(hour.eth_usd, hour.oracle)
        if not oracle_only:
            admin.set_pool_price("WETH", "USDT", hour.eth_usd)
            for lst in LSTS:
                admin.set_pool_price(lst, "WETH", hour.market[lst])
        latest = int(admin.chain.block()["timestamp"], 16)
        if hour.timestamp > latest:
            admin.chain.rpc("evm_setNextBlockTimestamp", hex(hour.timestamp))
        admin.chain.mine()
        return int(admin.chain.rpc("eth_blockNumber"), 16)

    def run(
        self,
        states: Iterator[HourState],
        *,
        pace_s: float,
        on_hour: Callable[[HourState, int], None],
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Apply every hour, ``pace_s`` wall seconds apart; returns how many hours were applied."""
        applied = 0
        for hour in states:
            if stop():
                break
            started = time.monotonic()
            block = self.apply(hour)
            applied += 1
            on_hour(hour, block)
            wait = pace_s - (time.monotonic() - started)
            if wait > 0:
                time.sleep(wait)
        return applied
