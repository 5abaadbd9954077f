"""One running strategy on the asyncio (qasync) loop: tick -> market data -> risk -> strategy -> orders.

The same strategy classes as the backtest, fed by LiveMarketFeed. Paper sessions fill through the
simulated venue layer at live prices; live sessions send real orders through the OrderGate.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from engine.components.event_log import EventLog
from engine.components.pnl_ledger import PnlLedger
from engine.components.risk import snapshot
from engine.components.valuation import to_numeraire, value_usd
from engine.domain.portfolio import Portfolio
from engine.domain.venue_ports import CexVenuePort
from engine.execution.manager import ExecutionManager
from engine.services.live.emergency_stop import EmergencyStop, EmergencyStopReport, VenueCancelProgress
from engine.services.live.execution import LiveExecutor, LiveUnsupported, PaperExecutor
from engine.services.live.journal import Journal
from engine.services.live.market_feed import LiveDataUnavailable, LiveMarketFeed
from engine.services.live.order_gate import OrderGate
from engine.services.live.risk_limits import Breach, RiskLimits, RiskReading, evaluate
from engine.services.live.state import StateChange, TradingHalted, TradingState, TradingStateMachine
from engine.strategies.base import Strategy, StrategyContext

log = logging.getLogger(__name__)


@dataclass
class SessionStatus:
    request_id: str
    mode: str
    execution: str
    environment: str
    state: str
    running: bool
    started_at: float
    last_heartbeat: float | None
    data_age_seconds: float | None
    ticks: int
    value: float | None
    pnl: float | None
    currency: str
    trades: int
    drawdown: float
    breaches: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_error: str = ""


class LiveSession:
    def __init__(self, *, mode: str, execution: str, environment: str, params, strategy: Strategy,
                 feed: LiveMarketFeed, venues: Mapping[str, CexVenuePort], limits: RiskLimits,
                 journal: Journal, world_factory: Callable[..., Any], rejected_exc: type[Exception],
                 tick_seconds: float, cancel_timeout_seconds: float,
                 on_update: Callable[["LiveSession"], None] | None = None,
                 on_cancel_progress: Callable[[VenueCancelProgress], None] | None = None) -> None:
        self.request_id = uuid.uuid4().hex[:12]
        self.mode, self.execution, self.environment = mode, execution, environment
        self.params = params
        self.strategy = strategy
        self.feed = feed
        self.venues = venues
        self.limits = limits
        self.journal = journal
        self.tick_seconds = tick_seconds
        self.on_update = on_update
        self.state = TradingStateMachine(self._on_state_change)
        self.gate = OrderGate(self.state, venues, self._journal_order)
        self.estop = EmergencyStop(self.state, venues, self.gate, cancel_timeout_seconds, on_cancel_progress)
        self.portfolio = Portfolio()
        self.events = EventLog()
        self.ledger = PnlLedger(1)
        self.started_at = time.time()
        self.last_heartbeat: float | None = None
        self.data_age: float | None = None
        self.values: list[float] = []
        self.peak = 0.0
        self.day_start: tuple[int, float] | None = None
        self.breaches: list[Breach] = []
        self.last_error = ""
        self._task: asyncio.Task | None = None
        self._entered = False
        if execution == "paper":
            strategy.seed(self.portfolio, feed.view)
            world = world_factory(self.portfolio, feed.view, params)
            self.paper = PaperExecutor(world, self.state, self.portfolio)
            self.manager = ExecutionManager(self.paper, feed.view, self.ledger, self.events,
                                            params.strategy.currency, (rejected_exc, TradingHalted))
            self.live_exec = None
        else:
            self.paper = None
            self.live_exec = LiveExecutor(self.gate, params, feed.view, self.portfolio)
            self.manager = ExecutionManager(None, feed.view, self.ledger, self.events,
                                            params.strategy.currency, (TradingHalted, LiveUnsupported, Exception))

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.journal.event(self.request_id, "session", "start", mode=self.mode, execution=self.execution,
                           environment=self.environment)
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.journal.event(self.request_id, "session", "stop")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def emergency_stop(self, reason: str = "operator emergency stop") -> EmergencyStopReport:
        report = await self.estop.press(reason)
        self.journal.event(self.request_id, "session", "emergency_stop",
                           halted_after_ms=report.halted_after_ms, finished_after_ms=report.finished_after_ms,
                           venues={v: (p.status.value, p.canceled, p.error) for v, p in report.venues.items()})
        self._notify()
        return report

    def reset(self, reason: str = "operator reset") -> None:
        self.state.reset(reason)

    # ---------------------------------------------------------------- the loop
    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except LiveDataUnavailable as exc:
                self.last_error = str(exc)
            except Exception as exc:          # a bad tick is logged and shown, the loop keeps its heartbeat
                log.exception("live tick failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._notify()
            await asyncio.sleep(max(0.0, self.tick_seconds - (time.monotonic() - started)))

    async def tick(self) -> None:
        info = await self.feed.tick()
        t = info.t
        self.last_heartbeat = info.at
        self.data_age = info.data_age_seconds
        mv = self.feed.view
        if info.errors:
            self.last_error = "; ".join(f"{v}: {e}" for v, e in info.errors.items())
        if self.execution == "live":
            await self._mirror_venues()
        elif info.funding_settled:
            for f in self.paper.world.settle_funding(t):
                self.events.add(mv.timestamps[t], t, f.venue, "funding", asset=f.asset, amount=f.size,
                                amount_out=f.payment_usd, price=f.mark, reason=f"rate {f.rate:.8g}")
        risk = snapshot(self.portfolio, mv, t, self.params.aave)
        ctx = StrategyContext(self.portfolio, mv, t, risk, self.params)
        if not self._entered:
            await self._run_program(self.strategy.entry(ctx), t)
            self._entered = True
        else:
            reason = self.strategy.check(ctx)
            if reason is not None and self.state.state is not TradingState.HALTED:
                self.events.add(mv.timestamps[t], t, "strategy", "rebalance", reason=reason)
                await self._run_program(self.strategy.rebalance(ctx, reason), t)
        self._check_risk(t, info.data_age_seconds)

    async def _run_program(self, program, t: int) -> None:
        if self.execution == "paper":
            self.manager.run(program, t)
        else:
            await self.manager.run_async(program, t, self.live_exec.execute)

    async def _mirror_venues(self) -> None:
        """Live: the venues are the truth; rebuild the CEX accounts from their balances/positions."""
        from engine.domain.portfolio import CexAccount
        for venue, port in self.venues.items():
            balances, positions = await asyncio.gather(port.fetch_balances(), port.fetch_positions())
            acct = CexAccount()
            for b in balances:
                if b.asset == "USDT":
                    acct.usdt += float(b.total)
                elif b.account != "usdm" and float(b.total):
                    acct.spot[b.asset] = acct.spot.get(b.asset, 0.0) + float(b.total)
            for p in positions:
                pos = acct.perp(p.symbol.split("/")[0])
                pos.size = float(p.size)
                pos.entry_price = float(p.entry_price or 0)
            self.portfolio.cex[venue] = acct

    def _check_risk(self, t: int, data_age: float) -> None:
        mv = self.feed.view
        cur = self.params.strategy.currency
        value = to_numeraire(value_usd(self.portfolio, mv, t), cur, mv, t)
        self.values.append(value)
        self.peak = max(self.peak, value)
        day = int(time.time() // 86400)
        if self.day_start is None or self.day_start[0] != day:
            self.day_start = (day, value)
        risk = snapshot(self.portfolio, mv, t, self.params.aave)
        largest = 0.0
        for venue, acct in self.portfolio.cex.items():
            for asset, pos in acct.perps.items():
                largest = max(largest, abs(pos.size) * mv.perp[(venue, asset)][t]) if (venue, asset) in mv.perp else largest
        reading = RiskReading(value=value, peak_value=self.peak, day_start_value=self.day_start[1],
                              largest_position_usdt=largest, health_factor=risk.health_factor,
                              margin_ratios={v: r for v, r in risk.margin_ratio.items() if not math.isinf(r)},
                              data_age_seconds=data_age)
        self.breaches = evaluate(self.limits, reading)
        if self.breaches and self.state.state is TradingState.ACTIVE:
            reason = "risk limit: " + "; ".join(str(b) for b in self.breaches)
            self.events.add(mv.timestamps[t], t, "risk", "breach", reason=reason)
            self.journal.event(self.request_id, "risk", "breach", reason=reason)
            if self.limits.breach_action == "reduce":
                self.state.reduce(reason)
            else:
                asyncio.ensure_future(self.emergency_stop(reason))

    # ---------------------------------------------------------------- reporting
    def status(self) -> SessionStatus:
        cur = self.params.strategy.currency
        value = self.values[-1] if self.values else None
        capital = self.params.strategy.capital
        return SessionStatus(
            request_id=self.request_id, mode=self.mode, execution=self.execution,
            environment=self.environment, state=self.state.state.value, running=self.running,
            started_at=self.started_at, last_heartbeat=self.last_heartbeat, data_age_seconds=self.data_age,
            ticks=len(self.values), value=value, pnl=None if value is None else value - capital,
            currency=cur, trades=self.gate.sent + (self.paper.sent if self.paper else 0),
            drawdown=0.0 if not self.values or self.peak <= 0 else 1.0 - self.values[-1] / self.peak,
            breaches=[str(b) for b in self.breaches], warnings=list(self.feed.warnings),
            last_error=self.last_error,
        )

    def _on_state_change(self, change: StateChange) -> None:
        mv = self.feed.view
        t = max(len(mv.timestamps) - 1, 0)
        ts = mv.timestamps[t] if mv.timestamps else ""
        self.events.add(ts, t, "session", "state", reason=f"{change.previous.value} -> {change.current.value}: "
                        f"{change.reason}")
        self.journal.event(self.request_id, "session", "state", previous=change.previous.value,
                           current=change.current.value, reason=change.reason)
        self._notify()

    def _journal_order(self, what: str, venue: str, request, order, error) -> None:
        if what == "submitted":
            self.journal.order_submitted(self.request_id, venue, request)
        elif what == "acknowledged" and order is not None:
            self.journal.order_update(request.client_order_id, order.status.value, order.order_id,
                                      order.filled, order.average)
            if order.filled:
                self.journal.fill(request.client_order_id, venue, request.symbol, request.side.value,
                                  order.filled, order.average or order.price or 0)
        elif what == "failed":
            self.journal.order_update(request.client_order_id, "failed", error=error)
        elif what == "refused":
            self.journal.event(self.request_id, venue, "order_refused", symbol=request.symbol, state=error)

    def _notify(self) -> None:
        if self.on_update is not None:
            self.on_update(self)
