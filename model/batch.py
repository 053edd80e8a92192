"""Monte Carlo batches: replications -> chunks -> executor -> one results row per replication.

Replication r of seed s always plays the same negotiation (see `seeds.py`), so the table does not
depend on the chunking, the worker count or the order chunks finish in.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np
import pandas as pd
import pyarrow as pa

from .config import Scenario
from .negotiation import NegotiationModel, Outcome
from .params import build_params

MAX_CHUNK = 250  # replications per chunk: ~0.5 s of work, small enough for a fine progress bar


def results_schema(issues: tuple[str, ...] | list[str]) -> pa.Schema:
    """Columns of the results table (documented in README, 'Output files')."""
    fields = [
        ("seed", pa.int64()), ("replication", pa.int64()), ("consensus", pa.bool_()),
        ("outcome", pa.string()), ("agreement_round", pa.int32()), ("rounds_played", pa.int32()),
    ]
    for issue in issues:
        fields += [(f"agreed_{issue}", pa.bool_()), (f"level_{issue}", pa.float64())]
    fields += [("holdouts", pa.list_(pa.string())), ("n_holdouts", pa.int32()),
               ("side_payments", pa.list_(pa.string())), ("n_side_payments", pa.int32())]
    return pa.schema(fields)


def outcome_row(seed: int, replication: int, out: Outcome) -> dict:
    row = {"seed": seed, "replication": replication, "consensus": out.consensus, "outcome": out.kind,
           "agreement_round": out.agreement_round, "rounds_played": out.rounds_played}
    for issue, level in out.levels.items():
        row[f"agreed_{issue}"] = not math.isnan(level)
        row[f"level_{issue}"] = level
    row |= {"holdouts": out.holdouts, "n_holdouts": len(out.holdouts),
            "side_payments": out.side_payments, "n_side_payments": len(out.side_payments)}
    return row


def run_chunk(scenario: Scenario, seed: int, first: int, count: int) -> pa.Table:
    """Play replications first .. first+count-1 with the Mesa engine; one row each."""
    params = build_params(scenario)
    rows = []
    for r in range(first, first + count):
        model = NegotiationModel(scenario, rng=seed, replication=r, collect=False, params=params)
        model.run_for(params.rounds)
        rows.append(outcome_row(seed, r, model.outcome))
    return pa.Table.from_pylist(rows, schema=results_schema(params.issues))


def chunk_size(replications: int, workers: int) -> int:
    """At least four chunks per worker (load balance), at most MAX_CHUNK replications each."""
    return max(1, min(MAX_CHUNK, math.ceil(replications / (4 * max(workers, 1)))))


def chunks(replications: int, size: int) -> list[tuple[int, int]]:
    """(first, count) of every chunk, in order: fixed by the replication count and chunk size."""
    return [(first, min(size, replications - first)) for first in range(0, replications, size)]


def _single_threaded_worker() -> None:
    """Pool initializer: one BLAS/OpenMP thread per worker so workers do not oversubscribe cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def execute(scenario: Scenario, seed: int, todo: list[tuple[int, int]], workers: int,
            run: Callable[[Scenario, int, int, int], pa.Table] = run_chunk) -> Iterator[tuple[int, pa.Table]]:
    """Yield (first, table) per chunk as chunks finish: in-process for one worker, else a spawn-context
    process pool (forking a process with threads can deadlock; the global start method is untouched)."""
    if workers <= 1 or len(todo) <= 1:
        for first, count in todo:
            yield first, run(scenario, seed, first, count)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_single_threaded_worker) as pool:
        pending = {pool.submit(run, scenario, seed, first, count): first for first, count in todo}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The results table as pandas, sorted by replication, with nullable integers kept."""
    frame = table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)
    return frame.sort_values("replication", ignore_index=True)


def default_workers() -> int:
    return os.cpu_count() or 1


def example_replication(scenario: Scenario, seed: int, replication: int = 0) -> NegotiationModel:
    """Replay one replication with per-round data collected (trajectory plots, `--replay`)."""
    model = NegotiationModel(scenario, rng=seed, replication=replication, collect=True)
    model.run_for(model.params.rounds)
    return model


__all__ = ["chunk_size", "chunks", "execute", "example_replication", "outcome_row", "results_schema",
           "run_chunk", "to_frame", "default_workers", "np"]
