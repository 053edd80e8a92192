"""The egalitarian (Kalai 1977) solution: the text of the unanimity win-set that maximises the gain
of the member who gains least, gains measured as each member's utility over the status quo.

A member's utility on an issue is -s_i |x - x_i| (its salience-weighted loss, as in the model's
distances), so its gain is s_i g_i(x) with g_i(x) = |q - x_i| - |x - x_i|. The minimum of concave
functions is concave, so the maximiser is found by bisection on the slope of the member with the
least gain. Members with zero salience gain nothing whatever the text and are left out. Where the
win-set holds the status quo alone, the solution is the status quo. On a choice issue, the option of
the win-set that maximises min_i s_i (u_io - u_iq), the fallback if none gives every member a gain.
"""

from __future__ import annotations

import numpy as np

from .winset import acceptable, concave_argmax, empty, gains, interval


def levels(position: np.ndarray, capability: np.ndarray, salience: np.ndarray, status_quo: np.ndarray) -> np.ndarray:
    """(R, K) the egalitarian solution of each issue (position (R, n, K), salience (n, K) >= 0; the
    capability (n,) plays no part: every member's gain counts the same)."""
    low, high = interval(position, status_quo, salience > 0)
    s = salience[None]

    def slope(x):
        gain = np.where(s > 0, s * gains(x, position, status_quo), np.inf)
        least = gain.argmin(axis=1)[:, None, :]
        side = -np.sign(x[:, None, :] - position)
        return np.take_along_axis(np.broadcast_to(s, position.shape) * side, least, axis=1)[:, 0, :]

    solution = concave_argmax(slope, low, high)
    return np.where(empty(low, high), status_quo[None, :], solution)


def options(utility: np.ndarray, capability: np.ndarray, salience: np.ndarray, veto: np.ndarray,
            valid: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(C,) per choice issue the option index of the egalitarian solution (salience (n, C))."""
    gain, allowed = acceptable(utility, veto, valid, fallback, salience > 0)
    weighted = np.where((salience > 0)[:, :, None], salience[:, :, None] * gain, np.inf)
    least = weighted.min(axis=0)
    ok = allowed & (least > 0)
    best = np.where(ok, least, -np.inf).argmax(axis=1)
    return np.where(ok.any(axis=1), best, fallback)
