"""Monte Carlo estimates with intervals: every share is reported as k/n with a Wilson 95 % interval."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile: normal 95 % intervals


def wilson(k, n):
    """(p, low, high): k/n and its Wilson score 95 % interval (good coverage at small n and near 0
    or 1), elementwise for arrays; NaN where n = 0."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    p = np.divide(k, n, out=np.full_like(k, np.nan), where=n > 0)
    low, high = proportion_confint(k, np.maximum(n, 1), alpha=1 - CONFIDENCE, method="wilson")
    # the Wilson interval always contains k/n; min/max only undo rounding at k = 0 or k = n
    return p, np.where(n > 0, np.minimum(low, p), np.nan), np.where(n > 0, np.maximum(high, p), np.nan)


def wilson_halfwidth(k: int, n: int) -> float:
    """Half the width of the Wilson 95 % interval of k/n (infinite with no runs)."""
    if n == 0:
        return float("inf")
    _, low, high = wilson(k, n)
    return float(high - low) / 2


def proportion(k: int, n: int) -> dict:
    """k/n with its Wilson score interval, as summaries report it."""
    if n == 0:
        return {"k": 0, "n": 0, "p": None, "ci95": [None, None], "method": "wilson"}
    p, low, high = (float(x) for x in wilson(k, n))
    return {"k": int(k), "n": int(n), "p": p, "ci95": [low, high], "method": "wilson"}


def fmt_share(est: dict) -> str:
    """'0.874 [0.859, 0.888] (1748/2000)'."""
    if est["p"] is None:
        return "n/a (0 runs)"
    low, high = est["ci95"]
    return f"{est['p']:.3f} [{low:.3f}, {high:.3f}] ({est['k']}/{est['n']})"
