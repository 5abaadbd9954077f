"""SessionSnapshot: one live or paper session as the views see it, at one moment, immutable.

A session publishes a new snapshot after every tick, state change and emergency-stop progress
report; every live widget renders snapshots only. The status badge, the phase line and the e-stop
line are derived here, together, from one reading of the session, so they can never disagree (a
badge ACTIVE while the session awaits an acknowledgement, or a previous session's e-stop text next
to this one's state, cannot happen). The risk lines carry their distances (how far the mark can move
before liquidation, how far collateral can fall before HF 1) and the flatten plan says what a
flatten would send and what it cannot unwind: the views only lay them out.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from engine.components.risk import RiskSnapshot
from engine.domain.events import Event
from engine.domain.market import MarketView
from engine.domain.modes import ExecutionMode
from engine.domain.numeraire import Numeraire
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.services.live.blotter import OrderRecord
from engine.services.live.emergency_stop import CancelStatus, EmergencyStopReport, VenueCancelProgress
from engine.services.live.risk_limits import RiskLimits
from engine.services.live.state import TradingState

EVENTS_IN_SNAPSHOT = 1000       # the newest events a snapshot carries (the dashboard caps its table there)


@dataclass(frozen=True, slots=True)
class TickRecord:
    """One point of the dashboard's time series."""

    at: float
    value: float
    pnl: float
    components: tuple[float, ...]         # cumulative, in COMPONENTS order
    data_age_seconds: float
    state: str


@dataclass
class EStopTrack:
    """This session's last emergency stop as it goes (a copy of each venue's progress)."""

    reason: str
    pressed_at: float
    halted_ms: float
    venues: dict[str, VenueCancelProgress]
    report: EmergencyStopReport | None = None


@dataclass(frozen=True, slots=True)
class Badge:
    text: str                   # ACTIVE | REDUCING | HALTED | AWAITING ACK | STARTING | STOPPED
    tone: str                   # ok | warn | bad | dim (the colour a view gives it)


@dataclass(frozen=True, slots=True)
class RiskLine:
    metric: str
    value: str
    limit: str = ""
    severity: str | None = None     # None | "warn" | "bad"
    tip: str = ""
    distance: float | None = None   # the fraction the market can move before the limit or liquidation


@dataclass(frozen=True, slots=True)
class PositionLine:
    """One valued holding. ``value`` is what the row adds to the book's value in USD(T) (a perp adds its
    unrealized P&L, AAVE debt a negative amount), so the rows of a snapshot sum to the book's value."""

    venue: str
    kind: str                   # cash | spot | perp | token | supply | debt
    asset: str
    size: float                 # units of ``asset`` (debt negative: owed; supply/debt as underlying)
    entry: float | None = None
    price: float | None = None  # USD(T) per unit (a perp's mark)
    unrealized: float | None = None
    value: float | None = None  # USD(T); None before the first market reading


@dataclass(frozen=True, slots=True)
class FlattenPlan:
    close: tuple[str, ...]            # orders a flatten sends, perps first (reduce-only), then spot
    cannot_unwind: tuple[str, ...]    # on-chain legs it cannot unwind, said plainly


@dataclass(frozen=True, slots=True)
class EStopLine:
    """This session's last emergency stop."""

    reason: str
    pressed_at: float
    halted_ms: float
    venues: tuple[VenueCancelProgress, ...]
    finished: bool
    finished_ms: float | None
    note: str
    summary: str


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    request_id: str
    mode: str
    execution: ExecutionMode
    environment: str
    currency: str
    capital: float
    phase: str                        # SessionPhase value
    state: TradingState
    state_reason: str                 # why the state is what it is (the last change's reason)
    badge: Badge
    phase_line: str                   # phase and state in words, consistent with the badge
    running: bool
    taken_at: float                   # time.time() of this snapshot
    started_at: float
    tick_seconds: float
    last_heartbeat: float | None
    heartbeat_age_seconds: float | None
    data_age_seconds: float | None
    max_data_age_seconds: float
    ticks: int
    value: float | None
    pnl: float | None
    trades: int
    drawdown: float
    reconciliation_error: float
    pnl_components: Mapping[str, float]
    breaches: tuple[str, ...]
    warnings: tuple[str, ...]
    last_error: str
    dead_man: Mapping[str, str]
    positions: tuple[PositionLine, ...]
    risk_lines: tuple[RiskLine, ...]
    flatten: FlattenPlan
    estop: EStopLine | None
    awaiting_ack: bool
    recovery_lines: tuple[str, ...]
    orders: tuple[OrderRecord, ...]
    events: tuple[Event, ...]         # the newest EVENTS_IN_SNAPSHOT, oldest first
    events_total: int
    history: tuple[TickRecord, ...]   # the dashboard's time series (bounded)
    #: orders whose outcome is being looked up by client id (the program waits for each)
    unresolved_orders: tuple[str, ...] = ()
    journal: str = "journal: ok"      # the journal writer's state in words
    #: why new risk waits ("" when it does not): a transaction of the wallet is pending
    risk_hold: str = ""
    #: the wallet's pending transactions (what Cancel pending transactions replaces)
    pending_transactions: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Not stopped (starting, awaiting acknowledgement or running)."""
        return self.phase != "stopped"

    def heartbeat_age(self, now: float | None = None) -> float | None:
        """Loop age at ``now`` (the views keep it current between snapshots)."""
        if self.last_heartbeat is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.last_heartbeat)

    @property
    def heartbeat_stale_after(self) -> float:
        return 3 * self.tick_seconds + 1


def badge(phase: str, state: TradingState, reason: str, waiting: int = 0, hold: str = "") -> tuple[Badge, str]:
    """The badge and the phase line, from the same facts. ``waiting``: orders whose outcome is being
    looked up (the strategy's program waits for them; nothing else is sent); ``hold``: why new risk
    waits for a pending wallet transaction."""
    shown, line = _badge(phase, state, reason)
    if hold and phase in ("running", "awaiting_acknowledgement"):
        line += f"; {hold}"
    if waiting and phase == "running":
        line += (f"; WAITING: the outcome of {waiting} order{'s' if waiting > 1 else ''} is unknown, looking "
                 f"{'them' if waiting > 1 else 'it'} up by client order id before anything else is sent")
    return shown, line


def _badge(phase: str, state: TradingState, reason: str) -> tuple[Badge, str]:
    if phase == "stopped":
        return Badge("STOPPED", "dim"), f"stopped (trading was {state.value} when the session stopped)"
    if phase == "starting":
        return Badge("STARTING", "dim"), "starting: connecting to the venues"
    if phase == "awaiting_acknowledgement":
        return (Badge("AWAITING ACK", "warn"),
                "awaiting acknowledgement: restart recovery found something; nothing trades until you acknowledge")
    if state is TradingState.HALTED:
        return Badge("HALTED", "bad"), f"running, HALTED: nothing but cancels ({reason})"
    if state is TradingState.REDUCING:
        return Badge("REDUCING", "warn"), f"running, REDUCING: only risk-reducing orders ({reason})"
    return Badge("ACTIVE", "ok"), "running, ACTIVE"


def estop_line(track: EStopTrack | None) -> EStopLine | None:
    if track is None:
        return None
    venues = tuple(replace(p) for p in track.venues.values())
    report = track.report
    when = time.strftime("%H:%M:%S", time.localtime(track.pressed_at))
    if report is None:
        summary = f"Pressed at {when}: HALTED in {track.halted_ms:.2f} ms; cancelling open orders on every venue…"
    else:
        done = sum(1 for p in venues if p.status is CancelStatus.DONE)
        summary = (f"Emergency stop at {when}: HALTED in {track.halted_ms:.2f} ms; "
                   f"{done}/{len(venues)} venue(s) confirmed their cancels")
        if venues:
            summary += f" within {report.finished_after_ms:.0f} ms"
        bad = [f"{p.venue} {p.status.value}" for p in venues if p.status in (CancelStatus.FAILED, CancelStatus.TIMEOUT)]
        if bad:
            summary += f"; NOT confirmed: {', '.join(bad)} (open orders may remain there)"
        if report.note:
            summary += f". {report.note}"
        summary += "."
    return EStopLine(track.reason, track.pressed_at, track.halted_ms, venues, report is not None,
                     report.finished_after_ms if report is not None else None,
                     report.note if report is not None else "", summary)


def position_lines(p: Portfolio, mv: MarketView, t: int) -> tuple[PositionLine, ...]:
    """Every valued holding of the book, one row each, marked at the latest prices: wallet tokens, AAVE
    supply and debt per reserve (underlying = scaled balance x the reserve's index, as the valuation
    counts them), then each CEX account's cash, spot and perps. Before the first market reading
    (``t < 0``) rows carry amounts only."""
    marked = t >= 0
    rows: list[PositionLine] = []
    w = p.wallet

    def priced(venue: str, kind: str, asset: str, amount: float) -> PositionLine:
        price = mv.price_usd(asset, t) if marked else None
        return PositionLine(venue, kind, asset, amount, price=price, value=None if price is None else amount * price)

    for token, amount in w.tokens.items():
        if amount:
            rows.append(priced("wallet", "token", token, amount))
    for reserve, scaled in w.supply_scaled.items():
        if scaled:
            index = mv.supply_index[reserve][t] if marked else None
            rows.append(priced("aave_v3", "supply", reserve, scaled * index) if index is not None
                        else PositionLine("aave_v3", "supply", reserve, scaled))
    for reserve, scaled in w.debt_scaled.items():
        if scaled:
            index = mv.borrow_index[reserve][t] if marked else None
            rows.append(priced("aave_v3", "debt", reserve, -scaled * index) if index is not None
                        else PositionLine("aave_v3", "debt", reserve, -scaled))
    for venue, acct in p.cex.items():
        rows.append(PositionLine(venue, "cash", "USDT", acct.usdt, price=1.0, value=acct.usdt))
        for asset, qty in acct.spot.items():
            if qty:
                rows.append(priced(venue, "spot", asset, qty))
        for asset, pos in acct.perps.items():
            if pos.size:
                mark = mv.perp[(venue, asset)][t] if marked and (venue, asset) in mv.perp else None
                unrealized = None if mark is None else pos.unrealized(mark)
                rows.append(PositionLine(venue, "perp", asset, pos.size, pos.entry_price, mark, unrealized, unrealized))
    return tuple(rows)


def flatten_plan(p: Portfolio, lst: str | None) -> FlattenPlan:
    """What a flatten would send (perps first, reduce-only, then spot) and the on-chain legs it
    cannot unwind yet."""
    close: list[str] = []
    for venue, acct in p.cex.items():
        for asset, pos in acct.perps.items():
            if pos.size:
                close.append(f"{venue} {asset} perp {'buy' if pos.size < 0 else 'sell'} {abs(pos.size):.8g} "
                             "(reduce-only)")
    for venue, acct in p.cex.items():
        for asset, qty in acct.spot.items():
            if qty > 0:
                close.append(f"{venue} {asset} spot sell {qty:.8g}")
    cannot: list[str] = []
    w = p.wallet
    if any(w.debt_scaled.values()):
        cannot.append("AAVE leverage loop (LST collateral and WETH debt)")
    elif any(w.supply_scaled.values()):
        cannot.append("AAVE supply (" + ", ".join(k for k, v in w.supply_scaled.items() if v) + ")")
    if lst and w.tokens.get(lst, 0.0) > 0:
        cannot.append(f"{lst} holding ({w.tokens[lst]:.6g})")
    return FlattenPlan(tuple(close), tuple(cannot))


# ---- risk lines --------------------------------------------------------------------------------------
def perp_liquidation_move(margin: float, maintenance: float, short: bool) -> float | None:
    """Price move (fraction) that takes a perp account from margin ratio `margin` (equity/notional) to
    the maintenance ratio: a short loses as the mark rises, a long as it falls.

    Short of q at mark P, equity E = m·qP: at P' equity E - q(P'-P) = mm·qP'  =>  P'/P = (1+m)/(1+mm).
    Long: E + q(P'-P) = mm·qP'  =>  P'/P = (1-m)/(1-mm)."""
    if not math.isfinite(margin):
        return None
    if short:
        return (1 + margin) / (1 + maintenance) - 1
    return 1 - (1 - margin) / (1 - maintenance) if maintenance < 1 else None


def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f}%"


def _num(value: float, digits: int = 6) -> str:
    if abs(value) >= 1 or value == 0:
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return f"{value:.{digits}g}"


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """What the risk lines are computed from (one session at one moment)."""

    portfolio: Portfolio
    market: MarketView
    params: RunParams
    limits: RiskLimits
    numeraire: Numeraire
    value: float | None
    drawdown: float
    data_age: float | None


def risk_lines(inputs: RiskInputs, risk: RiskSnapshot | None) -> tuple[RiskLine, ...]:
    """Health factor, LTV, margin ratio per venue with the distance to liquidation, net delta (on-chain
    vs CEX), drawdown and data age, each against the session's limits."""
    limits = inputs.limits
    drawdown = inputs.drawdown
    lines: list[RiskLine] = []
    if risk is not None:
        lines.append(_health_factor_line(risk.health_factor, limits.hf_floor))
        lines.append(RiskLine("LTV", pct(risk.ltv) if risk.ltv else "0", ""))
        lines.extend(_margin_lines(inputs, risk))
        lines.extend(_delta_lines(inputs, risk))
    lines.append(RiskLine("Drawdown", pct(drawdown), f"limit {pct(limits.max_drawdown)}",
                          "bad" if drawdown > limits.max_drawdown else None))
    age = inputs.data_age
    lines.append(RiskLine("Data age", "–" if age is None else f"{age:.1f} s", f"limit {limits.max_data_age_seconds:g} s",
                          "bad" if age is not None and age > limits.max_data_age_seconds else None))
    lines.append(RiskLine("Breach action", limits.breach_action, "what a breached limit does"))
    return tuple(lines)


def _health_factor_line(hf: float, floor: float) -> RiskLine:
    if math.isinf(hf):
        return RiskLine("Health factor", "∞ (no debt)", f"floor {floor:g}")
    severity = "bad" if hf < floor else "warn" if hf < floor * 1.05 else None
    fall = max(0.0, 1 - 1 / hf)
    return RiskLine("Health factor", f"{hf:.3f}", f"floor {floor:g} · collateral can fall {pct(fall)} vs debt "
                    "before HF 1", severity, distance=fall)


def _margin_lines(s: RiskInputs, risk: RiskSnapshot) -> list[RiskLine]:
    floor = s.limits.margin_ratio_floor
    out: list[RiskLine] = []
    for venue, ratio in sorted(risk.margin_ratio.items()):
        acct = s.portfolio.cex.get(venue)
        size = sum(p.size for p in acct.perps.values()) if acct else 0.0
        cex = s.params.cex.get(venue)
        if math.isinf(ratio) or cex is None:
            out.append(RiskLine(f"Margin ratio {venue}", "∞ (flat)" if math.isinf(ratio) else f"{ratio:.3f}",
                                f"floor {floor:g}"))
            continue
        move = perp_liquidation_move(ratio, cex.maintenance_margin_ratio, size < 0)
        severity = "bad" if ratio < floor else "warn" if ratio < cex.margin_warning_ratio else None
        out.append(RiskLine(
            f"Margin ratio {venue}", f"{ratio:.3f}",
            f"floor {floor:g} · maintenance {cex.maintenance_margin_ratio:g} · mark can "
            f"{'rise' if size < 0 else 'fall'} {pct(move)} before liquidation", severity,
            "equity / perp notional of the venue account (USDT + unrealized P&L)", move))
    return out


def _delta_lines(s: RiskInputs, risk: RiskSnapshot) -> list[RiskLine]:
    sp = s.params.strategy
    value = s.value
    underlying = sp.underlying or "ETH"
    cex_units = risk.delta_cex.get(underlying, 0.0)
    onchain = risk.delta_onchain_eth if underlying == "ETH" else 0.0
    net = onchain + cex_units
    view = s.market
    price = view.spot[underlying][-1] if view.timestamps and view.spot.get(underlying) else None
    per_venue = ", ".join(f"{v}: spot {_num(a.spot.get(underlying, 0.0))}, perp "
                          f"{_num(a.perps[underlying].size if underlying in a.perps else 0.0)}"
                          for v, a in s.portfolio.cex.items())
    drift = None
    if price and value:
        value_usd = s.numeraire.to_usd(value, len(view.timestamps) - 1)
        drift = abs(net) * price / value_usd if value_usd > 0 else None
    return [
        RiskLine(f"Delta on-chain ({underlying})", f"{onchain:+.6f}", "wallet, LSTs and AAVE net of debt"),
        RiskLine(f"Delta CEX ({underlying})", f"{cex_units:+.6f}", per_venue, tip=per_venue),
        RiskLine(f"Net delta ({underlying})", f"{net:+.6f}",
                 ("" if price is None else f"≈ {net * price:+,.2f} USD · ")
                 + f"rebalance above {pct(sp.delta_drift_trigger)} of value"
                 + ("" if drift is None else f" (now {pct(drift)})"),
                 "warn" if drift is not None and drift > sp.delta_drift_trigger else None,
                 distance=None if drift is None else sp.delta_drift_trigger - drift),
    ]
