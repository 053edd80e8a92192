"""Monte Carlo estimates with intervals: every share is reported as k/n with a Wilson 95 % interval."""

from __future__ import annotations

from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95


def proportion(k: int, n: int) -> dict:
    """k/n with its Wilson score interval (good coverage at small n and near 0 or 1)."""
    if n == 0:
        return {"k": 0, "n": 0, "p": None, "ci95": [None, None], "method": "wilson"}
    p = k / n
    low, high = proportion_confint(k, n, alpha=1 - CONFIDENCE, method="wilson")
    # the Wilson interval always contains k/n; min/max only undo rounding at k = 0 or k = n
    return {"k": int(k), "n": int(n), "p": p, "ci95": [min(float(low), p), max(float(high), p)], "method": "wilson"}


def fmt_share(est: dict) -> str:
    """'0.874 [0.859, 0.888] (1748/2000)'."""
    if est["p"] is None:
        return "n/a (0 runs)"
    low, high = est["ci95"]
    return f"{est['p']:.3f} [{low:.3f}, {high:.3f}] ({est['k']}/{est['n']})"
