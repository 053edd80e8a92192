"""The forecasting tournament: the model and the classic bargaining models
(`model.negotiation.predictors`) scored the same way on the same coded cases (docs/validation.md).

Every competitor gives a `Forecast` of a case: a point prediction and a sample of each level issue's
text, and probabilities of events. The model's sample is its runs (the text that stands), its point
their mean; a predictor's sample is its text over `DRAWS` draws of the members' ideal points (the
same draws as the model's first replications), its point the text at the point codes. Events:

* `changed` per level issue: the text moved from the status quo by more than `TOLERANCE` (half the
  5-point resolution at which observed levels are coded), the item-level agreement, so that a
  dropped issue counts;
* `consensus` and `late` (agreed at the summit, the last round): the model alone says anything;
* `holdout` per voting member: among the last holdouts. A predictor's holdout is the member whose
  salience-weighted loss from the predicted text against the status quo is largest, if anyone loses;
* `option` per choice issue and option; `satisfied` per member with a minimum (Kyiv).

Scores (scoringrules, scipy): absolute error of the point, CRPS of the sample (a point's CRPS is its
absolute error), the 90 % interval score and the 50 % / 90 % coverage of the central intervals,
the PIT; Brier and log scores of events (the log score takes p as (p n + 1/2) / (n + 1) over the
n runs or draws, so that a sure forecast scores finitely), the multi-category Brier score of a
choice issue's options, the AUC of the holdout probabilities. Skill against the model: the mean
over cases of a competitor's score minus the model's, with a bootstrap interval over cases (the
cases are the unit; a case's score is the mean over its items). Where a competitor makes no forecast
of an event, its score is NaN, with the reason in `NO_FORECAST`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scoringrules as sr
from scipy import stats

from model.negotiation.params import params_for
from model.negotiation.predictors import PREDICTORS
from model.negotiation.seeds import root_key
from model.scenario.schema import Scenario

MODEL = "model"
CALIBRATED = "model_calibrated"
LABELS = {MODEL: "the model (scenario's values)", CALIBRATED: "the model, calibrated (held out)",
          **{name: p.label for name, p in PREDICTORS.items()}}
DRAWS = 200  # draws of the ideal points behind each predictor's sample (the model's first 200 replications' draws)
TOLERANCE = 2.5  # observed levels are coded to the nearest 5 (coding rules §3): closer to the status quo is no change
RESAMPLES = 9999
BOOTSTRAP_SEED = 20230711
NO_FORECAST = {"consensus": "only the model says whether a declaration is adopted",
               "late": "only the model has rounds", "option": "this method has no rule for choice issues"}

# column -> (label, best: "min" | "max" | "cover:<nominal>"); the first three are points, printed to 0.1
COLUMNS = {
    "mae": ("MAE", "min"), "crps": ("CRPS", "min"), "interval_score": ("IS90", "min"),
    "cover50": ("cov50", "cover:0.5"), "cover90": ("cov90", "cover:0.9"),
    "brier_changed": ("Br.chg", "min"), "log_changed": ("Log.chg", "min"),
    "brier_consensus": ("Br.cons", "min"), "brier_late": ("Br.late", "min"),
    "brier_holdout": ("Br.hold", "min"), "auc_holdout": ("AUC.hold", "max"),
    "brier_option": ("Br.opt", "min"), "log_option": ("Log.opt", "min"), "brier_satisfied": ("Br.sat", "min"),
}
POINTS = ("mae", "crps", "interval_score")
SKILL_SCORES = ("crps", "brier_changed")


@dataclass
class Forecast:
    """What one competitor says about one case."""

    point: dict[str, float]  # level issue -> the point prediction
    sample: dict[str, np.ndarray]  # level issue -> the texts over runs or draws
    events: dict[tuple[str, str], float]  # (kind, item) -> probability; a kind left out: no forecast
    n: int  # runs or draws behind the probabilities


# ---------------------------------------------------------------- forecasts
def predictor_forecasts(scenario: Scenario, seed: int, draws: int = DRAWS) -> dict[str, Forecast]:
    """Every predictor's forecast of the case, at the point codes and over `draws` draws of the ideals."""
    p = params_for(scenario)
    v = p.voters
    sample = p.draw_ideals(root_key(seed), 0, draws)[:, v]
    point = p.nominal_ideal[None, v]
    c, s, q = p.capability[v], p.salience[v], p.status_quo
    out = {}
    for name, predictor in PREDICTORS.items():
        texts, at_codes = _levels(predictor, sample, point, c, s, q)
        events = _changed({issue: texts[:, k] for k, issue in enumerate(p.issues)}, q)
        events |= _holdout_events(texts, sample, s, q, [p.codes[i] for i in v])
        events |= _satisfied_events(texts, p)
        if predictor.options is not None and p.c:
            picks = predictor.options(p.utility[v], c, p.choice_salience[v], p.veto[v], p.valid, p.choice_status_quo)
            events |= {("option", f"{choice}={o}"): float(j == picks[ci])
                       for ci, choice in enumerate(p.choices) for j, o in enumerate(p.options[ci])}
        out[name] = Forecast({issue: float(at_codes[k]) for k, issue in enumerate(p.issues)},
                             {issue: texts[:, k] for k, issue in enumerate(p.issues)}, events, draws)
    return out


def _levels(predictor, sample, point, c, s, q) -> tuple[np.ndarray, np.ndarray]:
    """(R, K) the predictor's texts over the draws and (K,) at the point codes; empty for a case
    that is a choice alone (no level issue)."""
    if not len(q):
        return np.empty((len(sample), 0)), np.empty(0)
    return predictor.levels(sample, c, s, q), predictor.levels(point, c, s, q)[0]


def _changed(texts: dict[str, np.ndarray], status_quo: np.ndarray) -> dict[tuple[str, str], float]:
    """P(the text of each level issue moves from its status quo by more than TOLERANCE)."""
    return {("changed", issue): float(np.mean(np.abs(x - status_quo[k]) > TOLERANCE))
            for k, (issue, x) in enumerate(texts.items())}


def _holdout_events(texts, position, salience, status_quo, codes) -> dict[tuple[str, str], float]:
    """P(member is the predicted holdout): the member who loses most against the status quo, if any."""
    loss = (salience[None] * (np.abs(texts[:, None, :] - position) - np.abs(status_quo - position))).sum(axis=2)
    worst = loss.argmax(axis=1)
    someone = loss.max(axis=1) > 1e-9
    return {("holdout", code): float(np.mean(someone & (worst == i))) for i, code in enumerate(codes)}


def _satisfied_events(texts, p) -> dict[tuple[str, str], float]:
    """P(every minimum of a member is met by the predicted texts)."""
    out = {}
    for i in p.minded:
        need = ~np.isnan(p.minimum[i])
        out[("satisfied", p.codes[i])] = float(np.mean((texts[:, need] >= p.minimum[i, need] - 1e-9).all(axis=1)))
    return out


def model_forecast(scenario: Scenario, summary: dict, df: pd.DataFrame) -> Forecast:
    """The model's forecast from its runs (`df`) and their summary."""
    p = params_for(scenario)
    n = len(df)
    sample = {issue: df[f"level_{issue}"].to_numpy(float) for issue in p.issues}
    events = _changed(sample, p.status_quo)
    events[("consensus", "")] = summary["consensus"]["p"]
    if summary["agreement_round"]["last_round"]["p"] is not None:
        events[("late", "")] = summary["agreement_round"]["last_round"]["p"]
    shares = {row["member"]: row["p"] for row in summary["holdouts"]}
    events |= {("holdout", p.codes[i]): shares.get(p.codes[i], 0.0) for i in p.voters}
    events |= {("satisfied", code): row["p"] for code, row in summary.get("satisfied", {}).items()}
    events |= {("option", f"{choice}={row['option']}"): row["p"]
               for choice in p.choices for row in summary["issues"][choice]["options"]}
    return Forecast({issue: float(np.mean(x)) for issue, x in sample.items()}, sample, events, n)


def observed_events(scenario: Scenario) -> dict[tuple[str, str], bool]:
    """What happened, as the events the forecasts give probabilities of."""
    p, obs = params_for(scenario), scenario.observed
    q = dict(zip(p.issues, p.status_quo))
    events = {("changed", issue): abs(level - q[issue]) > TOLERANCE for issue, level in obs.levels.items()}
    events[("consensus", "")] = bool(obs.consensus)
    if obs.late is not None:
        events[("late", "")] = bool(obs.late)
    events |= {("holdout", p.codes[i]): p.codes[i] in obs.holdouts for i in p.voters}
    events |= {("satisfied", code): bool(met) for code, met in obs.satisfied.items()}
    events |= {("option", f"{choice}={o}"): o == option
               for choice, option in obs.options.items() for o in p.options[p.choices.index(choice)]}
    return events


# ---------------------------------------------------------------- scores of one case
def level_rows(case: str, scenario: Scenario, forecasts: dict[str, Forecast]) -> list[dict]:
    """One row per competitor and observed level issue."""
    rows = []
    for issue, observed in scenario.observed.levels.items():
        for name, f in forecasts.items():
            x = f.sample[issue]
            q05, q25, q75, q95 = np.quantile(x, [0.05, 0.25, 0.75, 0.95])
            rows.append({"case": case, "predictor": name, "issue": issue, "observed": float(observed),
                         "point": f.point[issue], "abs_error": abs(f.point[issue] - observed),
                         "crps": float(sr.crps_ensemble(observed, x)),
                         "interval_score": float(sr.interval_score(observed, q05, q95, 0.1)),
                         "p05": float(q05), "p95": float(q95),
                         "cover50": bool(q25 <= observed <= q75), "cover90": bool(q05 <= observed <= q95),
                         "pit": float((np.sum(x < observed) + 0.5 * np.sum(x == observed)) / len(x))})
    return rows


def event_rows(case: str, scenario: Scenario, forecasts: dict[str, Forecast]) -> list[dict]:
    """One row per competitor and observed event: its probability, the outcome, Brier and log score
    (NaN where the competitor makes no forecast of that kind of event)."""
    rows = []
    for (kind, item), happened in observed_events(scenario).items():
        for name, f in forecasts.items():
            prob = f.events.get((kind, item), np.nan)
            smoothed = (prob * f.n + 0.5) / (f.n + 1)
            rows.append({"case": case, "predictor": name, "kind": kind, "item": item, "p": prob,
                         "happened": bool(happened), "brier": (prob - happened) ** 2,
                         "log_score": float(sr.log_score(float(happened), smoothed)) if not np.isnan(prob) else np.nan})
    return rows


# ---------------------------------------------------------------- the tournament
EVENT_KINDS = ("changed", "consensus", "late", "holdout", "satisfied")


def scores(levels: pd.DataFrame, events: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The columns of `COLUMNS` (but the AUC) as means over the items of each group `by` (e.g.
    ["predictor"], or ["case", "predictor"] for the bootstrap). A competitor with no forecast of a
    kind of event gets NaN (the mean does not skip a missing probability)."""
    parts = []
    if len(levels):
        parts.append(levels.groupby(by).agg(mae=("abs_error", "mean"), crps=("crps", "mean"),
                                            interval_score=("interval_score", "mean"),
                                            cover50=("cover50", "mean"), cover90=("cover90", "mean")))
    strict = {"brier": lambda x: x.mean(skipna=False), "log_score": lambda x: x.mean(skipna=False)}
    for kind in EVENT_KINDS:
        rows = events[events["kind"] == kind]
        if len(rows):
            g = rows.groupby(by).agg(strict)
            parts.append(g[["brier"]].rename(columns={"brier": f"brier_{kind}"}))
            if kind == "changed":
                parts.append(g[["log_score"]].rename(columns={"log_score": "log_changed"}))
    options = events[events["kind"] == "option"]
    if len(options):  # the multi-category scores of each case's choice issue, then their mean
        options = options.assign(choice=options["item"].str.split("=").str[0])
        per = options.groupby(list(dict.fromkeys([*by, "case", "choice"]))).apply(_option_scores, include_groups=False)
        parts.append(per.groupby(by).mean().add_suffix("_option"))
    return pd.concat(parts, axis=1)


def _option_scores(rows: pd.DataFrame) -> pd.Series:
    """One choice issue: the Brier score summed over its options, the log score of the observed one."""
    if rows["p"].isna().all():
        return pd.Series({"brier": np.nan, "log": np.nan})
    return pd.Series({"brier": rows["brier"].sum(), "log": rows.loc[rows["happened"], "log_score"].iloc[0]})


def table(levels: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """One row per competitor: every score of `COLUMNS` over all cases (means over items; the holdout
    AUC pooled over every case's voting members)."""
    out = scores(levels, events, ["predictor"])
    holdouts = events[events["kind"] == "holdout"]
    if len(holdouts):
        out["auc_holdout"] = holdouts.groupby("predictor").apply(
            lambda r: auc(r["p"].to_numpy(), r["happened"].to_numpy()), include_groups=False)
    order = list(dict.fromkeys(events["predictor"]))
    return out.reindex(index=order, columns=[c for c in COLUMNS if c in out]).rename_axis("predictor").reset_index()


def auc(p: np.ndarray, happened: np.ndarray) -> float:
    """The area under the ROC curve: P(a member who held out has a higher p than one who did not),
    ties counted half (the Mann-Whitney U over both counts); NaN without both kinds or without p."""
    yes, no = p[happened], p[~happened]
    if not len(yes) or not len(no) or np.isnan(p).any():
        return float("nan")
    return float(stats.mannwhitneyu(yes, no).statistic / (len(yes) * len(no)))


def skill(levels: pd.DataFrame, events: pd.DataFrame, reference: str = MODEL) -> pd.DataFrame:
    """Per competitor and score of `SKILL_SCORES`: the mean over cases of its score minus the
    reference's (positive: the reference is better), with a 95 % percentile bootstrap interval over
    cases (paired: each case's difference is resampled); NaN intervals with fewer than two cases."""
    per_case = scores(levels, events, ["case", "predictor"]).reset_index()
    rows = []
    for score in (s for s in SKILL_SCORES if s in per_case):
        wide = per_case.pivot(index="case", columns="predictor", values=score)
        order = list(dict.fromkeys(events["predictor"]))
        for name in (c for c in order if c != reference and c in wide):
            diff = (wide[name] - wide[reference]).dropna().to_numpy()
            low, high = _interval(diff)
            rows.append({"predictor": name, "score": score, "cases": len(diff),
                         "difference": float(diff.mean()) if len(diff) else np.nan, "low": low, "high": high,
                         "includes_zero": bool(low <= 0 <= high) if not np.isnan(low) else None})
    return pd.DataFrame(rows, columns=["predictor", "score", "cases", "difference", "low", "high", "includes_zero"])


def _interval(diff: np.ndarray) -> tuple[float, float]:
    if len(diff) < 2:
        return np.nan, np.nan
    if np.ptp(diff) == 0:  # every resample has the same mean
        return float(diff[0]), float(diff[0])
    res = stats.bootstrap((diff,), np.mean, n_resamples=RESAMPLES, method="percentile",
                          rng=np.random.default_rng(BOOTSTRAP_SEED))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dictionaries for summary.json, NaN as null (JSON has no NaN)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


# ---------------------------------------------------------------- console
def best(table_: pd.DataFrame) -> dict[str, list[str]]:
    """Column -> the competitors with the best value at the printed precision (lowest score, highest
    AUC, coverage nearest its nominal level): a tie marks every one of them."""
    out = {}
    for col, (_, rule) in COLUMNS.items():
        if col not in table_ or table_[col].isna().all():
            continue
        x = table_.set_index("predictor")[col].astype(float).round(1 if col in POINTS else 3)
        if rule.startswith("cover"):
            x = -(x - float(rule.split(":")[1])).abs()
        top = x.min() if rule == "min" else x.max()
        out[col] = x.index[x == top].tolist()
    return out


def render(table_: pd.DataFrame, skill_: pd.DataFrame, cases: int, levels: int, holdout_rows: int) -> str:
    """The tournament table (best per column marked *), its sample size, skill, and the verdict."""
    marks = best(table_)
    cols = [c for c in COLUMNS if c in table_]
    lines = [f"Forecasting tournament: {cases} case{'' if cases == 1 else 's'}, {levels} observed levels, "
             f"{holdout_rows} member-case holdout rows",
             "(lower is better; AUC higher; coverage nearest 50 % / 90 %; * best in its column, ties all marked):"]
    for block in (cols[:7], cols[7:]):
        if not block:
            continue
        lines += ["", f"  {'predictor':<44}" + "".join(f"{COLUMNS[c][0]:>9}" for c in block)]
        for _, r in table_.iterrows():
            cells = "".join(_cell(r[c], c in POINTS, r["predictor"] in marks.get(c, [])) for c in block)
            lines.append(f"  {LABELS.get(r['predictor'], r['predictor'])[:43]:<44}{cells}")
    reasons = sorted({reason for kind, reason in NO_FORECAST.items() if f"brier_{kind}" in cols})
    if reasons:
        lines += textwrap.wrap("  blank (-): no forecast of that event: " + "; ".join(reasons), 100,
                               subsequent_indent="    ")
    lines += ["", "Skill: a competitor's mean score per case minus the model's (positive: the model is better), "
                  "95 % bootstrap interval over cases:"]
    for _, r in skill_.iterrows():
        interval = "no interval (one case)" if np.isnan(r["low"]) else f"[{r['low']:+.2f}, {r['high']:+.2f}]"
        zero = " includes 0" if r["includes_zero"] else ""
        lines.append(f"  {r['score']:<14}{LABELS.get(r['predictor'], r['predictor'])[:43]:<44}"
                     f"{r['difference']:+7.2f} {interval}{zero}")
    lines += ["", *textwrap.wrap(verdict(table_, skill_), 100)]
    return "\n".join(lines)


def _cell(x, points: bool, marked: bool) -> str:
    if x is None or pd.isna(x):
        return f"{'-':>8} "
    return f"{float(x):>8.{1 if points else 3}f}{'*' if marked else ' '}"


def verdict(table_: pd.DataFrame, skill_: pd.DataFrame) -> str:
    """The plain sentence: which competitor has the lowest mean CRPS (the levels' main score), the
    best of the other models against the project's model, and whether the bootstrap interval of their
    difference excludes zero."""
    if "crps" not in table_ or table_["crps"].isna().all():
        return "No observed levels: the tournament compares events only."
    x = table_.set_index("predictor")["crps"].dropna().sort_values()
    winner = x.index[0]
    text = f"Lowest mean CRPS of the levels: {LABELS.get(winner, winner)} ({x[winner]:.2f})"
    others = [name for name in x.index if name not in (MODEL, CALIBRATED)]
    if MODEL not in x or not others:
        return text + "."
    rival = others[0]
    if winner == rival:
        text += f"; the model {x[MODEL]:.2f}"
    else:
        text += f"; the best other method: {LABELS.get(rival, rival)} ({x[rival]:.2f})"
    row = skill_[(skill_["score"] == "crps") & (skill_["predictor"] == rival)]
    if row.empty or pd.isna(row["low"].iloc[0]):
        return text + "; too few cases for an interval."
    r = row.iloc[0]
    tie = "includes zero: these cases do not separate them" if r["includes_zero"] else "excludes zero"
    return text + (f". Per case (each case weighs the same), its score minus the model's: {r['difference']:+.2f} "
                   f"[{r['low']:+.2f}, {r['high']:+.2f}], an interval that {tie}.")
