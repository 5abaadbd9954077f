"""BacktestService: config -> data -> strategy -> simulation -> result (docs/ARCHITECTURE.md, Layers).

The one entry point the CLI and the app use. Venue wiring is injected (`world_factory`), so the engine
imports nothing from venues/ (dependency rule: engine -> nothing of ours outside engine).
"""
from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from engine.components import balance_sheet
from engine.components.exit_value import ExitValue, exit_value
from engine.components.rewards import quarterly_reward_apy
from engine.config import load_config
from engine.data import AlignedMarketData, HistoricalDataProvider
from engine.domain.events import Event
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.pnl import COMPONENTS
from engine.math import metrics
from engine.services import provenance
from engine.scenarios import Scenario, ShockedMarket, apply_scenario
from engine.services.run_params import build_run_params, data_requirements
from engine.execution.cycle import WorldFactory
from engine.services.simulation import SimulationOutput, simulate
from engine.strategies import STRATEGIES
from engine.strategies.capacity import capacity_warning


@dataclass(frozen=True)
class BacktestRequest:
    mode: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    capital: float | None = None
    override_file: Path | None = None
    cli_overrides: dict[str, Any] = field(default_factory=dict)
    config_root: Path | None = None
    #: a stress scenario applied to the market data from the hour `scenario_at` on
    scenario: Scenario | None = None
    scenario_at: pd.Timestamp | str | None = None


@dataclass
class BacktestResult:
    summary: dict[str, Any]
    timestamps: pd.DatetimeIndex
    output: SimulationOutput
    params: RunParams
    eth_price: np.ndarray
    lst_peg: np.ndarray | None              # market / oracle rate of the mode's LST
    underlying_price: np.ndarray            # spot price of the hedged asset (ETH when unhedged)
    config_warnings: list[str]
    data: AlignedMarketData | None = None   # the aligned inputs (prices for the balance sheet)

    @property
    def run_id(self) -> str:
        return self.summary["run_id"]

    @property
    def events(self) -> list[Event]:
        return self.output.events.events

    def balance_sheet(self) -> balance_sheet.BalanceSheet:
        """Every holding per venue per hour, in units and in the share currency (built on demand:
        the run itself only keeps snapshots of the hours its holdings changed)."""
        if self.data is None:
            raise RuntimeError("this result carries no aligned data to value its balance sheet with")
        return balance_sheet.build(self.output.holdings, len(self.output.values), self.data.columns,
                                   self.params.strategy.currency)

    def cumulative_components(self) -> dict[str, np.ndarray]:
        return {name: np.cumsum(self.output.components[:, i]) for i, name in enumerate(COMPONENTS)}


#: Market views kept per service (the aligned frame after any scenario, its hour labels and its
#: MarketView). A sweep worker runs many configurations of one data set: building the view (the
#: columns as Python lists, every hour's label formatted) is tens of milliseconds a trial, and the
#: view is read-only during a run, so one per data set and scenario is built once.
VIEW_CACHE_SIZE = 3


class BacktestService:
    def __init__(self, provider: HistoricalDataProvider,
                 world_factory: WorldFactory,
                 rejected_exc: type[Exception]) -> None:
        self.provider = provider
        self.world_factory = world_factory
        self.rejected_exc = rejected_exc
        self._views: OrderedDict[tuple, tuple[AlignedMarketData, ShockedMarket | None, MarketView]] = OrderedDict()

    def prepare(self, request: BacktestRequest) -> tuple[Any, RunParams, AlignedMarketData, float]:
        """Load and validate config, then the aligned data. Raises ConfigError / DataRangeError."""
        resolved = load_config(request.mode, config_root=request.config_root,
                               override_file=request.override_file, cli_overrides=request.cli_overrides)
        params = build_run_params(resolved, request.capital)
        if params.strategy.capital <= 0:
            raise ValueError(f"capital must be positive, got {params.strategy.capital}")
        started = time.perf_counter()
        data = self.provider.load(data_requirements(params), request.start, request.end)
        return resolved, params, data, time.perf_counter() - started

    def data_cached(self, request: BacktestRequest) -> bool:
        """Is the aligned data of this request already in the cache? (Raises like `prepare`.)"""
        resolved = load_config(request.mode, config_root=request.config_root,
                               override_file=request.override_file, cli_overrides=request.cli_overrides)
        params = build_run_params(resolved, request.capital)
        return self.provider.is_cached(data_requirements(params), request.start, request.end)

    def run(self, request: BacktestRequest, progress: Callable[[int, int], None] | None = None,
            should_cancel: Callable[[], bool] | None = None,
            on_data: Callable[[AlignedMarketData], None] | None = None,
            stepwise: bool = False) -> BacktestResult:
        """``on_data`` sees the aligned data before the simulation starts (the CLI prints the
        substitute-data warnings there, at the start of the run). ``stepwise``: step every hour
        (the reference for the closed-form quiet stretches, engine/execution/quiet.py)."""
        run_id = provenance.new_run_id()
        resolved, params, data, load_seconds = self.prepare(request)
        if on_data is not None:
            on_data(data)
        if len(data) < 2:
            raise ValueError("the window must hold at least two hours")
        data, shocked, mv = self._market(request, resolved, params, data)
        strategy = STRATEGIES[params.strategy.mode](params)
        out = simulate(strategy, params, mv, self.world_factory, self.rejected_exc, progress, should_cancel,
                       stepwise=stepwise)
        lst = params.strategy.lst
        peg = data[f"lst.{lst}.market"] / data[f"lst.{lst}.oracle"] if lst else None
        warnings = [f"{w.file}: {w.key}: {w.message}" for w in resolved.warnings]
        capacity = capacity_warning(params)
        if capacity is not None:
            warnings.append(capacity)
        warnings += out.risk_warnings
        assert out.final_portfolio is not None
        exit_ = exit_value(out.final_portfolio, mv, len(data) - 1, params)
        summary = build_summary(resolved, params, data, out, load_seconds, warnings, exit_)
        summary.update(run_id=run_id, code_version=provenance.code_version(),
                       config=provenance.effective_config(resolved), overrides=provenance.overrides(request),
                       data_files=self.provider.data_files(data_requirements(params)))
        summary["scenario"] = shocked.describe() if shocked is not None else None
        underlying = params.strategy.underlying or "ETH"
        return BacktestResult(summary, data.index, out, params, np.asarray(data["spot.ETH"]), peg,
                              np.asarray(data[f"spot.{underlying}"]), warnings, data)


    def _market(self, request: BacktestRequest, resolved: Any, params: RunParams, data: AlignedMarketData
                ) -> tuple[AlignedMarketData, ShockedMarket | None, MarketView]:
        """The run's frame (after its scenario) and MarketView, from the view cache when the same
        data set (by content key), scenario and venues were prepared before."""
        venues = tuple(sorted(resolved.required_venues()))
        scenario = json.dumps(request.scenario.digest_payload(), sort_keys=True, default=str) \
            if request.scenario is not None else None
        key = (self.provider.data_key(data_requirements(params), request.start, request.end), scenario,
               str(request.scenario_at), venues)
        hit = self._views.get(key)
        if hit is not None:
            self._views.move_to_end(key)
            return hit
        shocked = shock_market(request, resolved, data)
        frame = shocked.data if shocked is not None else data
        entry = (frame, shocked, MarketView.from_columns(frame, frame.index.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()))
        self._views[key] = entry
        while len(self._views) > VIEW_CACHE_SIZE:
            self._views.popitem(last=False)
        return entry


def shock_market(request: BacktestRequest, resolved: Any, data: AlignedMarketData) -> ShockedMarket | None:
    """The request's scenario applied to a copy of the aligned data (None without a scenario)."""
    if request.scenario is None:
        if request.scenario_at is not None:
            raise ValueError("--at is only meaningful with a scenario")
        return None
    if request.scenario_at is None:
        raise ValueError(f"scenario {request.scenario.name!r} needs an hour to start at (--at)")
    return apply_scenario(data, request.scenario, request.scenario_at, venues=resolved.required_venues())


def _none_if_nan(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else float(x)


def build_summary(resolved: Any, params: RunParams, data: AlignedMarketData, out: SimulationOutput,
                  load_seconds: float, warnings: list[str], exit_: ExitValue) -> dict[str, Any]:
    """The run's figures. Returns, drawdown, volatility and Sharpe use the mark-to-market value
    (LSTs at their market rate, so a depeg is a drawdown); volatility and Sharpe from daily closes."""
    sp = params.strategy
    values = out.values
    hours = len(values)
    initial, final = out.initial_value, float(values[-1])
    # The return series starts from the capital (before entry costs) so they count in the metrics.
    series = np.concatenate([[initial], values])
    day = np.asarray(data.index.asi8 // (86_400 * 10**9))
    daily = np.concatenate([[initial], metrics.daily_closes(values, day)])
    margin_mins = [np.nanmin(a) for a in out.margin_ratio.values() if np.any(~np.isnan(a))]
    hf_valid = out.health_factor[~np.isnan(out.health_factor)]
    totals = out.ledger_totals
    return {
        "mode": sp.mode,
        "share_class": resolved.share_class.name,
        "currency": sp.currency,
        "start": data.index[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": data.index[-1].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hours": hours,
        "capital": sp.capital,
        "initial_value": initial,
        "final_value": final,
        "final_value_protocol": float(out.values_protocol[-1]),
        "exit_value": exit_.value,
        "exit_costs": exit_.costs,
        "exit_notes": exit_.notes,
        "pnl": final - initial,
        "pnl_components": totals,
        "reconciliation_error": float(np.max(out.reconciliation)),
        "total_return": final / initial - 1.0,
        "apr": metrics.apr(initial, final, hours),
        "apy": metrics.apy(initial, final, hours),
        "volatility": metrics.volatility(daily),
        "sharpe": _none_if_nan(metrics.sharpe(daily)),
        "max_drawdown": metrics.max_drawdown(series),
        "max_drawdown_protocol": metrics.max_drawdown(np.concatenate([[initial], out.values_protocol])),
        "min_health_factor": float(hf_valid.min()) if hf_valid.size else None,
        "min_margin_ratio": float(min(margin_mins)) if margin_mins else None,
        # The hourly check's reading, before that hour's rebalance: what a move did to each venue
        # (the live circuit breaker compares this one with risk.margin_ratio_floor).
        "min_margin_ratio_at_check": {v: float(x) for v, x in sorted(out.margin_ratio_at_check.items())
                                      if not math.isinf(x)},
        "liquidations": out.liquidation_count,
        "rebalances": len(out.rebalance_hours),
        "hedge_notional_avg": float(np.mean(out.hedge_notional)) if sp.hedge else None,
        "funding_earned": totals["funding"],
        "costs_paid": -(totals["execution_costs"] + totals["gas"]),
        "rewards": _rewards_summary(sp.rewards_mode, out, data),
        "events": len(out.events),
        "data_fallbacks": data.provenance_summary(),
        "data_warnings": data.substitute_warnings(),
        "data_notes": list(data.notes),
        "config_warnings": warnings,
        "engine_seconds": out.engine_seconds,
        "engine_cpu_seconds": out.engine_cpu_seconds,
        "data_load_seconds": load_seconds,
        "hours_per_second": hours / out.engine_seconds if out.engine_seconds > 0 else None,
    }


def _rewards_summary(rewards_mode: str, out: SimulationOutput, data: AlignedMarketData) -> dict[str, Any]:
    """Reward payments of the run: totals, every payout as settled, what was left out and why, and
    the reward APY by quarter beside DeFiLlama's published one."""
    book = out.rewards
    block: dict[str, Any] = {"mode": rewards_mode}
    if book is None:
        return block
    code = np.asarray(data.index.year * 4 + (data.index.month - 1) // 3, dtype=np.int64)
    first = int(code[0])
    quarter_of_hour = code - first
    quarters = [f"{c // 4}Q{c % 4 + 1}" for c in range(first, int(code[-1]) + 1)]
    by_quarter: dict[str, list[float]] = {}
    if len(data.reward_benchmark):
        days = pd.to_datetime(np.asarray([d for d, _ in data.reward_benchmark]), unit="s")
        labels = [f"{y}Q{q}" for y, q in zip(days.year.tolist(), ((days.month - 1) // 3 + 1).tolist())]
        for label, (_, apy_pct) in zip(labels, data.reward_benchmark):
            by_quarter.setdefault(label, []).append(apy_pct)
    benchmark = {q: (float(np.mean(v)), len(v)) for q, v in by_quarter.items()}
    block.update(book.totals())
    block["excluded_reasons"] = [f"{x.payout.label}: {x.payout.price_source}; not paid"
                                 for x in book.payments if x.status == "excluded"]
    block["unclaimed_reasons"] = [f"{x.payout.label}: {x.tokens:.6g} {x.payout.token} worth less than the "
                                  "sale cost and gas of claiming it; left unclaimed"
                                  for x in book.payments if x.status == "unclaimed"]
    block["by_quarter"] = quarterly_reward_apy(book, quarter_of_hour, quarters, benchmark)
    block["payments"] = [x.as_dict() for x in book.payments]
    return block
