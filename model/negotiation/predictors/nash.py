"""The Nash bargaining solution with the status quo as the disagreement point (Nash 1950; weighted,
or asymmetric, as in Kalai 1977 and in Schneider, Finke & Bailer 2010 on EU bargaining).

On each issue the text maximises sum_i w_i log(g_i(x)) over the unanimity win-set, with g_i(x) =
|q - x_i| - |x - x_i| member i's gain over the status quo (linear losses) and w_i = c_i s_i its
bargaining power (capability x salience). Every g_i is concave, so the objective is concave and the
maximiser is found by bisection on its derivative, sum_i w_i (-sign(x - x_i)) / g_i(x). Where the
win-set holds the status quo alone (`winset.empty`), no member gains and the solution is the status
quo: the issue is not agreed. On a choice issue the solution is the option of the win-set that
maximises sum_i w_i log(u_io - u_iq); the fallback if no option gives every member who cares a gain.
"""

from __future__ import annotations

import numpy as np

from .winset import acceptable, concave_argmax, empty, gains, interval


def levels(position: np.ndarray, capability: np.ndarray, salience: np.ndarray, status_quo: np.ndarray) -> np.ndarray:
    """(R, K) the Nash bargaining solution of each issue (position (R, n, K), capability (n,),
    salience (n, K))."""
    low, high = interval(position, status_quo, salience > 0)
    w = (capability[:, None] * salience)[None]

    def slope(x):
        gain = gains(x, position, status_quo)
        side = -np.sign(x[:, None, :] - position)
        return np.where(w > 0, w * side / np.where(gain > 0, gain, 1e-300), 0.0).sum(axis=1)

    solution = concave_argmax(slope, low, high)
    return np.where(empty(low, high), status_quo[None, :], solution)


def options(utility: np.ndarray, capability: np.ndarray, salience: np.ndarray, veto: np.ndarray,
            valid: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(C,) per choice issue the option index of the Nash solution (utility (n, C, O), salience (n, C))."""
    gain, allowed = acceptable(utility, veto, valid, fallback, salience > 0)
    weight = capability[:, None] * salience
    cares = (salience > 0)[:, :, None]
    positive = (gain > 0) | ~cares
    product = (weight[:, :, None] * np.log(np.where(gain > 0, gain, 1.0))).sum(axis=0)
    ok = allowed & positive.all(axis=0)
    best = np.where(ok, product, -np.inf).argmax(axis=1)
    return np.where(ok.any(axis=1), best, fallback)
