"""Live market data for the strategy: venue snapshots appended to a growing MarketView, one entry
per tick, so the very same strategy and valuation code as the backtest reads `view.eth[t]`.

CEX series (spot, perp marks, funding) are live. On-chain series (AAVE indices, LST rates, gas, the
execution-cost table) start from the last hour of the shipped history and are held there: paper
sessions say so in their warnings until an on-chain read port feeds them.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Mapping

from engine.data import AlignedMarketData
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.venue_ports import CexVenuePort, MarketQuote, VenueErrorKind

FUNDING_PERIOD_S = 8 * 3600


def perp_symbol(asset: str) -> str:
    return f"{asset}/USDT:USDT"


def spot_symbol(asset: str) -> str:
    return f"{asset}/USDT"


@dataclass
class TickInfo:
    t: int
    at: float                                   # time.time() of the tick
    data_age_seconds: float                     # age of the oldest quote used this tick, after the fetch
    errors: dict[str, str] = field(default_factory=dict)
    funding_settled: bool = False
    timeouts: set[str] = field(default_factory=set)   # venues that gave no answer in time (alerted)


class LiveMarketFeed:
    def __init__(self, params: RunParams, venues: Mapping[str, CexVenuePort], seed: AlignedMarketData,
                 timeout_seconds: float) -> None:
        self.params = params
        self.venues = venues
        self.timeout = timeout_seconds
        sp = params.strategy
        self.underlying = sp.underlying or "ETH"
        self.perp_keys = [(v, self.underlying) for v, w in sp.allocation.items() if w > 0] if sp.hedge else []
        cols = seed.columns
        last = {k: float(v[-1]) for k, v in cols.items()}
        self.frozen_at = seed.index[-1]
        self.view = MarketView(
            timestamps=[],
            spot={a: [] for a in {"ETH", self.underlying}},
            perp={k: [] for k in self.perp_keys},
            funding={k: [] for k in self.perp_keys},
            supply_index={k.split(".")[1]: [] for k in cols if k.endswith(".liquidity_index")},
            borrow_index={k.split(".")[1]: [] for k in cols if k.endswith(".borrow_index")},
            lst_oracle={k.split(".")[1]: [] for k in cols if k.startswith("lst.") and k.endswith(".oracle")},
            lst_market={k.split(".")[1]: [] for k in cols if k.startswith("lst.") and k.endswith(".market")},
            gas_gwei=[],
            cost_bps={p: ([], [], []) for p in {k.split(".")[1] for k in cols if k.startswith("cost_bps.")}},
        )
        self._frozen = last
        self._last_quotes: dict[tuple[str, str], MarketQuote] = {}
        self._quote_ms: dict[tuple[str, str], int] = {}
        self._last_funding_period: int | None = None
        self.warnings: list[str] = []
        if any(k.startswith(("aave.", "lst.")) for k in cols):
            self.warnings.append(
                f"on-chain series (AAVE indices, LST rates, gas, cost table) are held at their last "
                f"historical value ({self.frozen_at:%Y-%m-%d %H:%M} UTC): paper P&L of on-chain legs "
                "shows no accrual")

    def _symbols(self) -> dict[str, list[tuple[str, str, str]]]:
        """venue -> [(symbol, series kind, asset)] to fetch each tick."""
        want: dict[str, list[tuple[str, str, str]]] = {}
        for venue, asset in self.perp_keys:
            want.setdefault(venue, []).append((perp_symbol(asset), "perp", asset))
        sp = self.params.strategy
        if sp.spot_venue:
            want.setdefault(sp.spot_venue, []).append((spot_symbol(self.underlying), "spot", self.underlying))
        return want

    async def _fetch(self, venue: str, symbols: list[str]):
        return await asyncio.wait_for(self.venues[venue].fetch_market_snapshot(symbols), self.timeout)

    async def tick(self) -> TickInfo:
        now = time.time()
        want = self._symbols()
        venues = list(want)
        results = await asyncio.gather(*(self._fetch(v, [s for s, _, _ in want[v]]) for v in venues),
                                       return_exceptions=True)
        info = TickInfo(t=len(self.view.timestamps), at=now, data_age_seconds=0.0)
        for venue, res in zip(venues, results):
            if isinstance(res, BaseException):
                info.errors[venue] = str(res) or type(res).__name__
                if isinstance(res, asyncio.TimeoutError) or getattr(res, "kind", None) is VenueErrorKind.TIMEOUT:
                    info.timeouts.add(venue)
                continue
            for symbol, kind, asset in want[venue]:
                q = res.quotes.get(symbol)
                if q is not None:
                    self._last_quotes[(venue, symbol)] = q
                    # a quote without the venue's own timestamp is as old as the snapshot that carried it
                    self._quote_ms[(venue, symbol)] = q.timestamp_ms or res.fetched_at_ms
        period = int(now // FUNDING_PERIOD_S)
        info.funding_settled = self._last_funding_period is not None and period != self._last_funding_period
        self._last_funding_period = period
        self._append(info, now)
        return info

    def _price(self, q: MarketQuote, perp: bool) -> float:
        for value in ((q.mark, q.last, q.bid) if perp else (q.last, q.bid, q.mark)):
            if value is not None:
                return float(value)
        raise ValueError(f"{q.venue} {q.symbol}: quote without any price")

    def _append(self, info: TickInfo, now: float) -> None:
        v = self.view
        oldest = now
        sp = self.params.strategy
        for key in self.perp_keys:
            venue, asset = key
            q = self._last_quotes.get((venue, perp_symbol(asset)))
            if q is None:
                raise LiveDataUnavailable(f"{venue}: no {perp_symbol(asset)} quote yet"
                                          + (f" ({info.errors[venue]})" if venue in info.errors else ""))
            v.perp[key].append(self._price(q, True))
            rate = float(q.funding_rate) if (info.funding_settled and q.funding_rate is not None) else 0.0
            v.funding[key].append(rate)
            oldest = min(oldest, self._quote_ms[(venue, perp_symbol(asset))] / 1000.0)
        spot_key = (sp.spot_venue, spot_symbol(self.underlying)) if sp.spot_venue else None
        spot_q = self._last_quotes.get(spot_key) if spot_key is not None else None
        marks = [v.perp[k][-1] for k in self.perp_keys]
        if spot_q is not None and spot_key is not None:
            underlying_price = self._price(spot_q, False)
            oldest = min(oldest, self._quote_ms[spot_key] / 1000.0)
        elif marks:
            underlying_price = sum(marks) / len(marks)      # LST modes: no spot leg; the perp marks agree
        else:
            underlying_price = self._frozen["spot.ETH"]
        v.spot[self.underlying].append(underlying_price)
        if self.underlying != "ETH":
            v.spot["ETH"].append(self._frozen["spot.ETH"])
        for r, arr in v.supply_index.items():
            arr.append(self._frozen[f"aave.{r}.liquidity_index"])
        for r, arr in v.borrow_index.items():
            arr.append(self._frozen[f"aave.{r}.borrow_index"])
        for lst, arr in v.lst_oracle.items():
            arr.append(self._frozen[f"lst.{lst}.oracle"])
        for lst, arr in v.lst_market.items():
            arr.append(self._frozen[f"lst.{lst}.market"])
        v.gas_gwei.append(self._frozen["gas.gwei"])
        for pair, (a, b, c) in v.cost_bps.items():
            a.append(self._frozen[f"cost_bps.{pair}.10k"])
            b.append(self._frozen[f"cost_bps.{pair}.100k"])
            c.append(self._frozen[f"cost_bps.{pair}.1m"])
        v.timestamps.append(datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        v.eth = v.spot["ETH"]
        # measured now, after the fetch: the age the strategy is about to act on
        info.data_age_seconds = max(0.0, time.time() - oldest)


class LiveDataUnavailable(RuntimeError):
    """A required quote has never arrived (the venue is down or the symbol is not listed)."""


def to_decimal(x: float) -> Decimal:
    return Decimal(repr(x))
