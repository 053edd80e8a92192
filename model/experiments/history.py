"""Validation against history: run every scenario of a folder that has an `observed` block and
score it against what happened (`model.outputs.validation` computes the comparison)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import yaml

from model.outputs import agreement, tournament
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
    test: dict | None = None  # the same three on the test cases of the folder's split.yaml


SPLIT = "split.yaml"  # a folder's frozen train/test split: not a scenario


def scenario_files(folder: Path, role: str | None = None) -> list[Path]:
    """The scenario files of a folder (*.yaml, *.yml but split.yaml), sorted by name; with `role`
    ("train" or "test"), only the files the folder's split puts there, so that the others are never
    read. ScenarioError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: not a folder of scenario files.")
    files = sorted(p for p in [*folder.glob("*.yaml"), *folder.glob("*.yml")] if p.name != SPLIT)
    if role is not None and (split := read_split(folder, files)) is not None:
        files = [p for p in files if p.stem in split[role]]
    if not files:
        raise ScenarioError(f"{folder}: no scenario files (*.yaml) in this folder; validation needs at least one "
                            "scenario with an observed block.")
    return files


def read_split(folder: Path, files: list[Path]) -> dict | None:
    """The folder's split.yaml ({train: [file stems], test: [...], reason: text}), checked against
    its scenario files (each in exactly one list); None if the folder has none."""
    path = Path(folder) / SPLIT
    if not path.exists():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        split = {role: [str(x) for x in raw[role]] for role in ("train", "test")}
        split["reason"] = str(raw.get("reason", ""))
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise ScenarioError(f"{path}: not a split (give `train:` and `test:` lists of case file names; {error})") \
            from None
    stems = {p.stem for p in files}
    listed = split["train"] + split["test"]
    for problem, names in (("is in no list", stems - set(listed)), ("has no file", set(listed) - stems),
                           ("is listed twice", {n for n in listed if listed.count(n) > 1})):
        if names:
            raise ScenarioError(f"{path}: {', '.join(sorted(names))} {problem}; every case file of the folder goes "
                                "in exactly one of train and test.")
    return split


def load_cases(folder: Path, overrides: list[str] | tuple[str, ...] = (),
               role: str | None = None) -> list[tuple[Path, Scenario]]:
    """Every scenario of the folder (or of one `role` of its split), each of which must have an
    `observed` block with a level or an option (a Secretary General selection may be a choice alone)."""
    cases = []
    for path in scenario_files(folder, role):
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


SECOND_CODING = "second-coding"  # a folder's independent second codings, one file per case it recodes


def second_codings(folder: Path, overrides: list[str] | tuple[str, ...] = ()) -> list[tuple[Scenario, Scenario]]:
    """(first, second) coding of every case of FOLDER/second-coding/ (each file named as the case it
    recodes in FOLDER); ScenarioError if there is none, or a file has no first coding."""
    files = scenario_files(Path(folder) / SECOND_CODING)
    pairs = []
    for path in files:
        first = Path(folder) / path.name
        if not first.exists():
            raise ScenarioError(f"{path}: no first coding {first} for this second coding; name it as the case it "
                                "recodes.")
        pairs.append((load_scenario(first, overrides), load_scenario(path, overrides)))
    return pairs


def agreement_table(folder: Path, out: Path, overrides: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Inter-coder agreement of the folder's second codings; writes <out>/agreement.parquet (.csv)."""
    frame = agreement.table(second_codings(folder, overrides))
    Path(out).mkdir(parents=True, exist_ok=True)
    write_table(Path(out), "agreement", frame)
    return frame


def calibrated_overrides(path: Path, names: list[str]) -> dict[str, list[str]]:
    """Case name -> the `--set` overrides of the calibration fit that did not see it and saw the most
    cases (calibration.json of `python run.py calibrate`): a train case's leave-one-out fold, a test
    case's fit on all the train cases. So the calibrated model is scored only on cases it was not fitted to."""
    try:
        fits = [(fit["fitted_on"], fit["values"]) for fit in json.loads(Path(path).read_text(encoding="utf-8"))[
            "fits"].values()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ScenarioError(f"{path}: not a calibration.json written by `python run.py calibrate` ({error}); "
                            "give the file that calibration wrote.") from None
    unseen = {n: [(len(on), values) for on, values in fits if n not in on] for n in names}
    missing = [n for n, options in unseen.items() if not options]
    if missing:
        raise ScenarioError(f"{path}: fits: every fit saw {', '.join(missing)} (no leave-one-summit-out fold held it "
                            "out); calibrate on the same folder first (python run.py calibrate FOLDER).")
    return {n: [f"{key}={value}" for key, value in max(options, key=lambda o: o[0])[1].items()]
            for n, options in unseen.items()}


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
    execution = replace(execution, keep_workers=True)  # one pool for every case (starting one costs seconds)
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
    whole = _contest(levels, events)
    split = read_split(folder, scenario_files(folder))
    test_names = [s.name for p, s in cases if split and p.stem in split["test"]]
    test = _contest(*(f[f["case"].isin(test_names)] for f in (levels, events))) if test_names else None
    out.mkdir(parents=True, exist_ok=True)
    write_table(out, "validation", table)
    write_table(out, "validation-cases", per_case)
    tables = {"tournament": whole["table"], "tournament-levels": levels, "tournament-events": events,
              "tournament-skill": whole["skill"]}
    if test:
        tables |= {"tournament-test": test["table"], "tournament-test-skill": test["skill"]}
    for name, frame in tables.items():
        write_table(out, name, frame)
    write_json(out / "summary.json", {"draws": tournament.DRAWS, "tolerance": tournament.TOLERANCE,
                                      "labels": tournament.LABELS, **_records(whole),
                                      "test": {"cases": test_names, "reason": split.get("reason", ""), **_records(test)}
                                      if test else None,
                                      "seeds": {n: s["seed"] for n, s in summaries.items()}})
    reps = sorted({s["replications"] for s in summaries.values()})
    seeds = f"--seed {seed}" if seed is not None else "of each scenario"
    v2 = sum(s.summit_date is not None for _, s in cases)
    coding = ("stances coded knowing the outcome" if not v2 else
              "every case coded from dated pre-summit sources (v2)" if v2 == len(cases) else
              f"{v2} of {len(cases)} cases coded from dated pre-summit sources (v2), the rest knowing the outcome")
    note = f"n = {'/'.join(f'{r:,}' for r in reps)} replications per summit · seed {seeds} · {coding}"
    figures = save_validation_figure(table, out / "figures", note) if len(table) else []
    figures += save_tournament_figures(levels, whole["table"], whole["skill"], out / "figures",
                                       note.replace(" · seed", f", {tournament.DRAWS} draws per predictor · seed"))
    return FolderValidation(table, per_case, summaries, out, figures, whole["table"], whole["skill"], whole["sizes"],
                            test)


def _contest(levels: pd.DataFrame, events: pd.DataFrame) -> dict:
    """The tournament table, skill and sample sizes of some cases' level and event rows."""
    per = max(1, events["predictor"].nunique())
    sizes = {"cases": int(events["case"].nunique()), "levels": len(levels) // per,
             "holdout_rows": int((events["kind"] == "holdout").sum() // per)}
    return {"table": tournament.table(levels, events), "skill": tournament.skill(levels, events), "sizes": sizes}


def _records(contest: dict | None) -> dict:
    """summary.json's numbers of one contest: sizes, table, best per column, skill, the verdict."""
    if contest is None:
        return {}
    board, skill = contest["table"], contest["skill"]
    return {"sizes": contest["sizes"], "tournament": tournament.records(board), "best": tournament.best(board),
            "skill": tournament.records(skill), "verdict": tournament.verdict(board, skill)}
