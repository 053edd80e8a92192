"""Monte Carlo batches: replications -> chunks -> executor -> one results row per replication.

Replication r of seed s always plays the same negotiation (see `seeds.py`), so the table does not
depend on the chunking, the worker count or the order chunks finish in.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import pyarrow as pa

from .config import Scenario
from .params import Params, params_for

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
            engine: str = "mesa") -> Iterator[tuple[int, pa.Table]]:
    """Yield (first, table) per chunk as chunks finish: in-process for one worker, else a spawn-context
    process pool (forking a process with threads can deadlock; the global start method is untouched)."""
    params = params_for(scenario)  # built once here; workers get the arrays and need no SciPy
    if workers <= 1 or len(todo) <= 1:
        for first, count in todo:
            yield first, run_chunk(scenario, seed, first, count, engine, params)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_single_threaded_worker) as pool:
        pending = {pool.submit(run_chunk, scenario, seed, first, count, engine, params): first
                   for first, count in todo}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()


def default_workers() -> int:
    return os.cpu_count() or 1
