"""Optuna searches over the sweep axes, with journal storage so a search resumes.

Each Optuna trial is a set of axis values; it runs once per scenario given (through the same trial
store and executor as a grid, so a configuration already computed is never run again) and scores
the objective on its worst scenario: settings that hold up across the shocks, not on average.
Trials are asked in batches of the executor's width. A search interrupted mid-batch leaves trials
RUNNING in the journal; the next run marks them failed and asks for their values again first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

from engine.lab.executors import ExecutorError, SweepExecutor
from engine.lab.grid import Axis
from engine.lab.keys import digest
from engine.lab.store import TrialStore, write_table
from engine.lab.sweep import PlannedTrial, plan_point, run_sweep
from engine.scenarios import Scenario

JOURNAL = "optuna.journal"


def suggest(trial: Any, axis: Axis) -> Any:
    if not axis.is_range:
        return trial.suggest_categorical(axis.key, list(axis.values))
    if isinstance(axis.low, int) and isinstance(axis.high, int):
        return trial.suggest_int(axis.key, axis.low, axis.high)
    assert axis.low is not None and axis.high is not None      # a range axis has both ends
    return trial.suggest_float(axis.key, float(axis.low), float(axis.high))


def open_study(out: Path, name: str, direction: str):
    import optuna
    from optuna.storages import JournalStorage
    try:
        from optuna.storages.journal import JournalFileBackend as Backend
    except ImportError:                           # optuna < 4
        from optuna.storages import JournalFileStorage as Backend
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(Backend(str(out / JOURNAL)))
    return optuna.create_study(study_name=name, storage=storage, direction=cast(Any, direction), load_if_exists=True)


def counted(study: Any) -> list[Any]:
    """Trials that count towards N: completed ones and those that failed on their own values (an
    invalid configuration); not the ones an interruption left behind, which are asked again."""
    from optuna.trial import TrialState
    return [t for t in study.get_trials(deepcopy=False)
            if t.state is TrialState.COMPLETE or (t.state is TrialState.FAIL and "failure" in t.user_attrs)]


def run_optuna(args: argparse.Namespace, service: Any, executor: SweepExecutor, axes: list[Axis],
               scenarios: list[Scenario | None], at: str | None, base: dict[str, Any], start: str | None,
               end: str | None, out: Path) -> int:
    from optuna.trial import TrialState

    from engine.lab.sweep_cli import OBJECTIVES
    direction = OBJECTIVES[args.objective]
    space = digest([[a.key, a.values, a.low, a.high] for a in axes])[:8]
    context = digest([s.name if s else None for s in scenarios] + [at, base, start, end, args.capital])[:8]
    name = f"{args.mode}-{args.objective}-{space}-{context}"
    study = open_study(out, name, direction)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(stale.number, state=TrialState.FAIL)
        study.enqueue_trial(stale.params, skip_if_exists=False)
    store = TrialStore(out)
    width = executor.workers or 1
    from tqdm import tqdm
    done_before = len(counted(study))
    remaining = args.optuna - done_before
    print(f"optuna study {name} in {out / JOURNAL}: {done_before} trials done, {max(remaining, 0)} to run",
          file=sys.stderr)
    bar = tqdm(total=max(remaining, 0), unit="trial", file=sys.stderr, disable=args.no_progress)
    try:
        while remaining > 0:
            batch = [study.ask() for _ in range(min(width, remaining))]
            planned: list[PlannedTrial] = []
            for trial in batch:
                values = {axis.key: suggest(trial, axis) for axis in axes}
                for scenario in scenarios:
                    planned.append(plan_point(service, args.mode, {**base, **values}, values, scenario, at, start,
                                              end, args.capital, len(planned)))
            run_sweep(planned, store, executor)
            for k, trial in enumerate(batch):
                records = [store.get(p.key) for p in planned[k * len(scenarios):(k + 1) * len(scenarios)]]
                scores = [r.get(args.objective) for r in records if r and r["status"] == "ok"]
                if len(scores) < len(records) or any(v is None for v in scores):
                    errors = [r["error"].splitlines()[0] for r in records if r and r["status"] != "ok"]
                    trial.set_user_attr("failure", errors[0] if errors else f"{args.objective} is undefined")
                    study.tell(trial, state=TrialState.FAIL)
                else:
                    valid = [float(v) for v in scores if v is not None]
                    study.tell(trial, min(valid) if direction == "maximize" else max(valid))
            remaining -= len(batch)
            bar.update(len(batch))
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted: the study and its finished trials are in {out}; run the same command to resume",
              file=sys.stderr)
        return 130
    except ExecutorError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    rows = [{"optuna_trial": t.number, "state": t.state.name, "objective": t.value,
             "failure": t.user_attrs.get("failure", ""), **t.params} for t in counted(study)]
    files = write_table(rows, out)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        best = study.best_trial
        print(f"best of {len(complete)} trials: {args.objective} = {best.value:.6g} at {best.params}")
    else:
        print("no trial completed")
    print(f"results: {files[0]} and {files[1]}; trials in {store.trials}")
    return 0
