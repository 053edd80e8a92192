"""Monte Carlo batches: replications -> chunks -> executor -> one results row per replication.

Replication r of seed s always plays the same negotiation (see `seeds.py`), so the table does not
depend on the chunking, the worker count or the order chunks finish in.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from model.negotiation.engines import run_chunk
from model.negotiation.params import params_for
from model.negotiation.results import conform, sweep_part_schema
from model.scenario.files import point_scenario
from model.scenario.schema import ByContent, Scenario, ScenarioError

from .job import Execution

Runner = Callable[[Scenario, int, int, int, str], pa.Table]  # (point scenario, seed, first, count, engine)

# a chunk holds from MIN_CHUNK_SECONDS of work (less would not pay for a worker task) to
# MAX_CHUNK_SECONDS (a fine-grained progress bar, little lost to an interruption)
MIN_CHUNK_SECONDS, MAX_CHUNK_SECONDS = 0.2, 1.0
PILOT_RUNS = {"ensemble": 2000, "mesa": 20}


def run_sweep_chunk(base: ByContent[dict], segments: list[tuple[int, dict, int, int, int]], stride: int,
                    engine: str, runner: Runner | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """Worker task: play each (point, overrides, seed, first, count) segment; one row per run.

    A run that raises becomes a row with its seed and the error text, and the sweep goes on. Every
    part has the columns of `schema` (default: `sweep_part_schema`, the model's), failures or not;
    a stand-in runner without a schema gets the union of its columns."""
    tables = [_run_segment(base, *segment, stride, engine, runner or run_chunk) for segment in segments]
    table = pa.concat_tables(tables, promote_options="default")
    schema = schema or (sweep_part_schema(_point_scenario(base, (), -1)) if runner is None else None)
    return table if schema is None else conform(table, schema)


@functools.lru_cache(maxsize=256)
def _point_scenario(base: ByContent[dict], overrides: tuple[tuple[str, float], ...], point: int) -> Scenario:
    """The validated scenario at one sweep point (`base`: the sweep's scenario as plain data, keyed
    by its spec hash), built once per worker process."""
    return point_scenario(base.value, dict(overrides), f"sweep point {point}")


def _run_segment(base: ByContent[dict], point: int, overrides: dict, seed: int, first: int, count: int,
                 stride: int, engine: str, runner: Runner) -> pa.Table:
    try:
        scenario = _point_scenario(base, tuple(sorted(overrides.items())), point)
    except ScenarioError as exc:
        return _failed(point, seed, first, count, stride, str(exc))
    try:
        table = runner(scenario, seed, first, count, engine)
    except Exception as exc:
        if count == 1:
            return _failed(point, seed, first, 1, stride, "".join(traceback.format_exception_only(exc)).strip())
        return pa.concat_tables([_run_segment(base, point, overrides, seed, r, 1, stride, engine, runner)
                                 for r in range(first, first + count)], promote_options="default")
    ids = pa.array(point * stride + np.arange(first, first + count, dtype=np.int64))
    table = table.add_column(0, "run_id", ids).add_column(0, "point", pa.array(np.full(count, point, np.int64)))
    return table.append_column("error", pa.nulls(count, pa.string()))


def _failed(point: int, seed: int, first: int, count: int, stride: int, error: str) -> pa.Table:
    replication = np.arange(first, first + count, dtype=np.int64)
    return pa.table({"point": np.full(count, point, np.int64), "run_id": point * stride + replication,
                     "seed": np.full(count, seed, np.int64), "replication": replication,
                     "error": pa.array([error] * count, pa.string())})


def chunk_size(runs: int, workers: int, seconds_per_run: float) -> int:
    """Runs per chunk, for the main job and sweeps alike: four chunks per worker (load balance),
    each between MIN_CHUNK_SECONDS and MAX_CHUNK_SECONDS of work. A batch smaller than one chunk
    runs in process, without a pool."""
    per_run = max(seconds_per_run, 1e-9)
    least = math.ceil(MIN_CHUNK_SECONDS / per_run)
    most = max(least, round(MAX_CHUNK_SECONDS / per_run))
    balanced = math.ceil(runs / (4 * max(workers, 1)))
    return max(1, min(runs, max(least, min(most, balanced))))


def seconds_per_run(play: Callable[[int], object], runs: int) -> float:
    """A short timed pilot (its results are discarded): `play(count)` plays `count` runs. A first,
    untimed call pays the one-off costs (imports, parameter arrays), which would otherwise make
    chunks ten times too small."""
    play(min(runs, 10))
    started = time.perf_counter()
    play(runs)
    return (time.perf_counter() - started) / runs


def chunks(replications: int, size: int) -> list[tuple[int, int]]:
    """(first, count) of every chunk, in order: fixed by the replication count and chunk size."""
    return [(first, min(size, replications - first)) for first in range(0, replications, size)]


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_worker() -> None:
    """Pool initializer: one BLAS/OpenMP thread per worker, so two workers do not oversubscribe
    two cores. threadpoolctl limits the libraries already loaded (numpy's: an environment variable
    set now comes too late for it); the variables set here reach the libraries the worker loads
    later (SciPy's own OpenBLAS reads them when it loads)."""
    global _LIMITS
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    _LIMITS = threadpool_limits(limits=1)


_LIMITS: threadpool_limits | None = None  # kept alive for the worker's lifetime


def execute(scenario: Scenario, seed: int, todo: list[tuple[int, int]], execution: Execution,
            ) -> Iterator[tuple[int, pa.Table]]:
    """Yield (first, table) per chunk of the main job as chunks finish."""
    params = params_for(scenario)  # built once here; workers get the arrays and need no SciPy
    tasks = [(first, run_chunk, (scenario, seed, first, count, execution.engine, params)) for first, count in todo]
    yield from run_tasks(tasks, execution.workers, execution.scheduler)


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

        try:  # a lost worker surfaces in a result, or in a submit to the broken pool
            top_up()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    key = pending.pop(future)
                    result = future.result()
                    top_up()
                    yield key, result
        except lost as exc:
            raise WorkerLost(str(exc)) from exc
        finally:
            for future in pending:
                future.cancel()


class WorkerLost(RuntimeError):
    """A worker process died (killed by the system, or lost by the cluster); what finished is kept."""


_POOL: tuple[tuple, ProcessPoolExecutor] | None = None  # (what it was started with, the pool)


def _local_pool(workers: int) -> ProcessPoolExecutor:
    """A spawn-context pool kept for the life of the process: a new pool costs about two seconds
    (each worker imports numpy, numba and the model), which `validate` would otherwise pay for
    every case and every stage. It is reused while the worker count and the environment (which its
    workers inherited when they started) are unchanged; Python shuts it down at exit."""
    global _POOL
    key = (workers, tuple(sorted(os.environ.items())))
    if _POOL is None or _POOL[0] != key:
        release_workers()
        context = multiprocessing.get_context("spawn")
        _POOL = key, ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=single_threaded_worker)
    return _POOL[1]


def release_workers() -> None:
    """Shut the kept pool down (its tasks are cancelled or finish); the next job starts a new one."""
    global _POOL
    if _POOL is not None:
        _POOL[1].shutdown(wait=True, cancel_futures=True)
        _POOL = None


@contextlib.contextmanager
def _executor(workers: int, scheduler: str | None) -> Iterator[tuple[Executor, int, tuple[type, ...]]]:
    """(executor, how many tasks it runs at once, the exceptions that mean a worker was lost): the
    local process pool, or a Dask client's executor."""
    if scheduler is None:
        pool = _local_pool(workers)
        try:
            yield pool, workers, (BrokenProcessPool,)
        except WorkerLost:  # a broken pool takes no more work
            release_workers()
            raise
        return
    from .cluster import dask_executor

    with dask_executor(scheduler) as connection:
        yield connection

