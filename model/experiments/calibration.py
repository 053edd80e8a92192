"""Calibration of the global protocol parameters across the historical cases, with
leave-one-summit-out (LOSO) errors.

Only global behavioural and protocol parameters are calibrated (`PARAMETERS`); they are applied to
every case as `--set` overrides, so each member's per-member values (e.g. Türkiye's `price`) and
every stance stay as coded from sources. The method (docs/validation.md):

1. A scrambled Sobol design of `POINTS` parameter vectors (seed `DESIGN_SEED`), plus the scenario
   files' own values as point 0, each played on every case with `SCREEN_RUNS` replications at the
   case's own seed (common random numbers: every point sees the same draws).
2. Per case, `loss` = mean absolute level error (points) + 20 x |P(consensus) - observed|
   + 5 x |P(agreement in the last round | consensus) - observed late| + 5 x (1 - (holdout recall +
   holdout precision) / 2), with recall the mean share of runs in which each observed holdout is a
   last holdout and precision the observed holdouts' part of all holdout appearances
   (`validation.holdout_scores`). The objective is the mean loss over the cases fitted.
3. For the fit on all cases and for each LOSO fold (fit on all cases but one), the `FINALISTS` best
   points of the screen are replayed with `FINAL_RUNS` replications; the best of them is the fit.
   A fold reports the held-out case's errors at its fit, beside the baselines on that case (which
   need no fitting).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from model.negotiation.params import Params, build_params
from model.outputs.report import appearances
from model.outputs.validation import holdout_scores
from model.scenario.files import base_raw, point_scenario, value_at
from model.scenario.schema import ScenarioError

# path -> (low, high, log scale?): the search box, wide around the judgement values of baseline.yaml
PARAMETERS = {
    "member_defaults.anchoring": (0.1, 0.9, False),
    "member_defaults.failure_cost": (5.0, 80.0, True),
    "protocol.acceptance_noise": (2.0, 25.0, True),
    "protocol.preparatory_cost_share": (0.0, 0.5, False),
}
WEIGHTS = {"level": 1.0, "consensus": 20.0, "timing": 5.0, "holdouts": 5.0}
POINTS = 256  # Sobol points (a power of two)
DESIGN_SEED = 20240705
SCREEN_RUNS = 400
FINALISTS = 8
FINAL_RUNS = 2000
METRICS = ("loss", "level", "p_consensus", "p_last_round", "holdout_recall", "holdout_precision")


@dataclasses.dataclass
class Case:
    """One historical scenario, ready to be replayed at any parameter vector."""

    name: str
    path: str
    raw: dict  # the resolved scenario as plain data (after extends and the command's --set overrides)
    seed: int

    def scenario(self, values: dict[str, float]):
        return point_scenario(self.raw, values, self.path)


def design(points: int = POINTS, seed: int = DESIGN_SEED) -> pd.DataFrame:
    """Point 0 = nothing overridden (the files' values); then a scrambled Sobol design in the box."""
    from scipy.stats import qmc

    u = qmc.Sobol(d=len(PARAMETERS), scramble=True, seed=seed).random(points)
    cols = {}
    for j, (key, (low, high, log)) in enumerate(PARAMETERS.items()):
        span = (np.log(low), np.log(high)) if log else (low, high)
        x = span[0] + u[:, j] * (span[1] - span[0])
        cols[key] = np.exp(x) if log else x
    frame = pd.DataFrame(cols).round(4)
    frame.insert(0, "point", np.arange(1, points + 1))
    return frame


def file_values(case: Case) -> dict[str, float]:
    """The calibrated parameters' values in a case's file (the judgement values)."""
    return {key: float(value_at(case.raw, key)) for key in PARAMETERS}


def with_behaviour(base: Params, scenario) -> Params:
    """`base` with the behaviour and protocol scalars of `scenario` (same members, issues, stances):
    what `build_params` would give, without rebuilding the ideal-point tables."""
    b = [scenario.behaviour(c) for c in base.codes]
    a0 = np.array([x.anchoring for x in b])[:, None]
    protocol = scenario.protocol
    return dataclasses.replace(
        base, anchoring=a0 + (1.0 - a0) * base.salience, failure_cost=np.array([x.failure_cost for x in b]),
        rounds=protocol.rounds, summit_sessions=protocol.summit_sessions, acceptance_noise=protocol.acceptance_noise,
        preparatory_cost_share=protocol.preparatory_cost_share, drafting=protocol.drafting)


def case_metrics(table, scenario) -> dict:
    """The loss components of one case from a results table (pyarrow), as `validation.compare` reads them."""
    obs = scenario.observed
    n = table.num_rows
    consensus = table["consensus"].to_numpy(zero_copy_only=False)
    errors = []
    for issue, level in obs.levels.items():  # the text that stands: agreed, or the status quo
        errors.append(abs(table[f"level_{issue}"].to_numpy(zero_copy_only=False).mean() - level))
    p_cons = float(consensus.mean()) if n else 0.0
    rounds = table["agreement_round"].to_numpy(zero_copy_only=False)[consensus]
    last = float((rounds == scenario.protocol.rounds).mean()) if len(rounds) else 0.0
    shares = (appearances(table["holdouts"]) / n).to_dict() if n else {}
    recall, precision = holdout_scores(shares, obs.holdouts)
    m = {"level": float(np.mean(errors)), "consensus": abs(p_cons - float(obs.consensus)),
         "timing": 0.0 if obs.late is None else abs(last - float(obs.late)),
         "holdouts": 0.0 if recall is None else 1.0 - (recall + (precision or 0.0)) / 2,
         "p_consensus": p_cons, "p_last_round": last, "holdout_recall": recall, "holdout_precision": precision}
    m["loss"] = sum(WEIGHTS[k] * m[k] for k in WEIGHTS)
    return m


def evaluate(cases: list[Case], points: list[tuple[int, dict]], runs: int) -> list[dict]:
    """One row per (point, case): the loss components. Runs in a worker process too."""
    from model.negotiation.ensemble import run_ensemble

    rows = []
    base = {c.name: build_params(c.scenario({})) for c in cases}
    for point, values in points:
        for case in cases:
            scenario = case.scenario(values)
            table = run_ensemble(scenario, case.seed, 0, runs, with_behaviour(base[case.name], scenario))
            rows.append({"point": point, "case": case.name, "runs": runs, **case_metrics(table, scenario)})
    return rows


def _evaluate_all(cases: list[Case], points: list[tuple[int, dict]], runs: int, workers: int) -> pd.DataFrame:
    from .batch import run_tasks

    size = max(1, -(-len(points) // (4 * max(workers, 1))))
    blocks = [points[i:i + size] for i in range(0, len(points), size)]
    tasks = [(i, evaluate, (cases, block, runs)) for i, block in enumerate(blocks)]
    rows = [row for _, part in run_tasks(tasks, workers) for row in part]
    return pd.DataFrame(rows).sort_values(["point", "case"], ignore_index=True)


def objective(long: pd.DataFrame, fitted: list[str]) -> pd.Series:
    """Mean loss over the fitted cases, per point."""
    return long[long["case"].isin(fitted)].groupby("point")["loss"].mean()


def calibrate(cases: list[Case], out: Path, runs: int = SCREEN_RUNS, final_runs: int = FINAL_RUNS,
              points: int = POINTS, workers: int = 1, quiet: bool = False) -> dict:
    """Screen, select and replay (module docstring); write calibration.csv and calibration.json."""
    from model.outputs.validation import baselines, caveat

    started = time.perf_counter()
    grid = design(points)
    values = {0: {}} | {int(r.point): {k: float(r[k]) for k in PARAMETERS} for _, r in grid.iterrows()}
    if not quiet:
        print(f"calibration: {len(values)} points x {len(cases)} cases x {runs} replications", file=sys.stderr)
    screen = _evaluate_all(cases, list(values.items()), runs, workers)
    names = [c.name for c in cases]
    fits = {"all": names} | ({f"without {n}": [m for m in names if m != n] for n in names} if len(names) > 1 else {})
    finalists = {fit: objective(screen, fitted).nsmallest(FINALISTS).index.tolist() for fit, fitted in fits.items()}
    chosen_points = sorted({0, *(p for ps in finalists.values() for p in ps)})
    if not quiet:
        print(f"calibration: replaying {len(chosen_points)} finalists with {final_runs} replications", file=sys.stderr)
    final = _evaluate_all(cases, [(p, values[p]) for p in chosen_points], final_runs, workers)
    judgement = file_values(cases[0])
    base_mae = {c.name: _baseline_mae(c, baselines) for c in cases}
    results = {}
    for fit, fitted in fits.items():
        scores = objective(final[final["point"].isin(finalists[fit])], fitted)
        best = int(scores.idxmin())
        held = [n for n in names if n not in fitted]
        at = final[final["point"] == best].set_index("case")
        at0 = final[final["point"] == 0].set_index("case")
        results[fit] = {
            "fitted_on": fitted, "held_out": held[0] if held else None, "point": best,
            "values": values[best] or judgement, "objective": float(scores[best]),
            "objective_at_file_values": float(at0.loc[fitted, "loss"].mean()),
            "cases": {n: {k: _clean(at.loc[n, k]) for k in METRICS} | {"baselines": base_mae[n]} for n in names},
            "cases_at_file_values": {n: {k: _clean(at0.loc[n, k]) for k in METRICS} for n in names},
        }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wide = screen.merge(pd.DataFrame([{"point": p, **v} for p, v in values.items()]), on="point", how="left")
    wide.to_csv(out / "calibration-screen.csv", index=False)
    final.to_csv(out / "calibration-finalists.csv", index=False)
    table = loso_table(results)
    table.to_csv(out / "calibration.csv", index=False)
    report = {"parameters": {k: {"low": lo, "high": hi, "log": log} for k, (lo, hi, log) in PARAMETERS.items()},
              "file_values": judgement, "weights": WEIGHTS, "points": points, "design_seed": DESIGN_SEED,
              "screen_runs": runs, "final_runs": final_runs, "finalists": FINALISTS,
              "seeds": {c.name: c.seed for c in cases}, "fits": results,
              "caveats": {c.name: caveat(c.scenario({})) for c in cases},
              "seconds": round(time.perf_counter() - started, 1)}
    (out / "calibration.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def _baseline_mae(case: Case, baselines) -> dict[str, float]:
    scenario = case.scenario({})
    base = baselines(scenario)
    levels = scenario.observed.levels
    return {b: float(np.mean([abs(v[i] - levels[i]) for i in levels])) for b, v in base.items()}


def _clean(x):
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def loso_table(results: dict) -> pd.DataFrame:
    """One row per fit and case: in-sample or held out, the model's level MAE and the baselines'."""
    rows = []
    for fit, r in results.items():
        for case, m in r["cases"].items():
            rows.append({"fit": fit, "case": case, "role": "held out" if case == r["held_out"] else "fitted",
                         "model_level_mae": m["level"], **{f"{b}_mae": v for b, v in m["baselines"].items()},
                         "p_consensus": m["p_consensus"], "p_last_round": m["p_last_round"],
                         "holdout_recall": m["holdout_recall"], "holdout_precision": m["holdout_precision"],
                         "loss": m["loss"],
                         "file_values_level_mae": r["cases_at_file_values"][case]["level"],
                         **{k.split(".")[-1]: v for k, v in r["values"].items()}})
    return pd.DataFrame(rows)


def render(report: dict) -> str:
    from model.outputs.validation import BASELINES, SMALL_SAMPLE, caveat_lines, wrapped

    fits = report["fits"]
    short = {k: k.split(".")[-1] for k in PARAMETERS}
    lines = [f"Calibration of {len(PARAMETERS)} global parameters: {report['points']} Sobol points + the files' "
             f"values, {report['screen_runs']} runs per case, best {report['finalists']} replayed with "
             f"{report['final_runs']} runs ({report['seconds']:.0f} s)",
             "objective = mean over cases of: level MAE + 20 |P(consensus) - obs| + 5 |P(last round) - late| "
             "+ 5 (1 - (recall + precision) / 2 of holdouts)", "",
             f"{'fit':<26}" + "".join(f"{v[:11]:>12}" for v in short.values()) + f"{'objective':>11}{'(files)':>9}",
             f"{'files (judgement)':<26}" + "".join(f"{report['file_values'][k]:>12.3g}" for k in PARAMETERS)]
    for fit, r in fits.items():
        lines.append(f"{fit[:25]:<26}" + "".join(f"{r['values'][k]:>12.3g}" for k in PARAMETERS)
                     + f"{r['objective']:>11.2f}{r['objective_at_file_values']:>9.2f}")
    lines += ["", "Level MAE (points) per case: model at the fit, model at the files' values, and the baselines",
              f"{'fit':<26}{'case':<16}{'role':<10}{'model':>7}{'files':>7}{'compr.':>8}{'w.med.':>8}{'mean':>7}"
              f"{'s.quo':>7}{'P(cons)':>9}{'P(last)':>9}{'recall':>8}{'prec.':>7}"]
    for fit, r in fits.items():
        for case, m in r["cases"].items():
            role = "held out" if case == r["held_out"] else "fitted"
            b = m["baselines"]
            recall = "-" if m["holdout_recall"] is None else f"{m['holdout_recall']:.2f}"
            prec = "-" if m["holdout_precision"] is None else f"{m['holdout_precision']:.2f}"
            lines.append(f"{fit[:25]:<26}{case[:15]:<16}{role:<10}{m['level']:>7.1f}"
                         f"{r['cases_at_file_values'][case]['level']:>7.1f}{b['compromise']:>8.1f}"
                         f"{b['weighted_median']:>8.1f}{b['plain_mean']:>7.1f}{b['status_quo']:>7.1f}"
                         f"{m['p_consensus']:>9.3f}"
                         f"{m['p_last_round']:>9.3f}{recall:>8}{prec:>7}")
    held = [(r["held_out"], r["cases"][r["held_out"]]) for r in fits.values() if r["held_out"]]
    if held:
        model = np.mean([m["level"] for _, m in held])
        base = {b: np.mean([m["baselines"][b] for _, m in held]) for b in BASELINES}
        verdict = "beats" if model < min(base.values()) else "does not beat"
        lines += ["", f"Leave-one-summit-out: mean held-out level MAE, model {model:.1f}; on the same cases: "
                      + ", ".join(f"{b.replace('_', ' ')} {v:.1f}" for b, v in base.items())
                      + f". The model {verdict} every baseline out of sample.",
                  *wrapped("Caveat: " + SMALL_SAMPLE.format(n=len(held)))]
    lasts = [m["p_last_round"] for m in fits["all"]["cases"].values()]
    lines += wrapped(f"Timing at the fit on all cases: P(agreement at the summit, the last round) from {min(lasts):.3f} to "
                      f"{max(lasts):.3f} across the cases (see each case's `late` in its observed block).")
    best = fits["all"]["values"]
    lines += ["", "To validate at the fit on all cases (the scenario files are not changed):",
              "  python run.py validate FOLDER/ " + " ".join(f"--set {k}={v:g}" for k, v in best.items())]
    lines += caveat_lines(report["caveats"])
    return "\n".join(lines)


def load_cases(folder: Path, overrides=(), quiet: bool = False) -> list[Case]:
    """The folder's scenarios (each with an observed block) as calibration cases: only the train
    cases where the folder has a split.yaml (the test cases are never read), and only the cases with
    observed levels (a Secretary General selection alone has nothing to fit: it is skipped, with a note)."""
    from .history import load_cases as validated

    cases, choices_only = [], []
    for path, scenario in validated(folder, overrides, role="train"):
        if not scenario.observed.levels:
            choices_only.append(path)
            continue
        if scenario.run.seed is None:
            raise ScenarioError(f"{path}: run.seed: calibration needs a fixed seed per case (common random numbers); "
                                "set run.seed or pass --seed.")
        cases.append(Case(scenario.name, str(path), base_raw(scenario), scenario.run.seed))
    if not cases:
        raise ScenarioError(f"{choices_only[0]}: observed.levels: empty; calibration fits observed levels, and the "
                            "folder's cases have only choices: validate them, and calibrate on cases with levels.")
    if choices_only and not quiet:
        print(f"calibration: skipping {', '.join(p.name for p in choices_only)} (choices only: no level to fit)",
              file=sys.stderr)
    return cases
