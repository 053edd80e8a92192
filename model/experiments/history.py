"""Validation against history: run every scenario of a folder that has an `observed` block and
score it against what happened (`model.outputs.validation` computes the comparison)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from model.outputs import tournament
from model.outputs.files import write_json, write_table
from model.outputs.plots import save_validation_figure
from model.outputs.tournament_plots import save_tournament_figures
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
    tournament: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per competitor
    skill: pd.DataFrame = field(default_factory=pd.DataFrame)
    sizes: dict = field(default_factory=dict)  # cases, levels, holdout rows


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


def calibrated_overrides(path: Path, names: list[str]) -> dict[str, list[str]]:
    """Case name -> the `--set` overrides of the calibration fold that held it out (calibration.json
    of `python run.py calibrate`), so that the calibrated model is scored on cases it was not fitted to."""
    try:
        fits = json.loads(Path(path).read_text(encoding="utf-8"))["fits"]
        held = {fit["held_out"]: fit["values"] for fit in fits.values() if fit.get("held_out")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ScenarioError(f"{path}: not a calibration.json written by `python run.py calibrate` ({error}); "
                            "give the file that calibration wrote.") from None
    missing = [n for n in names if n not in held]
    if missing:
        raise ScenarioError(f"{path}: fits: no leave-one-summit-out fold held out {', '.join(missing)}; calibrate "
                            "on the same folder first (python run.py calibrate FOLDER).")
    return {n: [f"{key}={value}" for key, value in held[n].items()] for n in names}


def validate_folder(folder: Path, output: Output, execution: Execution, seed: int | None = None,
                    replications: int | None = None, overrides: list[str] | tuple[str, ...] = (),
                    command: tuple[str, ...] = (), calibration: Path | None = None) -> FolderValidation:
    """Run every scenario of `folder` (each into <out>/<name>/, resumable like a single run), score
    the model and the classic predictors in the tournament, and write <out>/validation.parquet (.csv),
    validation-cases, tournament (and its -levels, -events and -skill tables), summary.json and the
    figures. With `calibration` (a calibration.json), each case is also run at the parameters of the
    fold that held it out (<out>/<name>-calibrated/)."""
    extra = [*overrides, *([f"run.replications={replications}"] if replications else [])]
    out = Path(output.root)
    cases = load_cases(folder, extra)
    tuned = calibrated_overrides(calibration, [s.name for _, s in cases]) if calibration else {}
    rows, case_rows, summaries, level_rows, event_rows = [], [], {}, [], []
    for path, scenario in cases:
        s, source = root_seed(scenario, out / scenario.name, seed, output.fresh)
        if not output.quiet:
            print(f"validating {path} ({scenario.run.replications} replications, seed {s})", file=sys.stderr)
        result = run_batch(Job(scenario, s, source, str(path), command),
                           Output(out / scenario.name, output.fresh, quiet=True), execution)
        summaries[scenario.name] = result.summary
        rows += tidy(scenario.name, result.summary["validation"])
        case_rows.append(case_row(scenario.name, result.summary))
        forecasts = {tournament.MODEL: tournament.model_forecast(scenario, result.summary, result.table)}
        if tuned:
            fitted = load_scenario(path, [*extra, *tuned[scenario.name]])
            again = run_batch(Job(fitted, s, source, str(path), command),
                              Output(out / f"{scenario.name}-calibrated", output.fresh, quiet=True), execution)
            forecasts[tournament.CALIBRATED] = tournament.model_forecast(fitted, again.summary, again.table)
        forecasts |= tournament.predictor_forecasts(scenario, s)
        level_rows += tournament.level_rows(scenario.name, scenario, forecasts)
        event_rows += tournament.event_rows(scenario.name, scenario, forecasts)
    table, per_case = pd.DataFrame(rows, columns=list(TIDY_COLUMNS)), pd.DataFrame(case_rows)
    levels, events = pd.DataFrame(level_rows), pd.DataFrame(event_rows)
    board, skill = tournament.table(levels, events), tournament.skill(levels, events)
    sizes = {"cases": len(cases), "levels": len(levels) // max(1, levels["predictor"].nunique()) if len(levels) else 0,
             "holdout_rows": int((events["kind"] == "holdout").sum() // events["predictor"].nunique())}
    out.mkdir(parents=True, exist_ok=True)
    write_table(out, "validation", table)
    write_table(out, "validation-cases", per_case)
    for name, frame in (("tournament", board), ("tournament-levels", levels), ("tournament-events", events),
                        ("tournament-skill", skill)):
        write_table(out, name, frame)
    write_json(out / "summary.json", {"sizes": sizes, "draws": tournament.DRAWS, "tolerance": tournament.TOLERANCE,
                                      "labels": tournament.LABELS, "tournament": tournament.records(board),
                                      "best": tournament.best(board), "skill": tournament.records(skill),
                                      "verdict": tournament.verdict(board, skill),
                                      "seeds": {n: s["seed"] for n, s in summaries.items()}})
    reps = sorted({s["replications"] for s in summaries.values()})
    seeds = f"--seed {seed}" if seed is not None else "of each scenario"
    note = (f"n = {'/'.join(f'{r:,}' for r in reps)} replications per summit · seed {seeds} · "
            "stances coded knowing the outcome")
    figures = save_validation_figure(table, out / "figures", note) if len(table) else []
    figures += save_tournament_figures(levels, board, skill, out / "figures",
                                       note.replace(" · seed", f", {tournament.DRAWS} draws per predictor · seed"))
    return FolderValidation(table, per_case, summaries, out, figures, board, skill, sizes)
