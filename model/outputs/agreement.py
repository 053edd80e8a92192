"""Inter-coder agreement between two codings of one case (docs/validation.md, "Coded twice"):
Krippendorff's alpha (the `krippendorff` package, interval metric) between the first and the
second coder's point codes, beside the baselines' errors under each coding, so that readers see
how much of a predictor's error is coding.

The units of a case are its voting members' point codes: the ideal point (PERT mode, uniform
midpoint, normal mean) on each level issue and the utility of each option of each choice issue;
saliences are a second set of units. Alpha is 1 for identical codings, 0 for agreement no better
than chance, and undefined (NaN) when the codes do not vary at all.
"""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd

from model.negotiation.params import params_for
from model.scenario.schema import Scenario, ScenarioError

from .validation import BASELINES, baselines, choice_baselines

CODERS = ("first", "second")
COLUMNS = ("case", "units", "alpha_positions", "alpha_salience", "mean_abs_difference",
           *(f"{b}_mae_{coder}" for b in BASELINES for coder in CODERS),
           *(f"weighted_pick_matched_{coder}" for coder in CODERS))


def codes(scenario: Scenario) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """(positions, saliences): (member, issue or choice=option) -> the voting members' point codes."""
    p = params_for(scenario)
    positions, saliences = {}, {}
    for i in p.voters:
        member = p.codes[i]
        for k, issue in enumerate(p.issues):
            positions[(member, issue)] = float(p.nominal_ideal[i, k])
            saliences[(member, issue)] = float(p.salience[i, k])
        for c, choice in enumerate(p.choices):
            saliences[(member, choice)] = float(p.choice_salience[i, c])
            for o, option in enumerate(p.options[c]):
                positions[(member, f"{choice}={option}")] = float(p.utility[i, c, o])
    return positions, saliences


def alpha(first: dict, second: dict) -> float:
    """Krippendorff's alpha (interval) of two coders over the units both coded; NaN without variation."""
    units = sorted(set(first) & set(second))
    data = np.array([[first[u] for u in units], [second[u] for u in units]], dtype=float)
    if len(units) < 2 or np.ptp(data) == 0:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="interval"))


def compare(first: Scenario, second: Scenario) -> dict:
    """One case's row: alpha of positions and saliences, the mean absolute difference of the
    position codes, and each baseline's level MAE under each coding (ScenarioError if the two files
    do not code the same members and issues)."""
    (pos1, sal1), (pos2, sal2) = codes(first), codes(second)
    if first.observed is None or second.observed is None:
        raise ScenarioError(f"{second.name}: observed: both codings need the observed block (copy the first "
                            "coding's into the second once the blind coding is done).")
    if set(pos1) != set(pos2):
        raise ScenarioError(f"{second.name}: the second coding does not code the same voting members, issues and "
                            "options as the first; give both the same skeleton.")
    row = {"case": first.name, "units": len(pos1), "alpha_positions": alpha(pos1, pos2),
           "alpha_salience": alpha(sal1, sal2),
           "mean_abs_difference": float(np.mean([abs(pos1[u] - pos2[u]) for u in pos1]))}
    for coder, scenario in zip(CODERS, (first, second)):
        predicted, observed = baselines(scenario), scenario.observed
        for b in BASELINES:
            errors = [abs(predicted[b][issue] - level) for issue, level in observed.levels.items()]
            row[f"{b}_mae_{coder}"] = float(np.mean(errors)) if errors else float("nan")
        picks = choice_baselines(scenario)["weighted_pick"] if observed.options else {}
        hits = [picks[choice] == option for choice, option in observed.options.items()]
        row[f"weighted_pick_matched_{coder}"] = float(np.mean(hits)) if hits else float("nan")
    return row


def table(pairs: list[tuple[Scenario, Scenario]]) -> pd.DataFrame:
    return pd.DataFrame([compare(a, b) for a, b in pairs], columns=list(COLUMNS))


def render(frame: pd.DataFrame) -> str:
    """The console table: per case, alpha and the weighted median's error under each coding."""
    head = (f"{'case':<16}{'units':>6}{'alpha pos.':>11}{'alpha sal.':>11}{'mean |diff|':>12}{'w.med. 1st':>11}"
            f"{'2nd':>6}{'w.pick 1st':>11}{'2nd':>6}")
    lines = ["Inter-coder agreement (Krippendorff's alpha, interval; 1 = identical, 0 = chance):", "", head,
             "-" * len(head)]
    for _, r in frame.iterrows():
        lines.append(f"{r['case'][:15]:<16}{r['units']:>6}{_num(r['alpha_positions'], 2):>11}"
                     f"{_num(r['alpha_salience'], 2):>11}"
                     f"{r['mean_abs_difference']:>12.1f}{_num(r['weighted_median_mae_first']):>11}"
                     f"{_num(r['weighted_median_mae_second']):>6}{_hit(r['weighted_pick_matched_first']):>11}"
                     f"{_hit(r['weighted_pick_matched_second']):>6}")
    lines.append("(w.med.: the weighted median's level MAE under each coding; w.pick: whether the weighted pick of "
                 "a choice issue is the observed option)")
    return "\n".join(lines)


def _num(x: float, decimals: int = 1) -> str:
    return "-" if np.isnan(x) else f"{x:.{decimals}f}"


def _hit(x: float) -> str:
    return "-" if np.isnan(x) else ("yes" if x == 1 else "no" if x == 0 else f"{x:.2f}")
