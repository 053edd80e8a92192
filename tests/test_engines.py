"""The ensemble engine equals the Mesa engine, replication by replication (the randomness contract)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.negotiation.engines import run_chunk
from model.negotiation.results import to_frame
from model.scenario.files import load_scenario, validate

from .conftest import REPO, TINY

SCENARIOS = sorted(p for p in (REPO / "scenarios").rglob("*.yaml") if p.name != "split.yaml") + [TINY]


def assert_engines_agree(scenario, seed: int, first: int, count: int) -> None:
    """Discrete outcomes identical; levels equal to 1e-12 (in practice they are bit-identical)."""
    mesa = to_frame(run_chunk(scenario, seed, first, count, engine="mesa"))
    ensemble = to_frame(run_chunk(scenario, seed, first, count, engine="ensemble"))
    levels = [c for c in mesa if c.startswith("level_")]
    pd.testing.assert_frame_equal(mesa.drop(columns=levels), ensemble.drop(columns=levels), check_exact=True)
    np.testing.assert_allclose(mesa[levels].to_numpy(), ensemble[levels].to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(Path(p).relative_to(REPO)))
def test_every_scenario_gives_the_same_outcomes_on_both_engines(path):
    scenario = load_scenario(path)
    count = 60 if "history" in Path(path).parts else 150  # 22 historical codings: fewer runs each
    assert_engines_agree(scenario, seed=scenario.run.seed or 1, first=0, count=count)


def test_exemptions_weigh_on_every_other_member_in_both_engines():
    """After an exemption, every other member bears its cost in later votes and drafts, also those
    holding none themselves (an Ally computes its transfers on its own row; the ensemble on all)."""
    members = {f"M{m}": {"name": f"m{m}", "bloc": "A", "capability": 1.0, "ideal": {"x": x, "y": y},
                         "salience": {"x": 0.6, "y": 0.4}, "failure_cost": 2.0}
               for m, (x, y) in enumerate([(90, 90), (80, 85), (85, 70), (10, 80), (80, 15), (20, 20)])}
    scenario = validate({"name": "exemptions", "blocs": {"A": {"label": "A"}}, "members": members,
                         "issues": {k: {"label": k, "anchors": {0: "low", 100: "high"}, "status_quo": 50.0,
                                        "carve_out_cost": 1.0} for k in ("x", "y")},
                         "protocol": {"rounds": 1, "summit_sessions": 4, "acceptance_noise": 4.0}}, "<test>")
    assert_engines_agree(scenario, seed=3, first=0, count=200)
    assert (to_frame(run_chunk(scenario, 3, 0, 200))["n_carve_outs"] > 0).sum() > 10  # the check has teeth


def test_batch_boundaries_do_not_matter():
    """Replications 2040..2060 straddle the ensemble's internal batch of 2048."""
    scenario = load_scenario(TINY)
    whole = to_frame(run_chunk(scenario, 4, 2000, 100, engine="ensemble"))
    part = to_frame(run_chunk(scenario, 4, 2040, 20, engine="ensemble"))
    pd.testing.assert_frame_equal(whole.iloc[40:60].reset_index(drop=True), part, check_exact=True)


def _distribution(draw, low_bound: float = 0.0):
    low = draw(st.floats(0, 90))
    high = draw(st.floats(low + 1, 100))
    kind = draw(st.sampled_from(["fixed", "uniform", "pert", "truncnormal"]))
    if kind == "fixed":
        return round(low, 3)
    if kind == "uniform":
        return {"dist": "uniform", "low": low, "high": high}
    mid = draw(st.floats(low, high))
    if kind == "pert":
        return {"dist": "pert", "low": low, "mode": mid, "high": high}
    return {"dist": "truncnormal", "mean": mid, "sd": draw(st.floats(0.5, 30)), "low": low, "high": high}


@st.composite
def scenarios(draw):
    """Random but valid scenarios: 2-7 members, 1-3 level issues and 0-2 choice issues (2-4 options,
    some vetoed), any protocol, some members non-voting, some with prices on offer, some issues
    allowing exemptions."""
    n = draw(st.integers(2, 7))
    issues = [f"i{k}" for k in range(draw(st.integers(1, 3)))]
    choices = {f"c{c}": [f"o{o}" for o in range(draw(st.integers(2, 4)))] for c in range(draw(st.integers(0, 2)))}
    decided = {c: draw(st.sampled_from(["in_declaration", "on_its_own"])) for c in choices}
    agenda = issues + list(choices)
    priceable = issues + [c for c in choices if decided[c] == "in_declaration"]
    members = {}
    for m in range(n):
        voting = m == 0 or draw(st.booleans())
        members[f"M{m:02d}"] = {
            "name": f"member {m}", "bloc": draw(st.sampled_from(["A", "B"])),
            "capability": draw(st.floats(0.01, 1)), "voting": voting,
            "ideal": {k: _distribution(draw) for k in issues},
            "utility": {c: {o: draw(st.floats(0, 100)) for o in options} for c, options in choices.items()},
            "veto": {c: [o for o in options[1:] if draw(st.integers(0, 4)) == 0] for c, options in choices.items()}
            if voting else {},
            "salience": {k: draw(st.floats(0, 1)) for k in agenda},
            "anchoring": draw(st.floats(0, 1)), "failure_cost": draw(st.sampled_from([0.0, 5.0, 30.0])),
            "price": {k: draw(st.sampled_from([5.0, 20.0])) for k in priceable if draw(st.booleans())}
            if draw(st.integers(0, 3)) == 0 else {},
        }
    raw = {
        "name": "random",
        "issues": {k: {"label": k, "anchors": {0: "low", 100: "high"}, "status_quo": draw(st.floats(0, 100)),
                       "carve_out_cost": draw(st.sampled_from([None, 0.0, 3.0]))} for k in issues}
        | {c: {"kind": "choice", "label": c, "options": {o: o for o in options}, "status_quo": options[0],
               "decided": decided[c]} for c, options in choices.items()},
        "blocs": {"A": {"label": "A", "shift": {issues[0]: draw(st.floats(-20, 20))}}, "B": {"label": "B"}},
        "members": members,
        "protocol": {"rounds": draw(st.integers(1, 10)), "summit_sessions": draw(st.integers(1, 3)),
                     "acceptance_noise": draw(st.sampled_from([0.0, 0.5, 4.0, 12.0])),
                     "preparatory_cost_share": draw(st.sampled_from([0.0, 0.1, 1.0])),
                     "drafting": draw(st.sampled_from(["summit", "current"])),
                     "influence": {"self_weight": draw(st.floats(0, 1)), "same_bloc_weight": draw(st.floats(0, 4))},
                     "fallback": draw(st.sampled_from(["drop_contested", "no_declaration"]))},
    }
    return validate(raw, "<hypothesis>")


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=scenarios(), seed=st.integers(0, 2**63 - 1), first=st.integers(0, 10**9))
def test_random_scenarios_give_the_same_outcomes_on_both_engines(scenario, seed, first):
    assert_engines_agree(scenario, seed, first, 12)
