"""One running strategy on the asyncio (qasync) loop: scheduling, venue reconciliation, journaling.

Every tick: market data (live: and the venues' positions on the mode's symbols), then one
`TradingCycle` step — the same step the backtest runs — with this session's risk limits as its guard
(a breach acts *before* the strategy trades on the data), then the journal and a new
`SessionSnapshot` for the views.

The same strategy classes as the backtest, fed by LiveMarketFeed, act on a *strategy book* (a
Portfolio seeded with the session's capital, exactly as in the backtest). Paper sessions fill it
through the simulated venue layer at live prices; live sessions send real orders and apply the
venues' fills to it. The venues stay the truth: any difference between their positions and the book
is a risk breach (engine/services/live/reconcile.py). The book is journaled when it changes, so a
restarted session resumes it (book_store.py); orders are journaled and kept in a blotter
(blotter.py); what the dashboard shows is built in snapshot.py.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from types import MappingProxyType

from engine.components.event_log import EventLog
from engine.components.risk import snapshot
from engine.domain.instructions import Fill, Instruction
from engine.domain.modes import ExecutionMode
from engine.domain.numeraire import Numeraire
from engine.domain.onchain_live import (
    ChainHoldings,
    OnchainInstructionPort,
    TransferPort,
    TransferUnavailable,
)
from engine.domain.params import RunParams
from engine.domain.pnl import COMPONENTS
from engine.domain.portfolio import Portfolio
from engine.domain.venue_ports import (
    CexVenuePort,
    OrderRequest,
    OrderStatus,
    VenueError,
    VenueFee,
    VenueOrder,
    new_client_order_id,
)
from engine.execution.cycle import Allowance, TradingCycle, WorldFactory
from engine.execution.ledger import RunningLedger
from engine.execution.manager import ExecutionManager
from engine.execution.outcome import Failures, ProgramOutcome, StopKind
from engine.services.live.alerts import Alert, AlertBus, AlertKind, journal_alert
from engine.services.live.blotter import Blotter
from engine.services.live.book_store import BookWriter, apply_fill, book_of, fill_fee, load_book
from engine.services.live.cash_recon import CashBook, VenuePaidFunding, perp_symbols_of
from engine.services.live.chain_estop import ChainEStop
from engine.services.live.chain_recovery import (
    ChainRecovery,
    adopt_chain,
    adopt_pending,
    check_chain,
    holdings_dict,
)
from engine.services.live.dead_man import DeadManHeartbeat
from engine.services.live.emergency_stop import (
    CancelStatus,
    EmergencyStop,
    EmergencyStopReport,
    ProgressListener,
    SessionProgressListener,
    VenueCancelProgress,
)
from engine.services.live.execution import (
    MANUAL_PREFIX,
    MANUAL_REASON,
    PAPER_PREFIX,
    TERMINAL,
    FillNotConfirmed,
    LiveExecutor,
    LiveUnsupported,
    PaperExecutor,
)
from engine.services.live.journal import Journal
from engine.services.live.market_feed import LiveDataUnavailable, LiveMarketFeed, perp_symbol, spot_symbol
from engine.services.live.onchain_routing import OnchainRefused, OnchainRouter, StepRecord
from engine.services.live.order_gate import OrderGate, OrderNotJournaled
from engine.services.live.outcome_resolver import (
    OrderNotPlaced,
    OutcomeUnresolved,
    PendingOutcome,
    ResolvePolicy,
    UnknownOutcomeResolver,
)
from engine.services.live.pending_tx_hold import PendingTxHold
from engine.services.live.pretrade import PreTradeRefused
from engine.services.live.reconcile import (
    TransfersInFlight,
    VenueReading,
    mismatches,
    read_venues,
    reread_cash,
    spot_keys_of,
    spot_total,
)
from engine.services.live.resting_orders import RestingOrder, RestingOrders
from engine.services.live.recovery import RecoveryReport, book_spot_baseline
from engine.services.live.risk_limits import Breach, RiskLimits, RiskWatch
from engine.services.live.snapshot import (
    EVENTS_IN_SNAPSHOT,
    EStopTrack,
    RiskInputs,
    SessionSnapshot,
    TickRecord,
    badge,
    estop_line,
    flatten_plan,
    position_lines,
    risk_lines,
)
from engine.services.live.state import StateChange, TradingHalted, TradingState, TradingStateMachine
from engine.strategies.base import Program, Strategy
from engine.strategies.capacity import capacity_warning

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20_000          # ticks kept in memory for the dashboard charts
MAX_FAILED_PROGRAMS = 3         # consecutive strategy programs stopped by the venues -> halt

_ALLOWANCE = {TradingState.ACTIVE: Allowance.EVERYTHING, TradingState.REDUCING: Allowance.NO_ENTRY,
              TradingState.HALTED: Allowance.NOTHING}


class SessionPhase(str, Enum):
    STARTING = "starting"
    AWAITING_ACK = "awaiting_acknowledgement"   # recovery found something: trading waits for the operator
    RUNNING = "running"
    STOPPED = "stopped"


class LiveSession:
    def __init__(self, *, mode: str, execution: ExecutionMode, environment: str, params: RunParams,
                 strategy: Strategy, feed: LiveMarketFeed, venues: Mapping[str, CexVenuePort], limits: RiskLimits,
                 journal: Journal, world_factory: WorldFactory, rejected_exc: type[Exception],
                 tick_seconds: float, cancel_timeout_seconds: float | Mapping[str, float],
                 dead_man_seconds: float | None = None, data_timeout_seconds: float = 5.0,
                 estop_dead_man_seconds: float = 10.0, resolve_policy: ResolvePolicy | None = None,
                 notes: Sequence[str] = (),
                 on_update: Callable[[LiveSession], None] | None = None,
                 on_cancel_progress: SessionProgressListener | None = None,
                 alerts: AlertBus | None = None,
                 onchain: OnchainInstructionPort | None = None, transfers: TransferPort | None = None) -> None:
        """``cancel_timeout_seconds``: each venue's emergency-stop budget (one for all, or per venue);
        ``estop_dead_man_seconds``: the short countdown the dead-man switch is left on after a stop;
        ``resolve_policy``: how long an order of unknown outcome is looked up before the session
        halts; ``notes``: start-up warnings to show (a lease taken over); ``alerts``: the bus this
        session raises its alerts on; ``onchain``: the wallet's write side (live modes with on-chain
        legs); ``transfers``: moves assets between the wallet and the CEXs."""
        self.request_id = uuid.uuid4().hex[:12]
        self.alerts = alerts
        self._journal_alert = journal_alert(journal, self.request_id)
        self.mode, self.execution, self.environment = mode, execution, environment
        self.params = params
        self.feed = feed
        self.venues = venues
        self.limits = limits
        self.journal = journal
        self.tick_seconds = tick_seconds
        self.data_timeout_seconds = data_timeout_seconds
        self.on_update = on_update
        self.phase = SessionPhase.STARTING
        self.state = TradingStateMachine(self._on_state_change)
        live = execution.sends_orders
        order_venues = venues if live else {}
        self.notes = list(notes)
        self.estop_dead_man_seconds = estop_dead_man_seconds
        self.resolver = UnknownOutcomeResolver(order_venues, resolve_policy or ResolvePolicy(),
                                               listener=self._outcome_event)
        # New risk waits while a transaction of the wallet is pending (read between steps only).
        self.tx_hold = PendingTxHold((lambda: self.onchain.pending() if self.onchain is not None else [])
                                     if live and onchain is not None else None)
        self.gate = OrderGate(self.state, order_venues, self._journal_order, resolver=self.resolver,
                              write_ahead=self._write_ahead if live else None, on_unresolved=self._unresolved,
                              hold=self.tx_hold)
        progress: list[ProgressListener] = [self._estop_progress]
        if on_cancel_progress is not None:
            progress.append(lambda p: on_cancel_progress(self.request_id, p))
        self.estop = EmergencyStop(self.state, order_venues, self.gate, cancel_timeout_seconds, progress)
        # Limit orders resting at a venue: followed until final, later fills booked once each.
        self.resting = RestingOrders(order_venues, self._book_resting_fill)
        self._resumed_resting: set[str] = set()     # loaded from a book whose perp sizes came from the venue
        # The wallet's write side (live sessions of modes with on-chain legs): halted inside every press.
        self.onchain = onchain if live else None
        self.chain_estop = ChainEStop(self.onchain, progress) if self.onchain is not None else None
        self.dead_man = DeadManHeartbeat(venues, dead_man_seconds, tick_seconds, min(self.estop.timeout, 5.0)) \
            if live and dead_man_seconds else None
        self.portfolio = Portfolio()
        self.events = EventLog()
        self.ledger = RunningLedger()
        self.blotter = Blotter()
        self.risk_watch = RiskWatch(limits)
        self.capital = params.strategy.capital
        self.capacity_warning = capacity_warning(params)
        self.started_at = time.time()
        self.last_heartbeat: float | None = None
        self.data_age: float | None = None
        self.history: deque[TickRecord] = deque(maxlen=HISTORY_LIMIT)
        self.ticks = 0
        self.last_error = ""
        self.last_estop: EmergencyStopReport | None = None
        self.estop_track: EStopTrack | None = None
        self.recovery: RecoveryReport | None = None
        self.chain_recovery: ChainRecovery | None = None
        self.chain_holdings: ChainHoldings | None = None           # the chain as read at the last tick
        self.chain_adopt_pending = False                            # recovery's chain changes wait for prices
        self.reconciliation_error = 0.0
        self.foreign_positions: dict[tuple[str, str], float] = {}   # venue positions the book does not own
        self.spot_keys = spot_keys_of(params, venues) if live else []
        self.spot_baseline: dict[tuple[str, str], Decimal] = {}     # what spot accounts held beyond the book
        # Live: each CEX's cash against the book's, and the funding the venues paid (cash_recon.py).
        cash_venues = [v for v in venues if v in params.cex] if live else []
        self.cash = CashBook(cash_venues, {v: params.cex[v].cash_tolerance_usdt for v in cash_venues},
                             int(self.started_at * 1000))
        self._transfers = transfers
        self.last_reading: VenueReading | None = None
        self.lock = asyncio.Lock()                                  # one of: a tick, a flatten
        self._task: asyncio.Task | None = None
        self._estop_task: asyncio.Future[EmergencyStopReport] | None = None
        self._flat = False
        self._failed_programs = 0
        self._last_failure = ""
        self._sent_at_estop = 0
        self._books = BookWriter(lambda book: journal.save_book(self.request_id, mode, execution.value, book))
        strategy.seed(self.portfolio, feed.view)
        # The simulated venue layer: paper fills, and the funding settlements both modes book.
        self.world = world_factory(self.portfolio, feed.view, params)
        numeraire = Numeraire(params.strategy.currency, feed.view)
        self.paper: PaperExecutor | None = None
        self.live_exec: LiveExecutor | None = None
        self.router: OnchainRouter | None = None
        if live:
            if self.onchain is not None:
                self.router = OnchainRouter(self.onchain, self.portfolio, feed.view, params, self.state, self.ledger,
                                            numeraire, hf_floor=limits.hf_floor, transfers=transfers,
                                            on_step=self._chain_step, hold=self.tx_hold)
            self.live_exec = LiveExecutor(self.gate, params, feed.view, self.portfolio, self.state,
                                          on_settled=self._settled, on_allocation=self._allocated,
                                          on_refused=self._pre_trade_refused, router=self.router)
            failures = Failures(halted=(TradingHalted,),
                                rejected=(LiveUnsupported, PreTradeRefused, OrderNotJournaled, TransferUnavailable,
                                          OnchainRefused),
                                venue_error=(VenueError, FillNotConfirmed, OrderNotPlaced, OutcomeUnresolved))
            self.manager = ExecutionManager(None, feed.view, self.ledger, self.events, numeraire, failures)
        else:
            self.paper = PaperExecutor(self.world, self.state, self.portfolio, params=params, market=feed.view,
                                       on_refused=self._pre_trade_refused, on_filled=self._paper_filled)
            failures = Failures(halted=(TradingHalted,), rejected=(rejected_exc, PreTradeRefused))
            self.manager = ExecutionManager(self.paper, feed.view, self.ledger, self.events, numeraire, failures)
        # Live books the funding the venues paid (read each tick); paper simulates it from the rate.
        cycle_world = VenuePaidFunding(self.world, self.cash, self.portfolio, feed.view, self.foreign_positions) \
            if live else self.world
        self.cycle = TradingCycle(strategy, params, feed.view, self.portfolio, cycle_world, self.manager, self.ledger,
                                  self.events, simulated_liquidations=False, retry_refused_entry=True,
                                  funding_note=" (paid by the venue)" if live else "")

    @property
    def strategy(self) -> Strategy:
        return self.cycle.strategy

    @property
    def value(self) -> float | None:
        """Mark-to-market value in the share currency after the last step (None before the first)."""
        return None if self.cycle.prev_t is None else self.cycle.value

    # ---------------------------------------------------------------- lifecycle
    def await_acknowledgement(self, report: RecoveryReport) -> None:
        self.recovery = report
        self.phase = SessionPhase.AWAITING_ACK
        self.publish()

    def adopt(self, report: RecoveryReport) -> None:
        """Take over what recovery found: resume the journaled book (perp sizes from the venues, plus
        the fills it never saw), or start fresh next to positions the journal does not know (they are
        left alone and excluded from the per-tick position check). The report is journaled either
        way, acknowledged or not."""
        self.recovery = report
        self.journal.event(self.request_id, "session", "recovery", mode=self.mode, lines=report.lines(),
                           needs_acknowledgement=report.needs_acknowledgement)
        adopted_perps: dict[tuple[str, str], float] = {}
        if report.book is not None:
            self.capital = load_book(self.portfolio, report.book, self.capital)
            # Perp fills the journal never saw trade the journaled positions first: a reducing fill
            # realises its P&L into the book's cash, as it did into the venue's; then the venue's
            # sizes are taken as they are.
            for fill in report.adopted:
                if ":" in fill.symbol:
                    self._adopt_fill(fill, size_from_venue=False)
            self.resting.load(report.book.get("resting"))
            self._resumed_resting = {cid for cid, o in self.resting.orders.items() if o.perp}
            for venue, positions in report.positions.items():     # every venue that answered
                acct = self.portfolio.account(venue)
                for pos in acct.perps.values():                     # closed while away -> 0
                    pos.size, pos.entry_price = 0.0, 0.0
                for p in positions:
                    pos = acct.perp(p.symbol.split("/")[0])
                    pos.size = float(p.size)
                    pos.entry_price = float(p.entry_price) if p.entry_price else pos.entry_price
            self.cycle.entered = True
            booked = adopt_chain(self)
            if booked:
                self.journal.event(self.request_id, "chain", "recovery_booked", lines=booked)
        else:
            adopt_chain(self)
        for fill in report.adopted:
            perp = ":" in fill.symbol
            signed = float(fill.amount) if fill.side == "buy" else -float(fill.amount)
            if not (perp and report.book is not None):          # (a resumed book's perps: above)
                self._adopt_fill(fill, size_from_venue=False)
            if perp:
                adopted_perps[(fill.venue, fill.symbol)] = adopted_perps.get((fill.venue, fill.symbol), 0.0) + signed
            self.cycle.entered = True
        if report.book is None:
            for venue, positions in report.positions.items():
                for p in positions:
                    foreign = float(p.size) - adopted_perps.get((venue, p.symbol), 0.0)
                    if abs(foreign) > 1e-12:
                        self.foreign_positions[(venue, p.symbol)] = foreign
        self._set_spot_baseline(report)
        changed = sorted({d.venue for d in report.differences if d.kind in ("position_mismatch", "spot_mismatch")})
        self.cash.restore(report.book, remeasure=changed)
        if changed and report.book is not None:
            self.journal.event(self.request_id, "session", "cash_baseline_remeasured", venues=changed,
                               reason="a position changed while away (acknowledged): the venue's cash is taken as is")
        if report.adopted:
            self._save_book(force=True)

    def _adopt_fill(self, fill, *, size_from_venue: bool) -> None:
        """Book a fill found at restart, with the venue's fee where it reported one, else the schedule's."""
        perp = ":" in fill.symbol
        signed = float(fill.amount) if fill.side == "buy" else -float(fill.amount)
        cex = self.params.cex.get(fill.venue)
        fee_bps = (cex.perp_taker_bps if perp else cex.spot_taker_bps) if cex is not None else 0.0
        fee = fill_fee(fill.fees, fill.symbol, abs(signed) * float(fill.price), fee_bps)
        apply_fill(self.portfolio, fill.venue, fill.symbol.split("/")[0], perp, signed, float(fill.price), fee,
                   size_from_venue=size_from_venue)

    def _set_spot_baseline(self, report: RecoveryReport) -> None:
        """What each spot account holds beyond the book: from the resumed book when it says, else
        measured now (the venue's total minus the book's holding)."""
        saved = book_spot_baseline(report.book)
        for venue, asset in self.spot_keys:
            if (venue, asset) in saved:
                self.spot_baseline[(venue, asset)] = saved[(venue, asset)]
            elif venue in report.balances:
                account = self.venues[venue].balance_account(spot_symbol(asset))
                held = Decimal(repr(self.portfolio.cex[venue].spot.get(asset, 0.0))) if venue in self.portfolio.cex \
                    else Decimal(0)
                self.spot_baseline[(venue, asset)] = spot_total(report.balances[venue], account, asset) - held

    def start(self) -> None:
        """Start trading (after recovery was clean or acknowledged)."""
        if self.recovery is not None:
            self.recovery.acknowledged = True
        self.phase = SessionPhase.RUNNING
        self.journal.event(self.request_id, "session", "start", mode=self.mode, execution=self.execution,
                           environment=self.environment, resumed=self.cycle.entered)
        self._task = asyncio.ensure_future(self._run())
        self.publish()

    async def stop(self, grace_seconds: float = 10.0, *, cancel_open_orders: bool = False) -> None:
        """Stop after the current tick (an order round trip is never torn down half-way; after
        ``grace_seconds`` the loop is cancelled regardless), then disarm the dead-man switch.

        ``cancel_open_orders``: once the loop has stopped, cancel every open order on the session's
        venues (through the emergency-stop path, so each venue has its own deadline; the state ends
        HALTED); positions stay as they are."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self.lock.acquire(), grace_seconds)
            except TimeoutError:
                pass
            else:
                self.lock.release()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if cancel_open_orders:       # the operator's own stop: no alert
            self.emergency_stop("session stopped: cancelling its open orders (positions stay)", alert=False)
        if self._estop_task is not None:
            await asyncio.gather(self._estop_task, return_exceptions=True)
        if self.dead_man is not None:
            # Never switched off where orders may remain: it is what cancels them once we are gone.
            await self.dead_man.release(self.orders_may_remain(), self.estop_dead_man_seconds)
        self.phase = SessionPhase.STOPPED
        self.journal.event(self.request_id, "session", "stop")
        self.publish()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def emergency_stop(self, reason: str = "operator emergency stop",
                       on_progress: Sequence[ProgressListener] = (), *,
                       alert: bool = True) -> asyncio.Future[EmergencyStopReport]:
        """HALTED before this returns; every venue's open orders are cancelled in the background. The
        future resolves to the report (also kept as ``last_estop`` and journaled). ``alert``: raise
        the e-stop alert (after the halt; a plain stop that cancels its orders does not).

        Nothing here waits for the journal or a view: the press and the cancels come first, and a
        failure of anything around them is logged, never raised into the stop."""
        self.estop_track = EStopTrack(reason, time.time(), 0.0, {})
        if self.chain_estop is not None:
            self.chain_estop.press(reason)        # no new transaction is signed from here on
        future = self.estop.press(reason, on_progress)
        self._estop_task = future
        try:
            self.estop_track.halted_ms = self.estop.last_halted_ms
            if self.dead_man is not None:
                self.dead_man.hold(self.estop_dead_man_seconds)   # the venue's own backstop, short
            future.add_done_callback(self._estop_finished)
        except Exception:
            log.exception("emergency stop: bookkeeping after the press failed (the cancels run regardless)")
        self.publish()
        if alert:
            self.raise_alert(AlertKind.ESTOP, f"HALTED in {self.estop.last_halted_ms:.1f} ms: {reason}")
        return future

    def orders_may_remain(self) -> dict[str, str]:
        """venue -> why orders of this session may still be open there ("" when none can be)."""
        out: dict[str, str] = {}
        report = self.last_estop
        sent_since = self.gate.sent != self._sent_at_estop
        for venue in self.venues:
            reasons: list[str] = []
            progress = report.venues.get(venue) if report is not None else None
            if progress is not None and progress.status is not CancelStatus.DONE:
                reasons.append(f"the emergency stop could not confirm its cancels ({progress.describe()})")
            elif progress is None or sent_since:
                own = [r for r in self.blotter.rows() if r.venue == venue and r.status in ("submitted", "open", "unknown")]
                if own:
                    reasons.append(f"{len(own)} order(s) of this session may be open")
            if self.gate.uncertain_orders(venue):
                reasons.append("an order's outcome is still being looked up")
            out[venue] = "; ".join(reasons)
        return out

    @property
    def halted_at(self) -> float:
        return self.estop.last_halted_at

    def _estop_progress(self, progress: VenueCancelProgress) -> None:
        track = self.estop_track
        if track is not None:
            track.venues[progress.venue] = progress
            self.publish()
        if progress.status.value == "timeout":
            self.raise_alert(AlertKind.VENUE_TIMEOUT, f"cancel-all got no answer: {progress.describe()}",
                             progress.venue)

    def _estop_finished(self, future: asyncio.Future[EmergencyStopReport]) -> None:
        if future.cancelled() or future.exception() is not None:
            return                             # the handle that awaits it reports why
        report = future.result()
        self.last_estop = report
        self._sent_at_estop = self.gate.sent
        if self.estop_track is not None:
            self.estop_track.report = report
            self.estop_track.halted_ms = report.halted_after_ms
        self.journal.event(self.request_id, "session", "emergency_stop",
                           halted_after_ms=report.halted_after_ms, finished_after_ms=report.finished_after_ms,
                           venues={v: (p.status.value, p.canceled, p.error) for v, p in report.venues.items()})
        self.publish()

    def reset(self, reason: str = "operator reset") -> None:
        self.state.reset(reason)
        if self.onchain is not None:
            self.onchain.resume()
        self._failed_programs = 0
        if self.dead_man is not None:
            self.dead_man.resume()

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
            except Exception as exc:          # a bug: shown and logged, and nothing trades on after it
                log.exception("live tick failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.state.state is not TradingState.HALTED:
                    self._halt_and_cancel(f"internal error in a tick: {self.last_error}")
            self.publish()
            await asyncio.sleep(max(0.0, self.tick_seconds - (time.monotonic() - started)))

    async def tick(self) -> None:
        if self.dead_man is not None:
            self.dead_man.beat()
        live = self.execution.sends_orders
        reading: VenueReading | None = None
        chain_wrong: dict[str, float] = {}
        if live and self.router is not None:
            await self._update_tx_hold()
        if live and self.resting:
            await self._poll_resting(len(self.feed.view.timestamps) - 1)
        if live:
            read_at_ms = int(time.time() * 1000)
            info, reading = await asyncio.gather(
                self.feed.tick(), read_venues(self.venues, self.feed.perp_keys, self.spot_keys,
                                              self.data_timeout_seconds, cash_venues=self.cash.venues,
                                              ))
            self.last_reading = reading
            if self.onchain is not None and self.router is not None:
                adopt_pending(self, info.t)
                self.chain_holdings = await asyncio.wait_for(self.onchain.holdings(), self.data_timeout_seconds)
                # While a transaction is pending the chain may move under the book at any moment (it
                # lands): that is booked when the hold lifts; nothing that adds risk goes out meanwhile.
                if not self.tx_hold.held:
                    chain_wrong = check_chain(self.router.last_holdings, self.chain_holdings)
        else:
            info = await self.feed.tick()
        unknown = reading is not None and not reading.complete
        read_error = f"venue state UNKNOWN, no trading this tick: {reading.error}" if reading is not None and unknown else ""
        self.last_error = "; ".join([f"{v}: {e}" for v, e in info.errors.items()] + ([read_error] if read_error else []))
        for venue in info.timeouts:
            self.raise_alert(AlertKind.VENUE_TIMEOUT, f"market data: no answer within {self.feed.timeout:g} s", venue)
        self.data_age = info.data_age_seconds
        wrong = mismatches(self.portfolio, reading.positions, self.feed.perp_keys, self.foreign_positions,
                           spot=reading.spot, spot_baseline=self.spot_baseline,
                           spot_fee_rate={v: c.spot_taker_bps * 1e-4 for v, c in self.params.cex.items()}) \
            if reading is not None and not unknown else {}
        if wrong and self.resting and any(k.startswith(f"{v} {s}") for k in wrong for v, s in self.resting.keys()):
            # A resting order may have filled between its look-up and this reading: look again, book
            # what it did, and compare once more before anything calls it a mismatch.
            if await self._poll_resting(info.t) and reading is not None:
                wrong = mismatches(self.portfolio, reading.positions, self.feed.perp_keys, self.foreign_positions,
                                   spot=reading.spot, spot_baseline=self.spot_baseline,
                                   spot_fee_rate={v: c.spot_taker_bps * 1e-4 for v, c in self.params.cex.items()})
        wrong.update(chain_wrong)
        if reading is not None and not unknown:
            cash_wrong, cash_error = await self._check_cash(reading, read_at_ms)
            wrong.update(cash_wrong)
            skipped = "; ".join(f"{v} cash not compared: {why}" for v, why in reading.cash_skipped.items())
            if skipped:
                self.last_error = "; ".join(x for x in (self.last_error, skipped) if x)
            if cash_error:
                unknown = True
                self.last_error = "; ".join(x for x in (self.last_error, f"venue state UNKNOWN, no trading this "
                                                                         f"tick: {cash_error}") if x)

        def guard(t: int) -> Allowance:
            self._check_risk(t, info.data_age_seconds, wrong)
            # Positions that could not be read are unknown, not "none": nothing trades on them. While a
            # wallet transaction is pending the strategy's program waits altogether: what it would send
            # next queues behind that nonce, and what the pending one does is not in the book yet.
            return Allowance.NOTHING if unknown or self.tx_hold.held else _ALLOWANCE[self.state.state]

        if self.execution.sends_orders:
            outcome = await self.cycle.step_async(info.t, self._execute_live, funding_due=bool(self.cash.pending),
                                                  guard=guard)
        else:
            outcome = self.cycle.step(info.t, funding_due=info.funding_settled, guard=guard)
        if outcome is not None:
            self._program_finished(outcome)
        self._after_tick(info.at)

    async def _check_cash(self, reading: VenueReading, read_at_ms: int) -> tuple[dict[str, float], str]:
        """Queue the funding the venues paid, take missing baselines, compare each venue's cash with
        the book's. A venue with a transfer in flight is skipped (said in the reading); a difference is
        looked at again after reading the venue's funding history and then its cash once more (a
        payment the book has not read yet). Returns (differences, error of that second read)."""
        self.cash.take(reading.funding)
        if isinstance(self._transfers, TransfersInFlight):
            for venue in sorted(reading.cash):
                moving = self._transfers.in_flight(venue)
                if moving:
                    reading.cash_skipped[venue] = f"a transfer to or from it is in flight ({len(moving)})"
        cash = {v: c for v, c in reading.cash.items() if v not in reading.cash_skipped}
        if self.cash.set_missing_baselines(self.portfolio, cash, read_at_ms=read_at_ms):
            self._save_book(force=self.cycle.entered)
        wrong = self.cash.mismatches(self.portfolio, cash)
        if not wrong:
            return {}, ""
        symbols = perp_symbols_of([k for k in self.feed.perp_keys if k[0] in {w.split(" ")[0] for w in wrong}])
        if not symbols:
            return wrong, ""
        payments, again, error = await reread_cash(self.venues, symbols, {v: self.cash.cursor[v] for v in symbols},
                                                   self.data_timeout_seconds)
        if error:
            return {}, error
        self.cash.take(payments)
        reading.cash.update(again)
        cash.update(again)
        return self.cash.mismatches(self.portfolio, cash), ""

    async def _update_tx_hold(self) -> None:
        """Between two ticks (no step under way): whatever transaction of the wallet is pending now is
        left over, and holds new risk. One that was mined or replaced since the last tick lifts the
        hold; what it did on chain is booked first (as the cancel-pending action books its cancel),
        so the book keeps matching the chain."""
        assert self.router is not None
        t = len(self.feed.view.timestamps) - 1
        if t < 0:
            return                               # nothing to value a change with yet: next tick
        held = self.tx_hold.held
        self.refresh_tx_hold()
        if held and not self.tx_hold.held and self.router.last_holdings is not None:
            await self.router.book_chain_since_last(t)
            self.chain_adopt_pending = False
            self.after_manual_trades(t)

    async def _poll_resting(self, t: int) -> int:
        """Book what the resting orders filled since the last look (between steps, like a manual trade:
        the next attribution starts from the book as it is now). Returns how many fills were booked."""
        booked = await self.resting.poll()
        self._resumed_resting &= set(self.resting.orders)
        if booked:
            if t >= 0:
                self.after_manual_trades(t)
            else:
                self._save_book(force=True)
        return len(booked)

    def _book_resting_fill(self, order: RestingOrder, signed: float, price: float,
                           fees: tuple[VenueFee, ...] = (), share: float = 1.0) -> None:
        """One new fill of a resting order into the book, with ``share`` of the order's fees as the
        venue reported them (else the venue's taker fee as an upper bound). For an order resumed after
        a restart, the perp size was taken from the venue already: only its fee and cash move, so it
        is not counted twice."""
        cex = self.params.cex.get(order.venue)
        bps = (cex.perp_taker_bps if order.perp else cex.spot_taker_bps) if cex is not None else 0.0
        fee = fill_fee(fees, order.symbol, abs(signed) * price, bps, share)
        from_venue = order.perp and order.client_order_id in self._resumed_resting
        apply_fill(self.portfolio, order.venue, order.asset, order.perp, signed, price, fee,
                   size_from_venue=from_venue)
        self._resumed_resting.discard(order.client_order_id)
        self.cycle.entered = True
        self.journal.event(self.request_id, order.venue, "resting_fill", client_order_id=order.client_order_id,
                           symbol=order.symbol, amount=signed, price=price, fee=fee.cash, fee_coin=fee.coin,
                           fee_reported=fee.reported, source=order.source,
                           size_from_venue=from_venue)

    def refresh_tx_hold(self) -> None:
        """Re-read the wallet's pending transactions (call only between steps); journal the hold's
        changes, so a journal reader sees when and why new risk waited."""
        before = self.tx_hold.reason
        after = self.tx_hold.refresh()
        if after != before:
            self.journal.event(self.request_id, "chain", "risk_hold" if after else "risk_hold_lifted",
                               reason=after or before, nonces=[p.nonce for p in self.tx_hold.txs])

    def _program_finished(self, outcome: ProgramOutcome, count_failures: bool = True) -> None:
        """Consecutive programs stopped by the venues (not by the trading state) halt the session."""
        stop = outcome.stop
        if stop is None:
            self._failed_programs = 0
            self._last_failure = ""
            return
        if stop.kind is StopKind.HALTED or not count_failures:
            return
        self._failed_programs += 1
        self._last_failure = str(stop)
        self.journal.event(self.request_id, stop.venue, "program_stopped", kind=stop.kind.value,
                           reason=f"{stop.operation}: {stop.reason}")
        if self._failed_programs >= MAX_FAILED_PROGRAMS and self.state.state is not TradingState.HALTED:
            self._halt_and_cancel(f"{MAX_FAILED_PROGRAMS} strategy programs in a row stopped by a venue "
                                  f"(last: {stop})")

    async def _execute_live(self, ins: Instruction, t: int) -> Fill:
        assert self.live_exec is not None
        fill = await self.live_exec.execute(ins, t)
        # Journal the book after every fill: a crash between two orders of a program must leave a
        # book the restart can resume (else it would see the venues' positions as foreign).
        self.cycle.entered = True
        self._save_book()
        return fill

    def _after_tick(self, at: float) -> None:
        cycle = self.cycle
        self.reconciliation_error = max(self.reconciliation_error, cycle.reconciliation)
        self.ticks += 1
        self.last_heartbeat = time.time()
        totals = self.ledger.totals()
        self.history.append(TickRecord(at, cycle.value, cycle.value - self.capital,
                                       tuple(totals[c] for c in COMPONENTS), self.data_age or 0.0,
                                       self.state.state.value))
        self._save_book()

    # ---------------------------------------------------------------- risk
    def _check_risk(self, t: int, data_age: float, wrong: dict[str, float]) -> None:
        breaches = self.risk_watch.check(self.cycle.value_now(t), self.portfolio, self.feed.view, t,
                                         self.params.aave, data_age, wrong)
        chain_hf = self.chain_holdings.health_factor if self.chain_holdings is not None else None
        if chain_hf is not None and chain_hf < self.limits.hf_floor:
            # The chain's own health factor (the Pool's oracle and indices), read this tick.
            breaches.append(Breach("hf_floor (chain)", chain_hf, self.limits.hf_floor))
        if not breaches or self.state.state is TradingState.HALTED:
            return
        reason = "risk limit: " + "; ".join(str(b) for b in breaches)
        if self.limits.breach_action == "reduce" and not wrong:
            if self.state.state is TradingState.ACTIVE:
                self._log_breach(t, reason)
                self.state.reduce(reason)
        else:                          # halt (a wrong book always halts: reducing on it is guesswork)
            self._log_breach(t, reason)
            self._halt_and_cancel(reason)

    def _log_breach(self, t: int, reason: str) -> None:
        self.events.add(self.feed.view.timestamps[t], t, "risk", "breach", reason=reason)
        self.journal.event(self.request_id, "risk", "breach", reason=reason)
        self.raise_alert(AlertKind.RISK_BREACH, reason)

    def _halt_and_cancel(self, reason: str) -> None:
        """HALTED now (synchronously), cancel-all in the background (the tick does not wait for it)."""
        self.emergency_stop(reason)

    @property
    def breaches(self) -> list:
        return self.risk_watch.breaches

    # ---------------------------------------------------------------- flatten support
    async def ensure_prices(self) -> int:
        """The index of the latest prices, fetching one snapshot when the session has none yet."""
        if not self.feed.view.timestamps:
            await self.feed.tick()
            self.cycle.forget_previous()
        return len(self.feed.view.timestamps) - 1

    async def run_instruction(self, ins: Instruction, t: int) -> ProgramOutcome:
        """One instruction outside the strategy (flatten): same gate, executor, events and ledger."""
        def single() -> Program:
            yield ins
        if self.execution.sends_orders:
            outcome = await self.manager.run_async(single(), t, self._execute_live)
        else:
            outcome = self.manager.run(single(), t)
        self._program_finished(outcome, count_failures=False)
        return outcome

    async def run_program(self, program: Program, t: int) -> ProgramOutcome:
        """A program outside the strategy (flatten): same gate, executors, events and ledger."""
        if self.execution.sends_orders:
            outcome = await self.manager.run_async(program, t, self._execute_live)
        else:
            outcome = self.manager.run(program, t)
        self._program_finished(outcome, count_failures=False)
        return outcome

    def after_manual_trades(self, t: int) -> None:
        """Re-base valuation after trades made between ticks, so the next tick's attribution and
        reconciliation start from the holdings as they are now."""
        self.cycle.rebase(t)
        self._save_book()

    def mark_flat(self) -> None:
        self._flat = True
        self.cycle.entered = False
        self._save_book(force=True)

    # ---------------------------------------------------------------- book persistence
    def book(self) -> dict:
        book = book_of(self.portfolio, self.capital, self.cycle.entered, self._flat, self.spot_baseline)
        if self.cash.venues:
            book["cash"] = self.cash.to_book()
        if self.router is not None and self.router.last_holdings is not None:
            book["chain"] = holdings_dict(self.router.last_holdings)   # what the chain held after the last step
        if self.resting:
            book["resting"] = self.resting.dump()     # saved with the positions their booked fills moved
        return book

    def _save_book(self, force: bool = False) -> None:
        """Live only: paper sessions hold nothing at the venues, a restart simply starts afresh."""
        if not self.execution.sends_orders:
            return
        if self.cycle.entered or force:
            self._books.write(self.book())

    # ---------------------------------------------------------------- alerts
    def raise_alert(self, kind: AlertKind, message: str, venue: str = "") -> None:
        """Tell the operator (tray, sound, webhook, Telegram; journaled). Never blocks: the bus
        delivers after this returns, so it is safe on the e-stop and order paths. On-chain code of
        the session raises ``AlertKind.TX_FAILED`` through here."""
        if self.alerts is not None:
            self.alerts.raise_alert(Alert(kind, message, self.request_id, venue), self._journal_alert)

    # ---------------------------------------------------------------- reporting
    @property
    def trades(self) -> int:
        return self.gate.sent + (self.paper.sent if self.paper else 0)

    @property
    def orders(self) -> tuple:
        return self.blotter.rows()

    def warnings(self) -> list[str]:
        out = list(self.feed.warnings)
        if self.capacity_warning:
            out.append(self.capacity_warning)
        if self.execution.sends_orders and self.dead_man is None:
            out.append("dead-man switch off (dead_man_seconds not set)")
        if self.phase is SessionPhase.AWAITING_ACK:
            out.append("recovery found open positions/orders or differences: acknowledge to start trading")
        out.extend(self.notes)
        health = self.journal.health()
        if not health.ok:
            out.append(health.describe())
        if self.dead_man is not None:
            out.extend(f"dead-man switch {v} left armed at exit: {why}" for v, why in self.dead_man.left_armed.items())
        return out

    @property
    def last_failure(self) -> str:
        return self._last_failure

    def snapshot(self) -> SessionSnapshot:
        """The session as the views see it now (immutable): badge, phase and e-stop line from one
        reading, so they always agree."""
        now = time.time()
        mv = self.feed.view
        t = len(mv.timestamps) - 1
        risk = snapshot(self.portfolio, mv, t, self.params.aave) if t >= 0 else None
        value = self.value
        drawdown = self.risk_watch.drawdown(value)
        state = self.state.state
        phase = self.phase.value
        reason = self.state.history[-1].reason if self.state.history else ""
        pending = tuple(p.describe() for p in self.resolver.pending.values())
        shown, phase_line = badge(phase, state, reason, len(pending), self.tx_hold.reason)
        events = self.events.events
        inputs = RiskInputs(self.portfolio, mv, self.params, self.limits, self.manager.numeraire, value, drawdown,
                            self.data_age)
        return SessionSnapshot(
            request_id=self.request_id, mode=self.mode, execution=self.execution, environment=self.environment,
            currency=self.params.strategy.currency, capital=self.capital, phase=phase, state=state,
            state_reason=reason, badge=shown, phase_line=phase_line, running=self.running, taken_at=now,
            started_at=self.started_at, tick_seconds=self.tick_seconds, last_heartbeat=self.last_heartbeat,
            heartbeat_age_seconds=None if self.last_heartbeat is None else max(0.0, now - self.last_heartbeat),
            data_age_seconds=self.data_age, max_data_age_seconds=self.limits.max_data_age_seconds,
            ticks=self.ticks, value=value, pnl=None if value is None else value - self.capital, trades=self.trades,
            drawdown=drawdown, reconciliation_error=self.reconciliation_error,
            pnl_components=MappingProxyType(self.ledger.totals()),
            breaches=tuple(str(b) for b in self.breaches), warnings=tuple(self.warnings()),
            last_error=self.last_error or self.last_failure,
            dead_man=MappingProxyType(self.dead_man.describe() if self.dead_man is not None else {}),
            positions=position_lines(self.portfolio, mv, t), risk_lines=risk_lines(inputs, risk),
            flatten=flatten_plan(self.portfolio, self.params.strategy.lst), estop=estop_line(self.estop_track),
            awaiting_ack=self.phase is SessionPhase.AWAITING_ACK,
            recovery_lines=tuple(self.recovery.lines()) if self.recovery is not None else (),
            orders=self.orders, events=tuple(events[-EVENTS_IN_SNAPSHOT:]), events_total=len(events),
            history=tuple(self.history), unresolved_orders=pending, risk_hold=self.tx_hold.reason,
            pending_transactions=tuple(f"{p.chain} nonce {p.nonce} {p.label or p.tx_hash}" for p in self.tx_hold.txs),
            journal=self.journal.health().describe(),
        )

    def status(self) -> SessionSnapshot:
        return self.snapshot()

    def publish(self) -> None:
        """Hand the views a fresh snapshot (after every tick, state change and e-stop progress)."""
        if self.on_update is not None:
            try:
                self.on_update(self)
            except Exception:                 # a view's bug must never stop trading or an e-stop
                log.exception("on_update hook failed")

    def _on_state_change(self, change: StateChange) -> None:
        mv = self.feed.view
        t = max(len(mv.timestamps) - 1, 0)
        ts = mv.timestamps[t] if mv.timestamps else ""
        self.events.add(ts, t, "session", "state", reason=f"{change.previous.value} -> {change.current.value}: "
                        f"{change.reason}")
        self.journal.event(self.request_id, "session", "state", previous=change.previous.value,
                           current=change.current.value, reason=change.reason)
        self.publish()

    # ---------------------------------------------------------------- orders: journal and blotter
    def _write_ahead(self, venue: str, request: OrderRequest):
        """The order's journal row, before it is sent (the gate waits until it is on disk)."""
        return self.journal.order_submitted(self.request_id, venue, request)

    def _journal_order(self, what: str, venue: str, request: OrderRequest, order: VenueOrder | None,
                       error: str | None) -> None:
        cid = request.client_order_id
        if what == "submitted":
            if self.gate.write_ahead is None:
                self.journal.order_submitted(self.request_id, venue, request)
            self.blotter.submitted(venue, request)
        elif what == "acknowledged" and order is not None:
            self._record_order_state(venue, request, order)
        elif what == "failed":
            self.journal.order_update(cid, "failed", error=error)
            self.blotter.failed(request, error or "")
            self.raise_alert(AlertKind.ORDER_FAILED, f"{request.side.value} {request.amount} {request.symbol} "
                             f"({request.client_order_id}) failed: {error}", venue)
        elif what == "not_sent":
            self.journal.order_update(cid, "not_sent", error=error)
            self.blotter.marked(request, "not_sent", error or "")
        elif what in ("uncertain", "unresolved"):
            # stays among the rows a restart resolves ("unknown") until a look-up settles it
            self.journal.order_update(cid, "unknown", error=error)
            self.blotter.marked(request, "unknown", error or "")
        elif what == "not_placed":
            self.journal.order_update(cid, "not_placed", error=error)
            self.blotter.marked(request, "not_placed", error or "")
        elif what == "refused":
            self.journal.event(self.request_id, venue, "order_refused", symbol=request.symbol, state=error)
            self.raise_alert(AlertKind.ORDER_FAILED, f"{request.side.value} {request.amount} {request.symbol} refused: "
                             f"trading is {error}", venue)

    def _outcome_event(self, what: str, item: PendingOutcome, detail: str) -> None:
        """The resolver's progress: shown (snapshot), logged as events, journaled."""
        try:
            if what != "retry":
                mv = self.feed.view
                t = max(len(mv.timestamps) - 1, 0)
                r = item.request
                self.events.add(mv.timestamps[t] if mv.timestamps else "", t, item.venue, f"order_outcome_{what}",
                                asset=r.symbol, amount=float(r.amount), reason=detail or item.cause)
                self.journal.event(self.request_id, item.venue, f"order_outcome_{what}", client_order_id=r.client_order_id,
                                   symbol=r.symbol, side=r.side.value, amount=r.amount, detail=detail or item.cause)
                level = logging.ERROR if what == "unresolved" else logging.WARNING if what == "started" else logging.INFO
                log.log(level, "%s order %s: outcome %s (%s)", item.venue, r.client_order_id, what, detail or item.cause)
            self.publish()
        except Exception:
            log.exception("recording an order look-up failed")

    def _unresolved(self, reason: str) -> None:
        """An order's outcome stayed unknown for the whole look-up budget: stop trading and say so."""
        self.last_error = reason
        if self.state.state is not TradingState.HALTED:
            self._halt_and_cancel(f"order outcome unknown: {reason}; check the venue, then reset")

    def _settled(self, venue: str, request: OrderRequest, order: VenueOrder) -> None:
        self._record_order_state(venue, request, order)

    def _record_order_state(self, venue: str, request: OrderRequest, order: VenueOrder) -> None:
        self.journal.order_update(request.client_order_id, order.status.value, order.order_id,
                                  order.filled, order.average)
        if order.status in TERMINAL and order.filled:
            self.journal.fill(request.client_order_id, venue, request.symbol, request.side.value,
                              order.filled, order.average or order.price or Decimal(0))
        self.blotter.reported(request, order)
        if order.status is OrderStatus.OPEN:
            log.info("%s order %s resting", venue, request.client_order_id)

    def _paper_filled(self, fill: Fill, reduce_only: bool) -> None:
        """Paper fills go to the blotter too, so paper and live read the same (never to the journal's
        order and fill tables: those are what restart recovery compares with the venues)."""
        ins = fill.instruction
        perp = ins.op.value == "perp_trade"
        manual = ins.reason == MANUAL_REASON
        self.blotter.paper_fill(new_client_order_id(MANUAL_PREFIX if manual else PAPER_PREFIX), ins.venue,
                                perp_symbol(ins.asset) if perp else spot_symbol(ins.asset),
                                "buy" if ins.amount > 0 else "sell", abs(fill.amount_in), fill.price,
                                reduce_only, manual)

    def _pre_trade_refused(self, exc: PreTradeRefused) -> None:
        """An order failed its pre-trade check and was not sent. Trading is reduced at once, so the
        next tick does not build the same order again; the operator fixes the cause and resets."""
        self.last_error = str(exc)
        self.journal.event(self.request_id, exc.instruction.venue, "pre_trade_refused", reason=str(exc))
        self.raise_alert(AlertKind.ORDER_FAILED, str(exc), exc.instruction.venue)
        self.state.reduce(f"{exc}; only risk-reducing orders until the cause is fixed and the session is reset")

    def _chain_step(self, record: StepRecord) -> None:
        """Every on-chain step goes to the journal as it ends: a crash mid-program leaves the record
        of which transactions were final (the recovery compares the chain with it)."""
        self.journal.event(self.request_id, record.venue, "chain_step", op=record.op, what=record.what,
                           status=record.status, tx_hashes=list(record.tx_hashes), gas_eth=record.gas_eth,
                           detail=record.detail)
        self._save_book()

    def _allocated(self, ins: Instruction) -> None:
        self.cash.allocated(ins.venue, ins.to_venue, ins.amount)
        self.journal.event(self.request_id, ins.venue, "allocation", to_venue=ins.to_venue, amount=ins.amount,
                           note="book-only: no withdrawal is sent; the venue account must hold the margin")


