"""A sweep: config overrides (a grid) x scenarios, each trial keyed by data + config + scenario + code.

Planning resolves every trial's configuration here (a few ms each) to key it; trials whose key is in
the store are taken from it and never run again, configurations that do not validate become error
rows at once, and only the rest go to the executor. Each result is stored the moment it arrives, so
an interrupted sweep (Ctrl-C, kill, a closed app) resumes where it stopped.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.config import ConfigError, load_config
from engine.lab.executors import SweepExecutor
from engine.lab.grid import Axis, expand
from engine.lab.keys import code_digest, config_digest, digest, scenario_digest, trial_key
from engine.lab.store import TrialStore, write_table
from engine.lab.trial import TrialSpec, error_record
from engine.scenarios import Scenario
from engine.services.run_params import build_run_params, data_requirements

NO_SCENARIO = "none"


@dataclass
class PlannedTrial:
    index: int
    key: str
    spec: TrialSpec
    labels: dict[str, Any]                  # the grid values and the scenario name, for the table
    invalid: str | None = None              # why the configuration does not validate


@dataclass
class SweepProgress:
    done: int                               # trials finished in this run (not counting the cached)
    total: int                              # trials this run has to compute
    cached: int                             # trials taken from the store
    elapsed_s: float
    invalid: int = 0                        # configurations that do not validate (error rows, not run)
    record: dict[str, Any] | None = None
    trial: PlannedTrial | None = None

    @property
    def eta_s(self) -> float | None:
        if self.done == 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]
    computed: int
    cached: int
    cancelled: bool
    seconds: float
    files: tuple[Path, ...] = field(default_factory=tuple)
    invalid: int = 0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def plan_trials(service: Any, mode: str, axes: list[Axis], scenarios: list[Scenario | None], at: str | None,
                base_overrides: dict[str, Any] | None = None, start: str | None = None, end: str | None = None,
                capital: float | None = None) -> list[PlannedTrial]:
    """Every (scenario, grid point) trial with its key; the first axis varies slowest."""
    return [plan_point(service, mode, {**(base_overrides or {}), **combo}, combo, scenario, at, start, end, capital, i)
            for i, (scenario, combo) in enumerate((s, c) for s in scenarios for c in expand(axes))]


def plan_point(service: Any, mode: str, overrides: dict[str, Any], labels: dict[str, Any], scenario: Scenario | None,
               at: str | None, start: str | None, end: str | None, capital: float | None, index: int) -> PlannedTrial:
    """One trial and its key (the configuration is resolved to key it; an invalid one is marked)."""
    scen_key = scenario_digest(scenario, at)
    code = code_digest()
    spec = TrialSpec(mode=mode, overrides=overrides, scenario=scenario, at=at if scenario is not None else None,
                     start=start, end=end, capital=capital)
    labels = {**labels, "scenario": scenario.name if scenario is not None else NO_SCENARIO}
    invalid = None
    try:
        resolved = load_config(mode, cli_overrides=overrides)
        params = build_run_params(resolved, capital)
        data_key = service.provider.data_key(data_requirements(params), start, end)
        key = trial_key(data_key, config_digest(resolved, capital), scen_key, code)
    except ConfigError as exc:
        invalid = str(exc)
        key = "invalid-" + digest([mode, overrides, capital, start, end, scen_key, code])[:16]
    return PlannedTrial(index, key, spec, labels, invalid)


def run_sweep(planned: list[PlannedTrial], store: TrialStore, executor: SweepExecutor,
              progress: Callable[[SweepProgress], None] | None = None,
              should_stop: Callable[[], bool] | None = None, table_dir: Path | None = None) -> SweepResult:
    started = time.perf_counter()
    have = store.keys()
    cached = sum(1 for p in planned if p.key in have)
    invalid = [p for p in planned if p.invalid is not None and p.key not in have]
    for p in invalid:
        store.put(p.key, error_record(p.invalid or "invalid"))
    todo = [p for p in planned if p.key not in have and p.invalid is None]
    done = 0
    if progress is not None:
        progress(SweepProgress(0, len(todo), cached, 0.0, invalid=len(invalid)))

    def on_result(i: int, record: dict[str, Any]) -> None:
        nonlocal done
        store.put(todo[i].key, record)
        done += 1
        if progress is not None:
            progress(SweepProgress(done, len(todo), cached, time.perf_counter() - started, invalid=len(invalid),
                                   record=record, trial=todo[i]))

    stopped = False
    try:
        executor.run([p.spec for p in todo], on_result, should_stop)
    finally:
        stopped = done < len(todo)
        rows = table_rows(planned, store)
        files = write_table(rows, table_dir) if table_dir is not None and rows else ()
    return SweepResult(rows, done, cached, stopped, time.perf_counter() - started, tuple(files), len(invalid))


def table_rows(planned: list[PlannedTrial], store: TrialStore) -> list[dict[str, Any]]:
    """One row per finished trial, in plan order: key, labels, then the stored record."""
    rows = []
    for p in planned:
        record = store.get(p.key)
        if record is None:
            continue
        spec = p.spec
        rows.append({"trial": p.key, "mode": spec.mode, **p.labels, "at": spec.at or "", **record})
    return rows
