"""Live market data for the strategy: venue snapshots appended to a growing MarketView, one entry
per tick, so the very same strategy and valuation code as the backtest reads `view.eth[t]`.

CEX series (spot, perp marks, funding) come from the exchanges. On-chain series (AAVE indices, LST
oracle and market rates, gas, and ETH/USD where no exchange prices it) come from the chain through a
`ChainMarketPort` (engine/domain/chain_market.py), read each tick concurrently with the exchanges and
under the same timeout; its age counts in the tick's data age like a quote's. A session without a
chain source (no RPC configured) holds those series at the last hour of the shipped history and says
so, with the reason, in its warnings. The execution-cost table is history in every case (there is no
live source for it).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Mapping

from engine.data import AlignedMarketData
from engine.data.requirements import DataRequirements
from engine.domain.chain_market import ChainFeedUnavailable, ChainMarketNeeds, ChainMarketPort, ChainMarketReading
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.venue_ports import CexVenuePort, MarketQuote, VenueErrorKind

FUNDING_PERIOD_S = 8 * 3600


def perp_symbol(asset: str) -> str:
    return f"{asset}/USDT:USDT"


def spot_symbol(asset: str) -> str:
    return f"{asset}/USDT"


#: TickInfo.errors key of the chain source
CHAIN = "chain"


def chain_needs(requirements: DataRequirements) -> ChainMarketNeeds:
    """What of the chain a session with these data requirements reads each tick."""
    return ChainMarketNeeds(reserves=tuple(requirements.aave_reserves), lsts=tuple(requirements.lsts))


@dataclass
class TickInfo:
    t: int
    at: float                                   # time.time() of the tick
    data_age_seconds: float                     # age of the oldest quote used this tick, after the fetch
    errors: dict[str, str] = field(default_factory=dict)
    funding_settled: bool = False
    chain_block: int | None = None              # the block the tick's chain series were read at
    chain_latency_s: float | None = None        # how long this tick's chain read took (None: no read)
    timeouts: set[str] = field(default_factory=set)   # venues that gave no answer in time (alerted)


class LiveMarketFeed:
    def __init__(self, params: RunParams, venues: Mapping[str, CexVenuePort], seed: AlignedMarketData,
                 timeout_seconds: float, *, chain: ChainMarketPort | ChainFeedUnavailable | None = None) -> None:
        """``chain``: where the on-chain series come from; a ChainFeedUnavailable (or None for a mode
        that holds nothing on-chain) keeps them at the seed's last hour."""
        self.params = params
        self.venues = venues
        self.timeout = timeout_seconds
        self.chain: ChainMarketPort | None = chain if isinstance(chain, ChainMarketPort) else None
        self._chain_reading: ChainMarketReading | None = None
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
        self._static_warnings: list[str] = []
        onchain = any(k.startswith(("aave.", "lst.")) for k in cols)
        if onchain and self.chain is None:
            why = f" ({chain.reason})" if isinstance(chain, ChainFeedUnavailable) else ""
            self._static_warnings.append(
                f"on-chain series (AAVE indices, LST rates, gas, cost table) are held at their last "
                f"historical value ({self.frozen_at:%Y-%m-%d %H:%M} UTC): paper P&L of on-chain legs "
                f"shows no accrual{why}")
        elif self.chain is not None:
            held = [lst for lst in self.view.lst_market if lst not in self.chain.market_pools]
            if held:
                self._static_warnings.append(
                    f"{', '.join(held)} market rate: no Uniswap pool configured, the oracle rate stands in "
                    "(no peg is visible)")
            if self.view.cost_bps:
                self._static_warnings.append(
                    f"the execution-cost table is held at its last historical day ({self.frozen_at:%Y-%m-%d})")

    @property
    def warnings(self) -> list[str]:
        """What the session shows as warnings about its market data (changes with the chain's head)."""
        out = list(self._static_warnings)
        reading = self._chain_reading
        if self.chain is not None and reading is not None:
            head_age = time.time() - reading.block_timestamp
            if abs(head_age) > self.chain.block_age_limit_s:
                when = datetime.fromtimestamp(reading.block_timestamp, timezone.utc)
                out.append(f"{self.chain.source}: head block {reading.block_number} is dated {when:%Y-%m-%d %H:%M:%S} "
                           f"UTC, {head_age:+.0f} s from now (limit {self.chain.block_age_limit_s:g} s): the node "
                           "lags, or the chain's clock is warped (a local chain following history)")
        return out

    @property
    def chain_reading(self) -> ChainMarketReading | None:
        """The latest reading of the chain (the one the last tick's on-chain series hold)."""
        return self._chain_reading

    async def close(self) -> None:
        """Release the chain source's connection (the CEX adapters are closed by their owner)."""
        if self.chain is not None:
            await self.chain.close()

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

    async def _read_chain(self) -> ChainMarketReading | None:
        if self.chain is None:
            return None
        return await asyncio.wait_for(self.chain.read(), self.timeout)

    async def tick(self) -> TickInfo:
        now = time.time()
        want = self._symbols()
        venues = list(want)
        *results, chain_result = await asyncio.gather(
            *(self._fetch(v, [s for s, _, _ in want[v]]) for v in venues), self._read_chain(),
            return_exceptions=True)
        info = TickInfo(t=len(self.view.timestamps), at=now, data_age_seconds=0.0)
        if isinstance(chain_result, ChainMarketReading):
            self._chain_reading = chain_result
            info.chain_block, info.chain_latency_s = chain_result.block_number, chain_result.latency_s
        elif isinstance(chain_result, BaseException):
            if isinstance(chain_result, asyncio.CancelledError):
                raise chain_result
            info.errors[CHAIN] = (f"no answer within {self.timeout:g} s" if isinstance(chain_result, asyncio.TimeoutError)
                                  else str(chain_result) or type(chain_result).__name__)
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

    def _append_chain(self, r: ChainMarketReading) -> None:
        v = self.view
        for reserve, arr in v.supply_index.items():
            arr.append(float(r.supply_index[reserve]))
        for reserve, arr in v.borrow_index.items():
            arr.append(float(r.borrow_index[reserve]))
        for lst, arr in v.lst_oracle.items():
            arr.append(float(r.lst_oracle[lst]))
        for lst, arr in v.lst_market.items():
            arr.append(float(r.lst_market.get(lst, r.lst_oracle[lst])))    # no pool: the oracle stands in
        v.gas_gwei.append(float(r.gas_gwei))

    def _append_frozen(self) -> None:
        v = self.view
        for r, arr in v.supply_index.items():
            arr.append(self._frozen[f"aave.{r}.liquidity_index"])
        for r, arr in v.borrow_index.items():
            arr.append(self._frozen[f"aave.{r}.borrow_index"])
        for lst, arr in v.lst_oracle.items():
            arr.append(self._frozen[f"lst.{lst}.oracle"])
        for lst, arr in v.lst_market.items():
            arr.append(self._frozen[f"lst.{lst}.market"])
        v.gas_gwei.append(self._frozen["gas.gwei"])

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
        chain = self._chain_reading
        if self.chain is not None:
            if chain is None:
                raise LiveDataUnavailable(f"{self.chain.source}: no reading yet"
                                          + (f" ({info.errors[CHAIN]})" if CHAIN in info.errors else ""))
            oldest = min(oldest, chain.requested_at)
        spot_key = (sp.spot_venue, spot_symbol(self.underlying)) if sp.spot_venue else None
        spot_q = self._last_quotes.get(spot_key) if spot_key is not None else None
        marks = [v.perp[k][-1] for k in self.perp_keys]
        # Without an exchange price (the LST and lending modes) ETH/USD is AAVE's oracle price.
        eth_usd = float(chain.eth_usd) if chain is not None and chain.eth_usd is not None else self._frozen["spot.ETH"]
        if spot_q is not None and spot_key is not None:
            underlying_price = self._price(spot_q, False)
            oldest = min(oldest, self._quote_ms[spot_key] / 1000.0)
        elif marks:
            underlying_price = sum(marks) / len(marks)      # LST modes: no spot leg; the perp marks agree
        else:
            underlying_price = eth_usd
        v.spot[self.underlying].append(underlying_price)
        if self.underlying != "ETH":
            v.spot["ETH"].append(eth_usd)
        if chain is not None:
            self._append_chain(chain)
        else:
            self._append_frozen()
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
