"""Stress report: one mode under each scenario, against its unshocked run.

Both runs share every hour before --at, so everything is read from --at on: the lowest health
factor and margin ratio per venue, the liquidations (when, where, what triggered them), the
deleverage/rebalance actions the strategy took (and the ones a venue refused), and the P&L by
component of the whole run next to the unshocked run's.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.domain.pnl import COMPONENTS
from engine.scenarios import Scenario, ScenarioError, parse_at
from engine.services.backtest import BacktestRequest, BacktestResult, BacktestService

#: Event types that are the venues' own hourly flows, not instructions a rebalance sent.
VENUE_FLOWS = frozenset({"funding", "liquidation", "rebalance", "rejected"})


@dataclass
class Action:
    hour: int                     # hours after --at
    timestamp: str
    reason: str
    fills: int                    # instructions executed for it
    refused: str = ""             # the venue's refusal, if a step was rejected


@dataclass
class Liquidation:
    hour: int                     # hours after --at
    timestamp: str
    venue: str
    asset: str
    loss: float                   # USD lost to the liquidator / fee
    trigger: str


@dataclass
class RunReadout:
    """What one run did from --at on."""

    min_health_factor: float | None
    min_margin_ratio: dict[str, float | None]
    liquidations: list[Liquidation]
    actions: list[Action]
    min_value: float
    final_value: float
    max_drawdown: float
    pnl: float
    pnl_components: dict[str, float]


@dataclass
class StressRow:
    scenario: str
    description: str
    applicable: bool
    note: str = ""
    shocks: list[str] = field(default_factory=list)
    shocked: RunReadout | None = None
    pnl_diff: dict[str, float] = field(default_factory=dict)


@dataclass
class StressReport:
    mode: str
    currency: str
    at: str
    at_hour: int
    window: tuple[str, str]
    overrides: dict[str, Any]
    base: RunReadout
    rows: list[StressRow]

    def to_json(self) -> dict[str, Any]:
        return _clean(asdict(self))


def read_run(result: BacktestResult, at_hour: int) -> RunReadout:
    out = result.output
    hf = out.health_factor[at_hour:]
    hf_min = float(np.nanmin(hf)) if np.any(~np.isnan(hf)) else None
    margins = {}
    for venue, arr in out.margin_ratio.items():
        tail = arr[at_hour:]
        margins[venue] = float(np.nanmin(tail)) if np.any(~np.isnan(tail)) else None
    events = [e for e in result.events if e.hour >= at_hour]
    liquidations = [Liquidation(e.hour - at_hour, e.timestamp, e.venue, e.asset, e.execution_cost_usd, e.reason)
                    for e in events if e.type == "liquidation"]
    actions: list[Action] = []
    for e in events:
        if e.type == "rebalance":
            actions.append(Action(e.hour - at_hour, e.timestamp, e.reason, 0))
        elif actions and e.hour - at_hour == actions[-1].hour:
            if e.type == "rejected":
                actions[-1].refused = e.reason
            elif e.type not in VENUE_FLOWS and e.parent is None:
                actions[-1].fills += 1
    values = out.values
    peak = np.maximum.accumulate(np.concatenate([[out.initial_value], values]))[1:]
    drawdown = 1.0 - values[at_hour:] / peak[at_hour:]
    return RunReadout(
        min_health_factor=hf_min, min_margin_ratio=margins, liquidations=liquidations, actions=actions,
        min_value=float(values[at_hour:].min()), final_value=float(values[-1]),
        max_drawdown=float(max(drawdown.max(), 0.0)), pnl=float(values[-1] - out.initial_value),
        pnl_components={k: float(v) for k, v in out.ledger_totals.items()},
    )


def run_stress(service: BacktestService, request: BacktestRequest, scenarios: list[Scenario], at: Any,
               progress: Callable[[str], None] | None = None) -> StressReport:
    """The unshocked run and one run per scenario, all with the request's config and window."""
    at_ts = parse_at(at)
    base_result = service.run(replace(request, scenario=None, scenario_at=None))
    index = base_result.timestamps
    at_hour = int(index.searchsorted(at_ts))
    if at_hour >= len(index) or index[at_hour] != at_ts or at_hour == 0:
        first, last = index[0].strftime("%Y-%m-%dT%H:%MZ"), index[-1].strftime("%Y-%m-%dT%H:%MZ")
        raise ScenarioError(f"--at {at_ts:%Y-%m-%dT%H:%MZ} must be an hour of the run after its first "
                            f"(the entry): {first}..{last} UTC")
    base = read_run(base_result, at_hour)
    rows = []
    for scenario in scenarios:
        if progress is not None:
            progress(scenario.name)
        try:
            result = service.run(replace(request, scenario=scenario, scenario_at=at_ts))
        except ScenarioError as exc:
            rows.append(StressRow(scenario.name, scenario.description, False, note=str(exc).split(";")[0]))
            continue
        shocked = read_run(result, at_hour)
        described = result.summary["scenario"]
        diff = {k: shocked.pnl_components[k] - base.pnl_components[k] for k in COMPONENTS}
        rows.append(StressRow(scenario.name, scenario.description, True, note="; ".join(described["warnings"]),
                              shocks=[s["summary"] for s in described["shocks"]], shocked=shocked, pnl_diff=diff))
    s = base_result.summary
    return StressReport(mode=s["mode"], currency=s["currency"], at=at_ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        at_hour=at_hour, window=(s["start"], s["end"]), overrides=dict(request.cli_overrides),
                        base=base, rows=rows)


# ---------------------------------------------------------------------------------------------- output
def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (summary files never carry NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _fmt_hf(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def _actions_text(actions: list[Action]) -> str:
    if not actions:
        return "none"
    counts: dict[str, int] = {}
    for a in actions:
        key = a.reason.split(":")[0] + (" (refused)" if a.refused and not a.fills else "")
        counts[key] = counts.get(key, 0) + 1
    first = actions[0].hour
    return ", ".join(f"{k} x{v}" for k, v in counts.items()) + f" (first +{first} h)"


def _liq_text(liqs: list[Liquidation]) -> str:
    if not liqs:
        return "none"
    venues = sorted({liq.venue for liq in liqs})
    return f"{len(liqs)} on {'/'.join(venues)} (first +{liqs[0].hour} h)"


def format_report(report: StressReport) -> str:
    cur = report.currency
    dp = 2 if cur == "USDT" else 4
    base = report.base
    venues = list(base.min_margin_ratio)
    header = ["scenario", "min HF", *[f"min margin {v}" for v in venues], "liquidations", "actions after --at",
              "max DD", f"ΔP&L ({cur})", "Δ by component (largest)"]
    rows = [["(unshocked)", _fmt_hf(base.min_health_factor),
             *[_fmt_hf(base.min_margin_ratio[v]) for v in venues], _liq_text(base.liquidations),
             _actions_text(base.actions), f"{base.max_drawdown:.2%}", f"{0:+,.{dp}f}", f"P&L {base.pnl:+,.{dp}f}"]]
    for row in report.rows:
        if not row.applicable:
            rows.append([row.scenario, "n/a", *["" for _ in venues], "", "", "", "",
                         "not applicable: changes nothing this run reads"])
            continue
        s = row.shocked
        assert s is not None                      # an applicable row was run shocked
        total = s.pnl - base.pnl
        top = sorted((k for k in COMPONENTS if abs(row.pnl_diff[k]) >= 0.5 * 10 ** -dp),
                     key=lambda k: -abs(row.pnl_diff[k]))[:3]
        rows.append([row.scenario, _fmt_hf(s.min_health_factor),
                     *[_fmt_hf(s.min_margin_ratio.get(v)) for v in venues], _liq_text(s.liquidations),
                     _actions_text(s.actions), f"{s.max_drawdown:.2%}", f"{total:+,.{dp}f}",
                     ", ".join(f"{k} {row.pnl_diff[k]:+,.{dp}f}" for k in top) or "–"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"stress report: {report.mode} ({cur}), shocks from {report.at} (hour {report.at_hour}), "
             f"window {report.window[0]} .. {report.window[1]}"
             + (f", overrides {report.overrides}" if report.overrides else "")]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def csv_rows(report: StressReport) -> list[dict[str, Any]]:
    venues = list(report.base.min_margin_ratio)
    out = []
    for label, readout, row in [("(unshocked)", report.base, None)] + \
            [(r.scenario, r.shocked, r) for r in report.rows]:
        rec: dict[str, Any] = {"mode": report.mode, "at": report.at, "scenario": label,
                               "applicable": row is None or row.applicable, "note": row.note if row else ""}
        if readout is not None:
            rec["min_health_factor"] = readout.min_health_factor
            for v in venues:
                rec[f"min_margin_ratio.{v}"] = readout.min_margin_ratio.get(v)
            rec["liquidations"] = len(readout.liquidations)
            rec["first_liquidation_hour"] = readout.liquidations[0].hour if readout.liquidations else None
            rec["actions"] = len(readout.actions)
            rec["first_action_hour"] = readout.actions[0].hour if readout.actions else None
            rec["action_reasons"] = ";".join(a.reason for a in readout.actions)
            rec["refused_actions"] = sum(1 for a in readout.actions if a.refused)
            rec["max_drawdown"] = readout.max_drawdown
            rec["final_value"] = readout.final_value
            rec["pnl"] = readout.pnl
            rec["pnl_diff"] = readout.pnl - report.base.pnl
            for k in COMPONENTS:
                rec[f"pnl.{k}"] = readout.pnl_components[k]
                rec[f"pnl_diff.{k}"] = (row.pnl_diff[k] if row else 0.0)
        out.append(rec)
    return out


def write_report(report: StressReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "stress.json"
    js.write_text(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")
    rows = csv_rows(report)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    cs = out_dir / "stress.csv"
    with cs.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return [js, cs]


def default_out_dir(mode: str, at: pd.Timestamp) -> Path:
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    return Path("results") / "stress" / f"{mode}_at_{at:%Y%m%dT%H}_{stamp}"
