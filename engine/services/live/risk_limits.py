"""Live risk limits checked every tick: a breach moves to REDUCING or HALTED."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from engine.components.risk import snapshot
from engine.domain.market import MarketView
from engine.domain.params import AaveParams
from engine.domain.portfolio import Portfolio


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_drawdown: float          # fraction of the peak value
    max_daily_loss: float        # fraction of the value at the start of the UTC day
    max_position_usdt: float     # largest single perp/spot notional
    hf_floor: float              # AAVE health factor
    margin_ratio_floor: float    # CEX equity / notional, any venue
    max_data_age_seconds: float  # market data older than this is not traded on
    breach_action: str           # "halt" | "reduce"

    @classmethod
    def from_config(cls, risk) -> "RiskLimits":
        """From engine.config's RiskConfig (mode file `risk:` section)."""
        return cls(risk.max_drawdown, risk.max_daily_loss, risk.max_position_usdt, risk.hf_floor,
                   risk.margin_ratio_floor, risk.max_data_age_seconds, risk.breach_action)


@dataclass(slots=True)
class RiskReading:
    """The numbers a tick measured."""

    value: float
    peak_value: float
    day_start_value: float
    largest_position_usdt: float
    health_factor: float = math.inf
    margin_ratios: dict[str, float] = field(default_factory=dict)
    data_age_seconds: float = 0.0
    # live: "venue symbol" -> venue position minus the strategy book's (base units). Any difference
    # means the book is wrong (a manual trade, a liquidation, a lost fill): trading on it is unsafe.
    position_mismatches: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Breach:
    limit: str
    reading: float
    threshold: float

    def __str__(self) -> str:
        return f"{self.limit} {self.reading:.6g} breaches {self.threshold:.6g}"


def evaluate(limits: RiskLimits, r: RiskReading) -> list[Breach]:
    out: list[Breach] = []
    if r.peak_value > 0:
        dd = 1.0 - r.value / r.peak_value
        if dd > limits.max_drawdown:
            out.append(Breach("max_drawdown", dd, limits.max_drawdown))
    if r.day_start_value > 0:
        loss = 1.0 - r.value / r.day_start_value
        if loss > limits.max_daily_loss:
            out.append(Breach("max_daily_loss", loss, limits.max_daily_loss))
    if r.largest_position_usdt > limits.max_position_usdt:
        out.append(Breach("max_position_usdt", r.largest_position_usdt, limits.max_position_usdt))
    if r.health_factor < limits.hf_floor:
        out.append(Breach("hf_floor", r.health_factor, limits.hf_floor))
    for venue, ratio in r.margin_ratios.items():
        if ratio < limits.margin_ratio_floor:
            out.append(Breach(f"margin_ratio_floor[{venue}]", ratio, limits.margin_ratio_floor))
    if r.data_age_seconds > limits.max_data_age_seconds:
        out.append(Breach("max_data_age_seconds", r.data_age_seconds, limits.max_data_age_seconds))
    for where, diff in r.position_mismatches.items():
        out.append(Breach(f"position_mismatch[{where}]", diff, 0.0))
    return out


class RiskWatch:
    """The limits of one session and the state their readings need (peak value, value at the start
    of the UTC day); `check` evaluates one step and keeps the breaches for the dashboard."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.peak = 0.0
        self.day_start: tuple[int, float] | None = None
        self.breaches: list[Breach] = []

    def check(self, value: float, p: Portfolio, mv: MarketView, t: int, aave: AaveParams | None,
              data_age_seconds: float, mismatches: dict[str, float]) -> list[Breach]:
        self.peak = max(self.peak, value)
        day = int(time.time() // 86400)
        if self.day_start is None or self.day_start[0] != day:
            self.day_start = (day, value)
        risk = snapshot(p, mv, t, aave)
        reading = RiskReading(value=value, peak_value=self.peak, day_start_value=self.day_start[1],
                              largest_position_usdt=risk.largest_position_usd,
                              health_factor=risk.health_factor,
                              margin_ratios={v: r for v, r in risk.margin_ratio.items() if not math.isinf(r)},
                              data_age_seconds=data_age_seconds, position_mismatches=mismatches)
        self.breaches = evaluate(self.limits, reading)
        return self.breaches

    def drawdown(self, value: float | None) -> float:
        return 0.0 if value is None or self.peak <= 0 else max(0.0, 1.0 - value / self.peak)
