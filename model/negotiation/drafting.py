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
than TOLERANCE points (a Newton step that small is taken without a line search). The search runs
on the free coordinates alone (an issue a contract settled only shifts each member's b_i), laid
out issue by member so that each pass over the members reads contiguous rows. Where the noise is
small, the search first solves the problem at noise 16, 8, ... points down to `sigma` (a
continuation in sigma: each stage starts where the smoother one ended), which keeps the number of
Newton steps small when the optimum is nearly a max-min point. Where the acceptance noise is
zero the chair plans with MIN_NOISE: its draft is then the max-min point to within a few
hundredths of a point. The smoothing replaces |u| by (u^2 / SMOOTHING + SMOOTHING) / 2
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


@njit(cache=True, inline="always")
def _smoothed(u):
    """|u|, Huber-smoothed within SMOOTHING of 0."""
    a = abs(u)
    return 0.5 * (a * a / SMOOTHING + SMOOTHING) if a <= SMOOTHING else a


@njit(cache=True, inline="always")  # inlined: a call per member would cost more than its arithmetic
def _margin(d, x, w, base, i):
    """m_i(d), with the Huber-smoothed distance."""
    m = base[i]
    for k in range(x.shape[1]):
        m -= w[i, k] * _smoothed(d[k] - x[i, k])
    return m


@njit(cache=True)
def _reduce(d, x, w, base, free, cols, xs, ws, bs):
    """The problem on the free coordinates alone, laid out issue by member so that each pass over
    the members reads contiguous rows: their indices `cols`, the members' positions `xs` and weights
    `ws` there (m, n), and each member's base `bs` less its distance on the settled coordinates
    (which do not move). Returns m, how many coordinates are free."""
    m = 0
    for k in range(x.shape[1]):
        if free[k]:
            cols[m] = k
            m += 1
    for i in range(x.shape[0]):
        b = base[i]
        for k in range(x.shape[1]):
            if not free[k]:
                b -= w[i, k] * _smoothed(d[k] - x[i, k])
        bs[i] = b
        for j in range(m):
            xs[j, i] = x[i, cols[j]]
            ws[j, i] = w[i, cols[j]]
    return m


@njit(cache=True, inline="always")
def _dot(a, b, c, n):
    """sum_i a_i b_i c_i over the first n entries, in four interleaved partial sums combined in a
    fixed order: independent chains the processor overlaps, and the same additions wherever the
    function is compiled or inlined (no reassociation is left to the compiler)."""
    s0 = s1 = s2 = s3 = 0.0
    top = n - n % 4
    for i in range(0, top, 4):
        s0 += a[i] * b[i] * c[i]
        s1 += a[i + 1] * b[i + 1] * c[i + 1]
        s2 += a[i + 2] * b[i + 2] * c[i + 2]
        s3 += a[i + 3] * b[i + 3] * c[i + 3]
    for i in range(top, n):
        s0 += a[i] * b[i] * c[i]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _evaluate(d, x, w, base, m, sigma, g, h, work):
    """The gradient `g` and Hessian `h` of F at d (m coordinates; x, w laid out (m, n)), both
    multiplied by e^zref, zref the smallest z_i = m_i / sigma at d kept within [0, ZREF_MAX].
    `work` is scratch space (`_work`). F itself is never needed: the line search reads only its
    slope. Each pass runs over the members along contiguous rows.

    Where every member accepts almost surely, F's derivatives are of order e^-z with z in the
    hundreds or thousands, below what floating point represents; the common factor e^zref brings
    them back. It changes neither the Newton direction nor the sign of a slope."""
    n = x.shape[1]
    z, slope, bend, ones, dm, curve = work
    inv, inv_sigma = 1.0 / SMOOTHING, 1.0 / sigma
    for i in range(n):
        z[i] = base[i]
    for k in range(m):  # the margins m_i(d), issue by issue
        for i in range(n):
            z[i] -= w[k, i] * _smoothed(d[k] - x[k, i])
    zmin = np.inf
    for i in range(n):
        z[i] *= inv_sigma
        zmin = min(zmin, z[i])
    zref = min(max(zmin, 0.0), ZREF_MAX)
    scale, unscale = np.exp(zref), np.exp(-zref)
    for i in range(n):  # the first two derivatives of log Lambda(m_i / sigma) in m_i, times e^zref
        if z[i] >= 0.0:  # one exponential: t = e^(zref - z); e^-z = t e^-zref; Lambda = 1 / (1 + e^-z)
            t = np.exp(zref - z[i])
            inv_1e = 1.0 / (1.0 + t * unscale)
            p, rest = inv_1e, t * inv_1e  # 1 - Lambda, scaled by e^zref, = e^(zref - z) / (1 + e^-z)
        else:
            e = np.exp(z[i])
            inv_1e = 1.0 / (1.0 + e)
            p, rest = e * inv_1e, scale * inv_1e
        slope[i] = rest * inv_sigma
        bend[i] = -p * slope[i] * inv_sigma
    for k in range(m):  # dm_i / dd_k = -w_ik clip(u / SMOOTHING, -1, 1); the smoothing's curvature of -m_i
        for i in range(n):
            u = (d[k] - x[k, i]) * inv
            dm[k, i] = -w[k, i] * min(max(u, -1.0), 1.0)
            curve[k, i] = -w[k, i] * inv if abs(u) <= 1.0 else 0.0
    for k in range(m):  # g = dm' slope; h = dm' diag(bend) dm + diag(curve' slope)
        g[k] = _dot(slope, dm[k], ones, n)
        for j in range(k, m):
            h[k, j] = _dot(bend, dm[k], dm[j], n)
            h[j, k] = h[k, j]
        h[k, k] += _dot(slope, curve[k], ones, n)


@njit(cache=True)
def _newton_direction(g, h, m, active, step, chol, y):
    """step = (-h + ridge)^-1 g on the active coordinates of the first m (0 elsewhere), by Cholesky
    of the small matrix. The ridge (RIDGE times the largest curvature) keeps the step finite where
    members agree and the Hessian has a flat direction; it is too small to change a step otherwise."""
    top = 0.0
    for k in range(m):
        if active[k]:
            top = max(top, -h[k, k])
    for k in range(m):
        if active[k]:
            h[k, k] -= RIDGE * top + 1e-300
        else:
            g[k] = 0.0
            for j in range(m):
                h[k, j] = 0.0
                h[j, k] = 0.0
            h[k, k] = -1.0
    for k in range(m):
        s = -h[k, k]
        for j in range(k):
            s -= chol[k, j] * chol[k, j]
        chol[k, k] = np.sqrt(s if s > 1e-300 else 1e-300)
        for r in range(k + 1, m):
            s2 = -h[r, k]
            for j in range(k):
                s2 -= chol[r, j] * chol[k, j]
            chol[r, k] = s2 / chol[k, k]
    for k in range(m):
        s = g[k]
        for j in range(k):
            s -= chol[k, j] * y[j]
        y[k] = s / chol[k, k]
    for k in range(m - 1, -1, -1):
        s = y[k]
        for j in range(k + 1, m):
            s -= chol[j, k] * step[j]
        step[k] = s / chol[k, k]


@njit(cache=True)
def _ascend(d, x, w, base, m, sigma, tolerance, s):
    """Newton steps on the first m coordinates of `d` (changed in place) until it stops moving;
    returns the steps taken. `s` holds the work arrays (`_work`).

    The step is cut to stay on the scale. A step that moves no coordinate by more than `tolerance`
    is taken as it is, and the search ends: the maximum is that close. Otherwise, F being concave,
    its slope along the step only falls: where the slope is still >= 0 at the point tried (the
    whole step, or twice the share of the last step taken), F rose all the way and that point is
    taken; otherwise it overshot the maximum on that line, and secant steps on the slope, then
    halving, find a point before it (where the slope is >= 0, so F rose). Only slopes are needed,
    never F itself."""
    g, g2, h, h2, chol, step, y, cand, active, work = s
    _evaluate(d, x, w, base, m, sigma, g, h, work)
    steps, trial = 0, 1.0  # trial: the share of the Newton step tried first (twice the last one taken)
    while steps < MAX_STEPS:
        steps += 1
        for k in range(m):  # a coordinate pressed against the scale's end stays there
            active[k] = not ((d[k] <= SCALE[0] and g[k] < 0.0) or (d[k] >= SCALE[1] and g[k] > 0.0))
        _newton_direction(g, h, m, active, step, chol, y)
        reach, slope0, size = 1.0, 0.0, 0.0  # the largest share of the step that stays on the scale; F's slope at 0
        for k in range(m):
            if step[k] > 0.0:
                reach = min(reach, (SCALE[1] - d[k]) / step[k])
            elif step[k] < 0.0:
                reach = min(reach, (SCALE[0] - d[k]) / step[k])
        for k in range(m):
            step[k] *= reach
            slope0 += g[k] * step[k]
            size = max(size, abs(step[k]))
        if slope0 <= 0.0:
            break
        if size < tolerance:  # converged: the last step is too small to check
            for k in range(m):
                d[k] += step[k]
            break
        low, slope_low, alpha = 0.0, slope0, trial
        for attempt in range(LINE_STEPS):
            for k in range(m):
                cand[k] = d[k] + alpha * step[k]
            _evaluate(cand, x, w, base, m, sigma, g2, h2, work)
            slope = 0.0
            for k in range(m):
                slope += g2[k] * step[k]
            if slope >= 0.0:  # F still rising at alpha: a safe point, and the best one tried
                low = alpha
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
        for k in range(m):
            change = max(change, abs(cand[k] - d[k]))
            d[k] = cand[k]
            g[k] = g2[k]
            for j in range(m):
                h[k, j] = h2[k, j]
        if change < tolerance:
            break
    return steps


@njit(cache=True)
def _work(n, k):
    """The work arrays of `_ascend` for n members and k coordinates, the last item those of
    `_evaluate`."""
    return (np.empty(k), np.empty(k), np.empty((k, k)), np.empty((k, k)), np.zeros((k, k)), np.zeros(k),
            np.empty(k), np.empty(k), np.empty(k, np.bool_),
            (np.empty(n), np.empty(n), np.empty(n), np.ones(n), np.empty((k, n)), np.empty((k, n))))


@njit(cache=True)
def solve(x, w, base, sigma, free, start):
    """(R, K) drafts for R replications: x, w (R, n, K) positions and distance weights of the voting
    members, base (R, n), free (R, K) the coordinates the chair may move (the others keep `start`).
    Each search begins at `start` (the previous draft, or the status quo), works on the free
    coordinates alone, and passes through the smoother stages first (none when the noise is at
    least half of CONTINUATION_START)."""
    r_count, n, k_issues = x.shape
    out = start.copy()
    plan = max(sigma, MIN_NOISE)
    cols, xs, ws, bs = np.empty(k_issues, np.int64), np.empty((k_issues, n)), np.empty((k_issues, n)), np.empty(n)
    d, s = np.empty(k_issues), _work(n, k_issues)
    for r in range(r_count):
        m = _reduce(out[r], x[r], w[r], base[r], free[r], cols, xs, ws, bs)
        if m == 0:
            continue
        for j in range(m):
            d[j] = out[r, cols[j]]
        stage = CONTINUATION_START
        while stage > 2.0 * plan:
            _ascend(d, xs, ws, bs, m, stage, STAGE_TOLERANCE, s)
            stage *= 0.5
        _ascend(d, xs, ws, bs, m, plan, TOLERANCE, s)
        for j in range(m):
            out[r, cols[j]] = d[j]
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
