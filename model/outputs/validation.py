"""Validation against history: the model's predictions beside a summit's coded real outcome and
beside three simple baselines computed from the same inputs.

A scenario with an `observed` block gets a `validation` section in its summary (`compare`). A
folder of such scenarios (`model.experiments.history`) gives one tidy table (`tidy` rows), the
mean absolute errors of the model and the baselines (`overall_mae`, `render_folder`) and a
predicted-vs-observed figure. The baselines use each member's point code (the PERT mode, the
uniform midpoint, the normal mean, after bloc and member shifts) and the voting members only:

* `compromise`: the salience x capability weighted mean, sum c_i s_ik x_ik / sum c_i s_ik (the
  "compromise model", the best simple predictor on EU Council data; the chair's first draft);
* `weighted_median`: the position where the cumulative salience x capability weight reaches half;
* `plain_mean`: the unweighted mean of the voting members' positions;
* `status_quo`: no change, the issue's status quo (the text that stands if nothing is agreed).

The model's prediction of a level is the mean, over all runs, of the text that stands after the
summit (the agreed level, or the status quo where the issue was not agreed), with the 5th and
95th percentiles as its 90 % interval. On a choice issue it is the share of runs in which the
observed option stands, beside two baseline picks: the option with the largest salience x
capability weighted utility, and the fallback. For a member with a minimum (Kyiv), the share of
runs in which the text meets it is compared with whether it was met. Proper scores of the runs
(`level_scores`, `event_scores`, with scoringrules): the CRPS and the 90 % interval score of each
level, Brier and log scores of consensus, options and minima.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from model.negotiation.predictors import PREDICTORS
from model.negotiation.params import params_for
from model.scenario.schema import Scenario, ScenarioError

BASELINES = ("compromise", "weighted_median", "plain_mean", "status_quo")
BASELINE_LABELS = {"compromise": "compromise (salience x capability weighted mean)",
                   "weighted_median": "weighted median", "plain_mean": "plain mean",
                   "status_quo": "status quo (no change)"}
TOP_HOLDOUTS = 5
OUTCOME_KNOWN = ("this scenario's stances were coded knowing the real outcome (its `observed` block), so "
                 "agreement with that outcome is partly built in (docs/ODD.md, input data).")
EX_ANTE = ("this scenario's stances were coded from sources dated before the summit, never from its outcome "
           "(coding rules v2, docs/coding-rules.md §8); its coders knew the outcome all the same, and its "
           "`description` says how that could leak in.")
SMALL_SAMPLE = ("{n} cases are a small sample: a leave-one-summit-out error rests on one held-out case per "
                "fold, so read it as an illustration, not an estimate of accuracy.")


def caveat(scenario: Scenario) -> str:
    """What the agreement of a case with its outcome is worth: a case that carries `summit_date` was
    coded ex ante (rules v2), one without it knowing the outcome."""
    return OUTCOME_KNOWN if scenario.summit_date is None else EX_ANTE


def baselines(scenario: Scenario) -> dict[str, dict[str, float]]:
    """Baseline -> issue -> predicted level, from the voting members' point codes (the tournament's
    predictors of the same name, `model.negotiation.predictors`)."""
    p = params_for(scenario)
    v = p.voters
    point = p.nominal_ideal[None, v]  # (1, voters, K)
    return {name: {issue: float(x) for issue, x in zip(p.issues, PREDICTORS[name].levels(
        point, p.capability[v], p.salience[v], p.status_quo)[0])} for name in BASELINES}


def choice_baselines(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Baseline -> choice issue -> the option it picks (voting members only): the compromise's
    weighted pick and the status quo's fallback, as in the tournament."""
    p = params_for(scenario)
    v = p.voters
    picks = {name: PREDICTORS[source].options(p.utility[v], p.capability[v], p.choice_salience[v], p.veto[v],
                                              p.valid, p.choice_status_quo)
             for name, source in (("weighted_pick", "compromise"), ("status_quo", "status_quo"))}
    return {name: {c: p.options[j][pick[j]] for j, c in enumerate(p.choices)} for name, pick in picks.items()}


def compare(summary: dict, scenario: Scenario, df: pd.DataFrame) -> dict:
    """Predicted vs observed for a scenario with an `observed` block (see docs/validation.md), with
    proper scores of the run ensemble.

    `summary` is `report.summarize`'s dictionary (without its `validation` key); `df` its runs."""
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
            **level_scores(float(level), df[f"level_{name}"].to_numpy(float), (got["p05"], got["p95"])),
        }
        for b in BASELINES:
            row[b] = base[b][name]
            row[f"{b}_abs_error"] = abs(base[b][name] - level)
        issues[name] = row
    import scoringrules as sr  # imported where used: it compiles its kernels on import (seconds)

    choices = {}
    picks = choice_baselines(scenario) if obs.options else {}
    for name, option in obs.options.items():
        shares = {row["option"]: row for row in summary["issues"][name]["options"]}
        modal = max(shares.values(), key=lambda row: row["p"])["option"]
        choices[name] = {"observed": option, "p_observed": shares[option]["p"], "ci95": shares[option]["ci95"],
                         "modal": modal, "matched": modal == option,
                         "brier": float(sum(sr.brier_score(float(o == option), row["p"]) for o, row in shares.items())),
                         **{b: picks[b][name] for b in picks}, **{f"{b}_matched": picks[b][name] == option for b in picks}}
    satisfied = {code: {"observed": met, "predicted": summary["satisfied"][code]["p"],
                        "ci95": summary["satisfied"][code]["ci95"], **event_scores(met, summary["satisfied"][code]),
                        "matched": bool((summary["satisfied"][code]["p"] >= 0.5) == met)}
                 for code, met in obs.satisfied.items()}
    p_cons = summary["consensus"]["p"]
    rounds = summary["agreement_round"]
    late = rounds["last_round"]["p"]
    shares = {row["member"]: row["p"] for row in summary["holdouts"]}
    observed_holdouts = [{"member": code, "name": scenario.members[code].name, "p": shares.get(code, 0.0)}
                         for code in obs.holdouts]
    top = summary["holdouts"][:TOP_HOLDOUTS]
    recall, precision = holdout_scores(shares, obs.holdouts)
    return {
        "caveat": caveat(scenario),
        "issues": issues,
        "choices": choices,
        "satisfied": satisfied,
        "consensus": {"observed": obs.consensus, "predicted": p_cons, "ci95": summary["consensus"]["ci95"],
                      "matched": bool((p_cons >= 0.5) == obs.consensus), **event_scores(obs.consensus, summary["consensus"]),
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


def level_scores(observed: float, runs: np.ndarray, interval: tuple[float, float]) -> dict[str, float | None]:
    """Proper scores of the runs' levels (the text that stands) against the observed level: the CRPS
    of their empirical distribution (points; a point forecast's CRPS is its absolute error) and the
    interval score of the 90 % `interval` (alpha 0.1: its width plus 20 x how far it misses)."""
    import scoringrules as sr

    if not len(runs):
        return {"crps": None, "interval_score": None}
    return {"crps": float(sr.crps_ensemble(observed, runs)),
            "interval_score": float(sr.interval_score(observed, *interval, 0.1))}


def event_scores(happened: bool, share: dict) -> dict[str, float | None]:
    """Brier and log score of an event's share of runs (`proportion`'s k and n) against whether it
    happened. The log score takes the share as (k + 1/2) / (n + 1), so that 0 or 1 out of finite runs
    scores finitely."""
    import scoringrules as sr

    if not share["n"]:
        return {"brier": None, "log_score": None}
    return {"brier": float(sr.brier_score(float(happened), share["p"])),
            "log_score": float(sr.log_score(float(happened), (share["k"] + 0.5) / (share["n"] + 1)))}


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
    """Mean absolute error over the issues with an observed level (each prediction: the mean level that
    stands after the summit, over all runs)."""
    model = [row["abs_error"] for row in issues.values() if row["abs_error"] is not None]
    out = {"model": float(np.mean(model)) if model else None}
    for b in BASELINES:
        errors = [row[f"{b}_abs_error"] for row in issues.values()]
        out[b] = float(np.mean(errors)) if errors else None
    return out


def render_comparison(v: dict) -> str:
    """The console block printed under a scenario's summary."""
    lines = ["Validation against the observed outcome (levels 0-100; 90 % interval = 5th-95th percentile of runs):"]
    if v["issues"]:  # a case may be a choice alone
        lines.append(f"  {'issue':<16}{'observed':>9}{'model':>8}{'90 % interval':>17}{'|err|':>7}"
                     f"{'compr.':>8}{'|err|':>7}{'w.med.':>8}{'|err|':>7}{'mean':>8}{'|err|':>7}{'s.quo':>8}{'|err|':>7}")
        for name, r in v["issues"].items():
            lines.append(f"  {name[:15]:<16}{r['observed']:>9.0f}{_prediction_cells(r, 8)}")
        mae = v["mae"]
        lines.append("  mean absolute error: model " + _fmt(mae["model"]) + ", "
                     + ", ".join(f"{b.replace('_', ' ')} {_fmt(mae[b])}" for b in BASELINES))
        crps = [r["crps"] for r in v["issues"].values() if r["crps"] is not None]
        if crps:
            lines.append(f"  mean CRPS of the runs {np.mean(crps):.1f} (a point forecast's CRPS is its absolute error), "
                         f"mean interval score {np.mean([r['interval_score'] for r in v['issues'].values()]):.1f}")
    lines += ["  " + line for line in choice_lines(v)]
    c = v["consensus"]
    lines.append(f"  consensus: observed {'yes' if c['observed'] else 'no'}, model P = {c['predicted']:.3f} "
                 f"({'matches' if c['matched'] else 'does not match'} at P >= 0.5), Brier score {c['brier']:.3f}, "
                 f"log score {c['log_score']:.3f}")
    t = v["timing"]
    if t["last_round"] is not None:
        seen = {True: "late (settled at the summit, the last round)", False: "before the last round",
                None: "not coded"}[t["observed_late"]]
        lines.append(f"  timing: observed {seen}; model: median round {t['median_round']:.0f} of {t['deadline']}, "
                     f"{t['last_round']:.1%} of agreements at the summit (the last round)")
    h = v["holdouts"]
    if h["observed"]:
        seen = ", ".join(f"{x['member']} {x['p']:.1%}" for x in h["observed"])
        lines.append(f"  observed holdouts, share of runs in which each is a last holdout: {seen}")
        if h["precision"] is not None:
            lines.append(f"  observed holdouts' part of all holdout appearances (precision): {h['precision']:.1%}")
    top = ", ".join(f"{x['member']} {x['p']:.1%}" for x in h["top_predicted"]) or "none"
    lines.append(f"  model's most frequent holdouts: {top}")
    lines += wrapped(f"  Caveat: {v['caveat']}", subsequent_indent="  ")
    return "\n".join(lines)


def choice_lines(v: dict) -> list[str]:
    """One line per choice issue (the observed option's share, the modal option, the baselines' picks)
    and per member's minimum (observed met or not, the model's share of runs meeting it)."""
    lines = []
    for name, r in v.get("choices", {}).items():
        low, high = r["ci95"]
        lines.append(f"{name}: observed {r['observed']}; model: it stands in {r['p_observed']:.1%} "
                     f"[{low:.1%}, {high:.1%}] of runs, modal option {r['modal']}, Brier score {r['brier']:.3f}; "
                     f"baselines: weighted pick {r['weighted_pick']}, status quo {r['status_quo']}")
    for code, r in v.get("satisfied", {}).items():
        lines.append(f"{code} satisfied (its minimum met): observed {'yes' if r['observed'] else 'no'}, model P = "
                     f"{r['predicted']:.3f} ({'matches' if r['matched'] else 'does not match'} at P >= 0.5), "
                     f"Brier score {r['brier']:.3f}")
    return lines


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
LEVEL_COLUMNS = ("observed", "predicted", "p05", "p95", "abs_error", "inside_90", "agreed", "crps", "interval_score",
                 *(x for b in BASELINES for x in (b, f"{b}_abs_error")))
TIDY_COLUMNS = ("scenario", "issue", *LEVEL_COLUMNS)  # validation.parquet, even with no level observed


def tidy(name: str, v: dict) -> list[dict]:
    """One row per observed level issue of one scenario's comparison."""
    return [{"scenario": name, "issue": issue, **{k: r[k] for k in LEVEL_COLUMNS}} for issue, r in v["issues"].items()]


def case_row(name: str, summary: dict) -> dict:
    v = summary["validation"]
    return {"scenario": name, "replications": summary["replications"], "seed": summary["seed"],
            "consensus_observed": v["consensus"]["observed"], "p_consensus": v["consensus"]["predicted"],
            "consensus_matched": v["consensus"]["matched"], "brier_consensus": v["consensus"]["brier"],
            "log_score_consensus": v["consensus"]["log_score"],
            "late_observed": v["timing"]["observed_late"], "median_round": v["timing"]["median_round"],
            "p_last_round": v["timing"]["last_round"],
            "holdouts_observed": " ".join(h["member"] for h in v["holdouts"]["observed"]),
            "holdout_recall": v["holdouts"]["recall"], "holdout_precision": v["holdouts"]["precision"],
            "top_holdouts": " ".join(f"{h['member']}:{h['p']:.3f}" for h in v["holdouts"]["top_predicted"]),
            "choices": " ".join(f"{c}:{r['observed']}={r['p_observed']:.3f}" for c, r in v["choices"].items()),
            "satisfied": " ".join(f"{m}:{'yes' if r['observed'] else 'no'}={r['predicted']:.3f}"
                                  for m, r in v["satisfied"].items()),
            **{f"mae_{k}": x for k, x in v["mae"].items()}}


def overall_mae(table: pd.DataFrame) -> dict[str, float]:
    """Mean absolute error over every observed level of every case (the model: the mean text that stands)."""
    out = {"model": float(table["abs_error"].dropna().mean())}
    for b in BASELINES:
        out[b] = float(table[f"{b}_abs_error"].mean())
    return out


def render_folder(t: pd.DataFrame, summaries: dict[str, dict]) -> str:
    """The folder's one table (`tidy` rows of every case), the MAE of the model and each baseline,
    the per-case consensus, timing and holdouts (`summaries`: scenario name -> summary), caveats."""
    head = (f"{'scenario':<16}{'issue':<16}{'obs.':>6}{'model':>7}{'90 % interval':>16}{'|err|':>7}"
            f"{'compr.':>8}{'|err|':>7}{'w.med.':>8}{'|err|':>7}{'mean':>8}{'|err|':>7}{'s.quo':>8}{'|err|':>7}")
    lines = ["Validation: predicted vs observed levels (0-100 scale)", "", head, "-" * len(head)]
    if t.empty:  # a folder of choices alone (Secretary General selections)
        return "\n".join(["Validation: no observed levels in this folder; the choices below are the test.",
                          *_case_lines(summaries)])
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
    briers = [s["validation"]["consensus"]["brier"] for s in summaries.values()]
    lines += ["", "Proper scores of the model's runs (lower is better):",
              f"  {'mean CRPS of the levels (points)':<50} {t['crps'].mean():5.1f}   "
              "(a point forecast's CRPS is its absolute error: compare with the MAEs above)",
              f"  {'mean interval score of the 90 % intervals':<50} {t['interval_score'].mean():5.1f}",
              f"  {'Brier score of P(consensus), mean over the cases':<50} {np.mean(briers):7.3f}"]
    return "\n".join([*lines, *_case_lines(summaries)])


def _case_lines(summaries: dict[str, dict]) -> list[str]:
    """Per case: consensus, timing and holdouts against what happened; then choices and minima; caveats."""
    lines = ["", f"{'scenario':<16}{'consensus obs.':>15}{'P(model)':>10}{'late obs.':>10}{'median rd':>10}"
                  f"{'P(last rd)':>11}  observed holdouts (share of runs) / model's top holdouts"]
    for name, s in summaries.items():
        v = s["validation"]
        c, tm, h = v["consensus"], v["timing"], v["holdouts"]
        late = {True: "yes", False: "no", None: "-"}[tm["observed_late"]]
        median = "-" if tm["median_round"] is None else f"{tm['median_round']:.0f}/{tm['deadline']}"
        last = "-" if tm["last_round"] is None else f"{tm['last_round']:.3f}"
        seen = " ".join(f"{x['member']} {x['p']:.2f}" for x in h["observed"]) or "none"
        top = " ".join(f"{x['member']} {x['p']:.2f}" for x in h["top_predicted"][:4]) or "none"
        lines.append(f"{name[:15]:<16}{'yes' if c['observed'] else 'no':>15}{c['predicted']:>10.3f}{late:>10}"
                     f"{median:>10}{last:>11}  {seen} / {top}")
    picks = [f"{name[:15]:<16}{line}" for name, s in summaries.items() for line in choice_lines(s["validation"])]
    if picks:
        lines += ["", "Choice issues and members' minima (observed vs the share of runs):", *picks]
    lines += ["", *caveat_lines({name: s["validation"]["caveat"] for name, s in summaries.items()}),
              *wrapped("Baselines use the members' point codes and the voting members only; the model's level "
                        "is the mean, over all runs, of the text that stands (the agreed level, or the status quo where "
                        "the issue was not agreed).")]
    return lines


def caveat_lines(caveats: dict[str, str]) -> list[str]:
    """One caveat per kind of coding, naming its cases (case name -> its `caveat`)."""
    cases: dict[str, list[str]] = {}
    for name, text in caveats.items():
        cases.setdefault(text, []).append(name)
    return [line for text, names in cases.items()  # "this scenario's stances" -> "their stances"
            for line in wrapped(f"Caveat ({', '.join(names)}): " + text.replace("this scenario's", "their"))]


def wrapped(text: str, **kw) -> list[str]:
    return textwrap.wrap(text, 100, **kw)
