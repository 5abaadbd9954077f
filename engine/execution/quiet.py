"""Quiet stretches: the backtest's hours between events, valued many at once in closed form.

Most hours of a backtest change nothing but prices: no trade, no liquidation, no reward payment.
Funding settles every eight hours, but on fixed holdings it only moves CEX cash by a closed form
(-size x mark x rate). For such a stretch the trading cycle's step has nothing to decide, and
everything it records (the market move by component, the independent valuation and the
reconciliation of the two, the risk figures, the funding events and the circuit-breaker readings)
is a closed form in the price series: `engine/components/stretch.py` evaluates those with numpy.

What ends a stretch, and gets a full `TradingCycle.step`:
- an hour where the venues could liquidate (the simulated venue layer says where, vectorised);
- an hour where the strategy's check could fire (`Strategy.quiet_check`, its vectorised check);
- a reward payout, and the end of the grid.
Both tests are conservative: an hour they are unsure about is stepped, and the step decides.
A strategy whose `check` has no vectorised twin is stepped every hour.

The result is the step-by-step run's, hour for hour (tests/e2e/test_fast_path.py runs both).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from engine.components import stretch
from engine.components.balance_sheet import BalanceSheetRecorder
from engine.components.risk import RiskSnapshot
from engine.components.stretch import RiskSeries
from engine.domain.events import Event
from engine.domain.pnl import COMPONENT_INDEX, COMPONENTS
from engine.execution.cycle import TradingCycle
from engine.execution.ledger import HourlyLedger
from engine.strategies.base import QuietContext, Strategy

#: Hours evaluated per try: a stretch starts short (another event is often near) and doubles while
#: none comes, so the hours computed past the next event stay a small share of the run.
MIN_CHUNK, MAX_CHUNK = 64, 8192
#: After a try whose first hour needed a step, the next try waits 2, 4, ... up to this many hours.
MAX_SKIP = 32

_I = {name: COMPONENT_INDEX[name] for name in
      ("lending", "borrow", "staking", "lst_peg", "perp_mtm", "spot_price", "funding")}


class FundingLeg(Protocol):
    """One open perp's funding at every hour of a stretch (0 between settlements)."""

    @property
    def venue(self) -> str: ...
    @property
    def asset(self) -> str: ...
    @property
    def size(self) -> float: ...
    @property
    def mark(self) -> np.ndarray: ...
    @property
    def rate(self) -> np.ndarray: ...
    @property
    def payment_usd(self) -> np.ndarray: ...


@runtime_checkable
class StretchWorld(Protocol):
    """What the venue layer tells about a stretch of hours with fixed holdings (backtest)."""

    def funding_over(self, hours: slice) -> Sequence[FundingLeg]: ...
    def liquidation_possible(self, hours: slice, cash: Mapping[str, np.ndarray],
                             health_factor: np.ndarray | None = None) -> np.ndarray: ...


#: The circuit-breaker monitor over a stretch: (first hour, values in the share currency, risk) ->
#: the breach events it raises, as (hour, reason).
StretchGuard = Callable[[int, np.ndarray, RiskSeries], list[tuple[int, str]]]


@dataclass
class QuietHours:
    """What a committed stretch recorded, for the driver's hourly arrays."""

    hours: slice
    value: np.ndarray
    value_protocol: np.ndarray
    reconciliation: np.ndarray
    risk: RiskSeries


def covers(strategy: Strategy) -> bool:
    """Can the strategy's check be evaluated over a stretch? Yes without a check of its own, or when
    its `quiet_check` is defined where its `check` is (or below): a subclass that overrides `check`
    alone would be skipped wrongly by its parent's quiet check."""
    cls = type(strategy)
    if cls.check is Strategy.check:
        return True
    check_owner = next(c for c in cls.__mro__ if "check" in c.__dict__)
    quiet_owner = next(c for c in cls.__mro__ if "quiet_check" in c.__dict__)
    return quiet_owner is not Strategy and issubclass(quiet_owner, check_owner)


class QuietStretches:
    """Advances a backtest's cycle over quiet hours (see the module docstring)."""

    def __init__(self, cycle: TradingCycle, world: StretchWorld, ledger: HourlyLedger,
                 holdings: BalanceSheetRecorder, guard: StretchGuard | None) -> None:
        self.cycle = cycle
        self.world = world
        self.ledger = ledger
        self.holdings = holdings
        self.guard = guard
        self.series = cycle.mv.series()
        self.hours = cycle.mv.hours
        self._checks = type(cycle.strategy).check is not Strategy.check
        self._due = cycle.rewards.due_hours() if cycle.rewards is not None else []
        self._chunk = MIN_CHUNK
        self._skip = 1                    # hours to step before trying again after a failed try
        self._retry_at = 0

    def _limit(self, first: int) -> int:
        """The last hour a stretch from `first` may reach: before the next reward payout."""
        for due in self._due:
            if due >= first:
                return min(due - 1, self.hours - 1)
        return self.hours - 1

    def advance(self, first: int) -> QuietHours | None:
        """Commit the quiet hours from `first` on, up to the first one that needs a step (or the
        chunk's end); None when `first` itself needs one. The cycle then stands where stepping
        those hours would have left it."""
        cyc = self.cycle
        if first < self._retry_at:
            return None
        limit = self._limit(first)
        last = min(limit, first + self._chunk - 1)
        if last < first:
            return None
        hours = slice(first, last + 1)
        p, ms, params = cyc.portfolio, self.series, cyc.params
        legs = list(self.world.funding_over(hours)) if p.cex else []
        cash, settled = self._cash(hours, legs)
        usd = stretch.value_usd(p, ms, hours, cash)
        risk = stretch.risk(p, ms, hours, params.aave, cash)
        stop = (self.world.liquidation_possible(hours, cash, risk.health_factor) if cyc.simulated_liquidations
                else np.zeros(last - first + 1, dtype=bool))
        if self._checks:
            fire = cyc.strategy.quiet_check(QuietContext(p, ms, hours, risk, params, usd))
            stop = stop | fire if fire is not None else np.ones_like(stop)
        k = int(np.argmax(stop)) if stop.any() else stop.size
        if k < stop.size:                 # an hour needs a step: shorter tries for a while
            self._chunk = MIN_CHUNK
        elif last < limit:                # the whole chunk was quiet: try longer ones
            self._chunk = min(2 * self._chunk, MAX_CHUNK)
        if k == 0:
            # The very first hour needs a step. Where that repeats hour after hour (a check that keeps
            # firing), trying again after every step would cost more than it saves: back off.
            self._skip = min(2 * self._skip, MAX_SKIP)
            self._retry_at = first + self._skip
            return None
        self._skip = 1
        return self._commit(first, k, legs, cash, settled, usd, risk.head(k))

    # ---- internals --------------------------------------------------------------------------------
    def _cash(self, hours: slice, legs: list[FundingLeg]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each venue's cash after each hour's funding, added in the order the venue pays it, and
        the hours where anything settled."""
        n = hours.stop - hours.start
        settled = np.zeros(n, dtype=bool)
        cash: dict[str, np.ndarray] = {}
        for venue, acct in self.cycle.portfolio.cex.items():
            mine = [leg for leg in legs if leg.venue == venue]
            if not mine:
                cash[venue] = np.full(n, acct.usdt)
                continue
            pays = np.column_stack([np.where(leg.rate != 0.0, leg.payment_usd, 0.0) for leg in mine])
            path = np.cumsum(np.concatenate([[acct.usdt], pays.ravel()]))
            cash[venue] = path[len(mine)::len(mine)]
            for leg in mine:
                settled |= leg.rate != 0.0
        return cash, settled

    def _commit(self, first: int, k: int, legs: list[FundingLeg], cash: dict[str, np.ndarray],
                settled: np.ndarray, usd: np.ndarray, risk: RiskSeries) -> QuietHours:
        cyc = self.cycle
        p, ms, mv = cyc.portfolio, self.series, cyc.mv
        hours, before = slice(first, first + k), slice(first - 1, first + k - 1)
        usd, settled = usd[:k], settled[:k]
        usd_usd = cyc.numeraire.is_usd
        eth = ms.eth[hours]

        def from_usd(x: np.ndarray) -> np.ndarray:
            return x if usd_usd else x / eth

        usd_before = np.concatenate([[cyc.prev_usd], usd[:-1]])
        move = stretch.attribute(p, ms, before, hours, usd_before, cyc.numeraire.currency)
        block = np.zeros((k, len(COMPONENTS)))
        for name in ("lending", "borrow", "staking", "lst_peg", "perp_mtm", "spot_price"):
            block[:, _I[name]] = getattr(move, name)
        funding = np.zeros(k)
        for leg in legs:
            funding = funding + np.where(leg.rate[:k] != 0.0, from_usd(leg.payment_usd[:k]), 0.0)
        block[:, _I["funding"]] = funding
        # An hour where funding settled is one where the step revalues the LSTs' peg after acting;
        # it books any difference from the move's figure (rounding at most).
        peg = move.peg_b.copy()
        if settled.any():
            now = (from_usd(stretch.lst_peg_usd(p, ms, hours)) if cyc.params.strategy.lst is not None
                   and mv.lst_market else np.zeros(k))
            differs = settled & (now != peg)
            block[differs, _I["lst_peg"]] += now[differs] - peg[differs]
            peg[settled] = now[settled]
        value = from_usd(usd) + peg
        total = self.ledger.put_hours(hours, block)
        prev_value = np.concatenate([[cyc.prev_value], value[:-1]])
        reconciliation = np.abs(value - prev_value - total)

        breaches = self.guard(first, from_usd(usd), risk) if self.guard is not None else []
        self._log(first, k, legs, breaches)
        changed = np.flatnonzero(settled)
        if changed.size:
            paying = {leg.venue for leg in legs}
            self.holdings.cash_changes((changed + first).tolist(), {v: cash[v][changed] for v in cash if v in paying})
        if cyc.rewards is not None:
            cyc.rewards.eligible[hours] = stretch.eligible_eeth(p, ms, hours, cyc.params.strategy.lst or "")
        for venue, acct in p.cex.items():
            acct.usdt = float(cash[venue][k - 1])

        t = first + k - 1
        cyc.prev_t = t
        cyc.prev_usd = cyc.value_usd = float(usd[-1])
        cyc.prev_value = cyc.value = float(value[-1])
        cyc.peg = float(peg[-1])
        cyc.reconciliation = float(reconciliation[-1])
        cyc.changed, cyc.rebalanced = bool(settled[-1]), False
        cyc.risk = _last(risk)
        return QuietHours(hours, value, value - peg, reconciliation, risk)

    def _log(self, first: int, k: int, legs: list[FundingLeg], breaches: list[tuple[int, str]]) -> None:
        """The stretch's events in the order the steps would have logged them: each hour's funding
        settlements (venue by venue), then its circuit-breaker breaches. Built when the log is read
        (a sweep reads only their count)."""
        paid = [(leg, np.flatnonzero(leg.rate[:k] != 0.0)) for leg in legs]
        count = sum(at.size for _, at in paid) + len(breaches)
        stamps = self.cycle.mv.timestamps
        note = self.cycle.funding_note

        def build(order: int) -> list[Event]:
            entries: list[tuple[int, int, int, tuple]] = []
            for i, (leg, at) in enumerate(paid):
                entries += [(h, 0, i, (stamps[h], h, leg.venue, "funding", leg.asset, leg.size, "", pay, mark, 0.0,
                                       0.0, None, None, f"rate {rate:.8g}{note}"))
                            for h, rate, pay, mark in zip((at + first).tolist(), leg.rate[at].tolist(),
                                                          leg.payment_usd[at].tolist(), leg.mark[at].tolist())]
            entries += [(h, 1, 0, (stamps[h], h, "risk", "breach", "", 0.0, "", 0.0, 0.0, 0.0, 0.0, None, None, why))
                        for h, why in breaches]
            if len(paid) > 1 or breaches:
                entries.sort(key=lambda e: (e[0], e[1], e[2]))
            return [Event(order + i, *e[3]) for i, e in enumerate(entries)]

        self.cycle.log.defer(count, build)


def _last(risk: RiskSeries) -> RiskSnapshot:
    """The stretch's last hour as the step's snapshot (the figures of the last step stay on the cycle)."""
    def end(x: np.ndarray | float) -> float:
        return float(x[-1]) if isinstance(x, np.ndarray) else float(x)
    return RiskSnapshot(end(risk.health_factor), end(risk.ltv), {v: float(r[-1]) for v, r in risk.margin_ratio.items()},
                        end(risk.delta_onchain_eth), dict(risk.delta_cex), end(risk.largest_position_usd),
                        end(risk.hedge_notional))
