"""The cooperative-bargaining predictors of the tournament against closed forms (one issue, linear
losses), and the unanimity win-set they share."""

from __future__ import annotations

import numpy as np
import pytest

from model.negotiation.predictors import PREDICTORS, egalitarian, nash, setter, winset


def one_issue(*ideals: float) -> np.ndarray:
    return np.array(ideals, float)[None, :, None]  # (R=1, n, K=1)


def test_winset_is_the_intersection_of_the_members_acceptable_intervals():
    # q = 20; members at 30, 50, 70 accept [20, 40], [20, 80], [20, 120] -> [20, 40]
    low, high = winset.interval(one_issue(30, 50, 70), np.array([20.0]), np.ones((3, 1), bool))
    assert (low[0, 0], high[0, 0]) == (20.0, 40.0)


def test_members_on_both_sides_of_the_status_quo_leave_only_the_status_quo():
    low, high = winset.interval(one_issue(30, 10), np.array([20.0]), np.ones((2, 1), bool))
    assert winset.empty(low, high).all()
    s, c, q = np.ones((2, 1)), np.ones(2), np.array([20.0])
    for name in ("nash", "egalitarian", "setter"):
        assert PREDICTORS[name].levels(one_issue(30, 10), c, s, q)[0, 0] == 20.0, name


def test_a_member_who_does_not_care_does_not_constrain_the_winset():
    low, high = winset.interval(one_issue(30, 10), np.array([20.0]), np.array([[True], [False]]))
    assert (low[0, 0], high[0, 0]) == (20.0, 40.0)


@pytest.mark.parametrize(("w1", "w2", "expected"), [(1, 1, 40.0), (1, 3, 60.0), (1, 9, 72.0), (1, 100, 8000 / 101),
                                                    (3, 1, 40.0)])
def test_nash_solution_of_two_members_with_linear_losses(w1, w2, expected):
    # q = 0, x1 = 40, x2 = 80: the win-set is [0, 80]. On [x1, x2] the gains are g1 = 80 - x and
    # g2 = x, so w1 / (80 - x) = w2 / x gives x = 80 w2 / (w1 + w2), clipped to [x1, x2] (below x1
    # both gains grow with x: the solution is never under 40; above x2 both fall).
    got = nash.levels(one_issue(40, 80), np.array([w1, w2], float), np.ones((2, 1)), np.array([0.0]))
    assert got[0, 0] == pytest.approx(expected, abs=1e-9)


def test_nash_weights_are_capability_times_salience():
    # the same as capabilities (1, 3): saliences (1, 1) and capabilities (1, 1) with saliences (0.25, 0.75)
    a = nash.levels(one_issue(40, 80), np.array([1.0, 3.0]), np.ones((2, 1)), np.array([0.0]))
    b = nash.levels(one_issue(40, 80), np.ones(2), np.array([[0.25], [0.75]]), np.array([0.0]))
    assert a[0, 0] == pytest.approx(b[0, 0], abs=1e-9) == pytest.approx(60.0)


@pytest.mark.parametrize(("s1", "s2", "expected"), [(1.0, 1.0, 40.0), (1.0, 0.5, 160 / 3), (1.0, 0.25, 64.0),
                                                    (0.5, 1.0, 40.0)])
def test_egalitarian_solution_of_two_members(s1, s2, expected):
    # q = 0, x1 = 40, x2 = 80. Below 40 the least gain is min(s1, s2) x, rising; above 40 member 1's
    # gain s1 (80 - x) falls and member 2's s2 x rises: they meet at x = 80 s1 / (s1 + s2) when that
    # is above 40 (s2 < s1), else the least gain peaks at 40.
    got = egalitarian.levels(one_issue(40, 80), np.ones(2), np.array([[s1], [s2]]), np.array([0.0]))
    assert got[0, 0] == pytest.approx(expected, abs=1e-9)


def test_setter_proposes_its_ideal_clipped_to_the_winset():
    # members 30, 50, 70 with equal weights: the compromise is 50; the win-set from q = 20 is [20, 40]
    got = setter.levels(one_issue(30, 50, 70), np.ones(3), np.ones((3, 1)), np.array([20.0]))
    assert got[0, 0] == 40.0
    # from q = 0 the win-set is [0, 60]: the compromise 50 passes as it is
    assert setter.levels(one_issue(30, 50, 70), np.ones(3), np.ones((3, 1)), np.array([0.0]))[0, 0] == 50.0


def test_predictors_are_vectorised_over_draws_and_issues():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 100, (6, 5, 3))
    c, s, q = rng.uniform(0.1, 1, 5), rng.uniform(0.1, 1, (5, 3)), np.array([10.0, 50.0, 90.0])
    for name in ("nash", "egalitarian", "setter"):
        together = PREDICTORS[name].levels(x, c, s, q)
        alone = np.vstack([np.hstack([PREDICTORS[name].levels(x[r:r + 1, :, k:k + 1], c, s[:, k:k + 1], q[k:k + 1])
                                      for k in range(3)]) for r in range(6)])
        np.testing.assert_allclose(together, alone, atol=1e-9, err_msg=name)


def test_every_solution_is_in_the_winset_and_on_the_scale():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 100, (200, 4, 2))
    x[:, :, 0] = np.clip(x[:, :, 0], 40, 100)  # issue 0: everyone above q = 30 some of the time
    c, s, q = np.ones(4), np.ones((4, 2)), np.array([30.0, 50.0])
    low, high = winset.interval(x, q, s > 0)
    for name in ("nash", "egalitarian", "setter"):
        got = PREDICTORS[name].levels(x, c, s, q)
        assert ((got >= low - 1e-9) & (got <= high + 1e-9)).all(), name
        gains = winset.gains(got, x, q)
        assert (gains >= -1e-9).all(), name  # nobody is worse off than under the status quo


CHOICE = dict(valid=np.ones((1, 3), bool), fallback=np.array([0]), veto=np.zeros((2, 1, 3), bool))



def test_nash_and_egalitarian_choices_by_hand():
    utility = np.array([[[50, 60, 90]], [[50, 60, 51]]], float)  # gains: A (10, 10), B (40, 1)
    c, s = np.ones(2), np.ones((2, 1))
    assert nash.options(utility, c, s, **CHOICE)[0] == 1  # 2 log 10 = 4.61 > log 40 + log 1 = 3.69
    assert egalitarian.options(utility, c, s, **CHOICE)[0] == 1  # min 10 > min 1
    assert setter.options(utility, c, s, **CHOICE)[0] == 2  # sums: 120, 141: B
    veto = CHOICE["veto"].copy()
    veto[1, 0, 2] = True  # member 2 vetoes B: the setter must take A
    assert setter.options(utility, c, s, **{**CHOICE, "veto": veto})[0] == 1
    worse = utility.copy()
    worse[1, 0, 1] = 40.0  # member 2 likes A less than the fallback: only B is left for Nash
    assert nash.options(worse, c, s, **CHOICE)[0] == 2


def test_no_option_that_everyone_gains_from_leaves_the_fallback():
    utility = np.array([[[50, 60, 40]], [[50, 40, 60]]], float)
    c, s = np.ones(2), np.ones((2, 1))
    for name in ("nash", "egalitarian", "setter", "status_quo"):
        assert PREDICTORS[name].options(utility, c, s, **CHOICE)[0] == 0, name
