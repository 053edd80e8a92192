"""Each mechanic against a known analytic result (docs/ODD.md, "Submodels")."""

from __future__ import annotations

import numpy as np
import pytest

from model.negotiation import drafting, rules
from model.negotiation.engines import run_chunk
from model.negotiation.model import NegotiationModel
from model.negotiation.params import build_params, influence_matrix
from model.negotiation.results import CarveOut, to_frame

from .conftest import make_scenario


def play(scenario, replication=0, seed=11) -> NegotiationModel:
    model = NegotiationModel(scenario, rng=seed, replication=replication)
    model.run_for(model.params.rounds)
    return model


def chair(position, weight, status_quo, kappa, noise, transfers=None, fixed=None, level=None):
    """rules.draft for one replication from a cold start at the status quo (at `level` on the
    issues a contract has `fixed`)."""
    position = np.asarray(position, float)[None]
    r, n, k = position.shape
    q = np.asarray(status_quo, float)
    fixed = np.zeros((1, k), bool) if fixed is None else np.asarray(fixed)[None]
    start = q[None] if level is None else np.where(fixed, np.asarray(level, float)[None], q[None])
    transfers = np.zeros((1, n)) if transfers is None else np.asarray(transfers, float)[None]
    return rules.draft(position, np.asarray(weight, float), q, np.asarray(kappa, float), transfers,
                       np.zeros((1, n, k), bool), noise, fixed, start)[0][0]


# ---------------------------------------------------------------- acceptance against the reversion point
def test_margin_is_the_status_quo_distance_plus_failure_cost_minus_the_draft_distance():
    position, weight = np.array([20.0, 70.0]), np.array([0.25, 0.75])
    q, d = np.array([50.0, 50.0]), np.array([30.0, 60.0])
    expected = (0.25 * 30 + 0.75 * 20) + 4.0 + 1.5 - (0.25 * 10 + 0.75 * 10)
    assert rules.margin(d, position, weight, q, 4.0, 1.5) == pytest.approx(expected, abs=1e-12)


def test_gridlock_when_the_status_quo_lies_between_the_members_and_failing_costs_nothing():
    """One issue, q inside [min x, max x], kappa = 0, no noise: no draft but q passes."""
    position, weight = np.array([[20.0], [80.0]]), np.ones((2, 1))
    drafts = np.linspace(0, 100, 1001)[:, None, None]
    margins = rules.margin(drafts, position, weight, np.array([30.0]), 0.0, 0.0)
    passes = rules.accepts(margins, 0.0, np.array([True, True])).all(axis=1)
    assert drafts[passes, 0, 0].tolist() == [30.0]
    assert chair(position, weight, [30.0], [0.0, 0.0], 0.0) == pytest.approx([30.0], abs=1e-6)


def test_logit_acceptance_probability_matches_the_logistic_curve():
    u = np.random.default_rng(1).random(200_000)
    scale, margin = 3.0, -2.0
    accepts = rules.accepts(np.full(200_000, margin), rules.acceptance_noise(scale, u), True)
    assert accepts.mean() == pytest.approx(1 / (1 + np.exp(-margin / scale)), abs=0.005)


def test_an_invitee_never_blocks():
    assert rules.accepts(np.array([-50.0, -50.0]), 0.0, np.array([True, False])).tolist() == [False, True]


def test_failure_cost_is_a_share_before_the_summit_and_whole_at_it():
    kappa = np.array([0.0, 10.0, 30.0])
    assert rules.failure_cost_at(kappa, False, 0.1) == pytest.approx([0.0, 1.0, 3.0])
    assert rules.failure_cost_at(kappa, True, 0.1) is kappa


def test_acceptance_band_ends_are_where_the_margin_is_zero():
    rng = np.random.default_rng(12)
    for _ in range(20):
        position, weight = rng.uniform(10, 90, 3), rng.dirichlet(np.ones(3))
        q, d, kappa = rng.uniform(0, 100, 3), rng.uniform(20, 80, 3), rng.uniform(0, 20)
        low, high = rules.acceptance_band(d, position, weight, q, kappa, 0.0)
        for k in range(3):
            if np.isnan(low[k]):  # the other issues alone already cost more than the status quo gives
                at_position = d.copy()
                at_position[k] = position[k]
                assert rules.margin(at_position, position, weight, q, kappa, 0.0) < 0
                continue
            for edge in (low[k], high[k]):
                moved = d.copy()
                moved[k] = edge
                m = rules.margin(moved, position, weight, q, kappa, 0.0)
                assert m == pytest.approx(0.0, abs=1e-9) or (edge in (0.0, 100.0) and m >= -1e-9)


# ---------------------------------------------------------------- the chair's draft
def test_identical_positions_give_that_point_whatever_the_noise():
    position = np.tile([62.5, 40.0], (4, 1))
    weight = np.tile([0.5, 0.5], (4, 1))
    for noise in (0.0, 3.0, 40.0):
        assert chair(position, weight, [20.0, 90.0], np.full(4, 10.0), noise) == pytest.approx([62.5, 40.0], abs=1e-6)
    model = play(make_scenario({c: {"ukraine": 62.5, "spending": 40.0} for c in ("AAA", "BBB", "CCC")},
                               status_quo={"ukraine": 20.0, "spending": 90.0}))
    assert model.outcome.consensus and model.outcome.agreement_round == 1
    assert model.outcome.levels == pytest.approx({"ukraine": 62.5, "spending": 40.0}, abs=1e-6)


def test_large_noise_gives_the_salience_weighted_median_per_issue():
    rng = np.random.default_rng(3)
    for _ in range(5):
        position = rng.uniform(0, 100, (7, 3))
        weight = rng.dirichlet(np.ones(3), size=7)
        median = rules.weighted_median(position[None], weight)[0]
        draft = chair(position, weight, rng.uniform(0, 100, 3), rng.uniform(0, 30, 7), 1e5)
        assert draft == pytest.approx(median, abs=drafting.SMOOTHING)


def test_small_noise_two_binding_members_meet_at_equal_margins():
    """d* = (s_a x_a + s_b x_b + D_a(q) + kappa_a - D_b(q) - kappa_b) / (s_a + s_b)."""
    # the issue's example: x = 20 and 80, s = 1, q = 30, kappa = 0: d* = 30 = q, gridlock again
    one = np.ones((2, 1))
    assert chair([[20.0], [80.0]], one, [30.0], [0.0, 0.0], 0.0) == pytest.approx([30.0], abs=0.01)
    # kappa_a = 20: d* = (20 + 80 + 10 + 20 - 50 - 0) / 2 = 40
    assert chair([[20.0], [80.0]], one, [30.0], [20.0, 0.0], 0.0) == pytest.approx([40.0], abs=0.01)
    # unequal salience shares on issue 0 (0.5 and 0.8), issue 1 settled at its status quo by a
    # contract, so only issue 0 separates the draft from the status quo: kappa 10 and 0, q0 = 30,
    # d* = (0.5*20 + 0.8*80 + 0.5*10 + 10 - 0.8*50 - 0) / 1.3 = 49 / 1.3 = 37.69, both margins 6.15
    position, weight, q = np.array([[20.0, 50.0], [80.0, 40.0]]), np.array([[0.5, 0.5], [0.8, 0.2]]), [30.0, 60.0]
    draft = chair(position, weight, q, [10.0, 0.0], 0.0, fixed=[False, True], level=[0.0, 60.0])
    assert draft == pytest.approx([49 / 1.3, 60.0], abs=0.02)
    margins = rules.margin(draft, position, weight, np.array(q), np.array([10.0, 0.0]), 0)
    assert margins == pytest.approx([5 + 10 - 0.5 * (49 / 1.3 - 20)] * 2, abs=0.02)


def test_capability_does_not_weigh_in_the_draft():
    ideals = {"BIG": {"x": 20.0}, "SMALL": {"x": 80.0}}
    equal = play(make_scenario(ideals, status_quo=30.0, members={"BIG": {"failure_cost": 20.0}}))
    unequal = play(make_scenario(ideals, status_quo=30.0, members={"BIG": {"failure_cost": 20.0}},
                                 capability={"BIG": 50.0, "SMALL": 0.5}))
    assert equal.outcome.levels["x"] == pytest.approx(40.0, abs=0.01)
    assert unequal.outcome.levels["x"] == equal.outcome.levels["x"]


def test_the_solver_needs_no_batch_company():
    """Replication r's draft is the same computed alone or among many (per-replication stopping)."""
    rng = np.random.default_rng(4)
    x, w = rng.uniform(0, 100, (50, 9, 3)), rng.dirichlet(np.ones(3), size=(50, 9))
    base, free = rng.uniform(0, 60, (50, 9)), np.ones((50, 3), bool)
    start = np.full((50, 3), 50.0)
    together = drafting.solve(x, w, base, 4.0, free, start)
    alone = np.vstack([drafting.solve(x[r:r + 1], w[r:r + 1], base[r:r + 1], 4.0, free[r:r + 1], start[r:r + 1])
                       for r in range(50)])
    assert np.array_equal(together, alone)


# ---------------------------------------------------------------- the status quo as the reversion point
def test_an_issue_not_agreed_keeps_its_status_quo(tiny):
    df = to_frame(run_chunk(tiny.model_copy(update={"protocol": tiny.protocol.model_copy(
        update={"acceptance_noise": 12.0})}), 5, 0, 400))
    for issue, q in (("ukraine", 30.0), ("spending", 40.0)):
        lost = ~df[f"agreed_{issue}"].astype(bool)
        assert lost.any()  # the check has teeth: some runs do not agree
        assert (df.loc[lost, f"level_{issue}"] == q).all()
    assert (df.loc[df["outcome"] == "none", "agreement_round"].isna()).all()


def test_drop_contested_keeps_the_issues_nobody_blocks():
    """HUN objects while issue 0 is on the table; dropping it (its status quo stands) makes all accept."""
    draft, q = np.array([[60.0, 50.0]]), np.array([20.0, 50.0])

    def objection(on_table):
        return np.array([[False, bool(on_table[0, 0])]])

    def grievances(on_table):
        return np.array([[[0.0, 0.0], [40.0, 0.0]]]) * on_table[:, None, :]

    survivors = rules.drop_contested(np.ones((1, 2), bool), objection, grievances)
    assert survivors.tolist() == [[False, True]]
    assert rules.drop_contested(np.ones((1, 2), bool), lambda on: np.array([[True, False]]), grievances).tolist() == \
        [[False, False]]  # someone refuses even the status quo: nothing survives


# ---------------------------------------------------------------- a deadline that bites
@pytest.mark.parametrize("rounds", [4, 8, 16])
def test_a_package_everyone_prefers_closes_in_round_one(rounds):
    scenario = make_scenario({"AAA": {"x": 60.0}, "BBB": {"x": 70.0}, "CCC": {"x": 80.0}}, status_quo=0.0,
                             protocol={"rounds": rounds}, defaults={"failure_cost": 20.0})
    assert play(scenario).outcome.agreement_round == 1


@pytest.mark.parametrize("rounds", [4, 8, 16])
def test_a_package_that_needs_the_summits_cost_closes_exactly_at_the_summit(rounds):
    """x = 20 and 80, q = 50, kappa = 20 and 0: the draft is 60 (equal margins of 10 at the summit);
    before it AAA's margin is 30 - 40 = -10, so it objects in every preparatory round."""
    scenario = make_scenario({"AAA": {"x": 20.0}, "BBB": {"x": 80.0}}, status_quo=50.0, protocol={"rounds": rounds},
                             members={"AAA": {"failure_cost": 20.0}})
    out = play(scenario).outcome
    assert out.consensus and out.agreement_round == rounds and out.summit_session == 1
    assert out.levels["x"] == pytest.approx(60.0, abs=0.01)


# ---------------------------------------------------------------- linkage as a priced contract
def test_contract_prices_a_veto_between_its_unpaid_level_and_what_the_others_want():
    # one issue: the seller at 10, status quo 30 (its spare: 20 points), the others want 80
    position, weight, q, draft = np.array([[10.0]]), np.array([1.0]), np.array([30.0]), np.array([[30.0]])
    issue, others = np.array([0]), np.array([80.0])
    unpaid, paid = rules.contract(others, draft, position, weight, q, issue, np.array([0.0]))
    assert unpaid.tolist() == [30.0] and paid.tolist() == [0.0]  # P = 0: the level it accepts unpaid, no sale
    level, paid = rules.contract(others, draft, position, weight, q, issue, np.array([25.0]))
    assert level.tolist() == [55.0] and paid.tolist() == [25.0]  # 25 points buy 25 more
    level, paid = rules.contract(others, draft, position, weight, q, issue, np.array([1e9]))
    assert level.tolist() == [80.0] and paid.tolist() == [50.0]  # a large price buys the others' level, at its cost
    # two issues: what the rest of the draft costs it comes off its spare (x at 10 / 40, shares 0.5)
    position, weight, q = np.array([[10.0, 40.0]]), np.array([0.5, 0.5]), np.array([30.0, 40.0])
    level, paid = rules.contract(others, np.array([[30.0, 50.0]]), position, weight, q, issue, np.array([5.0]))
    assert level.tolist() == [30.0] and paid.tolist() == [5.0]  # spare 10 - 5 = 5: (5 + 5) / 0.5 = 20 points above 10


def test_a_sold_veto_fixes_its_issue_for_the_rest_of_the_replication():
    """TUR (y at 10, no failure cost) holds y near its status quo, 20; AAA objects to round 1's draft
    (x is contested, drafted at d_x near 50), and the chair buys TUR's veto with the 15 points on
    offer: the others want y = 80, and TUR's spare is 0.5*10 - 0.5*|d_x - 50|, so y* = 10 + (spare +
    15) / 0.5 for the whole price. Neither the draft's y nor TUR's position on y moves again."""
    ideals = {"AAA": {"x": 20.0, "y": 80.0}, "BBB": {"x": 80.0, "y": 80.0}, "TUR": {"x": 50.0, "y": 10.0}}
    scenario = make_scenario(ideals, status_quo={"x": 50.0, "y": 20.0}, protocol={"rounds": 5},
                             members={"AAA": {"failure_cost": 20.0}, "TUR": {"price": {"y": 15.0}}})
    model = play(scenario)
    (sale,) = model.outcome.side_payments
    assert (sale.member, sale.issue, sale.round) == ("TUR", "y", 1)
    d_x = model.datacollector.get_model_vars_dataframe()["draft_x"].iloc[1]
    spare = 0.5 * 10 - 0.5 * abs(d_x - 50)
    assert abs(d_x - 50) < 1 and sale.level == pytest.approx(10 + (spare + 15) / 0.5, abs=1e-9)
    assert sale.amount == pytest.approx(15.0, abs=1e-9)
    drafts = model.datacollector.get_model_vars_dataframe()["draft_y"].to_numpy()
    assert (drafts[2:] == sale.level).all() and model.outcome.levels["y"] == sale.level
    members = model.datacollector.get_agenttype_vars_dataframe(type(model.allies.to_list()[2]))
    assert members.xs(model.allies.to_list()[2].unique_id, level=1)["position_y"].nunique() == 1


# ---------------------------------------------------------------- persuasion
def test_friedkin_johnsen_with_salience_anchoring_converges_to_its_closed_form():
    rng = np.random.default_rng(8)
    n, k = 6, 2
    capability = rng.dirichlet(np.ones(n))
    W = influence_matrix(capability, list("AABBBC"), 0.3, 2.0)
    assert W.sum(axis=1) == pytest.approx(np.ones(n), abs=1e-12)
    a0, salience = 0.3, rng.uniform(0, 1, (n, k))
    anchoring = a0 + (1 - a0) * salience
    x0 = rng.uniform(0, 100, (1, n, k))
    p = x0.copy()
    for _ in range(400):
        p = rules.persuade(p, x0, W, anchoring)
    for issue in range(k):
        lam = np.diag(1 - anchoring[:, issue])
        closed = np.linalg.solve(np.eye(n) - lam @ W, (np.eye(n) - lam) @ x0[0, :, issue])
        assert p[0, :, issue] == pytest.approx(closed, abs=1e-9)


def test_full_anchoring_is_the_model_without_persuasion(tiny):
    fixed = tiny.model_copy(update={"member_defaults": tiny.member_defaults.model_copy(update={"anchoring": 1.0})})
    model = NegotiationModel(fixed, rng=3, replication=2)
    model.run_for(model.params.rounds)
    members = model.datacollector.get_agenttype_vars_dataframe(type(model.allies.to_list()[0]))
    for issue in ("ukraine", "spending"):
        assert (members.groupby(level=1)[f"position_{issue}"].nunique() == 1).all()


# ---------------------------------------------------------------- exemptions (carve-outs)
def test_without_a_cost_the_lone_holdout_is_exempted_and_the_rest_agree_at_their_optimum():
    """Four members at 80 and HOLD at 0, q = 30, no failure costs, noise 5: the chair's draft (about
    34) leaves HOLD with a negative margin; exempted at no cost, it is bound by the status quo, and
    the chair redrafts at the others' optimum, 80."""
    ideals = {c: {"x": 80.0} for c in ("AAA", "BBB", "CCC", "DDD")} | {"HOLD": {"x": 0.0}}
    scenario = make_scenario(ideals, status_quo=30.0, issues={"x": {"carve_out_cost": 0.0}},
                             protocol={"rounds": 1, "summit_sessions": 3, "acceptance_noise": 5.0})
    df = to_frame(run_chunk(scenario, 4, 0, 300))
    exempt = df["n_carve_outs"] > 0
    assert exempt.sum() > 30  # the check has teeth
    assert df.loc[exempt, "carve_outs"].tolist() == [[{"member": "HOLD", "issue": "x"}]] * int(exempt.sum())
    assert df.loc[exempt & df["consensus"], "level_x"].to_numpy() == pytest.approx(80.0, abs=1e-6)
    model = NegotiationModel(scenario, rng=4, replication=int(np.flatnonzero(exempt & df["consensus"])[0]))
    model.run_for(1)
    assert model.outcome.carve_outs == [CarveOut("HOLD", "x")]


def test_every_other_member_bears_an_exemptions_cost_on_its_own_row_as_in_the_table():
    """Member 0 is exempted on issue 0 at cost 3: the others bear 3 each, it bears nothing; an Ally
    asking for its own row gets what the whole table gives it."""
    carved = np.array([[True, False], [False, False], [False, False]])
    payment, cost = np.zeros((3, 2)), np.array([3.0, 3.0])
    table = rules.transfers(payment, carved, cost, carved.sum(axis=0))
    assert table.tolist() == [0.0, -3.0, -3.0]
    assert [rules.transfers(payment[i], carved[i], cost, carved.sum(axis=0)) for i in range(3)] == [0.0, -3.0, -3.0]


def test_an_exemption_no_one_can_afford_is_the_same_as_none(tiny):
    noisy = {"acceptance_noise": 12.0}
    none = tiny.model_copy(update={"protocol": tiny.protocol.model_copy(update=noisy), "issues": {
        k: v.model_copy(update={"carve_out_cost": None}) for k, v in tiny.issues.items()}})
    dear = tiny.model_copy(update={"protocol": tiny.protocol.model_copy(update=noisy), "issues": {
        k: v.model_copy(update={"carve_out_cost": 1e9}) for k, v in tiny.issues.items()}})
    a, b = to_frame(run_chunk(none, 2, 0, 300)), to_frame(run_chunk(dear, 2, 0, 300))
    assert a.equals(b) and (a["n_carve_outs"] == 0).all()
    cheap = tiny.model_copy(update={"protocol": tiny.protocol.model_copy(update=noisy), "issues": {
        k: v.model_copy(update={"carve_out_cost": 0.0}) for k, v in tiny.issues.items()}})
    assert (to_frame(run_chunk(cheap, 2, 0, 300))["n_carve_outs"] > 0).any()  # exemptions do happen here


# ---------------------------------------------------------------- inputs
def test_params_capability_is_the_sqrt_mix_of_gdp_and_military_shares(tiny):
    p = build_params(tiny)
    gdp = np.array([1000, 500, 200.0])
    mil = gdp * np.array([2.0, 1.5, 3.0]) / 100
    mix = 0.5 * gdp / gdp.sum() + 0.5 * mil / mil.sum()
    expected = np.sqrt(mix) / np.sqrt(mix).sum()
    assert p.capability == pytest.approx(expected, abs=1e-12)


def test_params_anchoring_rises_with_salience(tiny):
    p = build_params(tiny)
    assert p.anchoring == pytest.approx(0.5 + 0.5 * p.salience, abs=1e-15)


def test_no_exemption_on_an_agenda_of_choices_alone():
    """A Secretary General selection has no level issue: a holdout asks for no exemption (an
    argmax over no issues would fail), for one member (the agents) and for a batch (the ensemble)."""
    assert int(rules.exemption(np.zeros(0), -1.0, np.zeros(0), np.zeros(0, bool))) == rules.NONE
    batch = rules.exemption(np.zeros((3, 0)), np.full(3, -1.0), np.zeros(0), np.zeros((3, 0), bool))
    assert batch.shape == (3,) and (batch == rules.NONE).all()
