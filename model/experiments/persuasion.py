"""Who must be persuaded: a sweep design with one point per voting member moved toward the compromise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.negotiation.params import params_for
from model.negotiation.rules import compromise
from model.scenario.design import Design
from model.scenario.schema import Scenario


def persuasion_design(scenario: Scenario, distance: float, outcome: str = "consensus") -> Design:
    """Point 0 is the scenario as it is; point i+1 moves voting member i's ideal points (the whole
    distribution, through its `shift`) up to `distance` toward the compromise on every level issue,
    where the compromise is the salience x capability weighted mean of the nominal ideal points.
    A member already closer than `distance` moves onto the compromise. `outcome`: what the ranking
    is of (P(consensus), or e.g. satisfied_UKR: the share of runs meeting Kyiv's minimum)."""
    p = params_for(scenario)
    target = compromise(p.nominal_ideal[None], p.compromise_weight)[0]
    # rounded to 1e-9 points, so a member at the compromise (up to float error) does not move at all
    move = np.round(np.clip(target[None, :] - p.nominal_ideal, -distance, distance), 9)
    rows, overrides = [{"member": "(reference)"} | dict.fromkeys(p.issues, 0.0)], [{}]
    for i, code in enumerate(p.codes):
        if not p.voting[i]:
            continue
        own = scenario.members[code].shift
        rows.append({"member": code} | {issue: float(move[i, j]) for j, issue in enumerate(p.issues)})
        overrides.append({f"members.{code}.shift.{issue}": float(own.get(issue, 0.0) + move[i, j])
                          for j, issue in enumerate(p.issues)})
    table = pd.DataFrame(rows).rename(columns={issue: f"move_{issue}" for issue in p.issues})
    table.insert(0, "point", np.arange(len(table), dtype=np.int64))
    return Design("persuade", table, overrides, (), outcome=outcome)
