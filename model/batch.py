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

import pandas as pd
import pyarrow as pa

from .config import Scenario
from .ensemble import run_ensemble
from .negotiation import NegotiationModel, Outcome
from .params import params_for
from .results import results_schema

ENGINES = ("ensemble", "mesa")
DEFAULT_ENGINE = "ensemble"  # the faster; equal to the Mesa engine replication by replication
MAX_CHUNK = {"mesa": 250, "ensemble": 50_000}  # replications per chunk: about a second of work each


def outcome_row(seed: int, replication: int, out: Outcome) -> dict:
    row = {"seed": seed, "replication": replication, "consensus": out.consensus, "outcome": out.kind,
           "agreement_round": out.agreement_round, "rounds_played": out.rounds_played}
    for issue, level in out.levels.items():
        row[f"agreed_{issue}"] = not math.isnan(level)
        row[f"level_{issue}"] = level
    row |= {"holdouts": out.holdouts, "n_holdouts": len(out.holdouts),
            "side_payments": out.side_payments, "n_side_payments": len(out.side_payments)}
    return row


def run_chunk(scenario: Scenario, seed: int, first: int, count: int, engine: str = "mesa") -> pa.Table:
    """Play replications first .. first+count-1 with `engine`; one row each."""
    if engine == "ensemble":
        return run_ensemble(scenario, seed, first, count)
    params = params_for(scenario)
    rows = []
    for r in range(first, first + count):
        model = NegotiationModel(scenario, rng=seed, replication=r, collect=False, params=params)
        model.run_for(params.rounds)
        rows.append(outcome_row(seed, r, model.outcome))
    return pa.Table.from_pylist(rows, schema=results_schema(params.issues))


def chunk_size(replications: int, workers: int, engine: str = "mesa") -> int:
    """At least four chunks per worker (load balance), at most about a second of work each."""
    return max(1, min(MAX_CHUNK[engine], math.ceil(replications / (4 * max(workers, 1)))))


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
    if workers <= 1 or len(todo) <= 1:
        for first, count in todo:
            yield first, run_chunk(scenario, seed, first, count, engine)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_single_threaded_worker) as pool:
        pending = {pool.submit(run_chunk, scenario, seed, first, count, engine): first for first, count in todo}
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

