"""The Stokman - van Oosten exchange model with equal-gain exchanges (predictors/exchange.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from model.negotiation.predictors import exchange


def compromise(x: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    w = c[:, None] * s
    return np.einsum("rnk,nk->rk", x, w / w.sum(axis=0))


def utility(x: np.ndarray, s: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """(n,) -sum_k s_ik |x_ik - O_k|: the linear loss the gains are measured in."""
    return -(s * np.abs(x - outcome)).sum(axis=1)


def random_case(seed: int, draws: int = 1, n: int = 6, k: int = 3):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 100, (draws, n, k)), rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, (n, k))


def test_hand_worked_two_actor_trade():
    # A = (0, 0), B = (100, 100), c = (1, 1), s_A = (0.9, 0.3), s_B = (0.4, 0.8).
    # Shares: issue 0: (0.9, 0.4) / 1.3 -> a_A0 = 9/13, a_B0 = 4/13; issue 1: (0.3, 0.8) / 1.1 -> a_A1 = 3/11, a_B1 = 8/11.
    # O before: O_0 = 100 * 4/13 = 400/13 = 30.77, O_1 = 100 * 8/11 = 800/11 = 72.73.
    # Feasible: A is left of both outcomes, B right of both; s_A0 s_B1 - s_A1 s_B0 = 0.72 - 0.12 = 0.6 > 0,
    # so A cares relatively more about issue 0: A demands 0 and supplies 1, B demands 1 and supplies 0.
    # Largest outcome shifts: B moving to 0 on issue 0 moves O_0 by 4/13 * 100 = 400/13 (= |0 - O_0|);
    # A moving to 100 on issue 1 moves O_1 by 3/11 * 100 = 300/11 (= |100 - O_1|).
    # Equal gain: dO_1 = dO_0 (0.9 + 0.4) / (0.3 + 0.8) = 13/11 dO_0. dO_0 = 400/13 would need
    # dO_1 = 400/11 > 300/11, so A binds: dO_1 = 300/11, dO_0 = 300/11 * 11/13 = 300/13.
    # Gains: A: 0.9 * 300/13 - 0.3 * 300/11 = 270/13 - 90/11 = 1800/143;
    #        B: 0.8 * 300/11 - 0.4 * 300/13 = 240/11 - 120/13 = 1800/143 (= 12.587, equal).
    # Positions after: A on issue 1: 0 -> 100; B on issue 0 moves dO_0 / a_B0 = (300/13) / (4/13) = 75: 100 -> 25.
    # O after: O_0 = 4/13 * 25 = 100/13 = 7.69, O_1 = 100 (both at 100). Round 2: on issue 1 nobody is
    # on either side of O_1 = 100, so nothing more trades.
    x = np.array([[[0.0, 0.0], [100.0, 100.0]]])
    c = np.array([1.0, 1.0])
    s = np.array([[0.9, 0.3], [0.4, 0.8]])
    np.testing.assert_allclose(compromise(x, c, s), [[400 / 13, 800 / 11]])
    gain, _ = exchange._candidates(x, s * c[:, None] / (s * c[:, None]).sum(0), s, *np.triu_indices(2, 1))
    assert gain[0, 0, 1, 0] == pytest.approx(1800 / 143)  # A demands issue 0 from B
    assert gain[0, 1, 0, 0] == -np.inf  # the reverse trade: B would demand the issue it cares less about
    np.testing.assert_allclose(exchange.forecast(x, c, s), [[100 / 13, 100.0]])
    np.testing.assert_allclose(exchange.forecast(x, c, s, rounds=1), [[100 / 13, 100.0]])


def test_outcome_does_not_pass_the_demander():
    # i = (50, 0), j = (100, 100), k = (0, 0); c = 1; s_i = (0.2, 0.2), s_j = (0.5, 1.0), s_k = (0.3, 0.6).
    # Shares: issue 0 (0.2, 0.5, 0.3), issue 1 (0.2, 1.0, 0.6) / 1.8 = (1/9, 5/9, 1/3).
    # O_0 = 10 + 50 + 0 = 60, O_1 = 500/9 = 55.56. i and k are both left of O_0: no trade; j and k have equal
    # salience ratios (0.3 * 1.0 - 0.6 * 0.5 = 0): no trade; i demands 0 from j (0.2 * 1.0 - 0.2 * 0.5 = 0.1 > 0).
    # Issue 0: j moving to 50 would shift O_0 by 0.5 * 50 = 25, past i's 50: capped at |50 - 60| = 10.
    # Issue 1: i moving to 100 shifts O_1 by 100/9. Rate dO_1 = dO_0 (0.2 + 0.5) / (0.2 + 1.0) = 7/12 dO_0,
    # so dO_0 = min(10, 100/9 * 12/7 = 19.05) = 10 (without the cap, 19.05), dO_1 = 35/6.
    # Gain 10 * 0.1 / 1.2 = 5/6 (i: 0.2 * 10 - 0.2 * 35/6 = 5/6; j: 1.0 * 35/6 - 0.5 * 10 = 5/6).
    # j on issue 0 moves 10 / 0.5 = 20: 100 -> 80, O_0 = 50 = x_i0; i on issue 1 moves (35/6) / (1/9) = 52.5,
    # O_1 = 500/9 + 35/6 = 1105/18. Then i sits at O_0 and nothing else trades.
    x = np.array([[[50.0, 0.0], [100.0, 100.0], [0.0, 0.0]]])
    c = np.ones(3)
    s = np.array([[0.2, 0.2], [0.5, 1.0], [0.3, 0.6]])
    gain, d_op = exchange._candidates(x, s / s.sum(axis=0), s, *np.triu_indices(2, 1))
    assert gain[0, 0, 1, 0] == pytest.approx(5 / 6)
    assert d_op[0, 0, 1, 0] == pytest.approx(10)
    assert np.isfinite(gain).sum() == 1
    np.testing.assert_allclose(exchange.forecast(x, c, s), [[50.0, 1105 / 18]])


def test_one_issue_is_the_compromise():
    x, c, s = random_case(1, draws=4, k=1)
    np.testing.assert_allclose(exchange.forecast(x, c, s), compromise(x, c, s))


def test_equal_salience_ratios_do_not_trade():
    # B's saliences are A's halved: s_A0 s_B1 - s_A1 s_B0 = 0.4 * 0.4 - 0.8 * 0.2 = 0, so no one gains.
    x = np.array([[[0.0, 0.0], [100.0, 100.0]]])
    c = np.array([1.0, 2.0])
    s = np.array([[0.4, 0.8], [0.2, 0.4]])
    np.testing.assert_allclose(exchange.forecast(x, c, s), compromise(x, c, s))


def test_actors_not_on_opposite_sides_do_not_trade():
    # Shares: issue 0 (0.5, 0.25, 0.25), issue 1 (0.25, 0.5, 0.25): O_0 = 0 + 0 + 25 + 25 = 50 = x_A0 and
    # O_1 = 0 + 25 + 25 = 50 = x_B1. Every pair has one member at the outcome of one issue, so although all
    # salience ratios differ no pair is on opposite sides of both outcomes.
    x = np.array([[[50.0, 0.0], [0.0, 50.0], [100.0, 100.0]]])
    c = np.ones(3)
    s = np.array([[1.0, 0.5], [0.5, 1.0], [0.5, 0.5]])
    np.testing.assert_array_equal(exchange.forecast(x, c, s), [[50.0, 50.0]])


def test_same_side_pair_is_infeasible():
    # A = (0, 0) and B = (20, 90) are both left of O_0 (C = 100 pulls it above 20), so they cannot trade
    # the pair (0, 1) in either direction, though their salience ratios differ; A and C can.
    x = np.array([[[0.0, 0.0], [20.0, 90.0], [100.0, 100.0]]])
    c = np.ones(3)
    s = np.array([[0.9, 0.2], [0.3, 0.8], [0.5, 0.5]])
    share = s / s.sum(axis=0)
    assert compromise(x, c, s)[0, 0] > 20
    gain, _ = exchange._candidates(x, share, s, *np.triu_indices(2, 1))
    assert gain[0, 0, 1, 0] == gain[0, 1, 0, 0] == -np.inf
    assert np.isfinite(gain[0, 0, 2, 0]) or np.isfinite(gain[0, 2, 0, 0])


@pytest.mark.parametrize("seed", range(8))
def test_executed_exchange_gains_are_equal_and_positive(seed):
    # With two actors and two issues one exchange runs; each actor's gain is its change in linear loss
    # from the compromise before to the outcome after (the outcome never passes a demander's position).
    x, c, s = random_case(seed, n=2, k=2)
    before, after = compromise(x, c, s)[0], exchange.forecast(x, c, s, rounds=1)[0]
    gains = utility(x[0], s, after) - utility(x[0], s, before)
    # two actors at distinct positions are on opposite sides of both outcomes: they trade unless
    # their salience ratios are equal, which the uniform draws never give
    assert gains[0] > 1e-9
    assert gains[0] == pytest.approx(gains[1], rel=1e-9)


def test_vectorised_over_draws_equals_one_at_a_time(monkeypatch):
    x, c, s = random_case(2, draws=7, n=8, k=4)
    s[0, 1] = 0.0  # a weightless actor-issue pair among the rest
    whole = exchange.forecast(x, c, s)
    single = np.vstack([exchange.forecast(x[r:r + 1], c, s) for r in range(len(x))])
    np.testing.assert_allclose(whole, single, rtol=0, atol=1e-10)
    monkeypatch.setattr(exchange, "_CHUNK_ELEMENTS", 2 * 8 * 8 * 6)  # chunks of two draws
    np.testing.assert_allclose(exchange.forecast(x, c, s), whole, rtol=0, atol=1e-10)
    assert not np.allclose(whole, compromise(x, c, s))  # exchanges did move the outcome


def test_invariant_to_actor_order():
    x, c, s = random_case(3, draws=3, n=9, k=3)
    order = np.random.default_rng(0).permutation(9)
    np.testing.assert_allclose(exchange.forecast(x[:, order], c[order], s[order]), exchange.forecast(x, c, s),
                               rtol=0, atol=1e-9)


def test_zero_capability_and_salience_stay_finite():
    x, c, s = random_case(4, draws=2, n=5, k=3)
    c[0] = 0.0
    s[1, 0] = 0.0
    s[:, 2] = 0.0  # nobody weighs issue 2: it falls back to the plain mean
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = exchange.forecast(x, c, s)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 2], x[:, :, 2].mean(axis=1))


# The R prototype of the decide-exchange-model (github.com/foarsitter/equal-gain, inst/data_short.csv: CoP21,
# 15 actors, 3 issues) and its published first round, inst/output/data_short.output.csv. Rows are
# (actor, issue, position, salience); capability per actor below.
ACTORS = ["African_grp", "AILAC", "ALBA", "AOSIS", "Arab_states", "LDCs_BGD", "Brazil", "China", "EIG", "EU28",
          "India", "Umbrella_min", "Japan", "Russia", "USA"]
CAPABILITY = [0.25, 0.35, 0.05, 0.5, 0.4, 0.5, 0.7, 1, 0.35, 0.75, 0.6, 0.4, 0.6, 0.6, 1]
POSITION = [[70, 50, 80], [50, 85, 50], [80, 0, 70], [40, 80, 100], [100, 0, 0], [60, 70, 100], [80, 50, 50],
            [80, 0, 20], [40, 85, 100], [30, 100, 100], [90, 0, 20], [25, 70, 70], [25, 100, 70], [15, 50, 50],
            [20, 70, 40]]
SALIENCE = [[0.75, 0.65, 0.6], [0.6, 0.75, 0.75], [0.65, 0.4, 0.3], [0.6, 0.75, 0.8], [0.75, 0.55, 0.5],
            [0.6, 0.7, 0.75], [0.8, 0.55, 0.5], [0.75, 0.8, 0.65], [0.75, 0.8, 0.75], [0.75, 0.8, 0.7],
            [0.75, 0.55, 0.7], [0.9, 0.7, 0.75], [0.9, 0.7, 0.65], [0.8, 0.45, 0.5], [0.95, 0.7, 1]]
# Voting positions after the exchanges the output lists as not recalculated (those computed from the
# initial positions, which this model realises too), copied from the output file.
PUBLISHED = {
    ("USA", 1): 6.35937321285599, ("China", 0): 20, ("EU28", 2): 37.7766138536074, ("India", 1): 100,
    ("Arab_states", 2): 83.8085853298023, ("AOSIS", 0): 100, ("China", 2): 70.648299202299, ("AOSIS", 1): 0,
    ("Russia", 2): 95.1945556445156, ("LDCs_BGD", 0): 15, ("Brazil", 1): 100, ("EU28", 0): 64.1230596375033,
    ("Russia", 1): 77.7416748213385, ("AILAC", 0): 15, ("Japan", 2): 20, ("India", 0): 50.4618506493506,
    ("African_grp", 2): 40, ("USA", 0): 26.6289252543123, ("Japan", 1): 78.5524848450189,
    ("ALBA", 1): 100, ("Japan", 0): 28.0090881514553,
}


def test_decide_published_first_round():
    x = np.array([POSITION], dtype=float)
    c, s = np.array(CAPABILITY), np.array(SALIENCE)
    share = c[:, None] * s / (c[:, None] * s).sum(axis=0)
    y = x.copy()
    assert exchange._exchange_round(y, share, s, *np.triu_indices(3, 1))
    got = {key: y[0, ACTORS.index(key[0]), key[1]] for key in PUBLISHED}
    np.testing.assert_allclose(list(got.values()), list(PUBLISHED.values()), rtol=0, atol=1e-9)
    # the first exchange's equal gain, as published: USA supplies mrv, China differentiation
    gain, _ = exchange._candidates(x, share, s, *np.triu_indices(3, 1))
    assert gain.max() == pytest.approx(1.128903122498, abs=1e-11)


def test_decide_sample_data_first_gains():
    # decide-exchange-model data/input/sample_data.txt (10 actors, 6 issues; issue 2 rescaled from 0.5-7 euro
    # to 0-100 as Decide does) and its test_model.py: best gain 1.9736842105, the next 1.7926363088.
    x = np.array([[100, 50, 100, 0, 75, 25, 25, 75, 25, 0], [3, 3, 5, .5, 2, 1, 3, 3, 1, .5],
                  [100, 75, 100, 0, 75, 25, 50, 75, 0, 0], [100, 100, 100, 0, 50, 50, 75, 100, 0, 0],
                  [25, 25, 50, 50, 0, 25, 25, 50, 50, 100], [75, 25, 100, 0, 0, 50, 50, 75, 25, 100]], float).T
    x[:, 1] = (x[:, 1] - 0.5) * 100 / 6.5
    s = np.array([[.95, .8, .95, .9, .7, .8, .5, .7, .8, .95], [.7, .7, .9, .5, .5, .6, .3, .5, .6, .8],
                  [.9, .7, .95, .9, .6, .7, .5, .6, .7, 1], [.8, .6, .8, .9, .4, .4, .6, .6, .9, .95],
                  [.6, .5, .4, .8, .3, .5, .5, .5, .5, .9], [.95, .8, .9, .7, .7, .6, .7, .8, .8, .9]]).T
    c = np.array([1, 1, .6, .5, .4, .5, .2, .2, .6, .9])
    share = c[:, None] * s / (c[:, None] * s).sum(axis=0)
    gain, _ = exchange._candidates(x[None], share, s, *np.triu_indices(6, 1))
    best = np.sort(gain.ravel())[::-1][:2]
    np.testing.assert_allclose(best, [1.973684210526315789, 1.79263630876534102], rtol=0, atol=1e-10)
