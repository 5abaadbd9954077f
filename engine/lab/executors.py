"""SweepExecutor: run trial specs on one of three backends with the same task function.

- serial:  in this process (debugging, tiny sweeps, the reference for the others);
- process: a process pool on this machine (spawned workers: safe from a GUI process too);
- ray:     Ray actors, `ray.init(num_cpus=N)` on this machine or `address=` for a cluster.

Every backend builds one backtest service per worker (engine.lab.trial.init_worker) and keeps it
for all the trials that worker runs, and checks that its workers run the code this process keyed
the trials with. Results arrive through `on_result(index, record)` as they finish, in any order;
`should_stop()` is polled between results so a sweep can be cancelled (trials already running
finish; nothing new is started).
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from engine.lab.keys import REPO_DIR, code_digest
from engine.lab.trial import TrialSpec, init_worker, run_trial

BACKENDS = ("serial", "process", "ray")
#: trials queued per worker beyond the one it runs: keeps workers busy without making cancel slow
QUEUE_PER_WORKER = 1

OnResult = Callable[[int, dict[str, Any]], None]
ShouldStop = Callable[[], bool]


class ExecutorError(RuntimeError):
    """The backend could not start or its workers run other code."""


class SweepExecutor:
    def __init__(self, backend: str, service_factory: Callable[[], Any], workers: int | None = None,
                 address: str | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} (allowed: {', '.join(BACKENDS)})")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if address is not None and backend != "ray":
            raise ValueError("--address is for the ray backend (a Ray cluster's address)")
        self.backend = backend
        self.service_factory = service_factory
        self.workers = workers
        self.address = address

    def run(self, specs: Sequence[TrialSpec], on_result: OnResult, should_stop: ShouldStop | None = None) -> int:
        """Run `specs`; returns how many finished. KeyboardInterrupt stops the workers and propagates."""
        if not specs:
            return 0
        stop = should_stop or (lambda: False)
        runner = {"serial": self._serial, "process": self._process, "ray": self._ray}[self.backend]
        return runner(list(specs), on_result, stop)

    # ---------------------------------------------------------------------------- serial
    def _serial(self, specs: list[TrialSpec], on_result: OnResult, stop: ShouldStop) -> int:
        init_worker(self.service_factory)
        done = 0
        for i, spec in enumerate(specs):
            if stop():
                break
            on_result(i, run_trial(spec))
            done += 1
        return done

    # ---------------------------------------------------------------------------- process pool
    def _process(self, specs: list[TrialSpec], on_result: OnResult, stop: ShouldStop) -> int:
        workers = min(self.workers or os.cpu_count() or 1, len(specs))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(self.service_factory,))
        done = 0
        try:
            self._check_code(pool.submit(code_digest).result(), "process-pool")
            pending: dict[Future, int] = {}
            queue = iter(enumerate(specs))
            limit = workers * (1 + QUEUE_PER_WORKER)
            exhausted = False
            while True:
                while not exhausted and len(pending) < limit and not stop():
                    item = next(queue, None)
                    if item is None:
                        exhausted = True
                        break
                    pending[pool.submit(run_trial, item[1])] = item[0]
                if not pending:
                    break
                finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in finished:
                    on_result(pending.pop(future), future.result())
                    done += 1
                if stop():
                    exhausted = True
                    for future in [f for f in pending if f.cancel()]:
                        pending.pop(future)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()          # a trial in a worker does not get to finish after Ctrl-C
            raise
        pool.shutdown(wait=True)
        return done

    # ---------------------------------------------------------------------------- ray
    def _ray(self, specs: list[TrialSpec], on_result: OnResult, stop: ShouldStop) -> int:
        try:
            import ray
        except ImportError as exc:     # pragma: no cover - ray is a dependency
            raise ExecutorError(f"the ray backend needs the ray package ({exc})") from None
        started_here = not ray.is_initialized()
        if started_here:
            try:
                self._ray_init(ray)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                raise ExecutorError(f"cannot start {where}: {str(exc).splitlines()[0]}") from None
        try:
            workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            workers = min(workers, len(specs))
            actor_class: Any = ray.remote(num_cpus=1)(TrialActor)
            actors = [actor_class.remote(self.service_factory) for _ in range(workers)]
            for digest in ray.get([a.code.remote() for a in actors]):
                self._check_code(digest, "Ray")
            queue = iter(enumerate(specs))
            in_flight: dict[Any, tuple[int, Any]] = {}
            done = 0

            def feed(actor) -> None:
                item = next(queue, None) if not stop() else None
                if item is not None:
                    in_flight[actor.run.remote(item[1])] = (item[0], actor)

            for actor in actors:
                for _ in range(1 + QUEUE_PER_WORKER):
                    feed(actor)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
                for ref in ready:
                    index, actor = in_flight.pop(ref)
                    on_result(index, ray.get(ref))
                    done += 1
                    feed(actor)
                if stop():
                    for ref in list(in_flight):
                        ray.cancel(ref)
                    in_flight.clear()
            for actor in actors:
                ray.kill(actor)
            return done
        finally:
            if started_here:
                ray.shutdown()

    def _ray_init(self, ray) -> None:
        if self.address:
            # The cluster's nodes run this checkout's code and data (uploaded once, cached by hash).
            ray.init(address=self.address, log_to_driver=False,
                     runtime_env={"working_dir": str(REPO_DIR),
                                  "excludes": [".git", "results", "**/__pycache__", "*.parquet"]})
            return
        # Local workers import this checkout, not whichever copy of the project is installed.
        path = os.pathsep.join([str(REPO_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        ray.init(num_cpus=self.workers or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})

    @staticmethod
    def _check_code(worker_digest: str, what: str) -> None:
        if worker_digest != code_digest():
            raise ExecutorError(f"the {what} workers run other code (digest {worker_digest}) than this process "
                                f"({code_digest()}): their results would be keyed wrongly")


class TrialActor:
    """A Ray worker: one backtest service for its lifetime (see engine.lab.trial)."""

    def __init__(self, service_factory: Callable[[], Any]) -> None:
        self._digest = init_worker(service_factory)

    def code(self) -> str:
        return self._digest

    def run(self, spec: TrialSpec) -> dict[str, Any]:
        return run_trial(spec)
