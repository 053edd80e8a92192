"""The chair's optimisation, compiled once and called by both engines (the Chair agent on a batch
of one replication, the ensemble on thousands): the package d in [0, 100]^K that maximises

    F(d) = sum_i log Lambda(m_i(d) / sigma),    m_i(d) = b_i - sum_k w_ik |d_k - x_ik|,

the sum over the voting members of the log-probability that each accepts (Lambda the logistic
function, m_i the member's acceptance margin, b_i what does not depend on the draft). F is concave
(log Lambda is concave and increasing, m_i concave), so it has one optimum.

Method, per replication and independent of every other one (so a result never depends on the
batch it ran in): Newton steps on F with each |u| replaced by its Huber smoothing (quadratic
within SMOOTHING points of a member's position, so the Hessian exists everywhere), a line search
on F's slope that only takes points where F rose, and a stop when no coordinate moves by more
than TOLERANCE points. Where the noise is small, the search first solves the problem at noise
16, 8, ... points down to `sigma` (a continuation in sigma: each stage starts where the smoother one
ended), which keeps the number of Newton steps small when the optimum is nearly a max-min point. Where the
acceptance noise is zero the chair plans with MIN_NOISE: its draft is then the max-min point to
within a few hundredths of a point. The smoothing replaces |u| by (u^2 / SMOOTHING + SMOOTHING) / 2
within SMOOTHING of a member's position (equal value and slope at the joins), so F is exact
wherever the draft is not within SMOOTHING points of some member's position; near one, the draft
can be off by less than that (docs/ODD.md, submodel "The chair's draft").
"""

from __future__ import annotations

import numpy as np
from numba import njit

from model.scenario.schema import SCALE

SMOOTHING = 0.5  # points: |u| is smoothed within this distance of a member's position
TOLERANCE = 1e-5  # points: the solver stops when no coordinate moves by more
STAGE_TOLERANCE = 1e-3  # points: the same for the smoother stages of a cold start
MAX_STEPS = 60  # Newton steps per stage, at most
RIDGE = 1e-9  # relative ridge added to the Newton system (see _newton_direction)
ZREF_MAX = 600.0  # the largest scale exponent (e^600 is far inside floating point's range)
SECANT_STEPS = 2  # secant steps on F's slope when a Newton step overshoots, before halving
LINE_STEPS = 40  # points tried along one step, at most
MIN_NOISE = 0.05  # points: the noise the chair plans with when the acceptance noise is zero
CONTINUATION_START = 16.0  # points: the first stage of a cold start (none when the noise is above half of it)


@njit(cache=True, inline="always")  # inlined: a call per member would cost more than its arithmetic
def _margin(d, x, w, base, i):
    """m_i(d), with the Huber-smoothed distance."""
    m = base[i]
    for k in range(x.shape[1]):
        a = abs(d[k] - x[i, k])
        m -= w[i, k] * (0.5 * (a * a / SMOOTHING + SMOOTHING) if a <= SMOOTHING else a)
    return m


@njit(cache=True)
def _smallest_z(d, x, w, base, sigma):
    """The smallest z_i = m_i / sigma at d (no exponentials: the scale reference of a search)."""
    zmin = np.inf
    for i in range(x.shape[0]):
        zmin = min(zmin, _margin(d, x, w, base, i) / sigma)
    return zmin


@njit(cache=True)
def _evaluate(d, x, w, base, sigma, zref, g, h, work):
    """The gradient `g` and Hessian `h` of F at d, both multiplied by e^zref; returns the smallest
    z_i = m_i / sigma at d (the next scale reference). `work` is scratch space, (2 K + 2, n). F
    itself is never needed: the line search reads only its slope.

    Where every member accepts almost surely, F's derivatives are of order e^-z with z in the
    hundreds or thousands, below what floating point represents; the common factor e^zref, zref the
    smallest z near d, brings them back. It changes neither the Newton direction nor the sign of a
    slope."""
    n, k_issues = x.shape
    inv, inv_sigma = 1.0 / SMOOTHING, 1.0 / sigma
    slope, bend, dm, huber = work[0], work[1], work[2:2 + k_issues], work[2 + k_issues:]
    zmin = np.inf
    scale, unscale = np.exp(zref), np.exp(-zref)
    for i in range(n):  # per member: its margin, and the first two derivatives of log Lambda(m / sigma)
        z = _margin(d, x, w, base, i) * inv_sigma
        zmin = min(zmin, z)
        if z >= 0.0:  # one exponential: t = e^(zref - z); e^-z = t e^-zref; Lambda = 1 / (1 + e^-z)
            t = np.exp(zref - z)
            e = t * unscale
            inv_1e = 1.0 / (1.0 + e)
            p, rest = inv_1e, t * inv_1e  # 1 - Lambda, scaled by e^zref, = e^(zref - z) / (1 + e^-z)
        else:
            e = np.exp(z)
            inv_1e = 1.0 / (1.0 + e)
            p, rest = e * inv_1e, scale * inv_1e
        slope[i] = rest * inv_sigma  # d log Lambda(m / sigma) / dm, times e^zref
        bend[i] = -p * slope[i] * inv_sigma
        for k in range(k_issues):  # dm_i / dd_k, and the smoothing's curvature of -m_i
            u = d[k] - x[i, k]
            if abs(u) <= SMOOTHING:
                dm[k, i] = -w[i, k] * u * inv
                huber[k, i] = w[i, k] * inv
            else:
                dm[k, i] = -w[i, k] if u > 0.0 else w[i, k]
                huber[k, i] = 0.0
    for k in range(k_issues):  # sums over members, contiguous: g = dm' slope, h = dm' diag(bend) dm - ...
        gk, hkk = 0.0, 0.0
        for i in range(n):
            gk += slope[i] * dm[k, i]
            hkk -= slope[i] * huber[k, i]
        g[k] = gk
        for j in range(k, k_issues):
            s = 0.0
            for i in range(n):
                s += bend[i] * dm[k, i] * dm[j, i]
            h[k, j] = s
            h[j, k] = s
        h[k, k] += hkk
    return zmin


@njit(cache=True, inline="always")
def _reference(zmin):
    """The scale reference for the next evaluations: the smallest z, kept within [0, ZREF_MAX]."""
    return min(max(zmin, 0.0), ZREF_MAX)


@njit(cache=True)
def _newton_direction(g, h, active, step, chol, y):
    """step = (-h + ridge)^-1 g on the active coordinates (0 elsewhere), by Cholesky of the small
    matrix. The ridge (RIDGE times the largest curvature) keeps the step finite where members
    agree and the Hessian has a flat direction; it is too small to change a step otherwise."""
    k_issues = g.shape[0]
    top = 0.0
    for k in range(k_issues):
        if active[k]:
            top = max(top, -h[k, k])
    for k in range(k_issues):
        if active[k]:
            h[k, k] -= RIDGE * top + 1e-300
        else:
            g[k] = 0.0
            for j in range(k_issues):
                h[k, j] = 0.0
                h[j, k] = 0.0
            h[k, k] = -1.0
    for k in range(k_issues):
        s = -h[k, k]
        for j in range(k):
            s -= chol[k, j] * chol[k, j]
        chol[k, k] = np.sqrt(s if s > 1e-300 else 1e-300)
        for r in range(k + 1, k_issues):
            s2 = -h[r, k]
            for j in range(k):
                s2 -= chol[r, j] * chol[k, j]
            chol[r, k] = s2 / chol[k, k]
    for k in range(k_issues):
        s = g[k]
        for j in range(k):
            s -= chol[k, j] * y[j]
        y[k] = s / chol[k, k]
    for k in range(k_issues - 1, -1, -1):
        s = y[k]
        for j in range(k + 1, k_issues):
            s -= chol[j, k] * step[j]
        step[k] = s / chol[k, k]


@njit(cache=True)
def _ascend(d, x, w, base, sigma, free, tolerance):
    """Newton steps from `d` (changed in place) until it stops moving; returns the steps taken.

    The step is cut to stay on the scale. F is concave, so along the step its slope only falls:
    where the slope is still >= 0 at the point tried (the whole step, or twice the share of the
    last step taken), F rose all the way and that point is taken; otherwise it overshot the
    maximum on that line, and secant steps on the slope, then halving, find a point before it
    (where the slope is >= 0, so F rose). Only slopes are needed, never F itself."""
    n, k_issues = x.shape
    g, g2, work = np.empty(k_issues), np.empty(k_issues), np.empty((2 * k_issues + 2, n))
    h, h2, chol = np.empty((k_issues, k_issues)), np.empty((k_issues, k_issues)), np.zeros((k_issues, k_issues))
    step, y, cand = np.zeros(k_issues), np.empty(k_issues), np.empty(k_issues)
    active = np.empty(k_issues, np.bool_)
    zref = _reference(_smallest_z(d, x, w, base, sigma))
    zmin = _evaluate(d, x, w, base, sigma, zref, g, h, work)
    steps, trial = 0, 1.0  # trial: the share of the Newton step tried first (twice the last one taken)
    while steps < MAX_STEPS:
        steps += 1
        for k in range(k_issues):  # a coordinate pressed against the scale's end stays there
            active[k] = free[k] and not ((d[k] <= SCALE[0] and g[k] < 0.0) or (d[k] >= SCALE[1] and g[k] > 0.0))
        _newton_direction(g, h, active, step, chol, y)
        reach, slope0 = 1.0, 0.0  # the largest share of the step that stays on the scale; F's slope at 0
        for k in range(k_issues):
            if step[k] > 0.0:
                reach = min(reach, (SCALE[1] - d[k]) / step[k])
            elif step[k] < 0.0:
                reach = min(reach, (SCALE[0] - d[k]) / step[k])
        for k in range(k_issues):
            step[k] *= reach
            slope0 += g[k] * step[k]
        if slope0 <= 0.0:
            break
        low, high, slope_low, slope_high, alpha = 0.0, 1.0, slope0, 0.0, trial
        for attempt in range(LINE_STEPS):
            for k in range(k_issues):
                cand[k] = d[k] + alpha * step[k]
            zmin = _evaluate(cand, x, w, base, sigma, zref, g2, h2, work)
            slope = 0.0
            for k in range(k_issues):
                slope += g2[k] * step[k]
            if slope >= 0.0:  # F still rising at alpha: a safe point, and the best one tried
                low, slope_low = alpha, slope
                break
            high, slope_high = alpha, slope
            if attempt < SECANT_STEPS:  # secant steps on the slope, then halving (the slope is continuous)
                alpha = low + (high - low) * slope_low / (slope_low - slope_high)
            else:
                alpha = 0.5 * (low + high)
        if low == 0.0:  # no safe point found: at the maximum to within the slope's precision
            break
        trial = min(1.0, 2.0 * low)
        change = 0.0
        for k in range(k_issues):
            change = max(change, abs(cand[k] - d[k]))
            d[k] = cand[k]
        g[:] = g2
        h[:, :] = h2
        zref = _reference(zmin)
        if change < tolerance:
            break
    return steps


@njit(cache=True)
def solve(x, w, base, sigma, free, start):
    """(R, K) drafts for R replications: x, w (R, n, K) positions and distance weights of the voting
    members, base (R, n), free (R, K) the coordinates the chair may move (the others keep `start`).
    Each search begins at `start` (the previous draft, or the status quo) and passes through the
    smoother stages first (none when the noise is at least half of CONTINUATION_START)."""
    out = start.copy()
    plan = max(sigma, MIN_NOISE)
    for r in range(x.shape[0]):
        stage = CONTINUATION_START
        while stage > 2.0 * plan:
            _ascend(out[r], x[r], w[r], base[r], stage, free[r], STAGE_TOLERANCE)
            stage *= 0.5
        _ascend(out[r], x[r], w[r], base[r], plan, free[r], TOLERANCE)
    return out


@njit(cache=True)
def _log_acceptance(d, x, w, base, sigma):
    """F(d) = sum_i log Lambda(m_i(d) / sigma), with the smoothed margins the search uses."""
    f = 0.0
    for i in range(x.shape[0]):
        z = _margin(d, x, w, base, i) / sigma
        f += -np.log1p(np.exp(-z)) if z >= 0.0 else z - np.log1p(np.exp(z))
    return f


@njit(cache=True)
def choose(x, w, base, gains, allowed, sigma, d, fallback):
    """(R,) per replication the option of one choice issue, among those `allowed` (R, O), under which
    the package with levels `d` (R, K) is most likely accepted by all: F with each member's base
    (R, n) raised by its gain (n, O) from the option. The fallback is tried first and the others in
    file order, and only a strictly higher F replaces the best so far: ties go to the fallback,
    then to the earlier option."""
    r_count, n = base.shape
    out = np.empty(r_count, np.int64)
    plan = max(sigma, MIN_NOISE)
    shifted = np.empty(n)
    for r in range(r_count):
        best, best_f = -1, -np.inf
        for j in range(gains.shape[1]):
            o = fallback if j == 0 else (j - 1 if j - 1 < fallback else j)
            if not allowed[r, o]:
                continue
            for i in range(n):
                shifted[i] = base[r, i] + gains[i, o]
            f = _log_acceptance(d[r], x[r], w[r], shifted, plan)
            if best < 0 or f > best_f:
                best, best_f = o, f
        out[r] = best
    return out
