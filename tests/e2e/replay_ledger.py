"""An independent ledger for the replay check: rebuilds every holding of a backtest from its events.csv
alone and values it each hour from the raw data files, read here with pandas.

Nothing here imports the engine: the prices come straight from the shipped files under the rules that
data/README.md states (closes on the hourly UTC grid, another venue's close for a venue's missing
hour, short holes carried forward 24 h, AAVE indices interpolated log-linearly between daily
snapshots, LST market rate falling back to the oracle rate), and the holdings from the events:
`deposit` puts the starting capital somewhere, and every other event type moves balances the way the
venue that executed it does. If a holding could change without an event saying so, or an event
lacked a figure, the replayed value would drift from the engine's and the test would show where.

Positions are kept as a trader's blotter would: a perp as its size and the cash its fills cost
(value = size x mark + that cash, the same as realised + unrealised P&L), AAVE balances as scaled
amounts (underlying / the hour's index), gas and gas debt as one ETH balance.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "data"
FILL_H = 24                                          # data/README: short holes carried forward 24 h

SPOT_FILES = {
    "ETH": ["market_data/spot_prices/eth_usd/bybit_ETHUSDT_spot_1h_2024-01-01_2025-09-26.csv.gz"],
    "BTC": ["market_data/spot_prices/btc_usd/binance_BTCUSDT_1h_2024-01-01_2025-09-30.csv.gz",
            "market_data/spot_prices/btc_usd/bybit_BTCUSDT_spot_1h_2024-01-01_2025-09-30.csv.gz"],
}
_PERP = "market_data/derivatives/futures_ohlcv/"
PERP_FILES = {
    ("binance", "ETH"): [_PERP + "binance_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv.gz",
                         _PERP + "bybit_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv.gz"],
    ("bybit", "ETH"): [_PERP + "bybit_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv.gz",
                       _PERP + "binance_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv.gz"],
    ("okx", "ETH"): [_PERP + "okx_ETHUSDT_perp_1h_2024-08-01_2025-09-18.csv.gz",
                     _PERP + "binance_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv.gz",
                     _PERP + "bybit_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv.gz"],
    ("binance", "BTC"): [_PERP + "binance_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv.gz",
                         _PERP + "bybit_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv.gz"],
    ("bybit", "BTC"): [_PERP + "bybit_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv.gz",
                       _PERP + "binance_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv.gz"],
    ("okx", "BTC"): [_PERP + "binance_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv.gz",     # no OKX BTC file
                     _PERP + "bybit_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv.gz"],
}
AAVE_FILES = {r: f"protocol_data/aave/rates/aave_v3_aave-v3-ethereum_{r}_rates_{span}.csv.gz"
              for r, span in (("USDT", "2024-01-01_2025-09-18"), ("WETH", "2024-01-01_2025-09-18"),
                              ("weETH", "2024-05-12_2025-09-18"), ("wstETH", "2024-05-12_2025-09-18"))}
ORACLE_FILES = {lst: f"protocol_data/aave/oracle/{lst}_ETH_oracle_2024-01-01_2025-09-18.csv.gz"
                for lst in ("weETH", "wstETH")}
PEG_FILES = {lst: f"protocol_data/staking/peg_analysis/{lst}_peg_analysis_2024-01-01_2025-09-18.csv.gz"
             for lst in ("weETH", "wstETH")}

LSTS = ("weETH", "wstETH")
ETH_LIKE = ("ETH", "WETH", "GAS_DEBT")


class RawPrices:
    """Hourly series on the run's grid, read from the raw files on first use."""

    def __init__(self, grid: pd.DatetimeIndex) -> None:
        self.grid = grid.as_unit("s")
        self._cache: dict[tuple, np.ndarray] = {}

    def _closes(self, files: list[str]) -> np.ndarray:
        """The first file's close at each hour; its missing hours from the next file's close, and so on;
        then hours no file has carried forward up to 24 h."""
        joined = pd.Series(np.nan, index=self.grid)
        for rel in files:
            raw = pd.read_csv(DATA / rel, usecols=["timestamp", "close"])
            raw["timestamp"] = pd.to_datetime(raw["timestamp"], utc=True)
            close = raw.drop_duplicates().set_index("timestamp")["close"].reindex(self.grid)
            joined = joined.fillna(close)
        out = joined.ffill(limit=FILL_H).to_numpy()
        assert not np.isnan(out).any(), files
        return out

    def spot(self, asset: str) -> np.ndarray:
        key = ("spot", asset)
        if key not in self._cache:
            self._cache[key] = self._closes(SPOT_FILES[asset])
        return self._cache[key]

    @property
    def eth(self) -> np.ndarray:
        return self.spot("ETH")

    def perp(self, venue: str, asset: str) -> np.ndarray:
        key = ("perp", venue, asset)
        if key not in self._cache:
            self._cache[key] = self._closes(PERP_FILES[(venue, asset)])
        return self._cache[key]

    def index(self, reserve: str, kind: str) -> np.ndarray:
        """AAVE's liquidityIndex or variableBorrowIndex: exact at each daily snapshot, growing by a
        constant factor per second in between (log-linear in time)."""
        key = ("aave", reserve, kind)
        if key not in self._cache:
            raw = pd.read_csv(DATA / AAVE_FILES[reserve], usecols=["timestamp", kind]).drop_duplicates()
            raw = raw.sort_values("timestamp")
            t = raw["timestamp"].to_numpy(dtype=np.float64)
            grid_s = self.grid.as_unit("s").asi8.astype(np.float64)
            assert t[0] <= grid_s[0] and grid_s[-1] <= t[-1], reserve
            self._cache[key] = np.exp(np.interp(grid_s, t, np.log(raw[kind].to_numpy())))
        return self._cache[key]

    def oracle(self, lst: str) -> np.ndarray:
        key = ("oracle", lst)
        if key not in self._cache:
            raw = pd.read_csv(DATA / ORACLE_FILES[lst], comment="#", usecols=["timestamp", "oracle_price_eth"])
            raw["timestamp"] = pd.to_datetime(raw["timestamp"], utc=True)
            series = raw.drop_duplicates().set_index("timestamp")["oracle_price_eth"]
            out = series.reindex(self.grid).ffill(limit=FILL_H).to_numpy()
            assert not np.isnan(out).any(), lst
            self._cache[key] = out
        return self._cache[key]

    def market(self, lst: str) -> np.ndarray:
        """The DEX market rate (peg_analysis market_rate), the oracle rate where the file has none."""
        key = ("market", lst)
        if key not in self._cache:
            raw = pd.read_csv(DATA / PEG_FILES[lst], usecols=["timestamp", "market_rate"])
            raw["timestamp"] = pd.to_datetime(raw["timestamp"], utc=True)
            series = raw.dropna().drop_duplicates().set_index("timestamp")["market_rate"]
            joined = series.reindex(self.grid).ffill(limit=FILL_H).to_numpy()
            self._cache[key] = np.where(np.isnan(joined), self.oracle(lst), joined)
        return self._cache[key]


@dataclass
class Account:
    usdt: float = 0.0
    spot: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    perp_size: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    perp_cash: dict[str, float] = field(default_factory=lambda: defaultdict(float))   # -sum(qty x price)


class ReplayLedger:
    """Holdings rebuilt from events; `value(t)` in USD at hour t (protocol and mark-to-market)."""

    def __init__(self, prices: RawPrices) -> None:
        self.px = prices
        self.tokens: dict[str, float] = defaultdict(float)      # wallet; every ETH-like balance as "ETH"
        self.supply: dict[str, float] = defaultdict(float)      # AAVE scaled balances
        self.debt: dict[str, float] = defaultdict(float)
        self.cex: dict[str, Account] = defaultdict(Account)
        self.unknown: set[str] = set()

    @staticmethod
    def _token(asset: str) -> str:
        return "ETH" if asset in ETH_LIKE else asset

    def apply(self, e) -> None:
        t, kind, venue = int(e.hour), e.type, e.venue
        amount, out = float(e.amount), float(e.amount_out)
        gas = float(e.gas_eth) if not math.isnan(e.gas_eth) else 0.0
        self.tokens["ETH"] -= gas                             # gas: paid from ETH or owed as gas debt
        if kind == "deposit":
            if venue == "wallet":
                self.tokens[self._token(e.asset)] += amount
            elif e.asset == "USDT":
                self.cex[venue].usdt += amount
            else:
                self.cex[venue].spot[e.asset] += amount
        elif kind == "spot_trade":
            acct = self.cex[venue]
            acct.usdt -= amount * float(e.price) + float(e.execution_cost_usd)
            acct.spot[e.asset] += amount
        elif kind == "perp_trade":
            acct = self.cex[venue]
            acct.perp_size[e.asset] += amount
            acct.perp_cash[e.asset] -= amount * float(e.price)
            acct.usdt -= float(e.execution_cost_usd)
        elif kind == "funding":
            self.cex[venue].usdt += out
        elif kind == "transfer":
            dest = e.to_asset
            if venue == "wallet":
                self.tokens["USDT"] -= amount
            else:
                self.cex[venue].usdt -= amount
            if dest == "wallet":
                self.tokens["USDT"] += out
            else:
                self.cex[dest].usdt += out
        elif kind in ("swap", "stake"):
            self.tokens[self._token(e.asset)] -= amount
            self.tokens[self._token(e.to_asset)] += out
        elif kind == "supply":
            self.tokens[self._token(e.asset)] -= amount
            self.supply[e.asset] += amount / self.px.index(e.asset, "liquidityIndex")[t]
        elif kind == "withdraw":
            self.supply[e.asset] -= amount / self.px.index(e.asset, "liquidityIndex")[t]
            self.tokens[self._token(e.asset)] += amount
        elif kind == "borrow":
            self.debt[e.asset] += amount / self.px.index(e.asset, "variableBorrowIndex")[t]
            self.tokens[self._token(e.asset)] += amount
        elif kind == "repay":
            self.tokens[self._token(e.asset)] -= amount
            self.debt[e.asset] -= amount / self.px.index(e.asset, "variableBorrowIndex")[t]
        elif kind == "flash_borrow":
            self.tokens[self._token(e.asset)] += amount
        elif kind == "flash_repay":
            self.tokens[self._token(e.asset)] -= out              # principal + fee
        elif kind == "REWARD_PAYMENT":
            self.tokens[self._token(e.to_asset)] += out
        elif kind == "liquidation":
            self._liquidation(e, t)
        elif kind not in ("approve", "set_emode", "bundle", "rejected", "rebalance", "breach"):
            self.unknown.add(kind)

    def _liquidation(self, e, t: int) -> None:
        if e.venue == "aave_v3":                              # debt repaid (ETH) for collateral seized (units)
            [reserve] = [r for r, s in self.debt.items() if s > 0.0]
            self.debt[reserve] -= float(e.amount) / self.px.index(reserve, "variableBorrowIndex")[t]
            self.supply[e.asset] -= float(e.amount_out) / self.px.index(e.asset, "liquidityIndex")[t]
            return
        # Every perp closed at the event's price, less the fee: the breach price inside the hour's bar
        # where the venue's margin reached maintenance (not the hour's close), which the event states.
        acct = self.cex[e.venue]
        open_ = [asset for asset, size in acct.perp_size.items() if size]
        if len(open_) > 1:
            raise AssertionError(f"a liquidation at hour {t} closes {open_}; the event holds one price")
        for asset in open_:
            acct.perp_cash[asset] += acct.perp_size[asset] * float(e.price)
            acct.perp_size[asset] = 0.0
        acct.usdt -= float(e.execution_cost_usd)

    def _price(self, token: str, t: int) -> float:
        if token == "USDT":
            return 1.0
        if token in ETH_LIKE:
            return float(self.px.eth[t])
        if token in LSTS:
            return float(self.px.oracle(token)[t] * self.px.eth[t])
        return float(self.px.spot(token)[t])

    def value(self, t: int) -> tuple[float, float]:
        """(protocol value, mark-to-market value) in USD: LSTs at the oracle rate, then at the market rate."""
        v = 0.0
        lst_units: dict[str, float] = defaultdict(float)
        for token, amount in self.tokens.items():
            if amount:
                v += amount * self._price(token, t)
                if token in LSTS:
                    lst_units[token] += amount
        for reserve, scaled in self.supply.items():
            if scaled:
                units = scaled * self.px.index(reserve, "liquidityIndex")[t]
                v += units * self._price(reserve, t)
                if reserve in LSTS:
                    lst_units[reserve] += units
        for reserve, scaled in self.debt.items():
            if scaled:
                v -= scaled * self.px.index(reserve, "variableBorrowIndex")[t] * self._price(reserve, t)
        for venue, acct in self.cex.items():
            v += acct.usdt
            for asset, qty in acct.spot.items():
                if qty:
                    v += qty * self._price(asset, t)
            for asset, size in acct.perp_size.items():
                v += size * self.px.perp(venue, asset)[t] + acct.perp_cash[asset]
        peg = sum(units * (self.px.market(lst)[t] - self.px.oracle(lst)[t]) for lst, units in lst_units.items())
        return v, v + peg * float(self.px.eth[t])


def replay(run_dir: Path) -> tuple[pd.DataFrame, set[str]]:
    """Replay `run_dir`'s events.csv hour by hour; the engine's and the replay's values side by side."""
    ts = pd.read_csv(run_dir / "timeseries.csv")
    events = pd.read_csv(run_dir / "events.csv")
    currency = pd.read_json(run_dir / "summary.json", typ="series")["currency"]
    grid = pd.DatetimeIndex(pd.to_datetime(ts["timestamp"], utc=True)).as_unit("s")
    assert (np.diff(grid.asi8) == 3_600).all()
    ledger = ReplayLedger(RawPrices(grid))
    by_hour = {int(h): g for h, g in events.groupby("hour", sort=True)}
    protocol = np.empty(len(grid))
    marked = np.empty(len(grid))
    for t in range(len(grid)):
        if t in by_hour:
            for e in by_hour[t].sort_values("order").itertuples(index=False):
                ledger.apply(e)
        p, m = ledger.value(t)
        if currency == "ETH":
            p, m = p / ledger.px.eth[t], m / ledger.px.eth[t]
        protocol[t], marked[t] = p, m
    frame = pd.DataFrame({"timestamp": ts["timestamp"], "engine": ts["value"], "replay": marked,
                          "engine_protocol": ts["value_protocol"], "replay_protocol": protocol})
    return frame, ledger.unknown
