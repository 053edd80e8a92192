"""Validation against history: run every scenario of a folder that has an `observed` block and
score it against what happened (`model.outputs.validation` computes the comparison)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from model.outputs.files import write_table
from model.outputs.plots import save_validation_figure
from model.outputs.validation import TIDY_COLUMNS, case_row, tidy
from model.scenario.files import load_scenario
from model.scenario.schema import Scenario, ScenarioError

from .job import Execution, Job, Output
from .runner import run_batch
from .store import root_seed


@dataclass
class FolderValidation:
    table: pd.DataFrame  # one row per scenario and observed issue
    cases: pd.DataFrame  # one row per scenario: consensus, timing, holdouts, MAE
    summaries: dict[str, dict]
    root: Path
    figures: list[Path]


def scenario_files(folder: Path) -> list[Path]:
    """The scenario files of a folder (*.yaml, *.yml), sorted by name; ScenarioError if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: not a folder of scenario files.")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ScenarioError(f"{folder}: no scenario files (*.yaml) in this folder; validation needs at least one "
                            "scenario with an observed block.")
    return files


def load_cases(folder: Path, overrides: list[str] | tuple[str, ...] = ()) -> list[tuple[Path, Scenario]]:
    """Every scenario of the folder, each of which must have an `observed` block with a level or an
    option (a Secretary General selection may be a choice alone)."""
    cases = []
    for path in scenario_files(folder):
        scenario = load_scenario(path, overrides)
        if scenario.observed is None:
            raise ScenarioError(f"{path}: observed: missing; every scenario in a validation folder needs the coded "
                                "real outcome (observed: consensus, levels, holdouts; docs/scenario-format.md).")
        if not (scenario.observed.levels or scenario.observed.options):
            raise ScenarioError(f"{path}: observed.levels: empty; give the observed level of at least one issue "
                                "(or, for a choice issue, observed.options).")
        cases.append((path, scenario))
    names = [s.name for _, s in cases]
    for name in set(names):
        if names.count(name) > 1:
            clash = [str(p) for p, s in cases if s.name == name]
            raise ScenarioError(f"{clash[1]}: name: {name!r} is also the name of {clash[0]}; names must differ "
                                "(they name the output folders).")
    return cases


def validate_folder(folder: Path, output: Output, execution: Execution, seed: int | None = None,
                    replications: int | None = None, overrides: list[str] | tuple[str, ...] = (),
                    command: tuple[str, ...] = ()) -> FolderValidation:
    """Run every scenario of `folder` (each into <out>/<name>/, resumable like a single run) and write
    <out>/validation.parquet (.csv), <out>/validation-cases.csv and <out>/figures/validation.png (.svg)."""
    extra = [*overrides, *([f"run.replications={replications}"] if replications else [])]
    out = Path(output.root)
    rows, case_rows, summaries = [], [], {}
    for path, scenario in load_cases(folder, extra):
        s, source = root_seed(scenario, out / scenario.name, seed, output.fresh)
        if not output.quiet:
            print(f"validating {path} ({scenario.run.replications} replications, seed {s})", file=sys.stderr)
        result = run_batch(Job(scenario, s, source, str(path), command),
                           Output(out / scenario.name, output.fresh, quiet=True), execution)
        summaries[scenario.name] = result.summary
        rows += tidy(scenario.name, result.summary["validation"])
        case_rows.append(case_row(scenario.name, result.summary))
    table, per_case = pd.DataFrame(rows, columns=list(TIDY_COLUMNS)), pd.DataFrame(case_rows)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out, "validation", table)
    write_table(out, "validation-cases", per_case)
    reps = sorted({s["replications"] for s in summaries.values()})
    seeds = f"--seed {seed}" if seed is not None else "of each scenario"
    note = (f"n = {'/'.join(f'{r:,}' for r in reps)} replications per summit · seed {seeds} · "
            "stances coded knowing the outcome")
    figures = save_validation_figure(table, out / "figures", note) if len(table) else []
    return FolderValidation(table, per_case, summaries, out, figures)
