"""The live session's risk limits, evaluated in a backtest hour by hour as a live tick would.

Two kinds of limit, two consequences:

- Limits on what may be held bind the backtest exactly as they bind live: `risk.max_position_usdt`,
  each exchange's position limit and depth limit size every leg and order (engine.strategies.capacity,
  the simulated venues). A run never holds a position a live session would refuse to open.
- Circuit breakers (`max_drawdown`, `max_daily_loss`, `hf_floor`, `margin_ratio_floor`) stop a live
  session (REDUCING or HALTED, per `breach_action`) until an operator looks and resets it. A backtest
  has no operator: playing the session halted to the end would report whatever the frozen, soon
  unhedged book happens to do (usdt_market_neutral on the shipped config: +38 % APR from an
  unhedged ETH long after 2024-05-20), which is not the strategy's result either. So the backtest
  keeps trading, and says where a live session would have stopped: each breach is an event (when a
  limit starts to breach, not every hour of it) and the run's warnings name each limit's first
  breach and how often it happened, so the operator can tune the limits or the rebalancing.

Data age and book/venue mismatches mean nothing on historical data and are not checked. The hourly
check is a handful of float comparisons; the messages are only built in an hour that breaches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.components.event_log import EventLog
from engine.components.risk import RiskSnapshot
from engine.components.stretch import RiskSeries
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.services.live.risk_limits import RiskLimits, RiskReading, evaluate


@dataclass(slots=True)
class _Episodes:
    first_hour: int
    first_text: str
    count: int = 1


class BacktestRiskMonitor:
    def __init__(self, params: RunParams, market: MarketView, log: EventLog) -> None:
        r = params.risk
        self.limits = RiskLimits(r.max_drawdown, r.max_daily_loss, r.max_position_usdt, r.hf_floor,
                                 r.margin_ratio_floor, math.inf, r.breach_action)
        self.mv = market
        self.log = log
        self.peak = -math.inf
        # The grid is hourly UTC: a day starts where (first hour of day + t) is a multiple of 24.
        self._hour0 = int(market.timestamps[0][11:13]) if market.timestamps else 0
        self._day_start = 0.0
        self._drawdown_floor = -math.inf       # value below which the drawdown limit breaches
        self._daily_floor = -math.inf
        self._active: set[str] = set()              # limits breached in the previous hour
        self.episodes: dict[str, _Episodes] = {}
        #: the lowest margin ratio each venue showed at the hourly check, before the strategy acted
        #: (the recorded series is after the hour's rebalance, so it never shows how low a move took it)
        self.margin_ratio_min: dict[str, float] = {}

    def observe(self, t: int, value: float, risk: RiskSnapshot) -> None:
        """The hour's reading after the venues acted and before the strategy does, as live."""
        lim = self.limits
        if value > self.peak:
            self.peak = value
            self._drawdown_floor = value * (1.0 - lim.max_drawdown)
        if t == 0 or (self._hour0 + t) % 24 == 0:
            self._day_start = value
            self._daily_floor = value * (1.0 - lim.max_daily_loss)
        ratios = risk.margin_ratio
        lows = self.margin_ratio_min
        for venue, ratio in ratios.items():
            if ratio < lows.get(venue, math.inf):
                lows[venue] = ratio
        if not (value < self._drawdown_floor or value < self._daily_floor
                or risk.health_factor < lim.hf_floor
                or ratios and min(ratios.values()) < lim.margin_ratio_floor
                or risk.largest_position_usd > lim.max_position_usdt):
            if self._active:
                self._active.clear()
            return
        for reason in self._breaches(t, value, risk.health_factor, risk.margin_ratio, risk.largest_position_usd):
            self.log.add(self.mv.timestamps[t], t, "risk", "breach", reason=reason)

    def observe_stretch(self, first: int, values: np.ndarray, risk: RiskSeries) -> list[tuple[int, str]]:
        """`observe` for the hours first, first+1, ... of a quiet stretch (one reading per hour, as
        arrays), in one pass: the running peak, the day's opening value and the hours that breach
        are computed with numpy, and only those hours are evaluated one by one. Returns the breach
        events as (hour, reason), for the caller to log in their place among the stretch's events."""
        lim = self.limits
        n = values.size
        lows = self.margin_ratio_min
        for venue, ratios_ in risk.margin_ratio.items():
            low = float(np.fmin.reduce(ratios_)) if ratios_.size else math.inf
            if low < lows.get(venue, math.inf):
                lows[venue] = low
        peak = np.maximum.accumulate(np.concatenate([[self.peak], values]))[1:]
        drawdown_floor = peak * (1.0 - lim.max_drawdown)
        new_day = (self._hour0 + np.arange(first, first + n)) % 24 == 0
        day_start = np.full(n, self._day_start)
        daily_floor = np.full(n, self._daily_floor)
        if new_day.any():
            # each hour takes the value of the last day start at or before it
            last = np.maximum.accumulate(np.where(new_day, np.arange(n), -1))
            started = last >= 0
            day_start[started] = values[last[started]]
            daily_floor[started] = values[last[started]] * (1.0 - lim.max_daily_loss)
        ratios = risk.margin_ratio
        lowest = np.minimum.reduce(list(ratios.values())) if ratios else np.full(n, np.inf)
        hf = risk.health_factor
        largest = np.broadcast_to(risk.largest_position_usd, (n,))
        breaching = ((values < drawdown_floor) | (values < daily_floor) | (hf < lim.hf_floor)
                     | (lowest < lim.margin_ratio_floor) | (largest > lim.max_position_usdt))
        out: list[tuple[int, str]] = []
        previous = -1                       # the stretch index of the last breaching hour
        for i in np.flatnonzero(breaching).tolist():
            if i != previous + 1:           # an hour without a breach in between clears the set
                self._active.clear()
            self.peak, self._day_start = float(peak[i]), float(day_start[i])
            out += [(first + i, reason) for reason in self._breaches(
                first + i, float(values[i]), float(hf[i]), {v: float(r[i]) for v, r in ratios.items()},
                float(largest[i]))]
            previous = i
        if previous != n - 1:
            self._active.clear()
        self.peak, self._drawdown_floor = float(peak[-1]), float(drawdown_floor[-1])
        self._day_start, self._daily_floor = float(day_start[-1]), float(daily_floor[-1])
        return out

    def _breaches(self, t: int, value: float, health_factor: float, margin_ratio: dict[str, float],
                  largest_position_usd: float) -> list[str]:
        """The hour's breached limits: a reason for each that starts to breach (episodes counted)."""
        lim = self.limits
        reading = RiskReading(value=value, peak_value=self.peak, day_start_value=self._day_start,
                              largest_position_usdt=largest_position_usd, health_factor=health_factor,
                              margin_ratios={v: x for v, x in margin_ratio.items() if not math.isinf(x)})
        breaches = {b.limit: b for b in evaluate(lim, reading)}
        reasons = []
        for name in sorted(breaches.keys() - self._active):
            text = str(breaches[name])
            ep = self.episodes.get(name)
            if ep is None:
                self.episodes[name] = _Episodes(t, text)
            else:
                ep.count += 1
            reasons.append(f"risk limit {text}: a live session ({lim.breach_action} on breach) would stop "
                           "adding risk here until reset; the backtest trades on")
        self._active = set(breaches)
        return reasons

    def warnings(self) -> list[str]:
        """One line per limit a live session would have acted on."""
        action = {"halt": "halted", "reduce": "reduced to risk-reducing orders"}[self.limits.breach_action]
        out = []
        for name, ep in self.episodes.items():
            times = "once" if ep.count == 1 else f"{ep.count} times"
            out.append(f"risk limit {name} breached {times}, first at {self.mv.timestamps[ep.first_hour]} "
                       f"({ep.first_text}): a live session would have {action} there until reset; "
                       "this backtest kept trading")
        return out
