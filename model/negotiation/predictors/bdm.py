"""Bueno de Mesquita's expected-utility model of group decision (the "BDM model"): actors challenge
one another's positions, make and accept offers, and the forecast is the weighted median position.

Sources: Bueno de Mesquita (1994), "Political forecasting: an expected utility method", in Bueno de
Mesquita & Stokman (eds.), European Community Decision Making, ch. 4; Bueno de Mesquita (2002),
Predicting Politics; Scholz, Calbert & Smith (2011), "Unravelling Bueno De Mesquita's group
decision model", Journal of Theoretical Politics 23(4): 510-531, which spells out the steps
followed here. No published worked example with numbers (inputs, intermediate values and outcome)
was readable in the stored texts, so the tests are worked by hand.

Notation: actors i, j, k; capability c, salience s, position x. Each issue is played on its own
(the model is unidimensional). Distances are normalised by the issue's range of positions at the
start, d_ij = |x_i - x_j| / (x_max - x_min), in [0, 1]; weight w_k = c_k s_k; mu is the weighted
median position (weight c s), BDM's "median voter".

Steps, per draw, per issue, per round, all from the positions at the round start:
1. Votes of k in the contest of i against j: v_k^ij = w_k (d_kj - d_ki).
2. Probability that i wins against j: P^i_ij = sum_{k: v_k^ij > 0} v_k^ij / sum_k |v_k^ij|.
3. Utilities to i, with risk exponent r_i and U(z) = 2 - 4 z^r_i:
   U^s = U(0.5 - 0.5 d_ij) (i wins), U^f = U(0.5 + 0.5 d_ij) (i loses),
   U^b = U(0.5 - 0.25 (d_imu + d_ij)) (things improve without a challenge),
   U^w = U(0.5 + 0.25 (d_imu + d_ij)) (they worsen), U^sq = U(0.5) (status quo).
4. Expected utility of i challenging j:
   EU_ij = s_j (P U^s + (1 - P) U^f) + (1 - s_j) U^s - Q U^sq - (1 - Q) (T U^b + (1 - T) U^w).
5. Risk: the security of i's position is what the others expect from challenging it,
   S_i = sum_{j != i} EU_ji (all with r = 1); R_i = (2 S_i - max S - min S) / (max S - min S) in
   [-1, 1] (the most exposed position is the most risk-acceptant) and r_i = (1 - R_i/3)/(1 + R_i/3)
   in [0.5, 2]. Step 4 is then redone with each actor's r.
6. Offers, as i sees the pair (a = EU_ij, b = EU_ji, both with r_i): with a > 0, i offers j
   - conflict (b > 0, a > b: i expects to win): j moves to x_i;
   - compromise (b <= 0, a > |b|): j moves the fraction |b| / a of the way to x_i;
   - capitulation (b < 0, |b| >= a): j moves to x_i.
   Otherwise (a <= 0, or both positive with b >= a) i makes j no offer.
7. Each actor accepts the offer that moves it least; with none it stays. All move at once.
The forecast is the weighted median of the positions after the last round.

Ambiguities and choices made:
- Forecast: the weighted median (BDM's median voter, the Condorcet winner in one dimension), not
  the weighted mean; ties at exactly half the weight take the midpoint (`rules.weighted_median`).
- Normalising range: the issue's range of the (weighted) actors' positions at the start, kept for
  every round (the issue scale does not shrink as actors converge). A zero range means all agree:
  nobody moves, and the forecast is that point.
- Perception: BDM's E^i U_ji is computed with i's own risk exponent (i does not know j's risk);
  the votes and P are common knowledge. The risk in step 5 uses r = 1 for every actor, and the
  max / min of S run over the actors of the issue (BDM 1985 compares i's position with the ones i
  could have taken; Scholz et al. compare across actors). Equal S for all gives r = 1.
- Q = 0.5 (BDM's later value; Scholz et al. note BDM 1994 also used Q = 1). T is not given a value
  in the texts; here T = 1 when the median is closer to i than j is (left alone, j drifts towards
  the median, i.e. towards i), 0 when it is farther, 0.5 at a tie.
- Compromise fraction |EU_ji / EU_ij| (Scholz et al.); it reaches 1 at the capitulation border.
- Moves are simultaneous: two actors who each expect to win their conflict each accept the other's
  demand, and so swap positions (BDM's misperceptions; no extra rule resolves the pair).
- No contest without a distance: i never challenges an actor at its own position.
- An actor with no weight on an issue (c s = 0) is inert there: it casts no votes, makes no offers
  (it cannot back a challenge), is left out of the range, of the median and of the max / min of S
  (its own R is clipped to [-1, 1]); it still receives and accepts offers.
- P = 0.5 where nobody prefers either side (all votes zero).
- Offers that move an actor equally far (within MOVE_TOL) are averaged, so an actor torn between
  equal offers on opposite sides stays put and the result does not depend on the actors' order.
- Stopping: BDM (2002) stops when the round-to-round shift of the median falls below what the
  (unpublished) discount rate makes worth pursuing. Here a fixed ROUNDS = 10 rounds run: compromises
  make positions converge only geometrically, and on random 20-actor profiles the mean shift of the
  median per round falls from ~2 points (of 100) in the first rounds to ~0.3 by the tenth. Once no
  actor moves the positions are a fixed point, so further rounds change nothing.
- Zero weight everywhere on an issue: no offers, and the median is the plain median.

Cost: O(R n^2 K) per round (step 2's sums over k in closed form, see `_success`), in chunks of
draws; about 2 s per history case (R = 200 draws, n = 26-32, K = 3-4, 10 rounds), the tournament's
largest cost (benchmarks/bench_tournament.py).
"""

from __future__ import annotations

import numpy as np

from model.negotiation import rules

ROUNDS = 10
Q = 0.5  # probability, to i, that the status quo holds if i does not challenge
MOVE_TOL = 1e-9  # offers whose moves differ by less (position units) are equally good
_CHUNK_ELEMENTS = 131_072  # pairwise arrays (draws, n, n, K) per chunk of draws: 1 MB each


def forecast(position: np.ndarray, capability: np.ndarray, salience: np.ndarray,
             rounds: int = ROUNDS) -> np.ndarray:
    """(R, K) BDM's forecast per issue after `rounds` rounds of challenges: the capability x
    salience weighted median of the final positions.
    position (R, n, K): actors' positions on a 0-100 scale, R independent draws (R=1: point codes);
    capability (n,) >= 0; salience (n, K) in [0, 1]."""
    weight = np.asarray(capability, dtype=float)[:, None] * np.asarray(salience, dtype=float)
    return rules.weighted_median(rounds_of(position, capability, salience, rounds)[-1], weight)


def rounds_of(position: np.ndarray, capability: np.ndarray, salience: np.ndarray,
              rounds: int = ROUNDS) -> list[np.ndarray]:
    """[x_0, x_1, ..., x_rounds]: the positions (R, n, K) at the start and after each round."""
    x = np.asarray(position, dtype=float)
    s = np.asarray(salience, dtype=float)
    weight = np.asarray(capability, dtype=float)[:, None] * s
    n_draws, n, n_issues = x.shape
    step = max(1, _CHUNK_ELEMENTS // max(1, n * n * n_issues))
    chunks = [_play(x[lo:lo + step], weight, s, rounds) for lo in range(0, n_draws, step)]
    return [np.concatenate(states, axis=0) for states in zip(*chunks)]


def _play(x: np.ndarray, weight: np.ndarray, s: np.ndarray, rounds: int) -> list[np.ndarray]:
    """The positions of a chunk of draws at the start and after each round."""
    voter = _voters(weight)
    lo = np.where(voter, x, np.inf).min(axis=1, keepdims=True)
    span = np.where(voter, x, -np.inf).max(axis=1, keepdims=True) - lo
    scale = np.where(span > 0, span, 1.0)  # (R, 1, K)
    history = [x]
    for _ in range(rounds):
        x = _round(x, weight, s, lo, scale)
        history.append(x)
    return history


def _voters(weight: np.ndarray) -> np.ndarray:
    """(n, K) the actors that count on each issue: those with weight, or all where none has any."""
    has = weight > 0
    return has | ~has.any(axis=0)


def _round(x: np.ndarray, weight: np.ndarray, s: np.ndarray, lo: np.ndarray,
           scale: np.ndarray) -> np.ndarray:
    """One round: challenges, offers and the accepted moves (steps 1-7)."""
    u = np.clip((x - lo) / scale, 0.0, 1.0)  # positions on the normalised [0, 1] issue scale
    d = np.abs(u[:, :, None, :] - u[:, None, :, :])  # (R, i, j, K)
    mu = np.clip((rules.weighted_median(x, weight)[:, None, :] - lo) / scale, 0.0, 1.0)
    d_mu = np.abs(u - mu)  # (R, i, K)
    t = 0.5 + 0.5 * np.sign(d - d_mu[:, :, None, :])
    game = (_log_bases(d, d_mu), _success(u, d, weight), t, s)
    risk = _risk(_eu(1.0, *game), weight)  # (R, i, K)
    own = _eu(risk[:, :, None, :], *game)  # E^i U_ij
    seen = _eu(risk[:, None, :, :], *game).swapaxes(1, 2)  # E^i U_ji at [i, j]
    return _accept(x, own, seen, d, weight)


def _success(u: np.ndarray, d: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(R, i, j, K) P^i_ij = sum_k max(v_k^ij, 0) / sum_k |v_k^ij|, in closed form: with
    F(y) = sum_k w_k |u_k - y|, D_i = F(u_i) and m_ij the midpoint of i and j,
    sum_k |v_k^ij| = 2 F(m_ij) + W d_ij - D_i - D_j and sum_k v_k^ij = D_j - D_i
    (|v_k| = w_k min(2 |u_k - m|, d_ij), and min(a, b) = a + b - max(a, b))."""
    total = weight.sum(axis=0)  # W (K,)
    d_sum = (weight[None, :, None, :] * d).sum(axis=1)  # D (R, i, K)
    at_mid = _distance_sum(u, weight, (u[:, :, None, :] + u[:, None, :, :]) / 2)
    votes = 2 * at_mid + total * d - d_sum[:, :, None, :] - d_sum[:, None, :, :]
    pro = at_mid + total * d / 2 - d_sum[:, :, None, :]
    tiny = 1e-12 * np.maximum(total, 1e-300)
    return np.clip(np.divide(pro, votes, out=np.full(pro.shape, 0.5), where=votes > tiny), 0.0, 1.0)


def _distance_sum(u: np.ndarray, weight: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(R, i, j, K) F(y) = sum_k w_k |u_k - y| per draw and issue, from prefix sums over the sorted
    positions: one searchsorted for all draws and issues, rows kept apart by an offset of 4."""
    n_draws, n, n_issues = u.shape
    rows = n_draws * n_issues
    order = np.argsort(u, axis=1)
    ranked = np.take_along_axis(u, order, axis=1).transpose(0, 2, 1).reshape(rows, n)
    w = np.take_along_axis(np.broadcast_to(weight, u.shape), order, axis=1)
    w = w.transpose(0, 2, 1).reshape(rows, n)
    zero = np.zeros((rows, 1))
    cum_w = np.concatenate([zero, np.cumsum(w, axis=1)], axis=1)
    cum_wu = np.concatenate([zero, np.cumsum(w * ranked, axis=1)], axis=1)
    query = y.transpose(0, 3, 1, 2).reshape(rows, n * n)
    offset = 4.0 * np.arange(rows)[:, None]
    below = np.searchsorted((ranked + offset).ravel(), (query + offset).ravel()).reshape(rows, -1)
    below -= n * np.arange(rows)[:, None]  # number of actors left of y in its row
    w_left, wu_left = np.take_along_axis(cum_w, below, 1), np.take_along_axis(cum_wu, below, 1)
    f = query * (2 * w_left - cum_w[:, -1:]) - (2 * wu_left - cum_wu[:, -1:])
    return f.reshape(n_draws, n_issues, n, n).transpose(0, 2, 3, 1)


def _log_bases(d: np.ndarray, d_mu: np.ndarray) -> tuple[np.ndarray, ...]:
    """log z of the four utilities' arguments (win, lose, better, worse): U = 2 - 4 exp(r log z), so
    the logarithms are taken once per round for the three risk profiles (r = 1, own, seen)."""
    both = d_mu[:, :, None, :] + d
    with np.errstate(divide="ignore"):  # z = 0 (d = 1 on a win): log 0 = -inf, and exp(r * -inf) = 0
        return tuple(np.log(z) for z in (0.5 - 0.5 * d, 0.5 + 0.5 * d, 0.5 - 0.25 * both, 0.5 + 0.25 * both))


def _eu(r: np.ndarray | float, logs: tuple[np.ndarray, ...], p: np.ndarray, t: np.ndarray,
        s: np.ndarray) -> np.ndarray:
    win, lose, better, worse = (2.0 - 4.0 * np.exp(r * z) for z in logs)
    status_quo = 2.0 - 4.0 * 0.5 ** r
    s_j = s[None, None, :, :]
    return (s_j * (p * win + (1 - p) * lose) + (1 - s_j) * win
            - Q * status_quo - (1 - Q) * (t * better + (1 - t) * worse))


def _risk(eu: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(R, i, K) r_i in [0.5, 2] from the security of i's position against the others' challenges."""
    n = eu.shape[1]
    threat = np.where((weight[None, :, None, :] > 0) & ~np.eye(n, dtype=bool)[None, :, :, None], eu, 0.0)
    security = threat.sum(axis=1)  # S_i = sum_j EU_ji
    voter = _voters(weight)[None]
    hi = np.where(voter, security, -np.inf).max(axis=1, keepdims=True)
    lo = np.where(voter, security, np.inf).min(axis=1, keepdims=True)
    spread = hi - lo
    big_r = np.divide(2 * security - hi - lo, spread, out=np.zeros_like(security), where=spread > 0)
    big_r = np.clip(big_r, -1.0, 1.0)  # an actor without weight may lie outside the voters' span
    return (1 - big_r / 3) / (1 + big_r / 3)


def _accept(x: np.ndarray, own: np.ndarray, seen: np.ndarray, d: np.ndarray,
            weight: np.ndarray) -> np.ndarray:
    """(R, n, K) the new positions: each actor takes the offer that moves it least (steps 6-7)."""
    offered = (own > 0) & ((seen <= 0) | (own > seen)) & (d > 0) & (weight[None, :, None, :] > 0)
    share = np.divide(-seen, own, out=np.ones_like(own), where=offered & (seen <= 0))
    share = np.minimum(share, 1.0)
    x_i, x_j = x[:, :, None, :], x[:, None, :, :]
    offer = np.where(share < 1, x_j + share * (x_i - x_j), x_i)  # (R, i, j, K): where i would put j
    move = np.where(offered, np.abs(offer - x_j), np.inf)
    least = move.min(axis=1, keepdims=True)
    best = offered & (move <= least + MOVE_TOL)
    count = best.sum(axis=1)
    pulled = (offer * best).sum(axis=1) / np.maximum(count, 1)
    return np.where(count > 0, pulled, x)
