"""LiveTradingService (DESIGN §7): start/stop sessions, status, performance, risk, emergency stop,
reset and flatten. One running strategy per request id, all on the asyncio (qasync) loop.

Venue wiring is injected (`venue_factory`), like the backtest: the engine imports no venue SDK.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from engine.config import load_config
from engine.data import HistoricalDataProvider
from engine.domain.instructions import Instruction, Op
from engine.domain.venue_ports import CexVenuePort
from engine.services.live.emergency_stop import EmergencyStopReport, VenueCancelProgress
from engine.services.live.journal import Journal
from engine.services.live.market_feed import LiveMarketFeed
from engine.services.live.risk_limits import Breach, RiskLimits
from engine.services.live.session import LiveSession, SessionStatus
from engine.services.run_params import CEX_VENUES, build_run_params, data_requirements
from engine.strategies import STRATEGIES

EXECUTIONS = ("paper", "live")
ENVIRONMENTS = ("testnet", "production")


class LiveStartError(ValueError):
    """The session cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class LiveStartRequest:
    mode: str
    execution: str = "paper"                     # paper | live
    environment: str = "testnet"                 # testnet | production
    capital: float | None = None
    share_class: str | None = None
    risk_overrides: dict[str, Any] = field(default_factory=dict)      # e.g. {"max_drawdown": 0.05}
    config_overrides: dict[str, Any] = field(default_factory=dict)    # dotted keys, like the CLI
    confirm_production: bool = False
    tick_seconds: float = 5.0
    cancel_timeout_seconds: float = 3.0
    data_timeout_seconds: float = 5.0


@dataclass
class FlattenReport:
    closed: list[str] = field(default_factory=list)          # "binance ETH/USDT:USDT buy 1.2 (reduce-only)"
    failed: list[str] = field(default_factory=list)
    cannot_unwind: list[str] = field(default_factory=list)   # on-chain legs, said plainly


class LiveTradingService:
    def __init__(self, provider: HistoricalDataProvider,
                 venue_factory: Callable[[str, str], CexVenuePort],
                 world_factory: Callable[..., Any], rejected_exc: type[Exception],
                 journal_factory: Callable[[str], Journal],
                 checks_runner: Callable[[str, str], Awaitable[bool]] | None = None) -> None:
        self.provider = provider
        self.venue_factory = venue_factory
        self.world_factory = world_factory
        self.rejected_exc = rejected_exc
        self.journal_factory = journal_factory
        self.checks_runner = checks_runner
        self.sessions: dict[str, LiveSession] = {}
        self.on_update: Callable[[LiveSession], None] | None = None
        self.on_cancel_progress: Callable[[str, VenueCancelProgress], None] | None = None

    # ------------------------------------------------------------------ start / stop
    async def start(self, req: LiveStartRequest) -> str:
        if req.execution not in EXECUTIONS:
            raise LiveStartError(f"execution {req.execution!r} (allowed: {', '.join(EXECUTIONS)})")
        if req.environment not in ENVIRONMENTS:
            raise LiveStartError(f"environment {req.environment!r} (allowed: {', '.join(ENVIRONMENTS)})")
        overrides = dict(req.config_overrides)
        overrides.update({f"risk.{k}": v for k, v in req.risk_overrides.items()})
        if req.share_class is not None:
            overrides["share_class"] = req.share_class
        resolved = load_config(req.mode, cli_overrides=overrides)
        params = build_run_params(resolved, req.capital)
        sp = params.strategy
        onchain = [leg for leg, on in (("AAVE lending", bool(sp.lending_asset)), (f"{sp.lst} staking", bool(sp.lst)),
                                       ("AAVE leverage loop", sp.leverage)) if on]
        if req.execution == "live" and onchain:
            raise LiveStartError(
                f"{req.mode} has on-chain legs ({', '.join(onchain)}); live mode only sends CEX orders until "
                "on-chain execution exists — run it in paper mode")
        if req.execution == "live" and req.environment == "production":
            if not req.confirm_production:
                raise LiveStartError("production live trading needs an explicit confirmation (confirm_production)")
            if self.checks_runner is None or not await self.checks_runner(req.mode, req.environment):
                raise LiveStartError("production live trading needs a passing check-venues run first "
                                     f"(python main.py check-venues --mode {req.mode} --env production)")
        cex_names = [v for v in resolved.required_venues() if v in CEX_VENUES]
        venues: Mapping[str, CexVenuePort] = {v: self.venue_factory(v, req.environment) for v in cex_names}
        seed = self.provider.load(data_requirements(params))
        feed = LiveMarketFeed(params, venues, seed, req.data_timeout_seconds)
        strategy = STRATEGIES[sp.mode](params)
        session = LiveSession(
            mode=req.mode, execution=req.execution, environment=req.environment, params=params,
            strategy=strategy, feed=feed, venues=venues, limits=RiskLimits.from_config(resolved.mode.risk),
            journal=self.journal_factory(req.environment), world_factory=self.world_factory,
            rejected_exc=self.rejected_exc, tick_seconds=req.tick_seconds,
            cancel_timeout_seconds=req.cancel_timeout_seconds, on_update=self._updated,
            on_cancel_progress=lambda p: self._cancel_progress(session, p))
        self.sessions[session.request_id] = session
        session.start()
        return session.request_id

    async def stop(self, request_id: str) -> None:
        session = self._session(request_id)
        await session.stop()
        await asyncio.gather(*(p.close() for p in session.venues.values()), return_exceptions=True)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(rid) for rid in list(self.sessions)), return_exceptions=True)

    # ------------------------------------------------------------------ reporting
    def status(self, request_id: str) -> SessionStatus:
        return self._session(request_id).status()

    def performance(self, request_id: str) -> dict[str, Any]:
        s = self._session(request_id)
        st = s.status()
        capital = s.params.strategy.capital
        return {
            "value": st.value, "pnl": st.pnl, "return": None if st.value is None else st.value / capital - 1.0,
            "trades": st.trades, "drawdown": st.drawdown, "uptime_seconds": time.time() - s.started_at,
            "last_heartbeat": st.last_heartbeat, "data_age_seconds": st.data_age_seconds,
            "currency": st.currency, "state": st.state,
        }

    def risk_check(self, request_id: str) -> list[Breach]:
        return list(self._session(request_id).breaches)

    # ------------------------------------------------------------------ safety
    def halt_all_now(self, reason: str) -> None:
        """The synchronous half of an emergency stop: every session HALTED before anything awaits."""
        for s in self.sessions.values():
            s.estop.halt_now(reason)

    async def emergency_stop(self, request_id: str | None = None,
                             reason: str = "operator emergency stop") -> dict[str, EmergencyStopReport]:
        """HALT now, then cancel-all on every venue of every (or one) session concurrently."""
        targets = [self._session(request_id)] if request_id else list(self.sessions.values())
        for s in targets:
            s.estop.halt_now(reason)
        reports = await asyncio.gather(*(s.emergency_stop(reason) for s in targets))
        return {s.request_id: r for s, r in zip(targets, reports)}

    def reset(self, request_id: str, reason: str = "operator reset") -> None:
        self._session(request_id).reset(reason)

    async def flatten(self, request_id: str, confirmed: bool) -> FlattenReport:
        """Close the CEX legs (reduce-only perps, spot sold) — a separate, confirmed action. On-chain
        legs cannot be unwound yet: the report names them instead of pretending."""
        if not confirmed:
            raise LiveStartError("flatten needs an explicit confirmation")
        s = self._session(request_id)
        report = FlattenReport()
        t = len(s.feed.view.timestamps) - 1
        if t < 0:
            return report
        s.state.reduce_for_flatten("confirmed flatten")
        try:
            for venue, acct in list(s.portfolio.cex.items()):
                for asset, pos in list(acct.perps.items()):
                    if pos.size:
                        await self._flatten_one(s, Instruction(Op.PERP_TRADE, venue, asset, -pos.size, reason="flatten"),
                                                t, report)
                for asset, qty in list(acct.spot.items()):
                    if qty > 0:
                        await self._flatten_one(s, Instruction(Op.SPOT_TRADE, venue, asset, -qty, reason="flatten"),
                                                t, report)
        finally:
            s.state.halt("flatten finished")
        w = s.portfolio.wallet
        sp = s.params.strategy
        if any(w.debt_scaled.values()):
            report.cannot_unwind.append("AAVE leverage loop (collateral and WETH debt): deleverage on-chain by hand")
        elif any(w.supply_scaled.values()):
            report.cannot_unwind.append("AAVE supply: withdraw on-chain by hand")
        if sp.lst and w.tokens.get(sp.lst, 0.0) > 0:
            report.cannot_unwind.append(f"{sp.lst} holding: exit the LST on-chain by hand")
        return report

    async def _flatten_one(self, s: LiveSession, ins: Instruction, t: int, report: FlattenReport) -> None:
        desc = f"{ins.venue} {ins.asset} {'buy' if ins.amount > 0 else 'sell'} {abs(ins.amount):.8g}"
        try:
            if s.execution == "paper":
                s.paper.execute(ins, t)
            else:
                await s.live_exec.execute(ins, t)
            report.closed.append(desc + (" (reduce-only)" if ins.op is Op.PERP_TRADE else ""))
        except Exception as exc:
            report.failed.append(f"{desc}: {exc}")

    # ------------------------------------------------------------------ helpers
    def _session(self, request_id: str) -> LiveSession:
        try:
            return self.sessions[request_id]
        except KeyError:
            raise KeyError(f"no live session {request_id!r} (running: {', '.join(self.sessions) or 'none'})") from None

    def _updated(self, session: LiveSession) -> None:
        if self.on_update is not None:
            self.on_update(session)

    def _cancel_progress(self, session: LiveSession, progress: VenueCancelProgress) -> None:
        if self.on_cancel_progress is not None:
            self.on_cancel_progress(session.request_id, progress)
