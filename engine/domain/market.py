"""MarketView: the aligned hourly frame as plain Python float lists, indexed by hour.

The hot loop reads `view.eth[t]`-style floats only; converting the numpy columns with `tolist()` once
makes scalar access several times faster than numpy item access and keeps pandas out of the loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from engine.domain.rewards import RewardPayout

STABLES = ("USDT",)
ETH_LIKE = ("ETH", "WETH", "GAS_DEBT")  # GAS_DEBT: negative ETH owed for gas (USDT modes)
LSTS = ("weETH", "wstETH")


class AlignedColumns(Protocol):
    """What the engine needs from the historical provider's result (engine.data.AlignedMarketData)."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int: ...


@dataclass
class MarketView:
    timestamps: list[str]
    spot: dict[str, list[float]]
    perp: dict[tuple[str, str], list[float]]
    funding: dict[tuple[str, str], list[float]]
    supply_index: dict[str, list[float]]
    borrow_index: dict[str, list[float]]
    lst_oracle: dict[str, list[float]]
    lst_market: dict[str, list[float]]
    gas_gwei: list[float]
    cost_bps: dict[str, tuple[list[float], list[float], list[float]]]
    #: ether.fi reward distributions paid inside the window (empty when the run counts none).
    reward_payouts: list[RewardPayout] = field(default_factory=list)
    #: venue -> hours it accepts no instructions (a stress scenario's outage); empty normally
    outages: dict[str, list[bool]] = field(default_factory=dict)
    #: each perp's bar high and low in the hour (historical data; empty where only closes are known,
    #: e.g. a live feed): the liquidation check's intra-hour marks
    perp_high: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    perp_low: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    eth: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.eth = self.spot["ETH"]

    @property
    def hours(self) -> int:
        return len(self.timestamps)

    @classmethod
    def from_columns(cls, data: AlignedColumns, timestamps: Sequence[str]) -> "MarketView":
        cols = data.columns

        spot = {k.split(".")[1]: v.tolist() for k, v in cols.items() if k.startswith("spot.")}
        perp = {(k.split(".")[1], k.split(".")[2]): v.tolist() for k, v in cols.items() if k.startswith("perp.")}
        funding = {(k.split(".")[1], k.split(".")[2]): v.tolist()
                   for k, v in cols.items() if k.startswith("funding.")}
        supply = {k.split(".")[1]: v.tolist() for k, v in cols.items()
                  if k.startswith("aave.") and k.endswith(".liquidity_index")}
        borrow = {k.split(".")[1]: v.tolist() for k, v in cols.items()
                  if k.startswith("aave.") and k.endswith(".borrow_index")}
        oracle = {k.split(".")[1]: v.tolist() for k, v in cols.items()
                  if k.startswith("lst.") and k.endswith(".oracle")}
        market = {k.split(".")[1]: v.tolist() for k, v in cols.items()
                  if k.startswith("lst.") and k.endswith(".market")}
        buckets: dict[str, dict[str, list[float]]] = {}
        for k, v in cols.items():
            if k.startswith("cost_bps."):
                pair, bucket = k[len("cost_bps."):].rsplit(".", 1)
                buckets.setdefault(pair, {})[bucket] = v.tolist()
        costs = {p: (b["10k"], b["100k"], b["1m"]) for p, b in buckets.items()}
        outages = {k.split(".", 1)[1]: (v > 0.0).tolist() for k, v in cols.items() if k.startswith("outage.")}
        high = {(k.split(".")[1], k.split(".")[2]): v.tolist() for k, v in cols.items() if k.startswith("perp_high.")}
        low = {(k.split(".")[1], k.split(".")[2]): v.tolist() for k, v in cols.items() if k.startswith("perp_low.")}
        return cls(
            timestamps=list(timestamps), spot=spot, perp=perp, funding=funding,
            supply_index=supply, borrow_index=borrow, lst_oracle=oracle, lst_market=market,
            gas_gwei=cols["gas.gwei"].tolist(),
            cost_bps=costs, outages=outages, perp_high=high, perp_low=low,
            reward_payouts=list(getattr(data, "reward_payouts", ())),
        )

    def venue_down(self, venue: str, t: int) -> bool:
        down = self.outages.get(venue)
        return down is not None and down[t]

    def price_usd(self, token: str, t: int) -> float:
        """USD(T) price of one unit of `token` at hour t (LSTs at their oracle rate, as AAVE values them)."""
        if token in STABLES:
            return 1.0
        if token in ETH_LIKE:
            return self.eth[t]
        if token in LSTS:
            return self.lst_oracle[token][t] * self.eth[t]
        return self.spot[token][t]
