"""Bueno de Mesquita's expected-utility model (model/negotiation/predictors/bdm.py): two cases worked
by hand step by step, and the invariants of the forecast.

No published worked example (inputs, intermediate numbers and outcome together) was readable in the
stored sources, so none is reproduced here.

Shorthand for the hand calculations: positions on the normalised scale u = (x - min) / range;
U(z) = 2 - 4 z^r. With r = 1 the utilities simplify to U^s = 2 d, U^f = -2 d, U^b = e, U^w = -e,
U^sq = 0 (e = d_imu + d_ij), so EU_ij = s_j 2 d (2P - 1) + (1 - s_j) 2 d - 0.5 e (2T - 1) with Q = 0.5.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from model.negotiation import rules
from model.negotiation.predictors import bdm


def _one_issue(x, c, s):
    """Point codes of one issue as the (R=1, n, K=1) arrays the module takes."""
    return np.array(x, float)[None, :, None], np.array(c, float), np.array(s, float)[:, None]


def test_two_actors_compromise_worked_by_hand():
    # A at 0 (c 4, s 0.5, weight 2), B at 100 (c 1, s 0.25, weight 0.25); range 100, d_AB = 1.
    # Median: cumulative weight reaches half (1.125) at A, so mu = 0: d_Amu = 0, d_Bmu = 1.
    # Votes for A over B: v_A = 2 (1 - 0) = 2, v_B = 0.25 (0 - 1) = -0.25, so P_AB = 2 / 2.25 = 8/9,
    # P_BA = 1/9. T_AB = 1 (d_Amu 0 < d_AB 1); T_BA = 0.5 (d_Bmu = d_BA = 1, a tie).
    # Risk, r = 1: EU_AB = 0.25 * 2 * (16/9 - 1) + 0.75 * 2 - 0.5 * 1 * (2*1 - 1) = 7/18 + 1.5 - 0.5
    #   = 1.3889; EU_BA = 0.5 * 2 * (2/9 - 1) + 0.5 * 2 - 0 = -7/9 + 1 = 0.2222.
    #   S_A = EU_BA = 0.2222 (min), S_B = EU_AB = 1.3889 (max): R_A = -1, r_A = (4/3)/(2/3) = 2;
    #   R_B = +1, r_B = (2/3)/(4/3) = 0.5.
    # A's view (r = 2): U^s = 2, U^f = -2, U^sq = 2 - 4 * 0.25 = 1.
    #   E^A U_AB: U^b = 2 - 4 * 0.25^2 = 1.75 (T = 1):
    #     0.25 (8/9 * 2 - 1/9 * 2) + 0.75 * 2 - 0.5 * 1 - 0.5 * 1.75 = 7/18 + 1.5 - 0.5 - 0.875 = 37/72.
    #   E^A U_BA: U^b = 2 - 4 * 0^2 = 2, U^w = 2 - 4 * 1^2 = -2 (T = 0.5):
    #     0.5 (1/9 * 2 - 8/9 * 2) + 0.5 * 2 - 0.5 * 1 - 0 = -7/9 + 0.5 = -5/18.
    #   a = 37/72 > 0, b = -5/18 < 0, |b| < a: compromise, B moves 20/72 / (37/72) = 20/37 of the way.
    # B's view (r = 0.5): U^sq = 2 - 4 sqrt(0.5) = -0.828427.
    #   E^B U_BA = 0.5 (2/9 - 16/9) + 0.5 * 2 + 0.414214 - 0.5 (0.5 * 2 + 0.5 * (-2)) = 0.636436;
    #   E^B U_AB = 0.25 * 14/9 + 1.5 + 0.414214 - 0.5 * (2 - 4 sqrt(0.25)) = 2.303103 > 0.636436:
    #   B expects to lose a conflict and makes no offer.
    # New positions: A 0, B 100 - 100 * 20/37 = 1700/37 = 45.946. Forecast: A still outweighs B, 0.
    x, c, s = _one_issue([0, 100], [4, 1], [0.5, 0.25])
    after = bdm.rounds_of(x, c, s, rounds=1)[1][0, :, 0]
    assert after == pytest.approx([0.0, 1700 / 37], abs=1e-9)
    assert bdm.forecast(x, c, s, rounds=1)[0, 0] == pytest.approx(0.0, abs=1e-12)


def test_two_actors_conflict_worked_by_hand():
    # A at 0 (c 1, s 0.5, weight 0.5), B at 100 (c 1, s 0.25, weight 0.25); d_AB = 1; mu = 0 (A
    # holds 0.5 of 0.75). P_AB = 0.5 / 0.75 = 2/3, P_BA = 1/3; T_AB = 1, T_BA = 0.5 (tie).
    # r = 1: EU_AB = 0.25 * 2 * (1/3) + 0.75 * 2 - 0.5 * 1 = 7/6; EU_BA = 0.5 * 2 * (-1/3) + 0.5 * 2
    #   - 0 = 2/3. S_A = 2/3 (min), S_B = 7/6 (max): r_A = 2, r_B = 0.5.
    # A's view (r = 2; U^sq = 1):
    #   E^A U_AB = 0.25 (2/3 * 2 - 1/3 * 2) + 0.75 * 2 - 0.5 * 1 - 0.5 * 1.75 = 7/24 = 0.2917
    #   E^A U_BA = 0.5 (1/3 * 2 - 2/3 * 2) + 0.5 * 2 - 0.5 - 0.5 (0.5 * 2 - 0.5 * 2) = 1/6
    #   both positive and A's larger: conflict that A expects to win, B moves all the way to 0.
    # B's view (r = 0.5; U^sq = -0.828427): E^B U_BA = -1/3 + 1 + 0.414214 = 1.080880 <
    #   E^B U_AB = 1/6 + 1.5 + 0.414214 - 0.5 * (2 - 4 sqrt 0.25) = 2.080880: no offer from B.
    # Round 1: both at 0; forecast 0.
    x, c, s = _one_issue([0, 100], [1, 1], [0.5, 0.25])
    assert np.array_equal(bdm.rounds_of(x, c, s, rounds=1)[1][0, :, 0], [0.0, 0.0])
    assert bdm.forecast(x, c, s)[0, 0] == 0.0


def test_three_actors_first_round_worked_by_hand():
    # A at 0, B at 20, C at 100; capabilities 1; saliences 1, 0.5, 1: weights 1, 0.5, 1.
    # u = 0, 0.2, 1; d_AB 0.2, d_AC 1, d_BC 0.8. Median: half of 2.5 is 1.25, reached at B: mu = 0.2,
    # d_Amu 0.2, d_Bmu 0, d_Cmu 0.8. T_ij = 1 if d_imu < d_ij, 0.5 at a tie:
    # T_AB 0.5, T_AC 1, T_BA 1, T_BC 1, T_CA 1, T_CB 0.5.
    # Votes w_k (d_kj - d_ki):
    #   A v B: A 0.2, B -0.1, C -0.2 -> P_AB = 0.2 / 0.5 = 0.4, P_BA = 0.6
    #   A v C: A 1, B 0.3, C -1      -> P_AC = 1.3 / 2.3 = 13/23, P_CA = 10/23
    #   B v C: A 0.8, B 0.4, C -0.8  -> P_BC = 1.2 / 2 = 0.6, P_CB = 0.4
    # EU with r = 1 (formula in the module docstring of this file):
    #   EU_AB = 0.5 * 0.4 * (-0.2) + 0.5 * 0.4 - 0          = 0.16
    #   EU_AC = 2 * (26/23 - 1) - 0.5 * 1.2                 = -0.33913
    #   EU_BA = 0.4 * 0.2 - 0.5 * 0.2                       = -0.02
    #   EU_BC = 1.6 * 0.2 - 0.5 * 0.8                       = -0.08
    #   EU_CA = 2 * (20/23 - 1) - 0.5 * 1.8                 = -1.16087
    #   EU_CB = 0.5 * 1.6 * (-0.2) + 0.5 * 1.6 - 0          = 0.64
    # Security S_i = sum_j EU_ji: S_A = -1.18087 (min), S_B = 0.8 (max), S_C = -0.41913.
    #   r_A = 2, r_B = 0.5; R_C = (2 * -0.41913 - 0.8 + 1.18087) / 1.98087 = -0.230904,
    #   r_C = (1 + 0.076968) / (1 - 0.076968) = 1.166772.
    # A's offer to B (r = 2: U^s = 2 - 4 * 0.4^2 = 1.36, U^f = 2 - 4 * 0.6^2 = 0.56, U^sq = 1):
    #   E^A U_AB (U^b = 2 - 4 * 0.4^2 = 1.36, U^w = 0.56, T 0.5)
    #     = 0.5 (0.4 * 1.36 + 0.6 * 0.56) + 0.5 * 1.36 - 0.5 - 0.5 * 0.96 = 0.14
    #   E^A U_BA (U^b = 2 - 4 * 0.45^2 = 1.19, T 1) = 0.6 * 1.36 + 0.4 * 0.56 - 0.5 - 0.5 * 1.19 = -0.055
    #   compromise: B moves 0.055 / 0.14 = 11/28 of the way to A: 20 - 20 * 11/28 = 85/7 = 12.142857.
    # C's offer to B (r_C = 1.166772): E^C U_CB = 0.591366, E^C U_BC = -0.196704, a compromise of
    #   0.196704 / 0.591366 = 0.3326 of 80 points = 26.6: B takes A's smaller move (7.857).
    # B makes no offer: E^B U_BA = 0.6 (2 - 4 sqrt 0.4) + 0.4 (2 - 4 sqrt 0.6) + 0.414214
    #   - 0.5 (2 - 4 sqrt 0.45) = -0.001394 < 0; E^B U_BC = 0.232819 < E^B U_CB = 0.655267 (B would lose).
    # Nobody challenges A or C profitably (E^B U_BA above; E^C U_CA = -1.309359, E^A U_AC = -1.159130).
    # Round 1: A 0, B 85/7, C 100; forecast: cumulative weight 1, 1.5 reaches 1.25 at B: 85/7.
    x, c, s = _one_issue([0, 20, 100], [1, 1, 1], [1, 0.5, 1])
    u = x / 100
    d = np.abs(u[:, :, None, :] - u[:, None, :, :])
    p = bdm._success(u, d, (c[:, None] * s))[0, :, :, 0]
    assert p == pytest.approx(np.array([[0.5, 0.4, 13 / 23], [0.6, 0.5, 0.6], [10 / 23, 0.4, 0.5]]))
    history = bdm.rounds_of(x, c, s, rounds=1)
    assert history[1][0, :, 0] == pytest.approx([0.0, 85 / 7, 100.0], abs=1e-9)
    assert bdm.forecast(x, c, s, rounds=1)[0, 0] == pytest.approx(85 / 7, abs=1e-9)
    # later rounds keep pulling B towards A, and the forecast with it
    later = bdm.forecast(x, c, s)[0, 0]
    assert 0 < later < 85 / 7


def test_risk_exponents_of_the_three_actor_case():
    # S = (-1.18087, 0.8, -0.41913) from the hand calculation above: r = (2, 0.5, 1.166772).
    security_eu = np.zeros((1, 3, 3, 1))
    security_eu[0, :, :, 0] = [[0, 0.16, -0.33913], [-0.02, 0, -0.08], [-1.16087, 0.64, 0]]
    r = bdm._risk(security_eu, np.array([[1.0], [0.5], [1.0]]))[0, :, 0]
    assert r == pytest.approx([2.0, 0.5, 1.166772], abs=1e-6)


def _random_case(rng, n_draws=6, n=7, n_issues=3):
    x = rng.uniform(0, 100, (n_draws, n, n_issues))
    c = rng.uniform(0, 1, n)
    s = rng.uniform(0, 1, (n, n_issues))
    return x, c, s


def test_vectorised_over_draws_equals_one_draw_at_a_time(monkeypatch):
    x, c, s = _random_case(np.random.default_rng(1))
    together = bdm.forecast(x, c, s)
    alone = np.concatenate([bdm.forecast(x[r:r + 1], c, s) for r in range(len(x))])
    assert together == pytest.approx(alone, abs=1e-9)
    monkeypatch.setattr(bdm, "_CHUNK_ELEMENTS", 1)  # one draw per chunk
    assert bdm.forecast(x, c, s) == pytest.approx(together, abs=1e-9)


def test_all_actors_at_one_point_give_that_point_without_warnings():
    x = np.full((3, 5, 2), 37.5)
    c = np.array([1.0, 0.0, 2.0, 0.5, 1.0])
    s = np.array([[1.0, 0.0]] * 5)  # the second issue carries no weight at all
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = bdm.forecast(x, c, s)
    assert np.array_equal(out, np.full((3, 2), 37.5))


def test_forecast_within_the_range_of_positions_and_finite():
    rng = np.random.default_rng(2)
    x, c, s = _random_case(rng, n_draws=20, n=9)
    c[0], s[1, :] = 0.0, 0.0  # a powerless and an indifferent actor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = bdm.forecast(x, c, s)
    assert np.isfinite(out).all()
    assert (out >= x.min(axis=1) - 1e-9).all() and (out <= x.max(axis=1) + 1e-9).all()


def test_order_of_actors_does_not_matter():
    rng = np.random.default_rng(3)
    x, c, s = _random_case(rng)
    order = rng.permutation(x.shape[1])
    assert bdm.forecast(x[:, order], c[order], s[order]) == pytest.approx(bdm.forecast(x, c, s), abs=1e-9)


def test_dominant_actor_pulls_the_forecast_to_its_position():
    rng = np.random.default_rng(4)
    x, c, s = _random_case(rng, n_draws=10, n=8)
    c[:] = 1e-3
    c[3], s[3] = 1.0, 1.0  # it can and it cares (a heavy actor that does not care can be moved)
    assert bdm.forecast(x, c, s) == pytest.approx(x[:, 3, :], abs=1e-9)


def test_actor_without_weight_changes_nothing():
    # an actor with zero capability at an extreme position: the range, the median, the votes and
    # the risk normalisation ignore it, so the others play the same game
    rng = np.random.default_rng(5)
    x, c, s = _random_case(rng, n=5)
    x_more = np.concatenate([x, np.full((len(x), 1, x.shape[2]), 100.0)], axis=1)
    x_more[:, :5] = x * 0.5  # the others within [0, 50], the extra actor far off at 100
    assert bdm.forecast(x_more, np.append(c, 0.0), np.vstack([s, np.ones((1, 3))])) == pytest.approx(
        bdm.forecast(x * 0.5, c, s), abs=1e-9)


def test_positions_move_and_the_forecast_differs_from_the_initial_median():
    # the dynamics matter: on random profiles some forecasts leave the initial weighted median
    rng = np.random.default_rng(6)
    x, c, s = _random_case(rng, n_draws=10, n=10)
    median = rules.weighted_median(x, c[:, None] * s)
    assert np.abs(bdm.forecast(x, c, s) - median).max() > 1.0
