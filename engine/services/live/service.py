"""LiveTradingService: start/stop sessions, status, performance, risk, emergency stop,
reset, flatten and restart recovery. One running strategy per request id, all on the asyncio (qasync)
loop; the same strategy classes as the backtest.

Venue wiring is injected (`venue_factory`), like the backtest: the engine imports no venue SDK.

Start sequence (each step fails with one clear `LiveStartError`):
1. validate the request and the mode config; live refuses modes with on-chain legs; production live
   needs ``confirm_production`` and a passing check-venues run;
2. build the adapters and load their markets (no network: fails here, promptly, naming the venue);
3. live only — restart recovery: read positions, open orders and balances from every venue and
   compare them with the journal. If anything is open or differs, the session waits in phase
   ``awaiting_acknowledgement`` and does not trade until ``acknowledge_recovery(request_id)``
   (or the request said ``acknowledge_recovery=True``). Acknowledging resumes the journaled
   strategy book (perp sizes from the venues) or, without one, starts fresh next to the foreign
   positions;
4. live only — arm the dead-man switch on venues that offer one, then the tick loop starts.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.config import CapitalError, load_config
from engine.data import HistoricalDataProvider
from engine.domain.chain_market import ChainFeedUnavailable, ChainMarketNeeds, ChainMarketPort
from engine.domain.instructions import Instruction, Op
from engine.domain.modes import SESSION_MODES, ExecutionMode
from engine.domain.onchain_live import (
    ChainCancelResult,
    NoTransfers,
    OnchainInstructionPort,
    PendingChainTx,
    TransferPort,
)
from engine.domain.venue_ports import CexVenuePort, MarketKind, VenueError
from engine.execution.cycle import WorldFactory
from engine.services.live.alerts import AlertBus
from engine.services.live.chain_recovery import reconcile_chain, underfunded
from engine.services.live.dead_man import check_timeout
from engine.services.live.emergency_stop import EStopHandle, SessionProgressListener, VenueCancelProgress
from engine.services.live.flatten import flatten_program
from engine.services.live.flatten_preview import (
    FlattenPreview,
    FlattenPreviewStale,
    FlattenRefused,
    as_previewed,
    build_flatten_preview,
)
from engine.services.live.instance_lock import HEARTBEAT_S as LEASE_HEARTBEAT_S
from engine.services.live.instance_lock import InstanceLock, InstanceLocked
from engine.services.live.journal import Journal
from engine.services.live.manual_orders import (
    ManualOrder,
    ManualOrderResult,
    ManualOrders,
    ManualQuote,
    close_order,
)
from engine.services.live.market_feed import LiveMarketFeed, perp_symbol, spot_symbol
from engine.services.live.outcome_resolver import ResolvePolicy
from engine.services.live.recovery import RecoveryReport, recover
from engine.services.live.risk_limits import Breach, RiskLimits
from engine.services.live.session import LiveSession, SessionPhase
from engine.services.live.snapshot import SessionSnapshot
from engine.services.live.state import TradingState
from engine.services.run_params import CEX_VENUES, build_run_params, data_requirements
from engine.strategies import STRATEGIES
from engine.strategies.capacity import CapitalTooSmall, check_hedged_capital

log = logging.getLogger(__name__)
EXECUTIONS = tuple(m.value for m in SESSION_MODES)
ENVIRONMENTS = ("testnet", "production")

# environment -> the wallet's write side on the chain (engine.domain.onchain_live).
OnchainFactory = Callable[[str], Awaitable[OnchainInstructionPort]]
# (venue, environment, *, private, underlyings) -> adapter. ``private``: the session needs account
# access (live); paper needs public market data only and works without keys.
VenueFactory = Callable[..., CexVenuePort]
# (the mode's venue configs, environment, what to read) -> the session's chain market source, or why
# there is none (its on-chain series then stay historical, and the session says why). A chain that does
# not answer raises VenueError: the start fails, as it does for an exchange that does not answer.
ChainMarketFactory = Callable[[Mapping[str, Any], str, ChainMarketNeeds],
                              Awaitable[ChainMarketPort | ChainFeedUnavailable]]


class LiveStartError(ValueError):
    """The session cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class LiveStartRequest:
    mode: str
    execution: ExecutionMode | str = ExecutionMode.PAPER
    environment: str = "testnet"                 # testnet | production
    capital: float | None = None
    share_class: str | None = None
    risk_overrides: dict[str, Any] = field(default_factory=dict)      # e.g. {"max_drawdown": 0.05}
    config_overrides: dict[str, Any] = field(default_factory=dict)    # dotted keys, like the CLI
    confirm_production: bool = False
    acknowledge_recovery: bool = False           # take over what restart recovery finds without pausing
    tick_seconds: float = 5.0
    #: per venue, emergency stop (list -> cancel -> verify, with retries); None: each venue's
    #: ``emergency_stop.cancel_budget_seconds`` from configs/venues
    cancel_timeout_seconds: float | None = None
    data_timeout_seconds: float = 5.0            # per venue, market data / connect / recovery reads
    dead_man_seconds: float | None = 60.0        # live: exchange-side cancel-after; None switches it off
    #: how long an order whose outcome is unknown is looked up by client id before the session halts
    resolve_budget_seconds: float = 30.0


@dataclass
class FlattenReport:
    closed: list[str] = field(default_factory=list)          # "binance ETH sell 1.2 (reduce-only)"
    failed: list[str] = field(default_factory=list)
    cannot_unwind: list[str] = field(default_factory=list)   # legs no venue layer can unwind here
    pending: str = ""                                        # the step in flight (names a failure)

    def lines(self) -> list[str]:
        return ([f"closed {c}" for c in self.closed] + [f"FAILED {f}" for f in self.failed]
                + [f"cannot unwind: {c}" for c in self.cannot_unwind]) or ["nothing to close"]


def _venue_estop(resolved, venue: str):
    """The venue file's emergency_stop section (a required key: the loader has validated it)."""
    return resolved.venues[venue].emergency_stop


def _describe(ins: Instruction) -> str:
    if ins.op is Op.PERP_TRADE:
        return f"{ins.venue} {ins.asset} perp {'buy' if ins.amount > 0 else 'sell'} {abs(ins.amount):.8g} (reduce-only)"
    if ins.op is Op.SPOT_TRADE:
        return f"{ins.venue} {ins.asset} spot {'buy' if ins.amount > 0 else 'sell'} {abs(ins.amount):.8g}"
    if ins.op is Op.BUNDLE:
        return f"{ins.venue}: exit the loop atomically (repay all WETH debt, withdraw and sell all collateral)"
    if ins.op is Op.SWAP:
        return f"{ins.venue}: sell {ins.amount:.8g} {ins.asset} for {ins.to_asset}"
    return f"{ins.venue}: {ins.op.value} {ins.amount:.8g} {ins.asset}"


def tracked(program, report: FlattenReport):
    """Pass a program through, noting each instruction once its fill came back (closed) and the one in
    flight when it stopped (the report's failure names it)."""
    try:
        ins = next(program)
        while True:
            report.pending = _describe(ins)
            fill = yield ins
            report.closed.append(report.pending)
            report.pending = ""
            ins = program.send(fill)
    except StopIteration:
        return
    finally:
        program.close()


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
        raise LiveStartError(f"{name} must be a positive number of seconds, got {value!r}")


#: (environment, the session's exchanges) -> (the transfer port, why it refuses transfers: "" when it does not)
TransferFactory = Callable[[str, Sequence[str]], Awaitable[tuple[TransferPort, str]]]


async def _close_transfers(port: Any) -> None:
    close = getattr(port, "close", None)
    if close is None:
        return
    try:
        await close()
    except Exception as exc:  # noqa: BLE001 - stopping goes on; the connections are the service's own
        log.warning("closing the transfer service failed: %s", exc)


class LiveTradingService:
    def __init__(self, provider: HistoricalDataProvider, venue_factory: VenueFactory,
                 world_factory: WorldFactory, rejected_exc: type[Exception],
                 journal_factory: Callable[[str], Journal],
                 checks_runner: Callable[[str, str], Awaitable[list[str]]] | None = None,
                 chain_market_factory: ChainMarketFactory | None = None,
                 alerts: AlertBus | None = None,
                 onchain_factory: OnchainFactory | None = None, transfers: TransferPort | None = None,
                 transfer_factory: TransferFactory | None = None) -> None:
        """``checks_runner(mode, environment)`` runs check-venues and returns the failures (one line
        each; empty = pass): production live refuses to start on any. ``chain_market_factory`` gives
        sessions of modes with on-chain legs their chain reads (AAVE indices, LST rates, gas).
        ``alerts``: the bus every session raises its alerts on (the app subscribes its tray and
        sound, bootstrap adds the webhook and Telegram channels). ``onchain_factory(environment)``
        builds the wallet's write side for live modes with on-chain legs (without one they are
        refused); ``transfers`` moves assets between the wallet and the CEXs (without one a transfer
        step is refused plainly); ``transfer_factory(environment, cex_venues)`` builds one per live
        session with on-chain legs when ``transfers`` is not given, and returns (port, note): the
        note, shown with the session's warnings, says why it is NoTransfers when it is."""
        self.alerts = alerts if alerts is not None else AlertBus()
        self.provider = provider
        self.venue_factory = venue_factory
        self.world_factory = world_factory
        self.rejected_exc = rejected_exc
        self.journal_factory = journal_factory
        self.checks_runner = checks_runner
        self.chain_market_factory = chain_market_factory
        self.onchain_factory = onchain_factory
        self.transfers = transfers
        self.transfer_factory = transfer_factory
        self._session_transfers: dict[str, Any] = {}     # request id -> a port built for it (closed on stop)
        self.sessions: dict[str, LiveSession] = {}
        self._journals: dict[str, Journal] = {}
        self._locks: dict[str, InstanceLock] = {}
        self._lease_task: asyncio.Task | None = None
        self._starts: set[object] = set()                 # session starts in flight (one token each)
        self._open_stops: list[EStopHandle] = []          # presses still waiting for such a start
        # Hooks for a view (the Qt dashboard connects its bridge here; the CLI prints). Both are
        # called on the event loop; an exception in a hook is logged and never stops trading.
        self.on_update: Callable[[LiveSession], None] | None = None
        self.on_cancel_progress: Callable[[str, VenueCancelProgress], None] | None = None

    # ------------------------------------------------------------------ start / stop
    async def start(self, req: LiveStartRequest) -> str:
        """Start a session; returns its request id. See the module docstring for the sequence.

        An emergency stop pressed while this start is in flight HALTS the session the moment it is
        up, before its first tick (the press's handle reports it)."""
        token = object()
        self._starts.add(token)
        try:
            return await self._start(req, token)
        finally:
            self._starts.discard(token)
            for handle in list(self._open_stops):
                handle.start_ended(token)
                if not handle.waiting_for_starts:
                    self._open_stops.remove(handle)

    async def _start(self, req: LiveStartRequest, token: object) -> str:
        execution = ExecutionMode(req.execution) if req.execution in EXECUTIONS else None
        if execution is None:
            raise LiveStartError(f"execution {req.execution!r} (allowed: {', '.join(EXECUTIONS)})")
        if req.environment not in ENVIRONMENTS:
            raise LiveStartError(f"environment {req.environment!r} (allowed: {', '.join(ENVIRONMENTS)})")
        for name in ("tick_seconds", "data_timeout_seconds", "resolve_budget_seconds"):
            _positive(name, getattr(req, name))
        if req.cancel_timeout_seconds is not None:
            _positive("cancel_timeout_seconds", req.cancel_timeout_seconds)
        if req.capital is not None and not req.capital > 0:
            raise LiveStartError(f"capital must be positive, got {req.capital!r}")
        live = execution.sends_orders
        if live and req.dead_man_seconds is not None:
            try:
                check_timeout(req.dead_man_seconds, req.tick_seconds)
            except ValueError as exc:
                raise LiveStartError(str(exc)) from None
        overrides = dict(req.config_overrides)
        overrides.update({f"risk.{k}": v for k, v in req.risk_overrides.items()})
        if req.share_class is not None:
            overrides["share_class"] = req.share_class
        # Reading YAML and the historical seed is blocking file I/O: off the (UI) event loop.
        resolved = await asyncio.to_thread(load_config, req.mode, cli_overrides=overrides)
        try:
            params = build_run_params(resolved, req.capital)
            check_hedged_capital(params)
        except (CapitalError, CapitalTooSmall) as exc:
            raise LiveStartError(str(exc)) from None
        sp = params.strategy
        if live:
            onchain = [leg for leg, on in (("AAVE lending", bool(sp.lending_asset)), (f"{sp.lst} staking", bool(sp.lst)),
                                           ("AAVE leverage loop", sp.leverage)) if on]
            if onchain and self.onchain_factory is None:
                raise LiveStartError(
                    f"{req.mode} has on-chain legs ({', '.join(onchain)}) and this service has no on-chain "
                    "execution configured (wallet key and RPC in the keyring) — run it with execution paper")
            if req.environment == "production":
                if not req.confirm_production:
                    raise LiveStartError("production live trading with real money needs an explicit "
                                         "confirmation: --yes-production on the command line, or the "
                                         "confirmation dialog in the app")
                if self.checks_runner is None:
                    raise LiveStartError("production live trading needs a passing check-venues run, and this "
                                         "service has no checks runner configured")
                failures = await self.checks_runner(req.mode, req.environment)
                if failures:
                    raise LiveStartError("production live trading needs a passing check-venues run "
                                         f"(python main.py check-venues --mode {req.mode} --env production); failed: "
                                         + "; ".join(failures))
        cex_names = [v for v in resolved.required_venues() if v in CEX_VENUES]
        underlyings = [sp.underlying] if sp.underlying else ["ETH"]
        budgets = {v: float(req.cancel_timeout_seconds) if req.cancel_timeout_seconds is not None
                   else _venue_estop(resolved, v).cancel_budget_seconds for v in cex_names}
        estop_dead_man = min((_venue_estop(resolved, v).dead_man_seconds for v in cex_names), default=10.0)
        journal = self._journal(req.environment)
        notes: list[str] = []
        locked_env: str | None = None
        if live:
            # one live instance per journal and accounts: refused before any venue is contacted
            notes = self._lock(req.environment, journal)
            locked_env = req.environment
        try:
            venues = await self._build_venues(cex_names, req.environment, live, underlyings)
        except BaseException:
            if locked_env is not None:
                self._unlock_if_idle(locked_env)
            raise
        chain: OnchainInstructionPort | None = None
        transfers: TransferPort | None = self.transfers
        built_transfers: Any = None
        try:
            if live and onchain:
                assert self.onchain_factory is not None
                try:
                    chain = await self.onchain_factory(req.environment)
                except Exception as exc:          # no key, wrong chain, RPC down: say so, start nothing
                    raise LiveStartError(
                        f"{req.mode} has on-chain legs ({', '.join(onchain)}) and on-chain execution cannot "
                        f"start: {exc} — store the wallet's rpc_url and private_key in the keyring, or run it "
                        "with execution paper") from None
            if chain is not None and transfers is None:
                if not cex_names:               # nothing to move the wallet's assets to or from
                    transfers, note = NoTransfers(), ""
                elif self.transfer_factory is not None:
                    transfers, note = await self.transfer_factory(req.environment, cex_names)
                    built_transfers = transfers
                else:
                    transfers, note = NoTransfers(), "transfers: this service has no transfer service"
                if note:
                    notes.append(f"{note}: a transfer between the wallet and an exchange is refused, the program "
                                 "stops there")
            await self._connect(venues, params, req.data_timeout_seconds)
            seed = await asyncio.to_thread(self.provider.load, data_requirements(params))
            feed = LiveMarketFeed(params, venues, seed, req.data_timeout_seconds,
                                  chain=await self._chain_source(resolved, req.environment, params))
            session = LiveSession(
                mode=req.mode, execution=execution, environment=req.environment, params=params,
                strategy=STRATEGIES[sp.mode](params), feed=feed, venues=venues,
                limits=RiskLimits.from_config(resolved.mode.risk), journal=journal,
                world_factory=self.world_factory, rejected_exc=self.rejected_exc, tick_seconds=req.tick_seconds,
                cancel_timeout_seconds=budgets,
                dead_man_seconds=req.dead_man_seconds if live else None,
                data_timeout_seconds=req.data_timeout_seconds, estop_dead_man_seconds=estop_dead_man,
                resolve_policy=ResolvePolicy(budget_s=req.resolve_budget_seconds,
                                             lookup_timeout_s=req.data_timeout_seconds,
                                             absent_after_s=min(2.0, req.data_timeout_seconds)),
                notes=notes, on_update=self._updated, on_cancel_progress=self._cancel_progress,
                alerts=self.alerts, onchain=chain, transfers=transfers)
            report = None
            if live:
                spot_legs = {(v, a): (venues[v].balance_account(spot_symbol(a)), spot_symbol(a))
                             for v, a in session.spot_keys}
                report = await recover(venues, journal, mode=req.mode, execution=execution.value,
                                       perp_symbol_of={underlyings[0]: perp_symbol(underlyings[0])},
                                       timeout=req.data_timeout_seconds, spot_legs=spot_legs,
                                       resolve_policy=ResolvePolicy(budget_s=max(req.data_timeout_seconds, 1.0),
                                                                    lookup_timeout_s=req.data_timeout_seconds,
                                                                    absent_after_s=min(2.0, req.data_timeout_seconds)))
                blocking = report.blocking
                if blocking:
                    journal.event(session.request_id, "session", "recovery_blocked", mode=req.mode,
                                  lines=report.lines())
                    unreadable = [d for d in blocking if d.kind == "venue_unreadable"]
                    head = "cannot read the venue accounts before trading" if unreadable else \
                        "restart recovery cannot resolve the journal's orders"
                    raise LiveStartError(f"{head} (UNKNOWN is never taken for 'nothing held', so nothing trades): "
                                         + "; ".join(f"{d.venue}: {d.detail}" for d in blocking))
            if chain is not None:
                report = await reconcile_chain(session, report)
                assert session.chain_recovery is not None
                short = underfunded(session.portfolio.wallet.tokens, session.chain_recovery.found) \
                    if report.book is None else []
                if short:
                    raise LiveStartError(f"the wallet {chain.wallet} on {chain.chain} does not hold the session's "
                                         "capital (fund it, or start with less): " + "; ".join(short))
        except BaseException:
            await asyncio.gather(*(p.close() for p in venues.values()), return_exceptions=True)
            if chain is not None:
                await chain.close()
            await _close_transfers(built_transfers)
            if locked_env is not None:
                self._unlock_if_idle(locked_env)
            raise
        self.sessions[session.request_id] = session
        if built_transfers is not None:
            self._session_transfers[session.request_id] = built_transfers
        for handle in self._open_stops:            # pressed while this session was starting
            if handle.awaits_start(token):
                handle.stop(session, f"{handle.reason} (pressed while the session was starting)")
        if report is not None:
            session.adopt(report)
            if report.needs_acknowledgement and not req.acknowledge_recovery:
                session.await_acknowledgement(report)
                return session.request_id
        session.start()
        return session.request_id

    async def _build_venues(self, names: list[str], environment: str, live: bool,
                            underlyings: list[str]) -> dict[str, CexVenuePort]:
        venues: dict[str, CexVenuePort] = {}
        name = ""
        try:
            for name in names:
                port = self.venue_factory(name, environment, private=live, underlyings=underlyings)
                venues[name] = await port if inspect.isawaitable(port) else port
        except Exception as exc:            # missing keys, no keyring, bad venue config: say which venue
            await asyncio.gather(*(p.close() for p in venues.values()), return_exceptions=True)
            if isinstance(exc, LiveStartError):
                raise
            raise LiveStartError(f"{name}: {exc}") from None
        return venues

    async def _connect(self, venues: Mapping[str, CexVenuePort], params, timeout: float) -> None:
        """Load every venue's markets (fails fast without network) and check the mode's symbols."""
        names = list(venues)
        results = await asyncio.gather(*(asyncio.wait_for(venues[v].load_markets(), timeout) for v in names),
                                       return_exceptions=True)
        problems = []
        for venue, res in zip(names, results):
            if isinstance(res, asyncio.TimeoutError):
                problems.append(f"{venue}: no answer within {timeout:g} s")
            elif isinstance(res, BaseException):
                text = str(res) or type(res).__name__
                problems.append(text if text.startswith(f"{venue}:") else f"{venue}: {text}")
        if problems:
            raise LiveStartError("cannot connect to the venues: " + "; ".join(problems))
        sp = params.strategy
        asset = sp.underlying or "ETH"
        need: dict[str, list[str]] = {}
        for venue, weight in sp.allocation.items():
            if weight > 0 and sp.hedge:
                need.setdefault(venue, []).append(perp_symbol(asset))
        if sp.spot_venue:
            need.setdefault(sp.spot_venue, []).append(spot_symbol(asset))
        missing = [f"{v} {s}" for v, symbols in need.items() if v in venues
                   for s in symbols if s not in venues[v].symbols(MarketKind.PERP if ":" in s else MarketKind.SPOT)]
        if missing:
            raise LiveStartError("the venues do not list the mode's markets: " + ", ".join(missing))

    def _journal(self, environment: str) -> Journal:
        if environment not in self._journals:
            self._journals[environment] = self.journal_factory(environment)
        return self._journals[environment]

    # ------------------------------------------------------------------ one live instance per journal
    def _lock(self, environment: str, journal: Journal) -> list[str]:
        """Take the journal's live-trading lock (once per environment); returns takeover warnings."""
        lock = self._locks.get(environment)
        if lock is None:
            lock = self._locks[environment] = InstanceLock(journal)
        if lock.held:
            return []
        try:
            warnings = lock.acquire()
        except InstanceLocked as exc:
            raise LiveStartError(str(exc)) from None
        except sqlite3.Error as exc:
            raise LiveStartError(f"journal {journal.path}: cannot write the instance lease ({exc}); another "
                                 "process may hold it locked") from None
        for w in warnings:
            journal.event("service", "session", "lease_taken_over", detail=w)
        if self._lease_task is None or self._lease_task.done():
            self._lease_task = asyncio.ensure_future(self._lease_heartbeat())
        return warnings

    async def _lease_heartbeat(self) -> None:
        while any(lock.held for lock in self._locks.values()):
            for lock in self._locks.values():
                lock.heartbeat()
            await asyncio.sleep(LEASE_HEARTBEAT_S)

    def _unlock_if_idle(self, environment: str) -> None:
        """Release the lock when no live session of the environment is left that is not stopped."""
        lock = self._locks.get(environment)
        if lock is None or not lock.held:
            return
        if any(s.environment == environment and s.execution.sends_orders and s.phase is not SessionPhase.STOPPED
               for s in self.sessions.values()):
            return
        lock.release()

    def acknowledge_recovery(self, request_id: str) -> None:
        """The operator has seen the recovery report: start trading."""
        s = self._session(request_id)
        if s.phase is not SessionPhase.AWAITING_ACK:
            raise LiveStartError(f"session {request_id} is {s.phase.value}, not awaiting acknowledgement")
        s.start()

    def recovery(self, request_id: str) -> RecoveryReport | None:
        return self._session(request_id).recovery

    async def stop(self, request_id: str, *, cancel_open_orders: bool = False) -> None:
        """Stop the loop, disarm the dead-man switch, close the adapters. Positions stay as they are;
        with ``cancel_open_orders`` every open order on the session's venues is cancelled first."""
        session = self._session(request_id)
        if session.phase is SessionPhase.STOPPED:
            return
        await session.stop(cancel_open_orders=cancel_open_orders)
        await session.feed.close()             # the chain source's RPC session (the CEX adapters: below)
        await asyncio.gather(*(p.close() for p in session.venues.values()), return_exceptions=True)
        if session.onchain is not None:
            await session.onchain.close()
        await _close_transfers(self._session_transfers.pop(request_id, None))
        self._unlock_if_idle(session.environment)

    async def stop_all(self, *, cancel_open_orders: bool = False) -> None:
        await asyncio.gather(*(self.stop(rid, cancel_open_orders=cancel_open_orders) for rid in list(self.sessions)),
                             return_exceptions=True)

    async def close(self, *, cancel_open_orders: bool = False) -> None:
        """Stop everything and close the journals (app/CLI shutdown)."""
        await self.stop_all(cancel_open_orders=cancel_open_orders)
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()
        if self._lease_task is not None:
            self._lease_task.cancel()
            self._lease_task = None
        for journal in self._journals.values():
            health = await asyncio.to_thread(journal.close)
            if not health.ok:
                log.error("%s", health.describe())
        self._journals.clear()

    # ------------------------------------------------------------------ reporting
    def session(self, request_id: str) -> LiveSession:
        return self._session(request_id)

    def status(self, request_id: str) -> SessionSnapshot:
        """The session as it is now (a fresh snapshot)."""
        return self._session(request_id).snapshot()

    def performance(self, request_id: str) -> dict[str, Any]:
        s = self._session(request_id)
        st = s.snapshot()
        return {
            "value": st.value, "pnl": st.pnl, "return": None if st.value is None else st.value / st.capital - 1.0,
            "capital": st.capital, "trades": st.trades, "drawdown": st.drawdown,
            "uptime_seconds": time.time() - s.started_at, "last_heartbeat": st.last_heartbeat,
            "heartbeat_age_seconds": st.heartbeat_age_seconds, "data_age_seconds": st.data_age_seconds,
            "currency": st.currency, "state": st.state, "phase": st.phase, "ticks": st.ticks,
            "pnl_components": dict(st.pnl_components),
        }

    def risk_check(self, request_id: str) -> list[Breach]:
        """The limits breached at the last tick (empty: all within limits)."""
        return list(self._session(request_id).breaches)

    # ------------------------------------------------------------------ safety
    def emergency_stop(self, reason: str = "operator emergency stop", *, request_id: str | None = None,
                       on_progress: Sequence[SessionProgressListener] = ()) -> EStopHandle:
        """The emergency stop: every running session (or one) HALTED before this returns, then
        cancel-all on every venue of every such session concurrently, in the background.

        Call it straight from a button, a shortcut or a signal handler: nothing before it is needed
        and nothing in it awaits. The handle gives the halt latency at once and ``await handle.done``
        the reports; ``on_progress`` hears every venue's progress of this press. A session that is
        still starting is HALTED the moment it is up and joins the handle.
        """
        targets = [self._session(request_id)] if request_id else \
            [s for s in self.sessions.values() if s.phase is not SessionPhase.STOPPED]
        handle = EStopHandle(reason, on_progress, starts=() if request_id else tuple(self._starts))
        for s in targets:
            handle.stop(s)
        handle.halted()
        if handle.waiting_for_starts:
            self._open_stops.append(handle)
        return handle

    def pending_transactions(self, request_id: str) -> list[PendingChainTx]:
        """The wallet's transactions not final yet (what an e-stop offers to cancel)."""
        s = self._session(request_id)
        return s.onchain.pending() if s.onchain is not None else []

    async def cancel_pending_transactions(self, request_id: str, *, timeout_s: float = 30.0) -> list[ChainCancelResult]:
        """The e-stop's offer, accepted: replace every pending transaction of the session's wallet by
        a same-nonce 0-value self-transfer with bumped fees; progress goes to the e-stop line."""
        s = self._session(request_id)
        if s.chain_estop is None:
            return []
        results = await s.chain_estop.cancel_pending(timeout_s)
        if s.router is not None and results:
            async with s.lock:                    # between ticks: the cycle re-bases on the new book
                t = await s.ensure_prices()
                await s.router.book_chain_since_last(t)
                s.chain_adopt_pending = False      # that booking took in what recovery found as well
                s.after_manual_trades(t)
        if s.onchain is not None:
            async with s.lock:
                s.refresh_tx_hold()               # a resolved nonce lifts the hold on new risk at once
        s.journal.event(s.request_id, "chain", "cancel_pending",
                        results=[(r.nonce, r.outcome, r.tx_hash, round(r.elapsed_ms, 1)) for r in results])
        s.publish()
        return results

    def reset(self, request_id: str, reason: str = "operator reset") -> None:
        """The explicit action that leaves HALTED/REDUCING and returns to ACTIVE."""
        self._session(request_id).reset(reason)

    async def preview_flatten(self, request_id: str) -> FlattenPreview:
        """What a confirmed flatten would do, made without sending anything: every step in order and,
        for a live session's on-chain transactions, a pre-sign ticket simulated on the current block
        (engine/services/live/flatten_preview.py). Async and under the session's lock (no tick moves
        the book under it); the UI awaits it and never blocks."""
        s = self._session(request_id)
        async with s.lock:
            return await build_flatten_preview(s, self.world_factory)

    async def flatten(self, request_id: str, confirmed: bool, preview: FlattenPreview | None = None) -> FlattenReport:
        """Unwind every leg — a separate, confirmed action — in the order engine.services.live.flatten
        gives (the loop atomically, then the long leg in slices with the perps cut in step, then what
        is left on the CEXs), through the session's own gate and router. Ends HALTED.

        With ``preview`` (what the operator confirmed) exactly that plan is executed: it is simulated
        again first, under the lock, and when the fresh plan differs materially (the book or the block
        moved) nothing is sent and FlattenPreviewStale carries the fresh preview to show; a refused
        plan raises FlattenRefused; and each instruction is checked against the plan before it is sent."""
        if not confirmed:
            raise LiveStartError("flatten needs an explicit confirmation")
        s = self._session(request_id)
        report = FlattenReport()
        confirmed_plan: dict[str, Any] = {}
        changes_at_confirmation = len(s.state.history)
        async with s.lock:
            t = await s.ensure_prices()
            program = flatten_program(s.portfolio, s.feed.view, t, s.params)
            deviations: list[str] = []
            if preview is not None:
                fresh = await build_flatten_preview(s, self.world_factory)
                why = preview.differences(fresh)
                if why is not None:
                    program.close()
                    raise FlattenPreviewStale(fresh, why)
                if not fresh.ready:
                    program.close()
                    raise FlattenRefused(fresh)
                halted = [c for c in s.state.history[changes_at_confirmation:] if c.current is TradingState.HALTED]
                if halted:
                    # The operator's later word wins: a stop pressed while the plan was checked again
                    # cancels the confirmation; nothing is sent.
                    program.close()
                    raise LiveStartError(f"flatten not sent: the session was HALTED while the plan was checked "
                                         f"again ({halted[-1].reason}); flatten again to unwind")
                program = as_previewed(program, fresh, deviations)
                # What the operator confirmed, for the journal: the steps and the exact calls simulated.
                confirmed_plan = {"previewed_block": fresh.block_number,
                                  "previewed_steps": [step.action for step in fresh.steps],
                                  "ticket_digests": [ticket.digest for ticket in fresh.tickets]}
            s.state.reduce_for_flatten("confirmed flatten")
            # An e-stop (or a risk halt) stopped the wallet's signing; the confirmed flatten is the one
            # thing allowed to sign again, and only for its own steps: the state is REDUCING (every
            # instruction must reduce risk), the tick loop waits on the lock, and signing stops again
            # when the flatten ends.
            if s.onchain is not None:
                s.onchain.resume()
            try:
                outcome = await s.run_program(tracked(program, report), t)
                if outcome.stop is not None:
                    report.failed.append(f"{report.pending or 'flatten'}: {outcome.stop}")
                report.failed.extend(deviations)
            finally:
                s.state.halt("flatten finished")
                if s.onchain is not None:
                    s.onchain.halt("flatten finished")
            s.after_manual_trades(t)
            if not report.failed:
                s.mark_flat()
            s.journal.event(s.request_id, "session", "flatten", closed=report.closed, failed=report.failed,
                            cannot_unwind=report.cannot_unwind, **confirmed_plan)
        s.publish()
        return report

    # ------------------------------------------------------------------ manual orders
    def quote_manual_order(self, request_id: str, order: ManualOrder) -> ManualQuote:
        """Check the operator's ticket and price it for the confirmation (notional, fee); raises
        ManualOrderRefused with the reason (HALTED, recovery unacknowledged, reduce-only, ...)."""
        return ManualOrders(self._session(request_id)).quote(order)

    async def manual_order(self, request_id: str, order: ManualOrder) -> ManualOrderResult:
        """Send the operator's order through the session's pre-trade checks, order gate and journal
        (engine/services/live/manual_orders.py); raises ManualOrderRefused when nothing was sent."""
        return await ManualOrders(self._session(request_id)).place(order)

    def close_position_order(self, request_id: str, venue: str, kind: str, asset: str) -> ManualOrder:
        """The reduce-only market order that closes one position of the session's book in full."""
        return close_order(self._session(request_id), venue, kind, asset)

    # ------------------------------------------------------------------ helpers
    def _session(self, request_id: str) -> LiveSession:
        try:
            return self.sessions[request_id]
        except KeyError:
            raise KeyError(f"no live session {request_id!r} (running: {', '.join(self.sessions) or 'none'})") from None

    def _updated(self, session: LiveSession) -> None:
        if self.on_update is not None:
            self.on_update(session)

    def _cancel_progress(self, request_id: str, progress: VenueCancelProgress) -> None:
        if self.on_cancel_progress is not None:
            self.on_cancel_progress(request_id, progress)     # EmergencyStop logs a listener's failure

    # ------------------------------------------------------------------ the chain market source
    async def _chain_source(self, resolved, environment: str, params) -> ChainMarketPort | ChainFeedUnavailable | None:
        """Where a session's on-chain series come from: None for a mode that holds nothing on-chain."""
        from engine.services.live.market_feed import chain_needs

        needs = chain_needs(data_requirements(params))
        if not needs:
            return None
        if self.chain_market_factory is None:
            return ChainFeedUnavailable("this service has no chain reader")
        try:
            return await self.chain_market_factory(resolved.venues, environment, needs)
        except VenueError as exc:
            raise LiveStartError(f"cannot read the chain: {exc}") from None
