"""Choice issues (an outcome that is one of named options, e.g. who becomes Secretary General):
each rule against its closed form, both engines alike, the results columns, and bad inputs."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from model.negotiation.engines import run_chunk
from model.negotiation.model import NegotiationModel
from model.negotiation.results import to_frame
from model.outputs.validation import choice_baselines
from model.scenario.files import validate
from model.scenario.schema import ScenarioError

from .conftest import cli
from .test_cli import assert_refused
from .test_engines import assert_engines_agree

OPTIONS = {"keep": "the incumbent stays (the fallback)", "x": "candidate X", "y": "candidate Y"}


def choice_scenario(utility: dict[str, dict[str, float]], *, options: dict[str, str] = OPTIONS, fallback: str = "keep",
                    veto: dict[str, list[str]] | None = None, price: dict[str, float] | None = None,
                    ideal: dict[str, float] | None = None, minimum: dict[str, float] | None = None,
                    protocol: dict | None = None, failure_cost: float = 0.0, voting: dict[str, bool] | None = None,
                    decided: str = "in_declaration", salience: float = 1.0):
    """Members with utilities on one choice issue `sg` (and, with `ideal`, one level issue `u` at
    status quo 50). Noise, failure costs and the preparatory share are off unless set."""
    issues = {"sg": {"kind": "choice", "label": "Secretary General", "options": options, "status_quo": fallback,
                     "decided": decided}}
    if ideal:
        issues["u"] = {"label": "u", "anchors": {0: "low", 100: "high"}, "status_quo": 50.0}
    members = {}
    for code, row in utility.items():
        members[code] = {"name": code, "bloc": "A", "capability": 1.0, "utility": {"sg": row},
                         "salience": {"sg": salience} | ({"u": 1.0} if ideal else {}),
                         "ideal": {"u": ideal[code]} if ideal else {}, "voting": (voting or {}).get(code, True)}
        if code in (veto or {}):
            members[code]["veto"] = {"sg": veto[code]}
        if code in (price or {}):
            members[code]["price"] = {"sg": price[code]}
        if code in (minimum or {}):
            members[code]["minimum"] = {"u": minimum[code]}
    raw = {"name": "choice", "issues": issues, "blocs": {"A": {"label": "A"}}, "members": members,
           "member_defaults": {"failure_cost": failure_cost},
           "protocol": {"rounds": 4, "summit_sessions": 1, "acceptance_noise": 0.0, "preparatory_cost_share": 0.0,
                        "fallback": "drop_contested"} | (protocol or {}),
           "run": {"replications": 40, "seed": 3}}
    return validate(raw, "<test>")


def runs(scenario, count: int = 40, seed: int = 3) -> pd.DataFrame:
    return to_frame(run_chunk(scenario, seed, 0, count))


def test_an_option_everyone_prefers_is_chosen_in_round_one():
    scenario = choice_scenario({"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 40, "x": 90, "y": 10},
                                "C": {"keep": 60, "x": 70, "y": 20}})
    df = runs(scenario)
    assert (df["option_sg"] == "x").all() and df["agreed_sg"].all() and (df["agreement_round"] == 1).all()


def test_an_option_no_one_may_lose_on_leaves_the_fallback():
    """Every candidate is worse than the incumbent for someone, and failing costs nothing: nothing
    but the fallback can pass, so the incumbent stays."""
    scenario = choice_scenario({"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 50, "x": 0, "y": 100}})
    assert (runs(scenario)["option_sg"] == "keep").all()


def test_a_vetoed_option_is_never_chosen_unless_its_veto_is_sold():
    """Four members want X; C prefers X to the incumbent too but vetoes it (a government blocking a
    candidate). With no price on offer X never passes; with one, C sells its veto and X is chosen."""
    utility = {code: {"keep": 40, "x": 100, "y": 0} for code in "ABD"} | {"C": {"keep": 50, "x": 45, "y": 0}}
    noisy = {"acceptance_noise": 5.0, "summit_sessions": 2}
    blocked = runs(choice_scenario(utility, veto={"C": ["x"]}, protocol=noisy), 200)
    assert (blocked["option_sg"] != "x").all() and (blocked["option_sg"] == "keep").any()
    sold = runs(choice_scenario(utility, veto={"C": ["x"]}, price={"C": 5.0}, protocol=noisy), 200)
    assert (sold["option_sg"] == "x").mean() > 0.5
    sales = [p for payments in sold["side_payments"] for p in payments]
    assert sales and {(p["member"], p["issue"], p["option"]) for p in sales} == {("C", "sg", "x")}
    assert all(p["level"] is None for p in sales)  # a choice contract fixes an option, not a level
    # the payment is what C's margin needs: its loss on X against the incumbent, 50 - 45 = 5 points
    assert [p["amount"] for p in sales] == pytest.approx([5.0] * len(sales))


def test_with_identical_utilities_the_order_of_the_options_changes_nothing():
    utility = {code: {"keep": 30, "x": 80, "y": 60} for code in "ABC"}
    forward = runs(choice_scenario(utility, protocol={"acceptance_noise": 8.0}), 100)
    backward = runs(choice_scenario(utility, options=dict(reversed(OPTIONS.items())),
                                    protocol={"acceptance_noise": 8.0}), 100)
    assert (forward["option_sg"] == "x").all()
    pd.testing.assert_series_equal(forward["option_sg"], backward["option_sg"])
    same = runs(choice_scenario({code: {"keep": 50, "x": 50, "y": 50} for code in "ABC"}))
    assert (same["option_sg"] == "keep").all()  # a tie goes to the fallback


def test_the_chair_picks_the_option_most_likely_accepted_at_the_text_then_redrafts_the_levels():
    """Closed form: at the starting levels the chair takes the option with the largest
    sum_i log Lambda(m_i / sigma) (margins computed by hand, far from every position so that the
    smoothing of |u| plays no part), then drafts the levels under it, as it would with the option's
    gains added to each member's base."""
    from model.negotiation import rules

    position = np.array([[[10.0], [60.0], [90.0]]])
    weight = np.full((3, 1), 0.5)  # the other half of each member's salience is on the choice
    gain = 0.5 * np.array([[[0, 40, -10]], [[0, -30, 20]], [[0, 10, 15]]], dtype=float)  # (n, C, O), fallback 0
    q, kappa, sigma, start = np.array([50.0]), np.full(3, 5.0), 8.0, np.array([[40.0]])
    choices = rules.Choices(gain=gain, veto=np.zeros(gain.shape, bool), lifted=np.zeros((1, 3, 1), bool),
                            valid=np.ones((1, 3), bool), fallback=np.array([0]), settled=np.zeros((1, 1), bool),
                            start=np.array([[0]]))
    levels, options = rules.draft(position, weight, q, kappa, np.zeros((1, 3)), np.zeros((1, 3, 1), bool), sigma,
                                  np.zeros((1, 1), bool), start, choices)

    def log_acceptance(o: int) -> float:
        m = 0.5 * np.abs(q - position[0, :, 0]) + kappa + gain[:, 0, o] - 0.5 * np.abs(start[0, 0] - position[0, :, 0])
        return float(np.sum(-np.log1p(np.exp(-m / sigma))))

    best = int(np.argmax([log_acceptance(o) for o in range(3)]))
    assert best != 0 and options[0, 0] == best  # the check has teeth: not the fallback
    alone, _ = rules.draft(position, weight, q, kappa + gain[:, 0, best], np.zeros((1, 3)), np.zeros((1, 3, 1), bool),
                           sigma, np.zeros((1, 1), bool), start)
    assert levels == pytest.approx(alone, abs=1e-12)


def test_minimum_met_is_reported_per_member_with_one():
    scenario = choice_scenario({"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 40, "x": 90, "y": 10},
                                "K": {"keep": 50, "x": 50, "y": 50}}, ideal={"A": 70.0, "B": 70.0, "K": 100.0},
                               minimum={"K": 75.0}, voting={"K": False})
    df = runs(scenario)
    assert "satisfied_K" in df and "satisfied_A" not in df
    assert (df["satisfied_K"] == (df["level_u"] >= 75.0)).all() and not df["satisfied_K"].any()
    higher = runs(choice_scenario({"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 40, "x": 90, "y": 10},
                                   "K": {"keep": 50, "x": 50, "y": 50}}, ideal={"A": 90.0, "B": 90.0, "K": 100.0},
                                  minimum={"K": 75.0}, voting={"K": False}))
    assert higher["satisfied_K"].all()


def test_the_weighted_pick_baseline_is_the_option_with_the_largest_weighted_utility_sum():
    # saliences 1, capabilities 1: keep 50 + 40 + 60 = 150, x 100 + 90 + 0 = 190, y 0 + 10 + 100 = 110 -> x
    utility = {"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 40, "x": 90, "y": 10},
               "C": {"keep": 60, "x": 0, "y": 100}}
    assert choice_baselines(choice_scenario(utility)) == {"weighted_pick": {"sg": "x"}, "status_quo": {"sg": "keep"}}
    # a non-voting C with y 1000-fold would win if it counted; it does not: still x
    loud = utility | {"D": {"keep": 0, "x": 0, "y": 100}}
    assert choice_baselines(choice_scenario(loud, voting={"D": False}))["weighted_pick"] == {"sg": "x"}
    # salience 0.5 for everyone scales every sum alike: the pick is unchanged
    assert choice_baselines(choice_scenario(utility, salience=0.5))["weighted_pick"] == {"sg": "x"}


@pytest.mark.parametrize("seed", range(6))
def test_both_engines_agree_with_choices_vetoes_contracts_and_noise(seed):
    rng = np.random.default_rng(seed)
    utility = {code: dict(zip(OPTIONS, rng.uniform(0, 100, 3).round(1))) for code in "ABCDE"}
    scenario = choice_scenario(utility, veto={"B": ["x"], "D": ["y"]}, price={"B": 8.0, "D": 3.0},
                               ideal={code: round(float(rng.uniform(0, 100)), 1) for code in "ABCDE"},
                               failure_cost=10.0, protocol={"acceptance_noise": 6.0, "summit_sessions": 3,
                                                            "preparatory_cost_share": 0.2})
    assert_engines_agree(scenario, seed=seed, first=0, count=60)


@pytest.mark.parametrize("seed", range(3))
def test_both_engines_agree_when_a_choice_decided_on_its_own_stands_beside_a_priced_level(seed):
    """A settled choice decided on its own gains nothing in the declaration's contracts (it is not
    in the package): both engines price A's veto on the level without it."""
    utility = {"A": {"keep": 0, "x": 20, "y": 0}, "B": {"keep": 0, "x": 20, "y": 0}, "C": {"keep": 0, "x": 20, "y": 0}}
    raw = choice_scenario(utility, ideal={"A": 0.0, "B": 100.0, "C": 60.0}, decided="on_its_own", failure_cost=2.0,
                          protocol={"acceptance_noise": 2.0, "summit_sessions": 2, "preparatory_cost_share": 0.2}
                          ).model_dump(mode="json", exclude_none=True)
    raw["members"]["A"]["price"] = {"u": 5.0}
    scenario = validate(raw, "<own choice, priced level>")
    df = runs(scenario, 60, seed)
    assert (df["option_sg"] == "x").any() and df["n_side_payments"].any()  # the case this test is about occurs
    assert_engines_agree(scenario, seed=seed, first=0, count=60)


def test_a_choice_decided_on_its_own_is_settled_apart_from_the_declaration():
    """Everyone prefers X to the incumbent by at least 20 utility points x salience 0.5 = 10 points,
    far above the noise: X is decided in the first session whatever happens to the declaration
    (gridlocked at its status quo: each member accepts it only with the noise's help)."""
    utility = {"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 40, "x": 80, "y": 10}, "C": {"keep": 30, "x": 50, "y": 0}}
    scenario = choice_scenario(utility, ideal={"A": 0.0, "B": 100.0, "C": 50.0}, decided="on_its_own", salience=0.5,
                               protocol={"acceptance_noise": 1.0, "fallback": "no_declaration"})
    df = runs(scenario)
    assert (df["option_sg"] == "x").all() and df["agreed_sg"].all()
    assert df["consensus"].any() and (df["outcome"] == "none").any()  # the declaration passed or failed: no matter
    assert (df.loc[df["outcome"] == "none", "agreed_u"] == False).all()  # noqa: E712 (a nullable column)
    model = NegotiationModel(scenario, rng=3)
    model.step()
    assert model.outcome.options == {"sg": "x"} and model.outcome.agreed["sg"]


def test_a_choice_decided_on_its_own_changes_nothing_in_the_declaration():
    """Its noise has draws of its own and it takes no share of the members' weights, so adding it
    leaves every result of the declaration as it was, run by run."""
    utility = {code: {"keep": 50, "x": 60 + 10 * i, "y": 20} for i, code in enumerate("ABCD")}
    ideal = {"A": 20.0, "B": 40.0, "C": 70.0, "D": 90.0}
    protocol = {"acceptance_noise": 6.0, "summit_sessions": 2}
    with_own = runs(choice_scenario(utility, ideal=ideal, decided="on_its_own", protocol=protocol, failure_cost=20.0), 200)
    raw = choice_scenario(utility, ideal=ideal, protocol=protocol, failure_cost=20.0).model_dump(mode="json")
    del raw["issues"]["sg"]
    for member in raw["members"].values():
        del member["utility"]["sg"], member["salience"]["sg"]
    alone = runs(validate(raw, "<no sg>"), 200)
    columns = ["consensus", "outcome", "agreement_round", "summit_session", "agreed_u", "level_u", "n_holdouts"]
    pd.testing.assert_frame_equal(with_own[columns], alone[columns])
    assert with_own["agreed_sg"].any() and not with_own["agreed_sg"].all()  # the check has teeth


def test_a_vetoed_option_is_never_decided_on_its_own_and_nothing_beating_the_fallback_leaves_it():
    utility = {code: {"keep": 40, "x": 100, "y": 30} for code in "ABD"} | {"C": {"keep": 50, "x": 90, "y": 0}}
    df = runs(choice_scenario(utility, veto={"C": ["x"]}, decided="on_its_own", protocol={"acceptance_noise": 5.0},
                              ideal=dict.fromkeys("ABCD", 50.0)), 200)  # a declaration beside it (a level issue)
    assert (df["option_sg"] == "keep").all() and not df["agreed_sg"].any()


def test_a_selection_alone_validates_and_is_refused_by_calibration(tmp_path):
    # a Secretary General selection as its own case: one choice issue, in the declaration, no level
    scenario = choice_scenario({"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 40, "x": 90, "y": 10},
                                "C": {"keep": 60, "x": 70, "y": 20}})
    raw = scenario.model_dump(mode="json", exclude_none=True) | {"observed": {"consensus": True, "options": {"sg": "x"}}}
    folder = tmp_path / "selections"
    folder.mkdir()
    (folder / "sg.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    done = cli("validate", str(folder), "--workers", "1", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "sg: observed x; model: it stands in 100.0%" in done.stdout and "validation.png" not in done.stdout
    assert pd.read_csv(tmp_path / "out" / "validation.csv").empty  # no level observed, the columns still there
    assert pd.read_csv(tmp_path / "out" / "validation-cases.csv")["choices"].tolist() == ["sg:x=1.000"]
    figures = sorted(p.stem for p in (tmp_path / "out" / "choice" / "figures").glob("*.png"))
    assert figures == ["holdouts", "options", "rounds"]  # no level figures without level issues
    assert_refused(cli("calibrate", str(folder), "--quiet", "--out", str(tmp_path / "cal")),
                   "sg.yaml", "observed.levels", "only choices")


BAD = [
    (["members", "A", "utility", "sg", "z"], 10.0, "members.A.utility.sg.z: unknown option; known: keep, x, y"),
    (["members", "A", "utility", "sg", "x"], 101.0, "members.A.utility.sg.x: Input should be less than or equal to 100"),
    (["members", "A", "veto"], {"sg": ["keep"]}, "keep is the status quo, which stands when nothing is agreed"),
    (["members", "A", "veto"], {"sg": ["z"]}, "members.A.veto.sg: unknown option 'z'"),
    (["issues", "sg", "status_quo"], "z", "issues.sg: status_quo: 'z' is not one of the options"),
    (["members", "A", "minimum"], {"sg": 50.0}, "members.A.minimum.sg: sg is a choice issue; this key takes a level issue"),
    (["members", "A", "ideal"], {"sg": 50.0}, "members.A.ideal.sg: sg is a choice issue"),
    (["issues", "sg", "decided"], "on_its_own", "issues: every issue is decided on its own"),
]


@pytest.mark.parametrize("path, value, message", BAD, ids=[m.split(":")[0] for _, _, m in BAD])
def test_bad_choice_inputs_name_the_key(path, value, message):
    raw = choice_scenario({"A": {"keep": 50, "x": 100, "y": 0}, "B": {"keep": 40, "x": 90, "y": 10}}).model_dump(
        mode="json")
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)
    with pytest.raises(ScenarioError, match=None) as caught:
        validate(raw, "<bad>")
    assert message in str(caught.value)
