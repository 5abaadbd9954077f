"""BacktestService: config -> data -> strategy -> simulation -> result (DESIGN §2).

The one entry point the CLI and the app use. Venue wiring is injected (`world_factory`), so the engine
imports nothing from venues/ (dependency rule: engine -> nothing of ours outside engine).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from engine.config import load_config
from engine.data import AlignedMarketData, HistoricalDataProvider
from engine.domain.events import Event
from engine.domain.market import MarketView
from engine.domain.params import RunParams
from engine.domain.pnl import COMPONENTS
from engine.math import metrics
from engine.services.run_params import build_run_params, data_requirements
from engine.services.simulation import SimulationOutput, VenueWorld, simulate
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

    @property
    def events(self) -> list[Event]:
        return self.output.events.events

    def cumulative_components(self) -> dict[str, np.ndarray]:
        return {name: np.cumsum(self.output.components[:, i]) for i, name in enumerate(COMPONENTS)}


class BacktestService:
    def __init__(self, provider: HistoricalDataProvider,
                 world_factory: Callable[[Any, MarketView, RunParams], VenueWorld],
                 rejected_exc: type[Exception]) -> None:
        self.provider = provider
        self.world_factory = world_factory
        self.rejected_exc = rejected_exc

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
            should_cancel: Callable[[], bool] | None = None) -> BacktestResult:
        resolved, params, data, load_seconds = self.prepare(request)
        if len(data) < 2:
            raise ValueError("the window must hold at least two hours")
        timestamps = data.index.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
        mv = MarketView.from_columns(data, timestamps)
        strategy = STRATEGIES[params.strategy.mode](params)
        out = simulate(strategy, params, mv, self.world_factory, self.rejected_exc, progress, should_cancel)
        lst = params.strategy.lst
        peg = data[f"lst.{lst}.market"] / data[f"lst.{lst}.oracle"] if lst else None
        warnings = [f"{w.file}: {w.key}: {w.message}" for w in resolved.warnings]
        capacity = capacity_warning(params)
        if capacity is not None:
            warnings.append(capacity)
        warnings += out.risk_warnings
        summary = build_summary(resolved, params, data, out, load_seconds, warnings)
        underlying = params.strategy.underlying or "ETH"
        return BacktestResult(summary, data.index, out, params, np.asarray(data["spot.ETH"]), peg,
                              np.asarray(data[f"spot.{underlying}"]), warnings)


def _none_if_nan(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else float(x)


def build_summary(resolved: Any, params: RunParams, data: AlignedMarketData, out: SimulationOutput,
                  load_seconds: float, warnings: list[str]) -> dict[str, Any]:
    sp = params.strategy
    values = out.values
    hours = len(values)
    initial, final = out.initial_value, float(values[-1])
    # The return series starts from the capital (before entry costs) so they count in the metrics.
    series = np.concatenate([[initial], values])
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
        "pnl": final - initial,
        "pnl_components": totals,
        "reconciliation_error": float(np.max(out.reconciliation)),
        "total_return": final / initial - 1.0,
        "apr": metrics.apr(initial, final, hours),
        "apy": metrics.apy(initial, final, hours),
        "volatility": metrics.volatility(series),
        "sharpe": _none_if_nan(metrics.sharpe(series)),
        "max_drawdown": metrics.max_drawdown(series),
        "min_health_factor": float(hf_valid.min()) if hf_valid.size else None,
        "min_margin_ratio": float(min(margin_mins)) if margin_mins else None,
        "liquidations": out.liquidation_count,
        "rebalances": len(out.rebalance_hours),
        "hedge_notional_avg": float(np.mean(out.hedge_notional)) if sp.hedge else None,
        "funding_earned": totals["funding"],
        "costs_paid": -(totals["execution_costs"] + totals["gas"]),
        "events": len(out.events),
        "data_fallbacks": list(data.fallbacks),
        "config_warnings": warnings,
        "engine_seconds": out.engine_seconds,
        "data_load_seconds": load_seconds,
        "hours_per_second": hours / out.engine_seconds if out.engine_seconds > 0 else None,
    }
