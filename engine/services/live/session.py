"""One running strategy on the asyncio (qasync) loop.

Each tick: market data -> (live: venue positions vs the book) -> P&L attribution of the market move
-> funding at settlement crossings -> risk limits (a breach acts *before* the strategy trades on the
data) -> strategy entry/check/rebalance -> valuation, history, journal.

The same strategy classes as the backtest, fed by LiveMarketFeed, act on a *strategy book* (a
Portfolio seeded with the session's capital, exactly as in the backtest). Paper sessions fill it
through the simulated venue layer at live prices; live sessions send real orders and apply the
venues' fills to it. The venues stay the truth: every live tick reads their positions on the mode's
symbols and any difference from the book is a risk breach (the book is wrong: a manual trade, a
liquidation, a lost fill). The book is journaled when it changes so a restarted session resumes it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Mapping

from engine.components.event_log import EventLog
from engine.components.pnl_attribution import attribute_market_move
from engine.components.risk import RiskSnapshot, snapshot
from engine.components.valuation import to_numeraire, value_usd
from engine.domain.instructions import Instruction
from engine.domain.pnl import COMPONENTS
from engine.domain.portfolio import CexAccount, Portfolio
from engine.domain.venue_ports import CexVenuePort, OrderRequest, OrderStatus, VenueOrder
from engine.execution.manager import ExecutionManager
from engine.services.live.dead_man import DeadManHeartbeat
from engine.services.live.emergency_stop import EmergencyStop, EmergencyStopReport, VenueCancelProgress
from engine.services.live.execution import TERMINAL, LiveExecutor, PaperExecutor
from engine.services.live.journal import Journal
from engine.services.live.market_feed import LiveDataUnavailable, LiveMarketFeed, perp_symbol
from engine.services.live.order_gate import OrderGate
from engine.services.live.pretrade import PreTradeRefused
from engine.services.live.recovery import RecoveryReport
from engine.services.live.risk_limits import Breach, RiskLimits, RiskReading, evaluate
from engine.services.live.state import StateChange, TradingHalted, TradingState, TradingStateMachine
from engine.strategies.base import Strategy, StrategyContext
from engine.strategies.capacity import capacity_warning

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20_000          # ticks kept in memory for the dashboard charts
BLOTTER_LIMIT = 500
MAX_FAILED_PROGRAMS = 3         # consecutive strategy programs stopped by a venue error -> halt
POSITION_TOLERANCE = 1e-8       # base units; fills are applied from the venue's own numbers


class SessionPhase(str, Enum):
    STARTING = "starting"
    AWAITING_ACK = "awaiting_acknowledgement"   # recovery found something: trading waits for the operator
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass
class SessionStatus:
    request_id: str
    mode: str
    execution: str
    environment: str
    phase: str
    state: str
    running: bool
    started_at: float
    last_heartbeat: float | None          # time.time() of the last completed tick
    heartbeat_age_seconds: float | None   # loop age: now - last heartbeat
    data_age_seconds: float | None        # oldest quote used by the last tick
    ticks: int
    value: float | None
    pnl: float | None
    capital: float
    currency: str
    trades: int
    drawdown: float
    breaches: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_error: str = ""
    dead_man: dict[str, str] = field(default_factory=dict)
    pnl_components: dict[str, float] = field(default_factory=dict)
    reconciliation_error: float = 0.0


@dataclass(frozen=True, slots=True)
class TickRecord:
    """One point of the dashboard's time series."""

    at: float
    value: float
    pnl: float
    components: tuple[float, ...]         # cumulative, in COMPONENTS order
    data_age_seconds: float
    state: str


@dataclass(slots=True)
class OrderRecord:
    """One row of the order blotter (live orders; paper fills are events)."""

    client_order_id: str
    venue: str
    symbol: str
    side: str
    amount: str
    reduce_only: bool
    status: str
    submitted_at: float
    order_id: str | None = None
    filled: str | None = None
    average: str | None = None
    error: str = ""


class RunningLedger:
    """The execution manager's ledger for an open-ended run: per-tick row plus running totals."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(COMPONENTS, 0.0)
        self._row = dict.fromkeys(COMPONENTS, 0.0)

    def start_hour(self, t: int) -> None:
        self._row = dict.fromkeys(COMPONENTS, 0.0)

    def book(self, component: str, amount: float) -> None:
        self._row[component] += amount
        self.totals[component] += amount

    def hour_total(self) -> float:
        return sum(self._row.values())


class LiveSession:
    def __init__(self, *, mode: str, execution: str, environment: str, params, strategy: Strategy,
                 feed: LiveMarketFeed, venues: Mapping[str, CexVenuePort], limits: RiskLimits,
                 journal: Journal, world_factory: Callable[..., Any], rejected_exc: type[Exception],
                 tick_seconds: float, cancel_timeout_seconds: float, dead_man_seconds: float | None = None,
                 data_timeout_seconds: float = 5.0,
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
        self.data_timeout_seconds = data_timeout_seconds
        self.on_update = on_update
        self.phase = SessionPhase.STARTING
        self.state = TradingStateMachine(self._on_state_change)
        live = execution == "live"
        order_venues = venues if live else {}
        self.gate = OrderGate(self.state, order_venues, self._journal_order)
        self.estop = EmergencyStop(self.state, order_venues, self.gate, cancel_timeout_seconds, on_cancel_progress)
        self.dead_man = DeadManHeartbeat(venues, dead_man_seconds, tick_seconds, min(cancel_timeout_seconds, 5.0)) \
            if live and dead_man_seconds else None
        self.portfolio = Portfolio()
        self.events = EventLog()
        self.ledger = RunningLedger()
        self.capital = params.strategy.capital
        self.capacity_warning = capacity_warning(params)
        self.started_at = time.time()
        self.last_heartbeat: float | None = None
        self.data_age: float | None = None
        self.history: deque[TickRecord] = deque(maxlen=HISTORY_LIMIT)
        self.orders: deque[OrderRecord] = deque(maxlen=BLOTTER_LIMIT)
        self._orders_by_id: dict[str, OrderRecord] = {}
        self.ticks = 0
        self.value: float | None = None
        self.peak = 0.0
        self.day_start: tuple[int, float] | None = None
        self.breaches: list[Breach] = []
        self.last_error = ""
        self.last_estop: EmergencyStopReport | None = None
        self.recovery: RecoveryReport | None = None
        self.reconciliation_error = 0.0
        self.foreign_positions: dict[tuple[str, str], float] = {}   # venue positions the book does not own
        self.lock = asyncio.Lock()                                  # one of: a tick, a flatten
        self._task: asyncio.Task | None = None
        self._estop_task: asyncio.Task | None = None
        self._entered = False
        self._flat = False
        self._prev_value_usd: float | None = None
        self._failed_programs = 0
        self._last_failure = ""
        self._saved_book: str | None = None
        strategy.seed(self.portfolio, feed.view)
        # The simulated venue layer: paper fills, and the funding settlements both modes book.
        self.world = world_factory(self.portfolio, feed.view, params)
        halted = (rejected_exc, TradingHalted, PreTradeRefused)
        if live:
            self.paper = None
            self.live_exec = LiveExecutor(self.gate, params, feed.view, self.portfolio, self.state,
                                          on_settled=self._settled, on_allocation=self._allocated,
                                          on_refused=self._pre_trade_refused)
            self.manager = ExecutionManager(None, feed.view, self.ledger, self.events, params.strategy.currency,
                                            Exception)
        else:
            self.paper = PaperExecutor(self.world, self.state, self.portfolio, params=params, market=feed.view,
                                       on_refused=self._pre_trade_refused)
            self.live_exec = None
            self.manager = ExecutionManager(self.paper, feed.view, self.ledger, self.events,
                                            params.strategy.currency, halted)

    # ---------------------------------------------------------------- lifecycle
    def await_acknowledgement(self, report: RecoveryReport) -> None:
        self.recovery = report
        self.phase = SessionPhase.AWAITING_ACK
        self.journal.event(self.request_id, "session", "recovery", mode=self.mode, lines=report.lines())
        self._notify()

    def adopt(self, report: RecoveryReport) -> None:
        """Take over what recovery found: resume the journaled book (perp sizes from the venues), or
        start fresh next to positions the journal does not know (they are left alone and excluded
        from the per-tick position check)."""
        self.recovery = report
        if report.book is not None:
            self._load_book(report.book)
            for venue, positions in report.positions.items():     # every venue that answered
                acct = self.portfolio.account(venue)
                for pos in acct.perps.values():                     # closed while away -> 0
                    pos.size, pos.entry_price = 0.0, 0.0
                for p in positions:
                    pos = acct.perp(p.symbol.split("/")[0])
                    pos.size = float(p.size)
                    pos.entry_price = float(p.entry_price) if p.entry_price else pos.entry_price
            self._entered = True
        else:
            for venue, positions in report.positions.items():
                for p in positions:
                    self.foreign_positions[(venue, p.symbol)] = float(p.size)

    def start(self) -> None:
        """Start trading (after recovery was clean or acknowledged)."""
        if self.recovery is not None:
            self.recovery.acknowledged = True
        self.phase = SessionPhase.RUNNING
        self.journal.event(self.request_id, "session", "start", mode=self.mode, execution=self.execution,
                           environment=self.environment, resumed=self._entered)
        self._task = asyncio.ensure_future(self._run())
        self._notify()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop after the current tick (an order round trip is never torn down half-way; after
        ``grace_seconds`` the loop is cancelled regardless), then disarm the dead-man switch."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self.lock.acquire(), grace_seconds)
            except asyncio.TimeoutError:
                pass
            else:
                self.lock.release()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._estop_task is not None:
            try:
                await self._estop_task
            except Exception:
                pass
        if self.dead_man is not None:
            await self.dead_man.disarm()
        self.phase = SessionPhase.STOPPED
        self.journal.event(self.request_id, "session", "stop")
        self._notify()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def emergency_stop(self, reason: str = "operator emergency stop") -> EmergencyStopReport:
        report = await self.estop.press(reason)
        self.last_estop = report
        self.journal.event(self.request_id, "session", "emergency_stop",
                           halted_after_ms=report.halted_after_ms, finished_after_ms=report.finished_after_ms,
                           venues={v: (p.status.value, p.canceled, p.error) for v, p in report.venues.items()})
        self._notify()
        return report

    def reset(self, reason: str = "operator reset") -> None:
        self.state.reset(reason)
        self._failed_programs = 0

    # ---------------------------------------------------------------- the loop
    async def _run(self) -> None:
        if self.dead_man is not None:
            await self.dead_man.arm()        # before the first order can be sent
        while True:
            started = time.monotonic()
            try:
                async with self.lock:
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
        if self.dead_man is not None:
            self.dead_man.beat()
        if self.execution == "live":
            info, (venue_positions, read_error) = await asyncio.gather(self.feed.tick(), self._read_positions())
        else:
            info, venue_positions, read_error = await self.feed.tick(), None, ""
        t = info.t
        mv = self.feed.view
        cur = self.params.strategy.currency
        self.last_error = "; ".join([f"{v}: {e}" for v, e in info.errors.items()] + ([read_error] if read_error else []))
        self.data_age = info.data_age_seconds
        self.ledger.start_hour(t)
        before = value_usd(self.portfolio, mv, t)
        if self._prev_value_usd is not None and t > 0:
            move = attribute_market_move(self.portfolio, mv, t - 1, t, self._prev_value_usd, cur)
            for name in ("lending", "borrow", "staking", "perp_mtm", "spot_price"):
                self.ledger.book(name, getattr(move, name))
        else:                                 # first tick (or after a flatten's own tick): no move to attribute
            self._prev_value_usd = before
        if info.funding_settled:
            for f in self.world.settle_funding(t):
                self.ledger.book("funding", f.payment_usd if cur == "USDT" else f.payment_usd / mv.eth[t])
                self.events.add(mv.timestamps[t], t, f.venue, "funding", asset=f.asset, amount=f.size,
                                amount_out=f.payment_usd, price=f.mark,
                                reason=f"rate {f.rate:.8g}" + (" (estimated from the venue's rate)"
                                                               if self.execution == "live" else ""))
        mismatches = self._mismatches(venue_positions) if venue_positions is not None else {}
        self._check_risk(t, info.data_age_seconds, mismatches)
        await self._trade(t)
        self._after_tick(t, info.at)

    async def _trade(self, t: int) -> None:
        if self.state.state is TradingState.HALTED:
            return
        mv = self.feed.view
        ctx = StrategyContext(self.portfolio, mv, t, snapshot(self.portfolio, mv, t, self.params.aave), self.params)
        if not self._entered:
            if self.state.state is TradingState.ACTIVE:      # no entry while reducing
                fills, rejection = await self._run_program(self.strategy.entry(ctx), t)
                # Entered once anything filled (the rebalance check completes a partial entry) or the
                # program ran through; an entry refused before its first fill is tried again.
                self._entered = fills > 0 or rejection is None
            return
        reason = self.strategy.check(ctx)
        if reason is not None:
            self.events.add(mv.timestamps[t], t, "strategy", "rebalance", reason=reason)
            await self._run_program(self.strategy.rebalance(ctx, reason), t)

    async def _run_program(self, program, t: int, count_failures: bool = True) -> tuple[int, str | None]:
        """Run a strategy program: (fills, the rejection that stopped it or None)."""
        first = len(self.events)
        if self.execution == "paper":
            fills = self.manager.run(program, t)
        else:
            fills = await self.manager.run_async(program, t, self._execute_live)
        rejected = [e for e in self.events.events[first:] if e.type == "rejected"]
        if not rejected:
            self._failed_programs = 0
            self._last_failure = ""
            return fills, None
        ev = rejected[-1]
        rejection = f"{ev.venue} {ev.reason}"
        if "refused: trading is" in ev.reason or not count_failures:   # the state said no / a manual action
            return fills, rejection
        self._failed_programs += 1
        self._last_failure = rejection
        self.journal.event(self.request_id, ev.venue, "program_stopped", reason=ev.reason)
        if self._failed_programs >= MAX_FAILED_PROGRAMS and self.state.state is not TradingState.HALTED:
            self._halt_and_cancel(f"{MAX_FAILED_PROGRAMS} strategy programs in a row stopped by a venue "
                                  f"error (last: {rejection})")
        return fills, rejection

    async def _execute_live(self, ins: Instruction, t: int):
        fill = await self.live_exec.execute(ins, t)
        # Journal the book after every fill: a crash between two orders of a program must leave a
        # book the restart can resume (else it would see the venues' positions as foreign).
        self._entered = True
        self._save_book()
        return fill

    def _after_tick(self, t: int, at: float) -> None:
        mv = self.feed.view
        cur = self.params.strategy.currency
        after = value_usd(self.portfolio, mv, t)
        if self._prev_value_usd is not None:
            recon = abs((after - self._prev_value_usd) - self._hour_total_usd(t))
            self.reconciliation_error = max(self.reconciliation_error, recon)
        self._prev_value_usd = after
        self.value = to_numeraire(after, cur, mv, t)
        self.ticks += 1
        self.last_heartbeat = time.time()
        totals = tuple(self.ledger.totals[c] for c in COMPONENTS)
        self.history.append(TickRecord(at, self.value, self.value - self.capital, totals,
                                       self.data_age or 0.0, self.state.state.value))
        self._save_book()

    def _hour_total_usd(self, t: int) -> float:
        total = self.ledger.hour_total()
        return total if self.params.strategy.currency == "USDT" else total * self.feed.view.eth[t]

    # ---------------------------------------------------------------- venues vs book (live)
    async def _read_positions(self) -> tuple[dict[str, list] | None, str]:
        """(the venues' positions on the mode's perp symbols, error). None when any venue could not
        answer: no comparison on partial information; the error is shown."""
        symbols = {v: [perp_symbol(a)] for v, a in self.feed.perp_keys}
        names = list(symbols)
        results = await asyncio.gather(
            *(asyncio.wait_for(self.venues[v].fetch_positions(symbols[v]), self.data_timeout_seconds) for v in names),
            return_exceptions=True)
        out: dict[str, list] = {}
        for venue, res in zip(names, results):
            if isinstance(res, BaseException):
                if isinstance(res, asyncio.CancelledError):
                    raise res
                why = "no answer in time" if isinstance(res, asyncio.TimeoutError) else (str(res) or type(res).__name__)
                return None, f"{venue}: positions not read: {why}"
            out[venue] = res
        return out, ""

    def _mismatches(self, venue_positions: dict[str, list]) -> dict[str, float]:
        out: dict[str, float] = {}
        for venue, asset in self.feed.perp_keys:
            symbol = perp_symbol(asset)
            venue_size = sum(float(p.size) for p in venue_positions.get(venue, []) if p.symbol == symbol)
            venue_size -= self.foreign_positions.get((venue, symbol), 0.0)
            acct = self.portfolio.cex.get(venue)
            book = acct.perps[asset].size if acct and asset in acct.perps else 0.0
            if abs(venue_size - book) > POSITION_TOLERANCE * max(1.0, abs(book)):
                out[f"{venue} {symbol}"] = venue_size - book
        return out

    # ---------------------------------------------------------------- risk
    def _check_risk(self, t: int, data_age: float, mismatches: dict[str, float]) -> None:
        mv = self.feed.view
        cur = self.params.strategy.currency
        value = to_numeraire(value_usd(self.portfolio, mv, t), cur, mv, t)
        self.peak = max(self.peak, value)
        day = int(time.time() // 86400)
        if self.day_start is None or self.day_start[0] != day:
            self.day_start = (day, value)
        risk = snapshot(self.portfolio, mv, t, self.params.aave)
        largest = risk.largest_position_usd
        reading = RiskReading(value=value, peak_value=self.peak, day_start_value=self.day_start[1],
                              largest_position_usdt=largest, health_factor=risk.health_factor,
                              margin_ratios={v: r for v, r in risk.margin_ratio.items() if not math.isinf(r)},
                              data_age_seconds=data_age, position_mismatches=mismatches)
        self.breaches = evaluate(self.limits, reading)
        if not self.breaches:
            return
        reason = "risk limit: " + "; ".join(str(b) for b in self.breaches)
        if self.state.state is TradingState.HALTED:
            return
        if self.limits.breach_action == "reduce" and not mismatches:
            if self.state.state is TradingState.ACTIVE:
                self._log_breach(t, reason)
                self.state.reduce(reason)
        else:                          # halt (a wrong book always halts: reducing on it is guesswork)
            self._log_breach(t, reason)
            self._halt_and_cancel(reason)

    def _log_breach(self, t: int, reason: str) -> None:
        mv = self.feed.view
        self.events.add(mv.timestamps[t], t, "risk", "breach", reason=reason)
        self.journal.event(self.request_id, "risk", "breach", reason=reason)

    def _halt_and_cancel(self, reason: str) -> None:
        """HALTED now (synchronously), cancel-all in the background (the tick does not wait for it)."""
        self.estop.halt_now(reason)
        self._estop_task = asyncio.ensure_future(self.emergency_stop(reason))

    # ---------------------------------------------------------------- flatten support
    async def ensure_prices(self) -> int:
        """The index of the latest prices, fetching one snapshot when the session has none yet."""
        if not self.feed.view.timestamps:
            await self.feed.tick()
            self._prev_value_usd = None
        return len(self.feed.view.timestamps) - 1

    async def run_instruction(self, ins: Instruction, t: int) -> tuple[int, str | None]:
        """One instruction outside the strategy (flatten): same gate, executor, events and ledger."""
        def single():
            yield ins
        return await self._run_program(single(), t, count_failures=False)

    def after_manual_trades(self, t: int) -> None:
        """Re-base valuation after trades made between ticks, so the next tick's attribution and
        reconciliation start from the holdings as they are now."""
        mv = self.feed.view
        self._prev_value_usd = value_usd(self.portfolio, mv, t)
        self.value = to_numeraire(self._prev_value_usd, self.params.strategy.currency, mv, t)
        self._save_book()

    def mark_flat(self) -> None:
        self._flat = True
        self._entered = False
        self._save_book(force=True)

    # ---------------------------------------------------------------- book persistence
    def book(self) -> dict:
        p = self.portfolio
        return {
            "cex": {v: {"usdt": a.usdt, "spot": dict(a.spot),
                        "perps": {k: [pos.size, pos.entry_price] for k, pos in a.perps.items()}}
                    for v, a in p.cex.items()},
            "wallet": {"tokens": dict(p.wallet.tokens), "supply_scaled": dict(p.wallet.supply_scaled),
                       "debt_scaled": dict(p.wallet.debt_scaled), "emode": p.wallet.emode},
            "capital": self.capital, "entered": self._entered,
            "flat": self._flat or not any(pos.size for a in p.cex.values() for pos in a.perps.values())
            and not any(q for a in p.cex.values() for q in a.spot.values()) and not p.wallet.supply_scaled
            and not p.wallet.debt_scaled,
        }

    def _save_book(self, force: bool = False) -> None:
        """Live only: paper sessions hold nothing at the venues, a restart simply starts afresh."""
        if self.execution != "live":
            return
        book = self.book()
        if not book["entered"] and not force:
            return
        text = json.dumps(book, sort_keys=True)
        if text != self._saved_book:
            self.journal.save_book(self.request_id, self.mode, self.execution, book)
            self._saved_book = text

    def _load_book(self, book: dict) -> None:
        p = self.portfolio
        p.cex.clear()
        for venue, a in (book.get("cex") or {}).items():
            acct = CexAccount(usdt=float(a.get("usdt", 0.0)), spot={k: float(v) for k, v in a.get("spot", {}).items()})
            for asset, (size, entry) in (a.get("perps") or {}).items():
                pos = acct.perp(asset)
                pos.size, pos.entry_price = float(size), float(entry)
            p.cex[venue] = acct
        w = book.get("wallet") or {}
        p.wallet.tokens = {k: float(v) for k, v in (w.get("tokens") or {}).items()}
        p.wallet.supply_scaled = {k: float(v) for k, v in (w.get("supply_scaled") or {}).items()}
        p.wallet.debt_scaled = {k: float(v) for k, v in (w.get("debt_scaled") or {}).items()}
        p.wallet.emode = bool(w.get("emode", False))
        self.capital = float(book.get("capital", self.capital))

    # ---------------------------------------------------------------- reporting
    def status(self) -> SessionStatus:
        now = time.time()
        warnings = list(self.feed.warnings)
        if self.capacity_warning:
            warnings.append(self.capacity_warning)
        if self.execution == "live" and self.dead_man is None:
            warnings.append("dead-man switch off (dead_man_seconds not set)")
        if self.phase is SessionPhase.AWAITING_ACK:
            warnings.append("recovery found open positions/orders or differences: acknowledge to start trading")
        return SessionStatus(
            request_id=self.request_id, mode=self.mode, execution=self.execution,
            environment=self.environment, phase=self.phase.value, state=self.state.state.value,
            running=self.running, started_at=self.started_at, last_heartbeat=self.last_heartbeat,
            heartbeat_age_seconds=None if self.last_heartbeat is None else max(0.0, now - self.last_heartbeat),
            data_age_seconds=self.data_age, ticks=self.ticks, value=self.value,
            pnl=None if self.value is None else self.value - self.capital, capital=self.capital,
            currency=self.params.strategy.currency,
            trades=self.gate.sent + (self.paper.sent if self.paper else 0),
            drawdown=0.0 if self.value is None or self.peak <= 0 else max(0.0, 1.0 - self.value / self.peak),
            breaches=[str(b) for b in self.breaches], warnings=warnings,
            last_error=self.last_error or self._last_failure,
            dead_man=self.dead_man.describe() if self.dead_man is not None else {},
            pnl_components=dict(self.ledger.totals), reconciliation_error=self.reconciliation_error,
        )

    def risk(self) -> RiskSnapshot | None:
        t = len(self.feed.view.timestamps) - 1
        return None if t < 0 else snapshot(self.portfolio, self.feed.view, t, self.params.aave)

    def positions(self) -> list[dict[str, Any]]:
        """The book's holdings per venue, marked at the latest prices (for the dashboard table)."""
        mv = self.feed.view
        t = len(mv.timestamps) - 1
        rows: list[dict[str, Any]] = []
        for venue, acct in self.portfolio.cex.items():
            rows.append({"venue": venue, "kind": "cash", "asset": "USDT", "size": acct.usdt})
            for asset, qty in acct.spot.items():
                if qty:
                    price = mv.price_usd(asset, t) if t >= 0 else None
                    rows.append({"venue": venue, "kind": "spot", "asset": asset, "size": qty, "price": price})
            for asset, pos in acct.perps.items():
                if pos.size:
                    mark = mv.perp[(venue, asset)][t] if t >= 0 and (venue, asset) in mv.perp else None
                    rows.append({"venue": venue, "kind": "perp", "asset": asset, "size": pos.size,
                                 "entry": pos.entry_price, "price": mark,
                                 "unrealized": None if mark is None else pos.unrealized(mark)})
        for token, amount in self.portfolio.wallet.tokens.items():
            if amount:
                rows.append({"venue": "wallet", "kind": "token", "asset": token, "size": amount})
        return rows

    def _on_state_change(self, change: StateChange) -> None:
        mv = self.feed.view
        t = max(len(mv.timestamps) - 1, 0)
        ts = mv.timestamps[t] if mv.timestamps else ""
        self.events.add(ts, t, "session", "state", reason=f"{change.previous.value} -> {change.current.value}: "
                        f"{change.reason}")
        self.journal.event(self.request_id, "session", "state", previous=change.previous.value,
                           current=change.current.value, reason=change.reason)
        self._notify()

    def _journal_order(self, what: str, venue: str, request: OrderRequest, order: VenueOrder | None,
                       error: str | None) -> None:
        if what == "submitted":
            self.journal.order_submitted(self.request_id, venue, request)
            rec = OrderRecord(request.client_order_id, venue, request.symbol, request.side.value,
                              str(request.amount), request.reduce_only, "submitted", time.time())
            self.orders.append(rec)
            self._orders_by_id[request.client_order_id] = rec
        elif what == "acknowledged" and order is not None:
            self._record_order_state(venue, request, order)
        elif what == "failed":
            self.journal.order_update(request.client_order_id, "failed", error=error)
            rec = self._orders_by_id.get(request.client_order_id)
            if rec is not None:
                rec.status, rec.error = "failed", error or ""
        elif what == "refused":
            self.journal.event(self.request_id, venue, "order_refused", symbol=request.symbol, state=error)

    def _settled(self, venue: str, request: OrderRequest, order: VenueOrder) -> None:
        self._record_order_state(venue, request, order)

    def _record_order_state(self, venue: str, request: OrderRequest, order: VenueOrder) -> None:
        self.journal.order_update(request.client_order_id, order.status.value, order.order_id,
                                  order.filled, order.average)
        if order.status in TERMINAL and order.filled:
            self.journal.fill(request.client_order_id, venue, request.symbol, request.side.value,
                              order.filled, order.average or order.price or Decimal(0))
        rec = self._orders_by_id.get(request.client_order_id)
        if rec is not None:
            rec.status, rec.order_id = order.status.value, order.order_id
            rec.filled = None if order.filled is None else str(order.filled)
            rec.average = None if order.average is None else str(order.average)
        if order.status is OrderStatus.OPEN:
            log.info("%s order %s resting", venue, request.client_order_id)

    def _pre_trade_refused(self, exc: PreTradeRefused) -> None:
        """An order failed its pre-trade check and was not sent. Trading is reduced at once, so the
        next tick does not build the same order again; the operator fixes the cause and resets."""
        self.last_error = str(exc)
        self.journal.event(self.request_id, exc.instruction.venue, "pre_trade_refused", reason=str(exc))
        self.state.reduce(f"{exc}; only risk-reducing orders until the cause is fixed and the session is reset")

    def _allocated(self, ins: Instruction) -> None:
        self.journal.event(self.request_id, ins.venue, "allocation", to_venue=ins.to_venue, amount=ins.amount,
                           note="book-only: no withdrawal is sent; the venue account must hold the margin")

    def _notify(self) -> None:
        if self.on_update is not None:
            try:
                self.on_update(self)
            except Exception:                 # a view's bug must never stop trading or an e-stop
                log.exception("on_update hook failed")
