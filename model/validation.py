"""Validation against history: the model's predictions beside a summit's coded real outcome and
beside three simple baselines computed from the same inputs.

A scenario with an `observed` block gets a `validation` section in its summary (`compare`). A
folder of such scenarios is validated in one go (`validate_folder`): one tidy table
(validation.parquet / .csv), the mean absolute errors of the model and the baselines, and a
predicted-vs-observed figure. The baselines use each member's point code (the PERT mode, the
uniform midpoint, the normal mean, after bloc and member shifts) and the voting members only:

* `compromise`: the salience x capability weighted mean, sum c_i s_ik x_ik / sum c_i s_ik (the
  "compromise model", the best simple predictor on EU Council data; the chair's first draft);
* `weighted_median`: the position where the cumulative salience x capability weight reaches half;
* `plain_mean`: the unweighted mean of the voting members' positions.

The model's prediction of a level is the mean agreed level over the runs that agreed the issue,
with the 5th and 95th percentiles as its 90 % interval.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import rules
from .config import Scenario, ScenarioError, load_scenario
from .params import params_for

BASELINES = ("compromise", "weighted_median", "plain_mean")
BASELINE_LABELS = {"compromise": "compromise (salience x capability weighted mean)",
                   "weighted_median": "weighted median", "plain_mean": "plain mean"}
TOP_HOLDOUTS = 5
SMALL_SAMPLE = ("three summits are a small sample: a leave-one-summit-out error rests on one held-out "
                "case per fold, so read it as an illustration, not an estimate of accuracy.")


def baselines(scenario: Scenario) -> dict[str, dict[str, float]]:
    """Baseline -> issue -> predicted level, from the members' point codes (voting members only)."""
    p = params_for(scenario)
    x = p.nominal_ideal[None]  # (1, n, K)
    values = {
        "compromise": rules.compromise(x, p.draft_weight)[0],
        "weighted_median": rules.weighted_median(x, p.draft_weight)[0],
        "plain_mean": rules.plain_mean(x, p.voting)[0],
    }
    return {name: {issue: float(v[k]) for k, issue in enumerate(p.issues)} for name, v in values.items()}


def compare(summary: dict, scenario: Scenario) -> dict:
    """Predicted vs observed for a scenario with an `observed` block (see docs/validation.md).

    `summary` is `report.summarize`'s dictionary (without its `validation` key)."""
    from .report import OUTCOME_KNOWN

    obs = scenario.observed
    if obs is None:
        raise ScenarioError(f"{scenario.name}: observed: the scenario has no observed block to validate against; "
                            "add one (docs/scenario-format.md, `observed`).")
    base = baselines(scenario)
    issues = {}
    for name in (i for i in scenario.issues if i in obs.levels):  # file order of the issues
        level = obs.levels[name]
        got = summary["issues"][name]
        mean = got["mean"]
        row = {
            "observed": float(level),
            "predicted": mean, "p05": got["p05"], "p95": got["p95"],
            "agreed": got["agreed"]["p"],
            "abs_error": None if mean is None else abs(mean - level),
            "inside_90": None if mean is None else bool(got["p05"] <= level <= got["p95"]),
        }
        for b in BASELINES:
            row[b] = base[b][name]
            row[f"{b}_abs_error"] = abs(base[b][name] - level)
        issues[name] = row
    p_cons = summary["consensus"]["p"]
    rounds = summary["agreement_round"]
    late = rounds["last_round"]["p"]
    shares = {row["member"]: row["p"] for row in summary["holdouts"]}
    observed_holdouts = [{"member": code, "name": scenario.members[code].name, "p": shares.get(code, 0.0)}
                         for code in obs.holdouts]
    top = summary["holdouts"][:TOP_HOLDOUTS]
    recall, precision = holdout_scores(shares, obs.holdouts)
    return {
        "caveat": OUTCOME_KNOWN,
        "issues": issues,
        "consensus": {"observed": obs.consensus, "predicted": p_cons, "ci95": summary["consensus"]["ci95"],
                      "matched": bool((p_cons >= 0.5) == obs.consensus),
                      "abs_error": abs(p_cons - float(obs.consensus))},
        "timing": {"observed_late": obs.late, "deadline": rounds["deadline"], "median_round": rounds["median"],
                   "last_round": late,
                   "abs_error": None if obs.late is None or late is None else abs(late - float(obs.late))},
        "holdouts": {"observed": observed_holdouts,
                     "recall": recall, "precision": precision,
                     "top_predicted": [{"member": h["member"], "p": h["p"]} for h in top],
                     "observed_in_top": sum(h["member"] in obs.holdouts for h in top[:max(len(obs.holdouts), 1)])},
        "mae": _mae(issues),
    }


def holdout_scores(shares: dict[str, float], observed: list[str]) -> tuple[float | None, float | None]:
    """(recall, precision) of the model's last holdouts against the observed ones: recall = the mean,
    over the observed holdouts, of the share of runs in which each is a last holdout; precision = the
    observed holdouts' part of all holdout appearances (None when nobody held out, in the model or
    in history)."""
    if not observed:
        return None, None
    recall = float(np.mean([shares.get(code, 0.0) for code in observed]))
    total = sum(shares.values())
    precision = float(sum(shares.get(code, 0.0) for code in observed) / total) if total > 0 else None
    return recall, precision


def _mae(issues: dict) -> dict:
    """Mean absolute error over the issues with an observed level (model: the issues it agreed)."""
    model = [row["abs_error"] for row in issues.values() if row["abs_error"] is not None]
    out = {"model": float(np.mean(model)) if model else None}
    for b in BASELINES:
        errors = [row[f"{b}_abs_error"] for row in issues.values()]
        out[b] = float(np.mean(errors)) if errors else None
    return out


def render_comparison(v: dict) -> str:
    """The console block printed under a scenario's summary."""
    lines = ["Validation against the observed outcome (levels 0-100; 90 % interval = 5th-95th percentile of runs):",
             f"  {'issue':<16}{'observed':>9}{'model':>8}{'90 % interval':>17}{'|err|':>7}"
             f"{'compr.':>8}{'|err|':>7}{'w.med.':>8}{'|err|':>7}{'mean':>7}{'|err|':>7}"]
    for name, r in v["issues"].items():
        lines.append(f"  {name[:15]:<16}{r['observed']:>9.0f}{_prediction_cells(r, 8)}")
    mae = v["mae"]
    lines.append("  mean absolute error: model " + _fmt(mae["model"]) + ", "
                 + ", ".join(f"{b.replace('_', ' ')} {_fmt(mae[b])}" for b in BASELINES))
    c = v["consensus"]
    lines.append(f"  consensus: observed {'yes' if c['observed'] else 'no'}, model P = {c['predicted']:.3f} "
                 f"({'matches' if c['matched'] else 'does not match'} at P >= 0.5)")
    t = v["timing"]
    if t["last_round"] is not None:
        seen = {True: "late (settled at the summit, the last round)", False: "before the last round",
                None: "not coded"}[t["observed_late"]]
        lines.append(f"  timing: observed {seen}; model: median round {t['median_round']:.0f} of {t['deadline']}, "
                     f"{t['last_round']:.1%} of agreements in the last round")
    h = v["holdouts"]
    if h["observed"]:
        seen = ", ".join(f"{x['member']} {x['p']:.1%}" for x in h["observed"])
        lines.append(f"  observed holdouts, share of runs in which each is a last holdout: {seen}")
        if h["precision"] is not None:
            lines.append(f"  observed holdouts' part of all holdout appearances (precision): {h['precision']:.1%}")
    top = ", ".join(f"{x['member']} {x['p']:.1%}" for x in h["top_predicted"]) or "none"
    lines.append(f"  model's most frequent holdouts: {top}")
    lines += _wrapped(f"  Caveat: {v['caveat']}", subsequent_indent="  ")
    return "\n".join(lines)


def _prediction_cells(r, width: int) -> str:
    """One issue's row after the observed level: the model's mean, 90 % interval and |error| (the
    mean `width` characters wide), then each baseline and its |error|."""
    gap = " " * (width - 5)
    if r["predicted"] is None or pd.isna(r["predicted"]):
        model = f"{'never agreed':>{2 * width + 16}}"
    else:
        model = f"{r['predicted']:>{width}.1f}{gap}[{r['p05']:5.1f}, {r['p95']:5.1f}]{r['abs_error']:>7.1f}"
    return model + "".join(f"{r[b]:>8.1f}{r[b + '_abs_error']:>7.1f}" for b in BASELINES)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


# ---------------------------------------------------------------- a folder of historical cases
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
    """Every scenario of the folder, each of which must have an `observed` block with levels."""
    cases = []
    for path in scenario_files(folder):
        scenario = load_scenario(path, overrides)
        if scenario.observed is None:
            raise ScenarioError(f"{path}: observed: missing; every scenario in a validation folder needs the coded "
                                "real outcome (observed: consensus, levels, holdouts; docs/scenario-format.md).")
        if not scenario.observed.levels:
            raise ScenarioError(f"{path}: observed.levels: empty; give the observed level of at least one issue.")
        cases.append((path, scenario))
    names = [s.name for _, s in cases]
    for name in set(names):
        if names.count(name) > 1:
            clash = [str(p) for p, s in cases if s.name == name]
            raise ScenarioError(f"{clash[1]}: name: {name!r} is also the name of {clash[0]}; names must differ "
                                "(they name the output folders).")
    return cases


def tidy(name: str, v: dict) -> list[dict]:
    """One row per observed issue of one scenario's comparison."""
    return [{"scenario": name, "issue": issue, **{k: r[k] for k in (
        "observed", "predicted", "p05", "p95", "abs_error", "inside_90", "agreed",
        *(x for b in BASELINES for x in (b, f"{b}_abs_error")))}} for issue, r in v["issues"].items()]


def case_row(name: str, summary: dict) -> dict:
    v = summary["validation"]
    return {"scenario": name, "replications": summary["replications"], "seed": summary["seed"],
            "consensus_observed": v["consensus"]["observed"], "p_consensus": v["consensus"]["predicted"],
            "consensus_matched": v["consensus"]["matched"],
            "late_observed": v["timing"]["observed_late"], "median_round": v["timing"]["median_round"],
            "p_last_round": v["timing"]["last_round"],
            "holdouts_observed": " ".join(h["member"] for h in v["holdouts"]["observed"]),
            "holdout_recall": v["holdouts"]["recall"], "holdout_precision": v["holdouts"]["precision"],
            "top_holdouts": " ".join(f"{h['member']}:{h['p']:.3f}" for h in v["holdouts"]["top_predicted"]),
            **{f"mae_{k}": x for k, x in v["mae"].items()}}


def validate_folder(folder: Path, out: Path, seed: int | None = None, replications: int | None = None,
                    overrides: list[str] | tuple[str, ...] = (), workers: int = 1, fresh: bool = False,
                    quiet: bool = False, engine: str | None = None) -> FolderValidation:
    """Run every scenario of `folder` (each into out/<name>/, resumable like a single run) and write
    out/validation.parquet (.csv), out/validation-cases.csv and out/figures/validation.png (.svg)."""
    from . import batch
    from .runner import run_batch
    from .store import root_seed

    extra = [*overrides, *([f"run.replications={replications}"] if replications else [])]
    cases = load_cases(folder, extra)
    out = Path(out)
    rows, case_rows, summaries = [], [], {}
    for path, scenario in cases:
        s, source = root_seed(scenario, out / scenario.name, seed, fresh)
        if not quiet:
            print(f"validating {path} ({scenario.run.replications} replications, seed {s})", file=sys.stderr)
        result = run_batch(scenario, s, out / scenario.name, workers, fresh=fresh, quiet=True,
                           scenario_file=str(path), seed_source=source, engine=engine or batch.DEFAULT_ENGINE)
        summary = result.summary
        summaries[scenario.name] = summary
        rows += tidy(scenario.name, summary["validation"])
        case_rows.append(case_row(scenario.name, summary))
    table, per_case = pd.DataFrame(rows), pd.DataFrame(case_rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "validation.parquet", index=False)
    table.to_csv(out / "validation.csv", index=False)
    per_case.to_csv(out / "validation-cases.csv", index=False)
    from .plots import save_validation_figure

    reps = sorted({s["replications"] for s in summaries.values()})
    seeds = f"--seed {seed}" if seed is not None else "of each scenario"
    note = (f"n = {'/'.join(f'{r:,}' for r in reps)} replications per summit · seed {seeds} · "
            "stances coded knowing the outcome")
    figures = save_validation_figure(table, out / "figures", note)
    return FolderValidation(table, per_case, summaries, out, figures)


def overall_mae(table: pd.DataFrame) -> dict[str, float]:
    """Mean absolute error over every observed issue of every case (the model: issues it agreed)."""
    out = {"model": float(table["abs_error"].dropna().mean())}
    for b in BASELINES:
        out[b] = float(table[f"{b}_abs_error"].mean())
    return out


def render_folder(result: FolderValidation) -> str:
    """The folder's one table, the MAE of the model and each baseline, and the caveats."""
    from .report import OUTCOME_KNOWN

    t = result.table
    head = (f"{'scenario':<16}{'issue':<16}{'obs.':>6}{'model':>7}{'90 % interval':>16}{'|err|':>7}"
            f"{'compr.':>8}{'|err|':>7}{'w.med.':>8}{'|err|':>7}{'mean':>7}{'|err|':>7}")
    lines = ["Validation: predicted vs observed levels (0-100 scale)", "", head, "-" * len(head)]
    for _, r in t.iterrows():
        lines.append(f"{r['scenario'][:15]:<16}{r['issue'][:15]:<16}{r['observed']:>6.0f}{_prediction_cells(r, 7)}")
    mae = overall_mae(t)
    inside = t["inside_90"].dropna()
    lines += ["", f"Mean absolute error over {len(t)} observed levels ({t['scenario'].nunique()} summits):",
              f"  {'model':<50} {mae['model']:5.1f}   "
              f"(observed level inside the model's 90 % interval: {int(inside.sum())} of {len(inside)})"]
    lines += [f"  {BASELINE_LABELS[b]:<50} {mae[b]:5.1f}" for b in BASELINES]
    never = int(t["abs_error"].isna().sum())
    if never:
        lines.append(f"  note: the model never agreed {never} of the observed levels; its error is over the other "
                     f"{len(t) - never} (the baselines always predict, so the comparison favours the model)")
    best = min(BASELINES, key=lambda b: mae[b])
    verdict = ("beats" if mae["model"] < mae[best] else "does not beat")
    lines.append(f"  The model {verdict} the best baseline here ({BASELINE_LABELS[best]}, {mae[best]:.1f}).")
    lines += ["", f"{'scenario':<16}{'consensus obs.':>15}{'P(model)':>10}{'late obs.':>10}{'median rd':>10}"
                  f"{'P(last rd)':>11}  observed holdouts (share of runs) / model's top holdouts"]
    for name, s in result.summaries.items():
        v = s["validation"]
        c, tm, h = v["consensus"], v["timing"], v["holdouts"]
        late = {True: "yes", False: "no", None: "-"}[tm["observed_late"]]
        median = "-" if tm["median_round"] is None else f"{tm['median_round']:.0f}/{tm['deadline']}"
        last = "-" if tm["last_round"] is None else f"{tm['last_round']:.3f}"
        seen = " ".join(f"{x['member']} {x['p']:.2f}" for x in h["observed"]) or "none"
        top = " ".join(f"{x['member']} {x['p']:.2f}" for x in h["top_predicted"][:4]) or "none"
        lines.append(f"{name[:15]:<16}{'yes' if c['observed'] else 'no':>15}{c['predicted']:>10.3f}{late:>10}"
                     f"{median:>10}{last:>11}  {seen} / {top}")
    lines += ["", *_wrapped(f"Caveat: {OUTCOME_KNOWN}"),
              *_wrapped("Baselines use the members' point codes and the voting members only; the model's level "
                        "is the mean agreed level over the runs that agreed the issue.")]
    return "\n".join(lines)


def _wrapped(text: str, **kw) -> list[str]:
    import textwrap

    return textwrap.wrap(text, 100, **kw)
