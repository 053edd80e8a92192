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

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from model.negotiation.seeds import derived_seed
from model.outputs.files import atomic_write, write_json, write_table, write_text
from model.outputs.stats import wilson_halfwidth
from model.outputs.sweep_plots import save_sweep_figures
from model.outputs.sweep_stats import analyse, consensus_counts, summary_columns
from model.scenario.design import Design, build_design
from model.scenario.files import base_raw, resolved_yaml
from model.scenario.schema import ByContent, Scenario, ScenarioError

from . import batch
from .job import Execution, Job, Output
from .store import OutputFolder, environment, model_version, spec_hash, utc_now


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


def outcomes(scenario: Scenario) -> list[str]:
    """What a sweep's differences and indices can be of: P(consensus), the mean level on a level issue,
    or the share of runs meeting a member's minimum."""
    return ["consensus", *(f"level_{issue}" for issue in scenario.level_issues),
            *(f"satisfied_{code}" for code in scenario.minded)]


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


def run_sweep(job: Job, output: Output, execution: Execution, *, design: Design | None = None,
              replicates: Replicates | None = None, shard: tuple[int, int] = (0, 1),
              runner: batch.Runner | None = None, part_schema: pa.Schema | None = None,
              analyse: bool = True) -> SweepRun:
    """Run (or resume) a sweep of the job's scenario (its sweep block, or `design`). Shard i of N
    runs every N-th chunk; the shard that finds all chunks on disk (or a later plain rerun) writes
    the tables and figures. `runner` replaces the model (tests, benchmarks: e.g. SALib's Ishigami
    function), `part_schema` fixes its part files' columns."""
    scenario, seed, scenario_file = job.scenario, job.seed, job.scenario_file
    design = design or build_design(scenario, seed, scenario_file or "<scenario>")
    replicates = replicates or Replicates.of(scenario)
    if runner is None and design.outcome not in outcomes(scenario):
        key = "--outcome" if design.method == "persuade" else "sweep.outcome"
        raise ScenarioError(f"{scenario_file or scenario.name}: {key}: unknown outcome {design.outcome!r}; "
                            f"known: {', '.join(outcomes(scenario))}.")
    if replicates.target_halfwidth is not None and shard[1] > 1:
        raise ScenarioError("--shard: sequential stopping (target_halfwidth) cannot be split into shards, "
                            "because later stages depend on all earlier results; drop one of the two.")
    if output.fresh and shard[1] > 1:
        raise ScenarioError("--fresh with --shard would delete the other shards' results; "
                            "clear the folder once (run with --fresh and no --shard, or delete it) instead.")
    seeds = point_seeds(seed, design.points, replicates.common_random_numbers)
    stride = replicates.replications
    folder = OutputFolder(output.root)
    spec = {"version": model_version(), "scenario_hash": scenario.spec_hash, "seed": seed, "design": design.method,
            "points": design.points, "replications": replicates.replications,
            "common_random_numbers": replicates.common_random_numbers,
            "target_halfwidth": replicates.target_halfwidth, "min_replications": replicates.min_replications,
            "overrides_hash": spec_hash({"overrides": design.overrides}),
            "runner": None if runner is None else f"{runner.__module__}.{runner.__qualname__}"}

    base = ByContent(scenario.spec_hash, base_raw(scenario))
    task = _ChunkTask(base, design, seeds, stride, execution.engine, runner, part_schema)

    def new_manifest() -> dict:
        """The design goes to disk first; then a short pilot fixes the chunk size for good."""
        _write_design(folder, design, seeds, replicates)
        return {
            "kind": "sweep",
            "scenario": {"name": scenario.name, "file": scenario_file, "content_hash": scenario.spec_hash},
            "seed": {"root": seed, "source": job.seed_source,
                     "contract": "Philox keyed by SeedSequence(point seed); counter [replication, round, purpose]; "
                                 "point seed = root under common random numbers, else SeedSequence([root, point])"},
            "design": {"method": design.method, "parameters": list(design.parameters), "points": design.points,
                       "integer_parameters": sorted(design.integer)},
            "replicates": replicates.__dict__,
            "run_id": f"point * {stride} + replication",
            "chunk_size": execution.chunk_size or _pilot_chunk_size(task, execution.workers, replicates),
            "engine": execution.engine, "workers": execution.workers, "scheduler": execution.scheduler,
            "command": list(job.command),
            **environment(),
        }

    manifest = folder.prepare(spec, new_manifest, output.fresh)
    write_text(folder.root / "scenario.yaml", resolved_yaml(scenario))
    if not (folder.root / "design.parquet").exists():  # a shard that adopted another's manifest
        _write_design(folder, design, seeds, replicates)
    with tqdm(total=0, unit="run", disable=output.quiet, desc=scenario.name, file=sys.stderr) as bar:
        missing = _run_stages(folder, task, replicates, manifest["chunk_size"], execution, shard, bar)
    if not execution.keep_workers:
        batch.release_workers()
    if missing:
        if not output.quiet:
            print(f"shard {shard[0]}/{shard[1]} done; {missing} chunks of other shards are still missing. "
                  "The last shard to finish (or a rerun without --shard) writes the tables.", file=sys.stderr)
        return SweepRun(folder, design, complete=False, missing_chunks=missing)
    result = SweepRun(folder, design, complete=True)
    if analyse:
        result.summary, result.figures = finish_sweep(folder, scenario, design, seeds, replicates, manifest)
    write_json(folder.manifest_path, manifest | {"completed": utc_now()})
    return result


@dataclass(frozen=True)
class _ChunkTask:
    """What every chunk of one sweep shares; `args(chunk)` is one worker task's arguments."""

    base: ByContent[dict]
    design: Design
    seeds: np.ndarray
    stride: int
    engine: str
    runner: batch.Runner | None
    schema: pa.Schema | None

    def args(self, chunk: list[Segment]) -> tuple:
        segments = [(s.point, self.design.overrides[s.point], int(self.seeds[s.point]), s.first, s.count)
                    for s in chunk]
        return self.base, segments, self.stride, self.engine, self.runner, self.schema


def _run_stages(folder: OutputFolder, task: _ChunkTask, replicates: Replicates, size: int, execution: Execution,
                shard: tuple[int, int], bar: tqdm) -> int:
    """Run this shard's missing chunks, stage by stage; returns how many chunks of the current
    stage are still missing (other shards' work), 0 when the sweep is complete."""
    stride, planned = task.stride, set()
    active, bounds = list(range(task.design.points)), replicates.stages()
    for stage, (first, stop) in enumerate(zip(bounds, bounds[1:])):
        if stage > 0:
            active = _still_open(folder, active, replicates, planned)
        if not active:
            break
        plan = {c[0].point * stride + c[0].first: c for c in chunk_plan(active, first, stop, size)}
        rows = {key: sum(s.count for s in chunk) for key, chunk in plan.items()}
        planned |= set(plan)
        mine = [key for i, key in enumerate(plan) if i % shard[1] == shard[0]]
        done = folder.done_chunks(rows)
        bar.total += sum(s.count for key in mine for s in plan[key])
        bar.update(sum(s.count for key in mine if key in done for s in plan[key]))
        if done & set(mine) and stage == 0 and not bar.disable:
            bar.write(f"resuming: {len(done & set(mine))} of {len(mine)} chunks already in {folder.parts}",
                      file=sys.stderr)
        tasks = [(key, batch.run_sweep_chunk, task.args(plan[key])) for key in mine if key not in done]
        for key, table in batch.run_tasks(tasks, execution.workers, execution.scheduler):
            folder.write_part(key, table)
            done.add(key)
            bar.update(table.num_rows)
        others = {key: rows[key] for key in plan if key not in done}  # other shards' chunks, if any
        missing = len(others) - len(folder.done_chunks(others)) if others else 0
        if missing:
            return missing
    folder.reject_others(planned)
    return 0


def _still_open(folder: OutputFolder, active: list[int], replicates: Replicates, earlier: set[int]) -> list[int]:
    """Points whose Wilson 95 % half-width is still above the target after the earlier stages'
    chunks `earlier`, whatever later stages a resumed folder already holds (so a resume makes the
    same stopping decisions, and the same chunk plan, as an uninterrupted run)."""
    k, n = consensus_counts(folder.read_runs(lambda name, _: name in ("point", "consensus", "error"), earlier))
    return [p for p in active if wilson_halfwidth(k.get(p, 0), n.get(p, 0)) > replicates.target_halfwidth]


def finish_sweep(folder: OutputFolder, scenario: Scenario, design: Design, seeds: np.ndarray,
                 replicates: Replicates, manifest: dict) -> tuple[dict, list[Path]]:
    """Points, failures, differences, sensitivity and persuasion tables, summary.json, figures."""
    tables = analyse(folder.read_runs(summary_columns), scenario, design, seeds, replicates, manifest["seed"]["root"])
    for name, frame in tables.tables().items():
        write_table(folder.root, name, frame)
    write_json(folder.root / "summary.json", tables.summary)
    figures = save_sweep_figures(folder.root / "figures", scenario, design, tables.points, tables.differences,
                                 tables.sensitivity, tables.warnings)
    return tables.summary, figures


def _pilot_chunk_size(task: _ChunkTask, workers: int, replicates: Replicates) -> int:
    """Runs per chunk (`batch.chunk_size`) from a short timed pilot at point 0, sized for the
    first stage (every point's first batch)."""
    runs = min(batch.PILOT_RUNS.get(task.engine, 20), task.stride)
    per_run = batch.seconds_per_run(lambda count: batch.run_sweep_chunk(*task.args([Segment(0, 0, count)])), runs)
    return batch.chunk_size(task.design.points * replicates.stages()[1], workers, per_run)


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
