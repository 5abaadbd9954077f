"""MarketView: the aligned hourly frame as plain Python float lists, indexed by hour.

The hot loop reads `view.eth[t]`-style floats only; converting the numpy columns with `tolist()` once
makes scalar access several times faster than numpy item access and keeps pandas out of the loop.
The same series as numpy arrays (`MarketSeries`, `MarketView.series()`) serve the closed forms
evaluated over a stretch of hours at once (engine/components/stretch.py).
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
    _series: MarketSeries | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.eth = self.spot["ETH"]

    @property
    def hours(self) -> int:
        return len(self.timestamps)

    @classmethod
    def from_columns(cls, data: AlignedColumns, timestamps: Sequence[str]) -> "MarketView":
        arrays = MarketSeries.from_columns(data.columns, len(timestamps))
        cols = data.columns

        def lists(d):
            return {k: v.tolist() for k, v in d.items()}

        buckets: dict[str, dict[str, list[float]]] = {}
        for k, v in cols.items():
            if k.startswith("cost_bps."):
                pair, bucket = k[len("cost_bps."):].rsplit(".", 1)
                buckets.setdefault(pair, {})[bucket] = v.tolist()
        costs = {p: (b["10k"], b["100k"], b["1m"]) for p, b in buckets.items()}
        outages = {k.split(".", 1)[1]: (v > 0.0).tolist() for k, v in cols.items() if k.startswith("outage.")}
        view = cls(
            timestamps=list(timestamps), spot=lists(arrays.spot), perp=lists(arrays.perp),
            funding=lists(arrays.funding), supply_index=lists(arrays.supply_index),
            borrow_index=lists(arrays.borrow_index), lst_oracle=lists(arrays.lst_oracle),
            lst_market=lists(arrays.lst_market), gas_gwei=cols["gas.gwei"].tolist(),
            cost_bps=costs, outages=outages, perp_high=lists(arrays.perp_high), perp_low=lists(arrays.perp_low),
            reward_payouts=list(getattr(data, "reward_payouts", ())),
        )
        view._series = arrays
        return view

    def series(self) -> MarketSeries:
        """The view's series as float64 arrays (the columns it was built from, shared, or converted
        once); rebuilt if the view has grown since (a live feed appends hours)."""
        cached = self._series
        if cached is None or cached.hours != self.hours:
            cached = self._series = MarketSeries.of(self)
        return cached

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


@dataclass
class MarketSeries:
    """A MarketView's price series as float64 arrays (same keys), for closed forms over many hours:
    ``series.eth[a:b]`` is the ETH price of hours a..b-1 as one array."""

    hours: int
    spot: dict[str, np.ndarray]
    perp: dict[tuple[str, str], np.ndarray]
    perp_high: dict[tuple[str, str], np.ndarray]
    perp_low: dict[tuple[str, str], np.ndarray]
    funding: dict[tuple[str, str], np.ndarray]
    supply_index: dict[str, np.ndarray]
    borrow_index: dict[str, np.ndarray]
    lst_oracle: dict[str, np.ndarray]
    lst_market: dict[str, np.ndarray]
    eth: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.eth = self.spot["ETH"]

    @classmethod
    def from_columns(cls, cols: dict[str, np.ndarray], hours: int) -> MarketSeries:
        """The aligned columns by role (no copy: the arrays are the columns themselves)."""
        def by(prefix: str, suffix: str = "") -> dict[str, np.ndarray]:
            return {k.split(".")[1]: v for k, v in cols.items() if k.startswith(prefix) and k.endswith(suffix)}

        def pairs(prefix: str) -> dict[tuple[str, str], np.ndarray]:
            return {(k.split(".")[1], k.split(".")[2]): v for k, v in cols.items() if k.startswith(prefix)}

        return cls(hours, spot=by("spot."), perp=pairs("perp."), perp_high=pairs("perp_high."),
                   perp_low=pairs("perp_low."), funding=pairs("funding."),
                   supply_index=by("aave.", ".liquidity_index"), borrow_index=by("aave.", ".borrow_index"),
                   lst_oracle=by("lst.", ".oracle"), lst_market=by("lst.", ".market"))

    @classmethod
    def of(cls, view: MarketView) -> MarketSeries:
        """Arrays converted from a view's lists (a view not built from aligned columns)."""
        def arr(d):
            return {k: np.asarray(v, dtype=np.float64) for k, v in d.items()}

        return cls(view.hours, spot=arr(view.spot), perp=arr(view.perp), perp_high=arr(view.perp_high),
                   perp_low=arr(view.perp_low), funding=arr(view.funding), supply_index=arr(view.supply_index),
                   borrow_index=arr(view.borrow_index), lst_oracle=arr(view.lst_oracle),
                   lst_market=arr(view.lst_market))

    def price_usd(self, token: str, hours: slice) -> np.ndarray | float:
        """USD(T) price of one unit of `token` over `hours` (LSTs at the oracle rate), as
        MarketView.price_usd computes it hour by hour."""
        if token in STABLES:
            return 1.0
        if token in ETH_LIKE:
            return self.eth[hours]
        if token in LSTS:
            return self.lst_oracle[token][hours] * self.eth[hours]
        return self.spot[token][hours]
