"""Each mechanic against a known analytic result (docs/ODD.md, section 7)."""

from __future__ import annotations

import numpy as np
import pytest

from model.negotiation import rules
from model.negotiation.engines import run_chunk
from model.negotiation.model import NegotiationModel
from model.negotiation.params import build_params, influence_matrix
from model.negotiation.results import SidePayment, flat_for_csv, to_frame

from .conftest import make_scenario


def play(scenario, replication=0, seed=11) -> NegotiationModel:
    model = NegotiationModel(scenario, rng=seed, replication=replication)
    model.run_for(model.params.rounds)
    return model


def test_identical_ideals_agree_in_round_one_at_that_point():
    scenario = make_scenario({c: {"ukraine": 62.5, "spending": 40.0} for c in ("AAA", "BBB", "CCC", "DDD")},
                             defaults={"tolerance": 0.0, "reservation": 0.0})
    model = play(scenario)
    assert model.outcome.consensus and model.outcome.agreement_round == 1
    assert model.outcome.levels == pytest.approx({"ukraine": 62.5, "spending": 40.0}, abs=1e-12)
    assert model.outcome.holdouts == []


def test_draft_is_the_salience_capability_weighted_compromise():
    rng = np.random.default_rng(3)
    position = rng.uniform(0, 100, (2, 5, 3))
    capability = rng.uniform(0.1, 1, 5)
    salience = rng.uniform(0.1, 1, (5, 3))
    weight = capability[:, None] * salience
    expected = np.array([[sum(weight[i, k] * position[r, i, k] for i in range(5)) / weight[:, k].sum()
                          for k in range(3)] for r in range(2)])
    nobody = np.zeros((2, 5), bool)
    assert rules.draft_package(position, weight, salience, nobody, 0.0) == pytest.approx(expected, abs=1e-12)
    # pulled a fraction toward the objectors' salience-weighted mean position
    objected = np.zeros((2, 5), bool)
    objected[0, [1, 3]] = True
    toward = (salience[[1, 3]] * position[0, [1, 3]]).sum(axis=0) / salience[[1, 3]].sum(axis=0)
    pulled = rules.draft_package(position, weight, salience, objected, 0.25)
    assert pulled[0] == pytest.approx(expected[0] + 0.25 * (toward - expected[0]), abs=1e-12)
    assert pulled[1] == pytest.approx(expected[1], abs=1e-12)


def test_first_draft_of_a_run_is_the_compromise_of_the_drawn_ideals(tiny):
    scenario = tiny.model_copy(update={"protocol": tiny.protocol.model_copy(update={"objector_pull": 0.0})})
    model = NegotiationModel(scenario, rng=5, replication=9)
    ideal = model.state.ideal[0].copy()
    model.step()
    p = model.params
    w = p.capability[:, None] * p.salience * p.voting[:, None]
    assert model.last_round.draft[0] == pytest.approx((w * ideal).sum(0) / w.sum(0), abs=1e-12)


def test_friedkin_johnsen_converges_to_its_closed_form():
    rng = np.random.default_rng(8)
    n = 6
    capability = rng.uniform(0.2, 1, n)
    capability /= capability.sum()
    W = influence_matrix(capability, list("AABBBC"), 0.3, 2.0)
    assert W.sum(axis=1) == pytest.approx(np.ones(n), abs=1e-12)
    anchoring = rng.uniform(0.1, 0.9, n)
    x0 = rng.uniform(0, 100, (1, n, 2))
    p = x0.copy()
    for _ in range(400):
        p = rules.friedkin_johnsen(p, x0, W, anchoring)
    lam = np.diag(1 - anchoring)
    closed = np.linalg.solve(np.eye(n) - lam @ W, (np.eye(n) - lam) @ x0[0])
    assert p[0] == pytest.approx(closed, abs=1e-9)


def test_model_positions_reach_the_friedkin_johnsen_fixed_point_when_talks_never_end():
    ideals = {"AAA": {"x": 10.0}, "BBB": {"x": 40.0}, "CCC": {"x": 55.0}, "DDD": {"x": 95.0}}
    scenario = make_scenario(ideals, protocol={"rounds": 200},
                             defaults={"tolerance": 0.0, "reservation": 0.0, "anchoring": 0.4})
    model = play(scenario)
    assert not model.outcome.consensus and model.outcome.rounds_played == 200
    p = model.params
    lam = np.diag(1 - p.anchoring)
    x0 = p.nominal_ideal
    closed = np.linalg.solve(np.eye(p.n) - lam @ p.influence, (np.eye(p.n) - lam) @ x0)
    assert model.state.position[0] == pytest.approx(closed, abs=1e-9)


def test_red_line_member_without_concession_blocks_every_run():
    ideals = {"AAA": {"x": 50.0}, "BBB": {"x": 52.0}, "CCC": {"x": 48.0}, "RED": {"x": 100.0}}
    scenario = make_scenario(ideals, replications=200, protocol={"acceptance_noise": 0.0},
                             members={"RED": {"anchoring": 1.0, "tolerance": 0.0, "reservation": 0.0}})
    df = to_frame(run_chunk(scenario, 11, 0, 200))
    assert not df["consensus"].any()
    assert (df["outcome"] == "none").all()
    assert df["holdouts"].map(lambda h: "RED" in h).all()


def test_acceptable_distance_follows_the_faratin_schedule():
    tol, res = np.array([4.0, 4.0, 4.0]), np.array([24.0, 24.0, 24.0])
    beta = np.array([0.2, 1.0, 5.0])  # Boulware, linear, Conceder
    schedule = np.array([rules.acceptable_distance(t, 6, tol, res, beta) for t in range(1, 7)])
    assert schedule[0] == pytest.approx(tol) and schedule[-1] == pytest.approx(res)
    assert (np.diff(schedule, axis=0) >= 0).all()  # the demand only falls
    assert schedule[2, 1] == pytest.approx(4 + 20 * 2 / 5)  # linear
    assert (schedule[1:-1, 0] < schedule[1:-1, 1]).all() and (schedule[1:-1, 2] > schedule[1:-1, 1]).all()
    tiny_beta = rules.acceptable_distance(5, 6, tol, res, np.full(3, 0.01))
    assert tiny_beta == pytest.approx(tol, abs=1e-6)  # beta -> 0 concedes only at the deadline


def test_logit_acceptance_probability_matches_the_logistic_curve():
    u = np.random.default_rng(1).random((200_000, 1))
    scale, gap = 3.0, 2.0  # distance exceeds the allowance by 2 points
    accepts = rules.votes(np.full((200_000, 1), 12.0), np.array([10.0]), rules.acceptance_noise(scale, u),
                          np.array([True]))
    assert accepts.mean() == pytest.approx(1 / (1 + np.exp(gap / scale)), abs=0.005)


def test_side_payment_moves_the_payer_to_the_draft_on_its_main_grievance_once():
    ideal = np.array([[[10.0, 50.0], [60.0, 90.0]]])  # member 1's main grievance: issue 1 (gap 40 vs 10)
    state = rules.State.start(ideal)
    draft = np.array([[50.0, 50.0]])
    salience = np.ones((2, 2))
    objectors = np.array([[False, True]])
    paid, issue = rules.side_payments(state, draft, objectors, np.array([1.0, 1.0]), salience, np.zeros((1, 2)))
    assert paid.tolist() == [[False, True]] and issue.tolist() == [[-1, 1]]
    assert state.ideal[0, 1].tolist() == [60.0, 50.0] and state.position[0, 1].tolist() == [60.0, 50.0]
    again, _ = rules.side_payments(state, draft, objectors, np.array([1.0, 1.0]), salience, np.zeros((1, 2)))
    assert not again.any()  # a veto is sold at most once


@pytest.mark.parametrize("engine", ["mesa", "ensemble"])
def test_a_sold_veto_is_recorded_as_member_issue_and_round(engine):
    """TUR objects to the first draft (y: 100 against (50 + 50 + 100) / 3), and with linkage 1 it
    sells its veto at once: on y, its main grievance, in round 1; the others never sell."""
    ideals = {"AAA": {"x": 50.0, "y": 50.0}, "BBB": {"x": 50.0, "y": 50.0}, "TUR": {"x": 50.0, "y": 100.0}}
    scenario = make_scenario(ideals, replications=5, members={"TUR": {"linkage": 1.0}})
    model = play(scenario)
    assert model.outcome.side_payments == [SidePayment("TUR", "y", 1)]
    assert [str(p) for p in model.outcome.side_payments] == ["TUR:y@1"]
    assert model.state.ideal[0, 2, 1] == pytest.approx(200 / 3, abs=1e-12)  # TUR's ideal moved to the draft
    table = run_chunk(scenario, 11, 0, 5, engine=engine)
    assert table["side_payments"].to_pylist() == [[{"member": "TUR", "issue": "y", "round": 1}]] * 5
    assert table["n_side_payments"].to_pylist() == [1] * 5
    assert flat_for_csv(table)["side_payments"].to_pylist() == ["TUR:y@1"] * 5


def test_drop_contested_keeps_the_issues_nobody_blocks():
    ideals = {"AAA": {"ukraine": 50.0, "spending": 50.0}, "BBB": {"ukraine": 52.0, "spending": 50.0},
              "HUN": {"ukraine": 0.0, "spending": 50.0}}
    scenario = make_scenario(ideals, protocol={"fallback": "drop_contested", "rounds": 3},
                             members={"HUN": {"anchoring": 1.0, "tolerance": 0.0, "reservation": 1.0}})
    model = play(scenario)
    out = model.outcome
    assert out.kind == "partial" and not out.consensus and out.agreement_round == 3
    assert np.isnan(out.levels["ukraine"]) and out.levels["spending"] == pytest.approx(50.0)
    assert out.holdouts == ["HUN"]


def test_more_concession_never_lowers_consensus_replication_by_replication():
    """Provable with objector pull and linkage off: trajectories do not depend on the votes, and a
    wider acceptable distance with the same noise draws accepts whatever the narrower one did."""
    base = {"protocol": {"acceptance_noise": 2.0, "rounds": 5}, "replications": 300}
    ideals = {"AAA": {"x": 20.0, "y": 70.0}, "BBB": {"x": 60.0, "y": 40.0}, "CCC": {"x": 85.0, "y": 55.0}}
    narrow = to_frame(run_chunk(make_scenario(ideals, defaults={"reservation": 12.0}, **base), 4, 0, 300))
    wide = to_frame(run_chunk(make_scenario(ideals, defaults={"reservation": 18.0}, **base), 4, 0, 300))
    assert (wide["consensus"] >= narrow["consensus"]).all()
    both = narrow["consensus"] & wide["consensus"]
    assert (wide.loc[both, "agreement_round"] <= narrow.loc[both, "agreement_round"]).all()
    assert wide["consensus"].sum() > narrow["consensus"].sum()  # the check can fail: it has teeth


@pytest.mark.parametrize("change", [{"protocol.rounds": (6, 10)}, {"member_defaults.reservation": (20, 26)}])
def test_more_rounds_or_concession_do_not_lower_consensus_with_every_mechanic_on(tiny, change):
    """Paired under common random numbers: the difference may not fall below -3 standard errors."""
    from model.scenario.files import load_scenario

    from .conftest import TINY

    (path, (low, high)), = change.items()
    runs = 400
    frames = [to_frame(run_chunk(load_scenario(TINY, [f"{path}={v}", f"run.replications={runs}"]), 3, 0, runs))
              for v in (low, high)]
    diff = frames[1]["consensus"].astype(float) - frames[0]["consensus"].astype(float)
    se = diff.std(ddof=1) / np.sqrt(runs) if diff.std() > 0 else 0.0
    assert diff.mean() >= -3 * se


def test_params_capability_is_the_sqrt_mix_of_gdp_and_military_shares(tiny):
    p = build_params(tiny)
    gdp = np.array([1000, 500, 200.0])
    mil = gdp * np.array([2.0, 1.5, 3.0]) / 100
    mix = 0.5 * gdp / gdp.sum() + 0.5 * mil / mil.sum()
    expected = np.sqrt(mix) / np.sqrt(mix).sum()
    assert p.capability == pytest.approx(expected, abs=1e-12)


def test_acceptance_band_edges_are_exactly_at_the_acceptable_distance():
    rng = np.random.default_rng(12)
    position = rng.uniform(20, 80, (1, 4, 3))
    share = rng.uniform(0.1, 1, (4, 3))
    share /= share.sum(axis=1, keepdims=True)
    draft = rng.uniform(30, 70, (1, 3))
    allowed = np.array([25.0, 30.0, 40.0, 2.0])
    low, high = rules.acceptance_band(draft, position, share, allowed)
    everything = np.ones((1, 3), bool)
    for i in range(4):
        for k in range(3):
            if np.isnan(low[0, i, k]):  # the other issues alone already exceed the allowance
                others = everything.copy()
                others[0, k] = False
                assert rules.package_distance(draft, position, share, others)[0, i] > allowed[i]
                continue
            for edge in (low[0, i, k], high[0, i, k]):
                moved = draft.copy()
                moved[0, k] = edge
                d = rules.package_distance(moved, position, share, everything)[0, i]
                at_scale_end = edge in (0.0, 100.0)
                assert d == pytest.approx(allowed[i], abs=1e-9) or (at_scale_end and d <= allowed[i] + 1e-9)
