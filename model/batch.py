"""Monte Carlo batches: replications -> chunks -> executor -> one results row per replication.

Replication r of seed s always plays the same negotiation (see `seeds.py`), so the table does not
depend on the chunking, the worker count or the order chunks finish in.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
import os
import traceback
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pyarrow as pa

from .config import Scenario, ScenarioError, point_scenario
from .params import Params, params_for
from .results import conform, sweep_part_schema

WORKER_FAULT_ENV = "VILNIUS_WORKER_DIES_AT_RUN"
Runner = Callable[[Scenario, int, int, int, str], pa.Table]  # (point scenario, seed, first, count, engine)

ENGINES = ("ensemble", "mesa")
DEFAULT_ENGINE = "ensemble"  # the faster; equal to the Mesa engine replication by replication
# replications per chunk, by engine: from ~0.2 s of work (less would not pay for a worker's
# start-up) to ~1 s (a fine-grained progress bar and little lost to an interruption)
CHUNK_RANGE = {"mesa": (100, 250), "ensemble": (10_000, 50_000)}


def run_chunk(scenario: Scenario, seed: int, first: int, count: int, engine: str = "mesa",
              params: Params | None = None) -> pa.Table:
    """Play replications first .. first+count-1 with `engine`; one row each.

    Engines are imported here, not at the top: a worker process then loads only the one it runs
    (the ensemble needs neither Mesa nor pandas), which keeps each worker ~150 MiB lighter."""
    params = params or params_for(scenario)
    if engine == "ensemble":
        from .ensemble import run_ensemble

        return run_ensemble(scenario, seed, first, count, params)
    from .negotiation import run_replications

    return run_replications(scenario, seed, first, count, params)


def run_sweep_chunk(raw: dict, raw_key: str, segments: list[tuple[int, dict, int, int, int]], stride: int,
                    engine: str, runner: Runner | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """Worker task: play each (point, overrides, seed, first, count) segment; one row per run.

    A run that raises becomes a row with its seed and the error text, and the sweep goes on. Every
    part has the columns of `schema` (default: `sweep_part_schema`, the model's), failures or not;
    a stand-in runner without a schema gets the union of its columns."""
    tables = [_run_segment(raw, raw_key, *segment, stride, engine, runner or run_chunk)
              for segment in segments]
    table = pa.concat_tables(tables, promote_options="default")
    schema = schema or (sweep_part_schema(tuple(raw["issues"])) if runner is None else None)
    return table if schema is None else conform(table, schema)


_POINTS: dict[tuple[str, tuple], Scenario] = {}


def _run_segment(raw: dict, raw_key: str, point: int, overrides: dict, seed: int, first: int, count: int,
                 stride: int, engine: str, runner: Runner) -> pa.Table:
    _worker_fault(point * stride + first, count)
    key = (raw_key, tuple(sorted(overrides.items())))
    try:
        if key not in _POINTS:
            if len(_POINTS) >= 256:
                _POINTS.pop(next(iter(_POINTS)))
            _POINTS[key] = point_scenario(raw, overrides, f"sweep point {point}")
        scenario = _POINTS[key]
    except ScenarioError as exc:
        return _failed(point, seed, first, count, stride, str(exc))
    try:
        table = runner(scenario, seed, first, count, engine)
    except Exception as exc:
        if count == 1:
            return _failed(point, seed, first, 1, stride, "".join(traceback.format_exception_only(exc)).strip())
        return pa.concat_tables([_run_segment(raw, raw_key, point, overrides, seed, r, 1, stride, engine, runner)
                                 for r in range(first, first + count)], promote_options="default")
    ids = pa.array(point * stride + np.arange(first, first + count, dtype=np.int64))
    table = table.add_column(0, "run_id", ids).add_column(0, "point", pa.array(np.full(count, point, np.int64)))
    return table.append_column("error", pa.nulls(count, pa.string()))


def _worker_fault(first_run: int, count: int) -> None:
    """Test hook: with WORKER_FAULT_ENV=r, the process about to play run id r dies at once (as a
    worker killed by the OS would), so tests can check what a lost worker leaves behind."""
    target = os.environ.get(WORKER_FAULT_ENV)
    if target and first_run <= int(target) < first_run + count:
        os._exit(70)


def _failed(point: int, seed: int, first: int, count: int, stride: int, error: str) -> pa.Table:
    replication = np.arange(first, first + count, dtype=np.int64)
    return pa.table({"point": np.full(count, point, np.int64), "run_id": point * stride + replication,
                     "seed": np.full(count, seed, np.int64), "replication": replication,
                     "error": pa.array([error] * count, pa.string())})


def chunk_size(replications: int, workers: int, engine: str = "mesa") -> int:
    """Four chunks per worker (load balance) where that keeps chunks within CHUNK_RANGE; a batch
    smaller than one chunk runs in process, without a pool."""
    smallest, largest = CHUNK_RANGE[engine]
    return max(1, min(largest, max(smallest, math.ceil(replications / (4 * max(workers, 1))))))


def chunks(replications: int, size: int) -> list[tuple[int, int]]:
    """(first, count) of every chunk, in order: fixed by the replication count and chunk size."""
    return [(first, min(size, replications - first)) for first in range(0, replications, size)]


def _single_threaded_worker() -> None:
    """Pool initializer: one BLAS/OpenMP thread per worker so workers do not oversubscribe cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def execute(scenario: Scenario, seed: int, todo: list[tuple[int, int]], workers: int,
            engine: str = "mesa", scheduler: str | None = None) -> Iterator[tuple[int, pa.Table]]:
    """Yield (first, table) per chunk of the main job as chunks finish."""
    params = params_for(scenario)  # built once here; workers get the arrays and need no SciPy
    tasks = [(first, run_chunk, (scenario, seed, first, count, engine, params)) for first, count in todo]
    yield from run_tasks(tasks, workers, scheduler)


def run_tasks(tasks: list[tuple[Hashable, Callable, tuple]], workers: int, scheduler: str | None = None,
              ) -> Iterator[tuple[Hashable, object]]:
    """Run (key, function, args) tasks; yield (key, result) as each finishes.

    In process for one worker or one task; else a spawn-context process pool (forking a process
    with threads can deadlock; the global start method is left alone), or the Dask cluster at
    `scheduler`. At most two tasks per worker are in flight, so a sweep of thousands of chunks
    never queues all their arguments at once. A worker process that dies raises WorkerLost."""
    if scheduler is None and (workers <= 1 or len(tasks) <= 1):
        for key, function, args in tasks:
            yield key, function(*args)
        return
    with _executor(workers, scheduler) as (pool, slots, lost):
        queue = iter(tasks)
        pending: dict = {}

        def top_up() -> None:
            for key, function, args in itertools.islice(queue, max(0, 2 * slots - len(pending))):
                pending[pool.submit(function, *args)] = key

        top_up()
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    key = pending.pop(future)
                    try:
                        result = future.result()
                    except lost as exc:
                        raise WorkerLost(str(exc)) from exc
                    top_up()
                    yield key, result
        finally:
            for future in pending:
                future.cancel()


class WorkerLost(RuntimeError):
    """A worker process died (killed by the system, or lost by the cluster); what finished is kept."""


@contextlib.contextmanager
def _executor(workers: int, scheduler: str | None) -> Iterator[tuple[Executor, int, tuple[type, ...]]]:
    """(executor, how many tasks it runs at once, the exceptions that mean a worker was lost): the
    local process pool, or a Dask client's executor."""
    if scheduler is None:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_single_threaded_worker) as pool:
            yield pool, workers, (BrokenProcessPool,)
        return
    from .cluster import dask_executor

    with dask_executor(scheduler) as connection:
        yield connection


def default_workers() -> int:
    return os.cpu_count() or 1
