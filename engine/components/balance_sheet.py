"""Balance sheet history: every holding per venue per hour, in units and in the share currency.

Recording stays out of the hot loop's way: holdings only change when something happens (an
instruction fills, funding settles, a reward pays, a liquidation runs), so the loop snapshots the raw
holdings (scaled AAVE balances, perp size and entry, cash) at those hours only, a few dozen to a
couple of thousand small dicts per run. After the run `build` expands them to hourly numpy columns
and values them with the aligned price arrays: aToken and debt units grow with their index, perps are
worth their unrealised P&L at the mark, LSTs are valued at the oracle rate, and one extra column,
`lst_peg`, carries the market-vs-oracle difference so the sheet adds up to the run's
mark-to-market value every hour.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.domain.market import ETH_LIKE, LSTS, STABLES
from engine.domain.portfolio import Portfolio

Key = tuple[str, ...]


class BalanceSheetRecorder:
    """Snapshots of the raw holdings at the hours they changed (hour 0 always).

    Cash-only changes from a quiet stretch (`cash_changes`) are kept as the arrays they came in and
    expanded to snapshots when `hours` / `states` are first read: a backtest's stretches settle
    funding every eight hours, a couple of thousand snapshots a run that a sweep never reads."""

    __slots__ = ("_hours", "_states", "_pending", "_last_hour")

    def __init__(self) -> None:
        self._hours: list[int] = []
        self._states: list[dict[Key, float]] = []
        # after a batch of cash changes, everything is queued in order: batches and (hour, state)
        self._pending: list[_CashBatch | tuple[int, dict[Key, float]]] = []
        self._last_hour = -1

    @property
    def hours(self) -> list[int]:
        if self._pending:
            self._expand()
        return self._hours

    @property
    def states(self) -> list[dict[Key, float]]:
        if self._pending:
            self._expand()
        return self._states

    def snapshot(self, t: int, p: Portfolio) -> None:
        w = p.wallet
        state: dict[Key, float] = {("wallet", token): amount for token, amount in w.tokens.items()}
        for reserve, scaled in w.supply_scaled.items():
            state[("aave_v3", "supply", reserve)] = scaled
        for reserve, scaled in w.debt_scaled.items():
            state[("aave_v3", "debt", reserve)] = scaled
        for venue, acct in p.cex.items():
            state[(venue, "USDT")] = acct.usdt
            for asset, qty in acct.spot.items():
                state[(venue, "spot", asset)] = qty
            for asset, pos in acct.perps.items():
                state[(venue, "perp", asset)] = pos.size
                state[(venue, "perp_entry", asset)] = pos.entry_price
        if self._pending:
            if self._last_hour == t:          # the stretches end before the next step's hour
                raise ValueError(f"a snapshot at hour {t} after cash changes recorded at that hour")
            self._pending.append((t, state))
        elif self._hours and self._hours[-1] == t:
            self._states[-1] = state
        else:
            self._hours.append(t)
            self._states.append(state)
        self._last_hour = t

    def cash_changes(self, hours: Sequence[int], cash: Mapping[str, np.ndarray]) -> None:
        """Snapshots at `hours` (increasing, after every earlier snapshot) where only CEX cash changed
        (funding settled in a quiet stretch): the last snapshot with each venue's cash at that hour
        (``cash[venue][i]`` for ``hours[i]``)."""
        if self._last_hour < 0:
            raise ValueError("cash changes need an earlier snapshot of the holdings")
        if len(hours):
            if hours[0] <= self._last_hour:
                raise ValueError(f"cash changes from hour {hours[0]} after a snapshot at hour {self._last_hour}")
            self._pending.append(_CashBatch(list(hours), cash))
            self._last_hour = hours[-1]

    def _expand(self) -> None:
        last = self._states[-1]
        for entry in self._pending:
            if not isinstance(entry, _CashBatch):
                self._hours.append(entry[0])
                self._states.append(entry[1])
                last = entry[1]
                continue
            columns: list[tuple[Key, list[float]]] = [((venue, "USDT"), np.asarray(values).tolist())
                                                      for venue, values in entry.cash.items()]
            for i, t in enumerate(entry.hours):
                state = dict(last)
                for key, values in columns:
                    state[key] = values[i]
                self._hours.append(t)
                self._states.append(state)
                last = state
        self._pending.clear()


@dataclass(slots=True)
class _CashBatch:
    hours: list[int]
    cash: Mapping[str, np.ndarray]


@dataclass
class BalanceSheet:
    """Hourly columns: '<venue>.<holding>.units' and '.value' (share currency), then lst_peg.value,
    total.value (= the run's mark-to-market value) and total_protocol.value (LSTs at the oracle)."""

    columns: dict[str, np.ndarray]


def build(recorder: BalanceSheetRecorder, hours: int, prices: Mapping[str, np.ndarray],
          currency: str) -> BalanceSheet:
    """Expand the snapshots to `hours` rows; `prices` are the aligned columns of the run."""
    if not recorder.hours or recorder.hours[0] != 0:
        raise ValueError("the balance sheet needs a snapshot at hour 0 (the entry)")
    at = np.searchsorted(np.asarray(recorder.hours), np.arange(hours), side="right") - 1
    keys = list(dict.fromkeys(k for state in recorder.states for k in state))

    def hourly(key: Key) -> np.ndarray:
        raw = np.array([state.get(key, 0.0) for state in recorder.states], dtype=np.float64)
        return raw[at]

    eth = np.asarray(prices["spot.ETH"], dtype=np.float64)
    to_ccy = 1.0 if currency == "USDT" else 1.0 / eth

    def usd_price(token: str) -> np.ndarray | float:
        if token in STABLES:
            return 1.0
        if token in ETH_LIKE:
            return eth
        if token in LSTS:
            return prices[f"lst.{token}.oracle"] * eth
        return prices[f"spot.{token}"]

    cols: dict[str, np.ndarray] = {}
    peg = np.zeros(hours)
    lst_units: dict[str, np.ndarray] = {}

    def put(name: str, units: np.ndarray, value_usd: np.ndarray) -> None:
        if np.any(units != 0.0):
            cols[f"{name}.units"] = units
            cols[f"{name}.value"] = value_usd * to_ccy

    for key in keys:
        venue, kind = key[0], key[1]
        if venue == "wallet":
            units = hourly(key)
            put(f"wallet.{kind}", units, units * usd_price(kind))
            if kind in LSTS:
                lst_units[kind] = lst_units.get(kind, 0.0) + units
        elif venue == "aave_v3":
            reserve = key[2]
            if kind == "supply":
                units = hourly(key) * prices[f"aave.{reserve}.liquidity_index"]
                if reserve in LSTS:
                    lst_units[reserve] = lst_units.get(reserve, 0.0) + units
            else:
                units = -hourly(key) * prices[f"aave.{reserve}.borrow_index"]
            put(f"aave_v3.{kind}.{reserve}", units, units * usd_price(reserve))
        elif kind == "USDT":
            cash = hourly(key)
            put(f"{venue}.USDT", cash, cash)
        elif kind == "spot":
            units = hourly(key)
            put(f"{venue}.spot.{key[2]}", units, units * usd_price(key[2]))
        elif kind == "perp":
            asset = key[2]
            size = hourly(key)
            entry = hourly((venue, "perp_entry", asset))
            put(f"{venue}.perp.{asset}", size, size * (prices[f"perp.{venue}.{asset}"] - entry))
    for lst, units in lst_units.items():
        peg += units * (prices[f"lst.{lst}.market"] - prices[f"lst.{lst}.oracle"]) * eth
    protocol = np.zeros(hours)
    for name, arr in cols.items():
        if name.endswith(".value"):
            protocol = protocol + arr
    if lst_units:
        cols["lst_peg.value"] = peg * to_ccy
    cols["total_protocol.value"] = protocol
    cols["total.value"] = protocol + peg * to_ccy
    return BalanceSheet(cols)
