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

from . import batch, report
from .config import Scenario, resolved_yaml
from .negotiation import play
from .results import results_schema, to_frame
from .store import OutputFolder, environment, write_json, write_text


@dataclass
class BatchResult:
    table: pd.DataFrame
    summary: dict
    folder: OutputFolder
    figures: list[Path]


def run_batch(scenario: Scenario, seed: int, out: Path, workers: int, fresh: bool = False,
              quiet: bool = False, scenario_file: str = "", seed_source: str = "scenario",
              engine: str = batch.DEFAULT_ENGINE, scheduler: str | None = None) -> BatchResult:
    """Run (or resume) every replication of `scenario` under root `seed` and write all outputs.

    On KeyboardInterrupt the finished chunks stay on disk and the same command resumes them."""
    n = scenario.run.replications
    folder = OutputFolder(out)
    # the engine is not part of the spec: both give the same table (tests/test_engines.py)
    spec = {"scenario_hash": scenario.spec_hash, "seed": seed, "replications": n}
    manifest = folder.prepare(spec, {
        "scenario": {"name": scenario.name, "file": scenario_file, "content_hash": scenario.spec_hash},
        "seed": {"root": seed, "source": seed_source,
                 "contract": "Philox keyed by SeedSequence(seed); counter [replication, round, purpose]"},
        "replications": n,
        "chunk_size": batch.chunk_size(n, workers, engine),
        "engine": engine,
        "workers": workers,
        "scheduler": scheduler,
        "command": sys.argv,
        **environment(),
    }, fresh)
    write_text(folder.root / "scenario.yaml", resolved_yaml(scenario))
    done = folder.done_chunks()
    todo = [c for c in batch.chunks(n, manifest["chunk_size"]) if c[0] not in done]
    already = n - sum(count for _, count in todo)
    if already and not quiet:
        print(f"resuming: {already} of {n} replications already in {folder.parts}", file=sys.stderr)
    with tqdm(total=n, initial=already, unit="run", disable=quiet, desc=scenario.name, file=sys.stderr) as bar:
        for first, table in batch.execute(scenario, seed, todo, workers, engine, scheduler):
            folder.write_part(first, table)
            bar.update(table.num_rows)
    table = folder.combined(results_schema(tuple(scenario.issues)))
    folder.finish(manifest, table)
    frame = to_frame(table)
    summary = report.summarize(frame, scenario, seed)
    write_json(folder.root / "summary.json", summary)
    figures = _figures(frame, scenario, seed, folder.root / "figures")
    return BatchResult(frame, summary, folder, figures)


def _figures(frame: pd.DataFrame, scenario: Scenario, seed: int, where: Path) -> list[Path]:
    from .plots import save_figures  # matplotlib import is slow; only the batch job needs it

    example = play(scenario, seed, 0)
    return save_figures(frame, scenario, example, where)
