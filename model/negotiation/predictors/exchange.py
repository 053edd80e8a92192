"""The exchange model of collective decision making: actors trade voting positions across issues
(Stokman & van Oosten 1994, "The exchange of voting positions: an object-oriented model of policy
networks", in Bueno de Mesquita & Stokman (eds.), European Community Decision Making), with the
"equal gain" exchange rate of the Decide exchange model (Stokman, Van Assen et al.; implemented by
J. Draaijer in github.com/foarsitter/decide-exchange-model, decide/model/equalgain.py and
calculations.py, and in its R prototype github.com/foarsitter/equal-gain, R/ExchangePair.R).

Notation: capability c_i, salience s_ik, position x_ik; weight share a_ik = c_i s_ik / sum_m c_m s_mk;
expected outcome (the compromise, Decide's "NBS") O_k = sum_i a_ik x_ik. An actor moving dx on k
moves O_k by a_ik dx.

Steps, per draw, per round:
1. O_k from the round-start positions.
2. Candidate exchange (i, j, p, q): i demands p and supplies q, j demands q and supplies p. Feasible
   when i and j are strictly on opposite sides of O_p and of O_q, s_ip s_jq > s_iq s_jp (i cares
   relatively more about p than j does) and both suppliers carry weight (a_jp, a_iq > 0).
3. Equal gain: gain_i = s_ip dO_p - s_iq dO_q equals gain_j = s_jq dO_q - s_jp dO_p iff
   dO_q = dO_p (s_ip + s_jp) / (s_iq + s_jq); the gain is then dO_p (s_ip s_jq - s_iq s_jp) / (s_iq + s_jq).
   The outcome shift on a supply issue is at most what the supplier moving all the way to the
   demander's position gives (a_jp |x_ip - x_jp|), and at most the distance from O_p to the
   demander's position (Decide's check_nbs: the outcome must not pass the demander). The binding
   side takes its maximum; the other side's shift follows from the equal-gain rate.
4. Execute exchanges in decreasing order of gain; a supplier moves dO / a toward the demander.
   An actor-issue pair shifts at most once per round, so every other offer to supply with it is dropped.
5. Next round from the new positions, until no exchange is feasible or `rounds` rounds have run.
The forecast is O_k of the final positions.

Ambiguities and choices made:
- Decide recalculates the remaining exchanges of an actor-issue pair that has moved from its new
  position (and tracks the demanders' updated positions); here gains are fixed at the round start
  and such exchanges are dropped instead ("each actor-issue pair changes at most once per round").
  An actor may still demand an issue it supplied, as in Decide's published output. So the round's
  first exchanges, and every later one Decide does not recalculate, are Decide's.
- Between rounds Decide's new start position is a mix of the old position and the voting
  position (salience and fixed weights 0.4, 0.1); here the voting positions are adopted in full.
- Decide stops after a set number of rounds; ROUNDS = 10 here, stopping earlier when nothing trades.
- An actor exactly at O_k is on neither side and does not trade on k. Ties in gain go to the first
  exchange in (i, j, issue pair) order. Exchanges with gain <= GAIN_TOL (1e-10, Decide's) are void.
- Decide's randomised exchange rates and its demand-side position updates are left out.
- An issue on which nobody carries weight (all c_i s_ik = 0) has no compromise: its forecast is the
  plain mean of the positions. With K = 1 nothing can be traded and the forecast is O.
"""

from __future__ import annotations

import numpy as np

ROUNDS = 10
GAIN_TOL = 1e-10
_CHUNK_ELEMENTS = 1_000_000  # candidate array size per chunk of draws: a few such arrays stay < 200 MB


def forecast(position: np.ndarray, capability: np.ndarray, salience: np.ndarray,
             rounds: int = ROUNDS) -> np.ndarray:
    """(R, K) the exchange model's prediction per issue: the expected outcome (capability x
    salience weighted mean) of the positions after the exchanges.
    position (R, n, K) on a 0-100 scale, R independent draws (R=1: point codes);
    capability (n,) >= 0; salience (n, K) in [0, 1]."""
    x = np.asarray(position, dtype=float)
    s = np.asarray(salience, dtype=float)
    weight = np.asarray(capability, dtype=float)[:, None] * s
    total = weight.sum(axis=0)
    share = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
    n_draws, n, n_issues = x.shape
    p, q = np.triu_indices(n_issues, 1)
    out = np.empty((n_draws, n_issues))
    step = max(1, _CHUNK_ELEMENTS // max(1, n * n * p.size))
    for lo in range(0, n_draws, step):
        y = x[lo:lo + step].copy()
        for _ in range(rounds if p.size else 0):
            if not _exchange_round(y, share, s, p, q):
                break
        out[lo:lo + step] = np.where(total > 0, _outcome(y, share), y.mean(axis=1))
    return out


def _outcome(x: np.ndarray, share: np.ndarray) -> np.ndarray:
    """(R, K) the weighted compromise O_k."""
    return np.einsum("rnk,nk->rk", x, share)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den = 0 (only infeasible exchanges have a zero denominator)."""
    num, den = np.broadcast_arrays(num, den)
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def _candidates(x: np.ndarray, share: np.ndarray, s: np.ndarray, p: np.ndarray,
                q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gain, dO_p), each (R, i, j, pair): i demands p[pair] and supplies q[pair], j the reverse;
    gain is -inf where the exchange is infeasible."""
    o = _outcome(x, share)
    o_p, o_q = o[:, None, None, p], o[:, None, None, q]
    x_ip, x_jp = x[:, :, None, p], x[:, None, :, p]
    x_iq, x_jq = x[:, :, None, q], x[:, None, :, q]
    s_ip, s_jp, s_iq, s_jq = s[:, None, p], s[None, :, p], s[:, None, q], s[None, :, q]
    a_jp, a_iq = share[None, :, p], share[:, None, q]
    cross = s_ip * s_jq - s_iq * s_jp
    feasible = (((x_ip - o_p) * (x_jp - o_p) < 0) & ((x_iq - o_q) * (x_jq - o_q) < 0)
                & (cross > 0) & (a_jp > 0) & (a_iq > 0))
    max_p = np.minimum(a_jp * np.abs(x_ip - x_jp), np.abs(x_ip - o_p))
    max_q = np.minimum(a_iq * np.abs(x_jq - x_iq), np.abs(x_jq - o_q))
    d_op = np.minimum(max_p, max_q * _ratio(s_iq + s_jq, s_ip + s_jp))
    gain = np.where(feasible, d_op * _ratio(cross, s_iq + s_jq), -np.inf)
    return gain, d_op


def _exchange_round(y: np.ndarray, share: np.ndarray, s: np.ndarray, p: np.ndarray,
                    q: np.ndarray) -> bool:
    """Execute one round's exchanges in place on y (R, n, K), best gain first; True if any ran."""
    gain, d_op = _candidates(y, share, s, p, q)
    start = y.copy()
    n_draws, n, _, n_pairs = gain.shape
    traded = False
    while True:
        flat = gain.reshape(n_draws, -1)
        best = flat.argmax(axis=1)
        live = flat[np.arange(n_draws), best] > GAIN_TOL
        if not live.any():
            return traded
        r = np.flatnonzero(live)
        i, j, k = np.unravel_index(best[live], (n, n, n_pairs))
        ip, iq = p[k], q[k]
        dp = d_op[r, i, j, k]
        dq = dp * (s[i, ip] + s[j, ip]) / (s[i, iq] + s[j, iq])
        y[r, j, ip] += np.sign(start[r, i, ip] - start[r, j, ip]) * dp / share[j, ip]
        y[r, i, iq] += np.sign(start[r, j, iq] - start[r, i, iq]) * dq / share[i, iq]
        _retire(gain, r, j, ip, p, q)
        _retire(gain, r, i, iq, p, q)
        traded = True


def _retire(gain: np.ndarray, r: np.ndarray, actor: np.ndarray, issue: np.ndarray,
            p: np.ndarray, q: np.ndarray) -> None:
    """Drop every offer of `actor` to supply `issue` in draws r: the pair has shifted this round."""
    as_j = (p[None, :] == issue[:, None])[:, None, :]  # the actor as j supplies p
    gain[r, :, actor, :] = np.where(as_j, -np.inf, gain[r, :, actor, :])
    as_i = (q[None, :] == issue[:, None])[:, None, :]  # the actor as i supplies q
    gain[r, actor, :, :] = np.where(as_i, -np.inf, gain[r, actor, :, :])
