"""The Romer-Rosenthal agenda setter (Romer & Rosenthal 1978; Tsebelis 2002): the setter proposes
the text of the unanimity win-set it likes best, and every member accepts it over the status quo.

With linear losses on one issue that is the setter's ideal clipped to the win-set. NATO's Secretary
General chairs but has no coded ideal point, so the setter's ideal is the compromise (the salience x
capability weighted mean of the voting members' positions), the text the chair would draft if
unconstrained. Where the win-set holds the status quo alone, the setter can change nothing. On a
choice issue the setter proposes the option of the win-set with the largest weighted utility.
"""

from __future__ import annotations

import numpy as np

from model.negotiation.rules import compromise

from .winset import acceptable, interval


def levels(position: np.ndarray, capability: np.ndarray, salience: np.ndarray, status_quo: np.ndarray) -> np.ndarray:
    """(R, K) the setter's proposal on each issue (position (R, n, K), capability (n,), salience (n, K))."""
    low, high = interval(position, status_quo, salience > 0)
    return np.clip(compromise(position, capability[:, None] * salience), low, high)


def options(utility: np.ndarray, capability: np.ndarray, salience: np.ndarray, veto: np.ndarray,
            valid: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(C,) per choice issue the option of the win-set with the largest sum_i c_i s_i u_io (salience (n, C))."""
    _, allowed = acceptable(utility, veto, valid, fallback, salience > 0)
    score = np.einsum("ic,ico->co", capability[:, None] * salience, utility)
    return np.where(allowed, score, -np.inf).argmax(axis=1)  # the fallback is always in the win-set
