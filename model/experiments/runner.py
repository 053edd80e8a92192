"""The main job: a scenario's Monte Carlo batch into its output folder, resumable.

scenario -> frozen spec + manifest -> chunks on the executor -> part files -> results table
-> summary.json, console summary, figures.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from model.negotiation.engines import run_chunk
from model.negotiation.model import play
from model.negotiation.params import params_for
from model.negotiation.results import schema_for, to_frame
from model.outputs import report
from model.outputs.files import write_json, write_text
from model.outputs.plots import save_figures
from model.scenario.files import resolved_yaml

from . import batch
from .job import Execution, Job, Output
from .store import OutputFolder, environment, model_version


@dataclass
class BatchResult:
    table: pd.DataFrame
    summary: dict
    folder: OutputFolder
    figures: list[Path]


def run_batch(job: Job, output: Output, execution: Execution) -> BatchResult:
    """Run (or resume) every replication of the job's scenario and write all outputs.

    On KeyboardInterrupt the finished chunks stay on disk and the same command resumes them."""
    scenario, seed = job.scenario, job.seed
    n = scenario.run.replications
    folder = OutputFolder(output.root)
    # the engine is not part of the spec: both give the same table (tests/test_engines.py)
    spec = {"version": model_version(), "scenario_hash": scenario.spec_hash, "seed": seed, "replications": n}
    manifest = folder.prepare(spec, lambda: {
        "scenario": {"name": scenario.name, "file": job.scenario_file, "content_hash": scenario.spec_hash},
        "seed": {"root": seed, "source": job.seed_source,
                 "contract": "Philox keyed by SeedSequence(seed); counter [replication, round, purpose]"},
        "replications": n,
        "chunk_size": execution.chunk_size or _chunk_size(job, execution),
        "engine": execution.engine,
        "workers": execution.workers,
        "scheduler": execution.scheduler,
        "command": list(job.command),
        **environment(),
    }, output.fresh)
    write_text(folder.root / "scenario.yaml", resolved_yaml(scenario))
    plan = dict(batch.chunks(n, manifest["chunk_size"]))
    done = folder.done_chunks(plan)
    todo = [(first, count) for first, count in plan.items() if first not in done]
    already = n - sum(count for _, count in todo)
    if already and not output.quiet:
        print(f"resuming: {already} of {n} replications already in {folder.parts}", file=sys.stderr)
    with tqdm(total=n, initial=already, unit="run", disable=output.quiet, desc=scenario.name,
              file=sys.stderr) as bar:
        for first, table in batch.execute(scenario, seed, todo, execution):
            folder.write_part(first, table)
            bar.update(table.num_rows)
    if not execution.keep_workers:
        batch.release_workers()
    folder.reject_others(set(plan))
    table = folder.combined(schema_for(scenario))
    folder.finish(manifest, table)
    frame = to_frame(table)
    summary = report.summarize(frame, scenario, seed)
    write_json(folder.root / "summary.json", summary)
    figures = save_figures(frame, scenario, play(scenario, seed, 0), folder.root / "figures")
    return BatchResult(frame, summary, folder, figures)


def _chunk_size(job: Job, execution: Execution) -> int:
    """Chunks for this machine or cluster, from a short pilot of the job's first replications."""
    n, params = job.scenario.run.replications, params_for(job.scenario)
    runs = min(batch.PILOT_RUNS[execution.engine], n)
    per_run = batch.seconds_per_run(
        lambda count: run_chunk(job.scenario, job.seed, 0, count, execution.engine, params), runs)
    return batch.chunk_size(n, execution.workers, per_run)
