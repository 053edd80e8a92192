"""The negotiation round's rules, written once over arrays and used by every engine.

Leading axis R = replications (the Mesa engine runs a batch of one), then n members, then K
issues. Every rule is a pure function of arrays plus, where it needs randomness, uniform draws
handed in by the caller (see `seeds.py`), so updates are synchronous and never depend on agent
order. `play_round` is the one composition of the rules; docs/ODD.md describes it in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import Params
from .seeds import logistic


@dataclass
class State:
    """What changes during a negotiation, for R replications."""

    ideal: np.ndarray  # (R, n, K) anchors of the Friedkin-Johnsen update (moved by side payments)
    position: np.ndarray  # (R, n, K) stated positions
    objected: np.ndarray  # (R, n) bool: objected to the last draft
    paid: np.ndarray  # (R, n) bool: has already traded its veto for a side payment
    on_table: np.ndarray  # (R, K) bool: issues still in the package

    @classmethod
    def start(cls, ideal: np.ndarray) -> State:
        r, n, k = ideal.shape
        return cls(ideal=ideal.copy(), position=ideal.copy(), objected=np.zeros((r, n), bool),
                   paid=np.zeros((r, n), bool), on_table=np.ones((r, k), bool))

    def take(self, rows: np.ndarray) -> State:
        """The sub-batch of replications `rows` (an index or boolean mask)."""
        return State(self.ideal[rows], self.position[rows], self.objected[rows], self.paid[rows],
                     self.on_table[rows])


@dataclass
class RoundResult:
    """What one round decided, per replication."""

    draft: np.ndarray  # (R, K) the chair's draft package
    accepts: np.ndarray  # (R, n) bool: member accepted (non-voting members count as accepting)
    consensus: np.ndarray  # (R,) bool: every voting member accepted the whole package
    finished: np.ndarray  # (R,) bool: consensus, or the deadline passed
    agreed: np.ndarray  # (R, K) bool: issue agreed (all of them on consensus; after the fallback, the survivors)
    holdouts: np.ndarray  # (R, n) bool: objectors of this round's vote on the full package
    paid_now: np.ndarray  # (R, n) bool: side payments made after this round's failed vote
    paid_issue: np.ndarray  # (R, n) int: issue index each side payment bought (-1: none)


# ---------------------------------------------------------------- sums that do not depend on R
# Both engines must agree to the last bit, so no reduction may sum in an order that depends on
# how many replications run together. These two helpers fix the order: a matrix product per
# replication and issue (the same BLAS call for a batch of one or of a million), and issue by
# issue in file order.
def member_sum(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(R, K) sum over members of weight_ik * values_rik; weight is (n, K) or (R, n, K)."""
    rows = np.swapaxes(values, 1, 2)[:, :, None, :]  # (R, K, 1, n)
    cols = np.swapaxes(weight, -1, -2)[..., None]  # (K, n, 1) or (R, K, n, 1)
    return np.matmul(rows, cols)[..., 0, 0]


def issue_sum(values: np.ndarray) -> np.ndarray:
    """(R, n) sum over issues, in file order."""
    total = values[..., 0].copy()
    for k in range(1, values.shape[-1]):
        total += values[..., k]
    return total


# ---------------------------------------------------------------- the rules
def compromise(position: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(R, K) the compromise model: per issue, the mean of positions weighted by `weight` (n, K),
    sum_i w_ik p_ik / sum_i w_ik; the plain mean where all weights on an issue are zero."""
    total = weight.sum(axis=0)
    share = np.where(total > 0, weight / np.where(total > 0, total, 1.0), 1.0 / weight.shape[0])
    return member_sum(position, share)


def weighted_median(position: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(R, K) per issue, the position at which the cumulative `weight` (n, K), positions in
    ascending order, first reaches half the total; where it reaches exactly half at a position, the
    midpoint of that position and the next higher one (so equal weights give the ordinary median).
    Members with zero weight do not count; equal weights for all where all weights are zero.
    A validation baseline (the median voter of the weighted vote), not used by the rules."""
    position = np.asarray(position, dtype=float)
    total = weight.sum(axis=0)
    weight = np.where(total > 0, weight, 1.0)  # (n, K)
    order = np.argsort(position, axis=1, kind="stable")  # (R, n, K)
    ranked = np.take_along_axis(position, order, axis=1)
    w = np.take_along_axis(np.broadcast_to(weight, position.shape), order, axis=1)
    cum = np.cumsum(w, axis=1)
    half = cum[:, -1:, :] / 2
    at = (cum >= half * (1 - 1e-12)).argmax(axis=1)  # (R, K) first position reaching half
    lower = np.take_along_axis(ranked, at[:, None, :], axis=1)[:, 0, :]
    exact = np.isclose(np.take_along_axis(cum, at[:, None, :], axis=1)[:, 0, :], half[:, 0, :], rtol=1e-12, atol=0)
    # the next position with positive weight above `at` (a zero-weight member is not a voter)
    later = (np.arange(position.shape[1])[None, :, None] > at[:, None, :]) & (w > 0)
    has_next = later.any(axis=1)
    nxt = np.take_along_axis(ranked, later.argmax(axis=1)[:, None, :], axis=1)[:, 0, :]
    return np.where(exact & has_next, (lower + nxt) / 2, lower)


def plain_mean(position: np.ndarray, voting: np.ndarray) -> np.ndarray:
    """(R, K) the unweighted mean of the voting members' positions: a validation baseline."""
    mask = np.broadcast_to(np.asarray(voting, dtype=float)[:, None], np.shape(position)[1:])
    return compromise(np.asarray(position, dtype=float), mask)


def draft_package(position: np.ndarray, weight: np.ndarray, salience: np.ndarray, objected: np.ndarray,
                  objector_pull: float) -> np.ndarray:
    """Chair's draft: the salience x capability compromise of current positions (voting members),
    moved the fraction `objector_pull` of the way toward where last round's objectors stand
    (their salience-weighted mean position, per issue). objector_pull = 0 gives the compromise."""
    draft = compromise(position, weight)
    if objector_pull == 0 or not objected.any():
        return draft
    mask = objected[:, :, None].astype(float)
    care = member_sum(np.broadcast_to(mask, position.shape), salience)  # (R, K) objectors' salience
    where_they_stand = member_sum(position * mask, salience) / np.where(care > 0, care, 1.0)
    return np.where(care > 0, draft + objector_pull * (where_they_stand - draft), draft)


def package_distance(draft: np.ndarray, position: np.ndarray, salience_share: np.ndarray,
                     on_table: np.ndarray) -> np.ndarray:
    """(R, n) salience-weighted mean gap |draft_k - p_ik| in scale points, with `salience_share`
    s_ik / sum_k s_ik over all issues: an issue taken off the table counts as a zero gap, so
    dropping issues can only shrink the distance."""
    gaps = np.abs(draft[:, None, :] - position)
    gaps *= salience_share[None, :, :]
    if not on_table.all():
        gaps *= on_table[:, None, :]
    return issue_sum(gaps)


def acceptance_band(draft: np.ndarray, position: np.ndarray, salience_share: np.ndarray,
                    allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, n, K) low and high ends of the levels on issue k a member would accept, the rest of the
    draft as it is and without noise: its position +- what remains of its acceptable distance
    after the other issues' gaps, over its share of salience on k. NaN where nothing on k would do."""
    r, n, k = position.shape
    low, high = np.full((r, n, k), np.nan), np.full((r, n, k), np.nan)
    for issue in range(k):
        others = np.ones((r, k), bool)
        others[:, issue] = False
        spare = allowed[None, :] - package_distance(draft, position, salience_share, others)
        reach = np.divide(spare, salience_share[None, :, issue], out=np.full_like(spare, np.inf),
                          where=salience_share[None, :, issue] > 0)
        ok = spare >= 0
        low[:, :, issue] = np.where(ok, np.maximum(position[:, :, issue] - reach, 0.0), np.nan)
        high[:, :, issue] = np.where(ok, np.minimum(position[:, :, issue] + reach, 100.0), np.nan)
    return low, high


def acceptable_distance(round_: int, rounds: int, tolerance: np.ndarray, reservation: np.ndarray,
                        concession: np.ndarray) -> np.ndarray:
    """(n,) Faratin time-dependent concession: from `tolerance` in round 1 to `reservation` at the
    deadline, along tolerance + (reservation - tolerance) * tau ** (1 / beta), tau = (t-1)/(T-1).
    beta < 1 concedes late (Boulware), beta > 1 early (Conceder)."""
    tau = 1.0 if rounds == 1 else (round_ - 1) / (rounds - 1)
    return tolerance + (reservation - tolerance) * tau ** (1.0 / concession)


def votes(distance: np.ndarray, allowed: np.ndarray, noise: np.ndarray | float, voting: np.ndarray) -> np.ndarray:
    """(R, n) accept when distance <= allowed + noise (logit acceptance); non-voting members never block."""
    return (distance <= allowed[None, :] + noise) | ~voting[None, :]


def acceptance_noise(scale: float, u: np.ndarray | None) -> np.ndarray | float:
    """Logistic noise with the given scale (P(accept) = logistic((allowed - distance) / scale))."""
    return 0.0 if scale == 0 or u is None else scale * logistic(u)


def main_grievance(draft: np.ndarray, position: np.ndarray, salience: np.ndarray, on_table: np.ndarray) -> np.ndarray:
    """(R, n) index of the issue contributing most to each member's distance from the draft."""
    gaps = np.abs(draft[:, None, :] - position) * salience[None, :, :]
    return np.where(on_table[:, None, :], gaps, -1.0).argmax(axis=2)


def side_payments(state: State, draft: np.ndarray, objectors: np.ndarray, linkage: np.ndarray,
                  salience: np.ndarray, u: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Linkage: an objector that has not been paid before sells its veto with probability `linkage`
    per round. It is compensated off the table (e.g. arms sales, EU backing) and in return gives up
    its demand on its main grievance: its ideal point and position on that issue move to the draft.
    Mutates `state`; returns (who was paid, which issue) as (R, n) arrays."""
    r, n = objectors.shape
    issue = np.full((r, n), -1)
    if u is None:
        return np.zeros((r, n), bool), issue
    paid = objectors & ~state.paid & (u < linkage[None, :])
    rows, members = np.nonzero(paid)
    if len(rows):
        payers = state.take(rows)  # only the payers' grievances are needed
        grievance = main_grievance(draft[rows], payers.position, salience, payers.on_table)
        cols = grievance[np.arange(len(rows)), members]
        state.ideal[rows, members, cols] = draft[rows, cols]
        state.position[rows, members, cols] = draft[rows, cols]
        state.paid |= paid
        issue[rows, members] = cols
    return paid, issue


def friedkin_johnsen(position: np.ndarray, ideal: np.ndarray, influence: np.ndarray,
                     anchoring: np.ndarray) -> np.ndarray:
    """p(t+1) = Lambda W p(t) + (I - Lambda) x, with Lambda = diag(1 - anchoring), per issue."""
    susceptible = 1.0 - anchoring
    moved = np.matmul(susceptible[:, None] * influence, position)  # (Lambda W) @ p, one product per replication
    moved += anchoring[None, :, None] * ideal
    return moved


def drop_contested(draft: np.ndarray, position: np.ndarray, salience: np.ndarray, on_table: np.ndarray,
                   accepts_on) -> np.ndarray:
    """Deadline fallback 'drop_contested': while some voting member objects and issues remain, drop
    the issue carrying the largest salience-weighted gap summed over the objectors, then re-vote with
    the same noise (`accepts_on(on_table) -> accepts`). Dropping only shrinks distances, so this
    ends. Returns the issues that survive (all False where even an empty package is refused)."""
    on_table = on_table.copy()
    accepts = accepts_on(on_table)
    gaps = np.abs(draft[:, None, :] - position) * salience[None, :, :]
    while True:
        failing = ~accepts.all(axis=1) & on_table.any(axis=1)
        if not failing.any():
            return on_table & accepts.all(axis=1)[:, None]
        burden = member_sum(gaps * ~accepts[:, :, None], np.ones(gaps.shape[1:]))
        worst = np.where(on_table, burden, -1.0).argmax(axis=1)
        rows = np.nonzero(failing)[0]
        on_table[rows, worst[rows]] = False
        accepts[rows] = accepts_on(on_table)[rows]


# ---------------------------------------------------------------- one round
def play_round(p: Params, state: State, round_: int, accept_u: np.ndarray | None,
               linkage_u: np.ndarray | None) -> RoundResult:
    """Round `round_` (1-based) for every replication in `state`; mutates `state` for those that go on.

    1. the chair drafts; 2. voting members accept or object; 3. all accept -> consensus;
    4. else, before the deadline, objectors may sell their veto (linkage), then positions move
    (Friedkin-Johnsen); 5. at the deadline, the fallback decides what survives.
    """
    draft = draft_package(state.position, p.draft_weight, p.salience, state.objected, p.objector_pull)
    noise = acceptance_noise(p.acceptance_noise, accept_u)
    allowed = acceptable_distance(round_, p.rounds, p.tolerance, p.reservation, p.concession)

    def accepts_on(on_table: np.ndarray) -> np.ndarray:
        distance = package_distance(draft, state.position, p.salience_share, on_table)
        return votes(distance, allowed, noise, p.voting)

    accepts = accepts_on(state.on_table)
    consensus = accepts.all(axis=1)
    holdouts = ~accepts
    agreed = np.where(consensus[:, None], state.on_table, False)
    r, n = holdouts.shape
    paid_now, paid_issue = np.zeros((r, n), bool), np.full((r, n), -1)

    deadline = round_ >= p.rounds
    if deadline:
        if p.fallback == "drop_contested":
            survivors = drop_contested(draft, state.position, p.salience, state.on_table, accepts_on)
            agreed = np.where(consensus[:, None], agreed, survivors)
        finished = np.ones(r, bool)
    else:
        going_on = ~consensus
        if going_on.any():
            # consensus rows have no objectors, so nobody there is paid; their positions stay put
            paid_now, paid_issue = side_payments(state, draft, holdouts, p.linkage, p.salience, linkage_u)
            moved = friedkin_johnsen(state.position, state.ideal, p.influence, p.anchoring)
            state.position = moved if going_on.all() else np.where(going_on[:, None, None], moved, state.position)
            state.objected = holdouts
        finished = consensus
    return RoundResult(draft=draft, accepts=accepts, consensus=consensus, finished=finished, agreed=agreed,
                       holdouts=holdouts, paid_now=paid_now, paid_issue=paid_issue)


def needs_linkage_draws(p: Params) -> bool:
    return bool((p.linkage > 0).any())
