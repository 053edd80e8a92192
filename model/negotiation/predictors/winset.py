"""The unanimity win-set: the texts every voting member weakly prefers to the status quo.

On one issue with linear losses, member i prefers x to the status quo q when |x - x_i| <= |q - x_i|,
so the win-set is the intersection over members of [x_i - |q - x_i|, x_i + |q - x_i|] (Romer &
Rosenthal 1978; Tsebelis 2002, Veto Players, ch. 1). It always holds q; it holds nothing else when
members stand on both sides of q, or one stands at q ("gridlock"). The Nash, egalitarian and
agenda-setter predictors choose inside it, so they share this module; so do their choice-issue
versions, where the win-set is the options no voting member vetoes and none likes less than its
fallback.
"""

from __future__ import annotations

import numpy as np

from model.scenario.schema import SCALE

BISECTIONS = 60  # halvings of the win-set in the concave searches: 100 points / 2^60 is below 1e-15


def interval(position: np.ndarray, status_quo: np.ndarray, cares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high), each (R, K): the win-set of every issue of every draw (position (R, n, K)), on the
    0-100 scale. Only members who `cares` (n, K), i.e. with a positive salience, constrain it: a
    member indifferent to an issue accepts any text on it."""
    reach = np.abs(status_quo[None, None, :] - position)
    low = np.where(cares[None], position - reach, -np.inf).max(axis=1)
    high = np.where(cares[None], position + reach, np.inf).min(axis=1)
    return np.maximum(low, SCALE[0]), np.minimum(high, SCALE[1])


def gains(x: np.ndarray, position: np.ndarray, status_quo: np.ndarray) -> np.ndarray:
    """(R, n, K) what the text x (R, K) gives each member against the status quo, in points:
    |q - x_i| - |x - x_i| (non-negative on the win-set)."""
    return np.abs(status_quo[None, None, :] - position) - np.abs(x[:, None, :] - position)


def empty(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(R, K) True where the win-set holds no text but the status quo (no change can pass)."""
    return high - low <= 1e-9


def concave_argmax(slope, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(R, K) the maximiser of a concave function on [low, high], by bisection on the sign of its
    (super)derivative `slope(x)`: a fixed number of vectorised steps for every draw and issue."""
    low, high = low.copy(), high.copy()
    for _ in range(BISECTIONS):
        mid = (low + high) / 2
        up = slope(mid) > 0
        low = np.where(up, mid, low)
        high = np.where(up, high, mid)
    return (low + high) / 2


def acceptable(utility: np.ndarray, veto: np.ndarray, valid: np.ndarray, fallback: np.ndarray,
            cares: np.ndarray) -> np.ndarray:
    """(n, C, O) gains of each option against the fallback, and (C, O) bool the choice win-set:
    valid options that no member vetoes and no member who `cares` (n, C) likes less than the fallback."""
    gain = utility - np.take_along_axis(utility, fallback[None, :, None], axis=2)
    worse = (gain < 0) & cares[:, :, None]
    return gain, valid & ~(veto | worse).any(axis=0)
