"""Parameter sweeps: a frozen design of points x replications, run in chunks, resumable and shardable.

    scenario + sweep block -> design (points) -> plan (run ids, seeds, chunk size) written first
    -> chunks on the executor (serial, process pool, Dask) -> one Parquet part per chunk
    -> per-point table, paired differences, sensitivity indices, figures

Run ids: replication r of point p is run `p * stride + r` (stride = the most replications a point
may get). Its random numbers come from the point's seed (the root seed at every point under
common random numbers, else a seed derived from (root, point)) and r, never from the chunk it ran
in, so the results do not depend on chunking, worker count, executor, sharding or resuming.
Chunk boundaries depend only on the frozen plan (the chunk size is piloted once, then stored in
the manifest), and a resume runs exactly the chunks whose part file is missing.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from . import batch
from .config import Scenario, ScenarioError, base_raw, resolved_yaml
from .design import Design, build_design
from .seeds import derived_seed
from .store import OutputFolder, atomic_write, environment, spec_hash, utc_now, write_json, write_text

FAULT_ENV = "VILNIUS_DIE_AFTER_PARTS"  # test hook: SIGKILL this process after writing that many parts
CHUNK_SECONDS = 1.0  # aim for about a second of work per chunk
PILOT_RUNS = {"ensemble": 2000, "mesa": 20}
CHUNK_LIMITS = {"ensemble": (500, 200_000), "mesa": (5, 2_000)}


@dataclass(frozen=True)
class Replicates:
    """How many runs each point gets, and how their random numbers relate across points."""

    replications: int  # per point; the cap when stopping sequentially
    common_random_numbers: bool = True
    target_halfwidth: float | None = None
    min_replications: int = 100

    @classmethod
    def of(cls, scenario: Scenario) -> Replicates:
        sweep = scenario.sweep
        n = sweep.replications if sweep and sweep.replications else scenario.run.replications
        if sweep is None:
            return cls(n)
        # a first batch larger than the cap is the cap (then there is one stage)
        return cls(n, sweep.common_random_numbers, sweep.target_halfwidth, min(sweep.min_replications, n))

    def stages(self) -> list[int]:
        """Replication boundaries of the stages: [0, n] for a fixed count; with sequential stopping
        [0, n_min, 2 n_min, 4 n_min, ..., n] (a point leaves once its interval is narrow enough)."""
        if self.target_halfwidth is None:
            return [0, self.replications]
        bounds = [0, self.min_replications]
        while bounds[-1] < self.replications:
            bounds.append(min(2 * bounds[-1], self.replications))
        return bounds


@dataclass(frozen=True)
class Segment:
    """Replications first .. first+count-1 of one point."""

    point: int
    first: int
    count: int


def point_seeds(root: int, points: int, common: bool) -> np.ndarray:
    """The seed each point's runs use: the root everywhere under common random numbers, else a
    SeedSequence child of (root, point), 63 bits, recorded in the design table."""
    if common:
        return np.full(points, root, dtype=np.int64)
    return np.array([derived_seed([root, p]) for p in range(points)], dtype=np.int64)


def chunk_plan(points: Sequence[int], first: int, stop: int, size: int) -> list[list[Segment]]:
    """Replications first..stop-1 of each point, point by point, cut into chunks of `size` runs."""
    per = stop - first
    total = len(points) * per
    plan = []
    for start in range(0, total, size):
        end, i, segments = min(total, start + size), start, []
        while i < end:
            which, offset = divmod(i, per)
            count = min(per - offset, end - i)
            segments.append(Segment(points[which], first + offset, count))
            i += count
        plan.append(segments)
    return plan


@dataclass
class SweepRun:
    """What `run_sweep` leaves: the output folder, and whether every chunk is now on disk."""

    folder: OutputFolder
    design: Design
    complete: bool
    missing_chunks: int = 0
    summary: dict | None = None
    figures: list[Path] | None = None


def run_sweep(scenario: Scenario, seed: int, out: Path, workers: int, *, design: Design | None = None,
              replicates: Replicates | None = None, fresh: bool = False, quiet: bool = False,
              scenario_file: str = "", seed_source: str = "scenario", engine: str = batch.DEFAULT_ENGINE,
              scheduler: str | None = None, shard: tuple[int, int] = (0, 1), runner: batch.Runner | None = None,
              part_schema: pa.Schema | None = None, analyse: bool = True) -> SweepRun:
    """Run (or resume) a sweep into `out`. Shard i of N runs every N-th chunk; the shard that finds
    all chunks on disk (or a later plain rerun) writes the tables and figures. `runner` replaces
    the model (tests, benchmarks), `part_schema` fixes its part files' columns."""
    design = design or build_design(scenario, seed, scenario_file or "<scenario>")
    replicates = replicates or Replicates.of(scenario)
    outcomes = ["consensus", *(f"level_{issue}" for issue in scenario.issues)]
    if runner is None and scenario.sweep and scenario.sweep.outcome not in outcomes:
        raise ScenarioError(f"{scenario_file or scenario.name}: sweep.outcome: unknown outcome "
                            f"{scenario.sweep.outcome!r}; known: {', '.join(outcomes)}.")
    if replicates.target_halfwidth is not None and shard[1] > 1:
        raise ScenarioError("--shard: sequential stopping (target_halfwidth) cannot be split into shards, "
                            "because later stages depend on all earlier results; drop one of the two.")
    if fresh and shard[1] > 1:
        raise ScenarioError("--fresh with --shard would delete the other shards' results; "
                            "clear the folder once (run with --fresh and no --shard, or delete it) instead.")
    seeds = point_seeds(seed, design.points, replicates.common_random_numbers)
    raw, stride = base_raw(scenario), replicates.replications
    folder = OutputFolder(out)
    spec = {"scenario_hash": scenario.spec_hash, "seed": seed, "design": design.method,
            "points": design.points, "replications": replicates.replications,
            "common_random_numbers": replicates.common_random_numbers,
            "target_halfwidth": replicates.target_halfwidth, "min_replications": replicates.min_replications,
            "overrides_hash": spec_hash({"overrides": design.overrides}),
            "runner": None if runner is None else f"{runner.__module__}.{runner.__qualname__}"}

    task = _ChunkTask(raw, scenario.spec_hash, design, seeds, stride, engine, runner, part_schema)

    def new_manifest() -> dict:
        """The design goes to disk first; then a short pilot fixes the chunk size for good."""
        _write_design(folder, design, seeds, replicates)
        return {
            "kind": "sweep",
            "scenario": {"name": scenario.name, "file": scenario_file, "content_hash": scenario.spec_hash},
            "seed": {"root": seed, "source": seed_source,
                     "contract": "Philox keyed by SeedSequence(point seed); counter [replication, round, purpose]; "
                                 "point seed = root under common random numbers, else SeedSequence([root, point])"},
            "design": {"method": design.method, "parameters": list(design.parameters), "points": design.points,
                       "integer_parameters": sorted(design.integer)},
            "replicates": replicates.__dict__,
            "run_id": f"point * {stride} + replication",
            "chunk_size": _pilot_chunk_size(task, workers, replicates),
            "engine": engine, "workers": workers, "scheduler": scheduler, "command": sys.argv,
            **environment(),
        }

    manifest = folder.prepare(spec, new_manifest, fresh)
    write_text(folder.root / "scenario.yaml", resolved_yaml(scenario))
    if not (folder.root / "design.parquet").exists():  # a shard that adopted another's manifest
        _write_design(folder, design, seeds, replicates)
    with tqdm(total=0, unit="run", disable=quiet, desc=scenario.name, file=sys.stderr) as bar:
        missing = _run_stages(folder, task, replicates, manifest["chunk_size"], workers, scheduler, shard, bar)
    if missing:
        if not quiet:
            print(f"shard {shard[0]}/{shard[1]} done; {missing} chunks of other shards are still missing. "
                  "The last shard to finish (or a rerun without --shard) writes the tables.", file=sys.stderr)
        return SweepRun(folder, design, complete=False, missing_chunks=missing)
    result = SweepRun(folder, design, complete=True)
    if analyse:
        from .sweep_analysis import finish_sweep

        result.summary, result.figures = finish_sweep(folder, scenario, design, seeds, replicates, manifest)
    write_json(folder.manifest_path, manifest | {"completed": utc_now()})
    return result


@dataclass(frozen=True)
class _ChunkTask:
    """What every chunk of one sweep shares; `args(chunk)` is one worker task's arguments."""

    raw: dict
    raw_key: str
    design: Design
    seeds: np.ndarray
    stride: int
    engine: str
    runner: batch.Runner | None
    schema: pa.Schema | None

    def args(self, chunk: list[Segment]) -> tuple:
        segments = [(s.point, self.design.overrides[s.point], int(self.seeds[s.point]), s.first, s.count)
                    for s in chunk]
        return self.raw, self.raw_key, segments, self.stride, self.engine, self.runner, self.schema


def _run_stages(folder: OutputFolder, task: _ChunkTask, replicates: Replicates, size: int, workers: int,
                scheduler: str | None, shard: tuple[int, int], bar: tqdm) -> int:
    """Run this shard's missing chunks, stage by stage; returns how many chunks of the current
    stage are still missing (other shards' work), 0 when the sweep is complete."""
    stride, fault = task.stride, _FaultHook()
    active, bounds = list(range(task.design.points)), replicates.stages()
    for stage, (first, stop) in enumerate(zip(bounds, bounds[1:])):
        if stage > 0:
            active = _still_open(folder, active, replicates)
        if not active:
            return 0
        plan = {c[0].point * stride + c[0].first: c for c in chunk_plan(active, first, stop, size)}
        mine = [key for i, key in enumerate(plan) if i % shard[1] == shard[0]]
        done = folder.done_chunks()
        bar.total += sum(s.count for key in mine for s in plan[key])
        bar.update(sum(s.count for key in mine if key in done for s in plan[key]))
        if done & set(mine) and stage == 0 and not bar.disable:
            bar.write(f"resuming: {len(done & set(mine))} of {len(mine)} chunks already in {folder.parts}",
                      file=sys.stderr)
        tasks = [(key, batch.run_sweep_chunk, task.args(plan[key])) for key in mine if key not in done]
        for key, table in batch.run_tasks(tasks, workers, scheduler):
            folder.write_part(key, table)
            fault.part_written()
            bar.update(table.num_rows)
        missing = len(set(plan) - folder.done_chunks())
        if missing:
            return missing
    return 0


class _FaultHook:
    """Counts the parts this process wrote; with FAULT_ENV=k set, SIGKILLs the process right after
    the k-th, as a crash or a cluster's pre-emption would (deterministic kill tests)."""

    def __init__(self):
        self.parts = 0
        limit = os.environ.get(FAULT_ENV)
        self.limit = int(limit) if limit else None

    def part_written(self) -> None:
        self.parts += 1
        if self.limit is not None and self.parts >= self.limit:
            os.kill(os.getpid(), signal.SIGKILL)


def _still_open(folder: OutputFolder, active: list[int], replicates: Replicates) -> list[int]:
    """Points whose Wilson 95 % half-width is still above the target after the stages so far."""
    from .sweep_analysis import consensus_counts, wilson_halfwidth

    k, n = consensus_counts(folder)
    return [p for p in active if wilson_halfwidth(k.get(p, 0), n.get(p, 0)) > replicates.target_halfwidth]


def _pilot_chunk_size(task: _ChunkTask, workers: int, replicates: Replicates) -> int:
    """Runs per chunk from a short timed pilot at point 0 (its results are discarded): about
    CHUNK_SECONDS of work, within CHUNK_LIMITS, and at least four chunks per worker. A first,
    untimed call pays the one-off costs (imports, the point's parameter arrays), which would
    otherwise make chunks ten times too small."""
    smallest, largest = CHUNK_LIMITS.get(task.engine, CHUNK_LIMITS["mesa"])
    runs = min(PILOT_RUNS.get(task.engine, 20), task.stride)

    def pilot(count: int) -> float:
        started = time.perf_counter()
        batch.run_sweep_chunk(*task.args([Segment(0, 0, count)]))
        return time.perf_counter() - started

    pilot(min(runs, 10))
    per_run = pilot(runs) / runs
    first_stage = task.design.points * (replicates.stages()[1])
    size = min(largest, max(smallest, round(CHUNK_SECONDS / max(per_run, 1e-9))))
    return max(1, min(size, math.ceil(first_stage / (4 * max(workers, 1)))))


def _write_design(folder: OutputFolder, design: Design, seeds: np.ndarray, replicates: Replicates) -> None:
    """design.parquet/.csv: one row per point with its values, seed and run ids (first_run_id to
    first_run_id + replications - 1), before any run."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    stride = replicates.replications
    table = pa.Table.from_pandas(design.table.assign(seed=seeds, replications=stride,
                                                     first_run_id=design.table["point"] * stride),
                                 preserve_index=False)
    atomic_write(folder.root / "design.parquet", lambda tmp: pq.write_table(table, tmp))
    atomic_write(folder.root / "design.csv", lambda tmp: pacsv.write_csv(table, tmp))
