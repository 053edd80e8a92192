"""The negotiation's rules, written once over arrays: the Mesa agents call them on their own slices
(an Ally on its K issues, the Chair on all members of its one replication) and the ensemble on
thousands of replications at once (leading axis R, then n members, then K issues).

Notation (docs/ODD.md, "Submodels"): x_i a member's position (its current preference), w_ik its
salience shares (summing to 1 over level and choice issues), q the status quo, kappa_i what a
failed summit costs it, D_i(d) = sum_k w_ik |d_k - x_ik| its distance from a draft d on the level
issues, G_i(o) = sum_c w_ic (u_ic(o_c) - u_ic(q_c)) what the options o chosen on the choice issues
give it against their fallbacks (minus infinity if it vetoes one of them), and

    m_i(d, o) = D_i(q) + kappa_i(t) + transfers_i + G_i(o) - D_i(d)      (its acceptance margin).

Arrays over "the agenda" have K + C columns: the level issues, then the choice issues.

A member accepts when m_i(d) + noise >= 0. Every rule is a pure function; the randomness comes in
as uniform draws addressed by (seed, replication, vote, member) (`seeds.py`), so no result depends
on agent order, engine, batch or worker.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import drafting
from .seeds import logistic

NONE = -1  # "no issue" in integer issue arrays


# ---------------------------------------------------------------- sums in a fixed order
# Both engines must give the same numbers, so no reduction may sum in an order that depends on
# how many replications run together: over issues, issue by issue in file order; over members, a
# matrix product per replication and issue (the same call for a batch of one or of a million).
def issue_sum(values: np.ndarray) -> np.ndarray | float:
    """Sum over the last axis (issues), in file order: the same additions for one member's K issues
    (as Python floats, which skips the array overheads of an agent's call) as for a batch."""
    if np.shape(values)[-1] == 0:  # an agenda of choice issues only
        return 0.0 if np.ndim(values) == 1 else np.zeros(np.shape(values)[:-1])
    if np.ndim(values) == 1:
        items = values.tolist()
        total = items[0]
        for item in items[1:]:
            total += item
        return total
    total = values[..., 0].copy()
    for k in range(1, values.shape[-1]):
        total += values[..., k]
    return total


def member_sum(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(R, K) sum over members of weight_ik * values_rik; weight is (n, K) or (R, n, K)."""
    rows = np.swapaxes(values, 1, 2)[:, :, None, :]  # (R, K, 1, n)
    cols = np.swapaxes(weight, -1, -2)[..., None]  # (K, n, 1) or (R, K, n, 1)
    return np.matmul(rows, cols)[..., 0, 0]


# ---------------------------------------------------------------- what a member weighs
def distance(draft: np.ndarray, position: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """D_i(d) = sum_k w_ik |d_k - x_ik|: salience-weighted points between a package and a position."""
    return issue_sum(weight * np.abs(draft - position))


def bound_by(draft: np.ndarray, carved: np.ndarray, status_quo: np.ndarray) -> np.ndarray:
    """The package as it binds a member: on an issue where it has an exemption (a carve-out), the
    status quo stands for it."""
    return np.where(carved, status_quo, draft) if carved.any() else draft


def margin(draft: np.ndarray, position: np.ndarray, weight: np.ndarray, status_quo: np.ndarray,
           failure_cost: np.ndarray | float, transfers: np.ndarray | float) -> np.ndarray:
    """m_i(d) = D_i(q) + kappa_i + transfers_i - D_i(d): how much better the member finds the draft
    than a failed summit (transfers: payments received minus the costs of others' exemptions)."""
    return distance(status_quo, position, weight) + failure_cost + transfers - distance(draft, position, weight)


def accepts(margin_: np.ndarray, noise: np.ndarray | float, voting: np.ndarray | bool) -> np.ndarray:
    """Accept when margin + noise >= 0; a non-voting member (an invitee) never blocks."""
    return (margin_ + noise >= 0) | ~np.asarray(voting)


def acceptance_noise(scale: float, u: np.ndarray | None) -> np.ndarray | float:
    """Logistic noise of the given scale, P(accept) = Lambda(margin / scale), from uniforms u."""
    return 0.0 if scale == 0 or u is None else scale * logistic(u)


def transfers(payment: np.ndarray, carved: np.ndarray, cost: np.ndarray, exempted: np.ndarray,
              on_table: np.ndarray | bool = True) -> np.ndarray:
    """What a member gets besides the text: the payments for the vetoes it sold (`payment` over the
    agenda, K + C), minus the cost of the exemptions others hold (on the K level issues), on the
    issues still on the table (a contract or an exemption on a dropped issue lapses). `exempted`
    counts the exemptions granted per issue (broadcast against `carved`, like `on_table`)."""
    if not np.any(exempted):  # the common case, and the same sums: no exemption anywhere, no cost borne
        return issue_sum(payment if on_table is True else np.where(on_table, payment, 0.0))
    others = exempted - carved
    borne = np.where(others > 0, others * np.where(np.isfinite(cost), cost, 0.0), 0.0)
    net = payment - np.concatenate([borne, np.zeros(payment.shape[:-1] + (payment.shape[-1] - borne.shape[-1],))],
                                   axis=-1)
    return issue_sum(np.where(on_table, net, 0.0))


def failure_cost_at(failure_cost: np.ndarray, summit: bool, preparatory_share: float) -> np.ndarray:
    """kappa_i(t): the full cost of failure at the summit, `preparatory_share` of it before."""
    return failure_cost if summit else preparatory_share * failure_cost


def grievance(draft: np.ndarray, position: np.ndarray, weight: np.ndarray, status_quo: np.ndarray) -> np.ndarray:
    """Per issue, how much worse than the status quo the draft is for the member (salience-weighted
    points; negative where it gains)."""
    return weight * (np.abs(draft - position) - np.abs(status_quo - position))


def acceptance_band(draft: np.ndarray, position: np.ndarray, weight: np.ndarray, status_quo: np.ndarray,
                    failure_cost: np.ndarray | float, transfers: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per issue: the levels a member accepts there (noise aside) with the rest of the
    draft as it stands, i.e. where its margin stays >= 0; NaN where no level will do. The band's
    ends are its reversion point on that issue."""
    spare = np.asarray(margin(draft, position, weight, status_quo, failure_cost, transfers))[..., None] + weight * np.abs(
        draft - position)
    reach = np.divide(spare, weight, out=np.full(np.shape(spare), np.inf), where=weight > 0)
    ok = spare >= 0
    low = np.where(ok, np.clip(position - reach, 0.0, 100.0), np.nan)
    high = np.where(ok, np.clip(position + reach, 0.0, 100.0), np.nan)
    return low, high


# ---------------------------------------------------------------- the chair's draft
class Choices(NamedTuple):
    """The choice issues as the chair drafts them, for the members given (R replications)."""

    gain: np.ndarray  # (n, C, O) each member's gain from each option against the fallback
    veto: np.ndarray  # (n, C, O) the options each member blocks
    lifted: np.ndarray  # (R, n, C) the vetoes it has sold
    valid: np.ndarray  # (C, O) real options (not padding)
    fallback: np.ndarray  # (C,) the option that stands if none is agreed
    settled: np.ndarray  # (R, C) choices a contract has settled (at `start`)
    start: np.ndarray  # (R, C) the options of the last draft

    def allowed(self) -> np.ndarray:
        """(R, C, O) what the chair may propose: real options no unsold veto blocks; on a choice a
        contract settled, that contract's option only."""
        blocks = (self.veto[None] & ~self.lifted[..., None]).any(axis=1)
        contracted = np.arange(self.valid.shape[1]) == self.start[..., None]
        return np.where(self.settled[..., None], contracted, self.valid[None] & ~blocks)

    def without(self, member: int) -> Choices:
        """The same choices with one member left out (what the others want)."""
        return self._replace(gain=np.delete(self.gain, member, axis=0), veto=np.delete(self.veto, member, axis=0),
                             lifted=np.delete(self.lifted, member, axis=1))


def draft(position: np.ndarray, weight: np.ndarray, status_quo: np.ndarray, failure_cost: np.ndarray,
          transfers: np.ndarray, carved: np.ndarray, noise: float, fixed: np.ndarray, start: np.ndarray,
          choices: Choices | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(levels (R, K), options (R, C)): the package that maximises sum_i log P_i(accept),
    P_i = Lambda(m_i / noise), over the members given (the voting ones: every veto counts the same,
    capability does not weigh in). `start` is where the search begins (the previous draft, or the
    status quo); issues settled by a contract (`fixed`, K) stay where `start` has them. A member's
    exempted issue does not enter its margin. With choice issues, the chair first picks each
    choice's option at the starting levels (`_choose`, one choice at a time in file order),
    then searches the levels under those options."""
    x, w, base = _objective(position, weight, status_quo, failure_cost, transfers, carved)
    start = np.array(start, dtype=float)
    options = np.zeros((len(x), 0), np.int64)
    if choices is not None and choices.gain.shape[1]:
        options = np.array(choices.start, dtype=np.int64)
        open_ = np.flatnonzero(~choices.settled.all(axis=0))  # a settled choice keeps its option
        allowed = choices.allowed() if len(open_) else None
        for c in open_:
            options[:, c] = _choose(x, w, base + choice_gain(choices.gain, options, skip=c), choices, allowed, c,
                                    noise, start)
        base = base + choice_gain(choices.gain, options)
    levels = drafting.solve(x, w, np.ascontiguousarray(base, dtype=float), float(noise), np.ascontiguousarray(~fixed),
                            start)
    return levels, options


def _objective(position, weight, status_quo, failure_cost, transfers, carved):
    """The chair's objective as the compiled search takes it: positions x, weights w (0 on a
    member's exempted issues) and each member's base b_i = D_i(q) + kappa_i + transfers_i, less what
    its exemptions take out of D_i(q), so that m_i(d) = b_i - sum_k w_ik |d_k - x_ik|."""
    base = distance(status_quo, position, weight) + failure_cost + transfers
    if carved.any():
        base = base - issue_sum(np.where(carved, weight * np.abs(status_quo - position), 0.0))
        weight = np.where(carved, 0.0, weight)
    return position, np.broadcast_to(weight, position.shape), base  # (the solver copies what it reads)


def _choose(x, w, rest, choices: Choices, allowed, c: int, noise: float, levels) -> np.ndarray:
    """(R,) the option of choice `c` the chair proposes (drafting.choose), the other choices as they are."""
    return drafting.choose(x, w, np.ascontiguousarray(rest, dtype=float), np.ascontiguousarray(choices.gain[:, c, :]),
                           np.ascontiguousarray(allowed[:, c, :]), float(noise), np.ascontiguousarray(levels),
                           int(choices.fallback[c]))


def wanted(position: np.ndarray, weight: np.ndarray, status_quo: np.ndarray, failure_cost: np.ndarray,
           transfers: np.ndarray, carved: np.ndarray, noise: float, fixed: np.ndarray, draft_: np.ndarray,
           member: int, price: np.ndarray) -> np.ndarray:
    """(R, K) what the others want on each issue where a price is on offer for `member`'s veto and no
    contract has settled it: the chair's draft there with the member left out and the rest of the
    package as it stands; NaN on the other issues. `member` indexes the members given."""
    position, carved = np.delete(position, member, axis=-2), np.delete(carved, member, axis=-2)
    weight = np.delete(weight, member, axis=-2)
    failure_cost, transfers = np.delete(failure_cost, member, axis=-1), np.delete(transfers, member, axis=-1)
    out = np.full(draft_.shape, np.nan)
    for issue in np.flatnonzero(price > 0):
        rows = ~fixed[:, issue]
        if not rows.any():
            continue
        rest = np.ones(draft_.shape, bool)
        rest[:, issue] = False  # only this issue moves
        out[rows, issue] = draft(position[rows], weight, status_quo, failure_cost, transfers[rows], carved[rows],
                                 noise, rest[rows], draft_[rows])[0][:, issue]
    return out


def wanted_option(position: np.ndarray, weight: np.ndarray, status_quo: np.ndarray, failure_cost: np.ndarray,
                  transfers: np.ndarray, carved: np.ndarray, noise: float, levels: np.ndarray, choices: Choices,
                  member: int, c: int) -> np.ndarray:
    """(R,) the option the others want on choice `c`: the chair's pick with `member` (an index into the
    members given) left out, its veto with it, the levels and the other choices as they stand."""
    position, carved = np.delete(position, member, axis=-2), np.delete(carved, member, axis=-2)
    weight = np.delete(weight, member, axis=-2)
    failure_cost, transfers = np.delete(failure_cost, member, axis=-1), np.delete(transfers, member, axis=-1)
    others = choices.without(member)
    x, w, base = _objective(position, weight, status_quo, failure_cost, transfers, carved)
    rest = base + choice_gain(others.gain, np.asarray(others.start, dtype=np.int64), skip=c)
    return _choose(x, w, rest, others, others.allowed(), c, noise, levels)


# ---------------------------------------------------------------- linkage: a veto sold for a price
def contract(others_level: np.ndarray, draft_: np.ndarray, position: np.ndarray, weight: np.ndarray,
             status_quo: np.ndarray, issue: np.ndarray, price: np.ndarray,
             choices: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(level, payment) of the contract that buys a member's veto on `issue` (one per row).

    Unpaid, the member accepts on `issue` any level within `spare / w_k` of its position, where
    `spare` is what the rest of the draft (the other levels, and the options chosen: `choices`,
    G_i) leaves it against the status quo (no failure cost: a contract is the alternative to
    failing). The payment buys `price / w_k` more points, up to what
    the others want, C: y* = x_k + sign(C - x_k) * min(|C - x_k|, (spare + price) / w_k). It pays
    only what the level needs, w_k |y* - x_k| - spare (<= price); 0 where no payment is needed or
    even the whole price buys nothing."""
    rows = np.arange(len(issue))
    w_k = np.broadcast_to(weight, position.shape)[rows, issue]
    x_k = position[rows, issue]
    d_k = draft_[rows, issue]
    spare = (distance(status_quo, position, weight) - (distance(draft_, position, weight) - w_k * np.abs(d_k - x_k))
             + choices)
    with np.errstate(over="ignore"):  # a salience near 0 buys unbounded reach: inf is the answer
        reach = np.where(w_k > 0, np.maximum(spare + price, 0.0) / np.where(w_k > 0, w_k, 1.0), np.inf)
    gap = others_level - x_k
    level = x_k + np.sign(gap) * np.minimum(np.abs(gap), reach)
    payment = w_k * np.abs(level - x_k) - spare
    return level, np.where((spare + price >= 0) & (payment > 0), payment, 0.0)


def veto_for_sale(others: np.ndarray, draft_: np.ndarray, position: np.ndarray, weight: np.ndarray,
                  status_quo: np.ndarray, price: np.ndarray, fixed: np.ndarray, choices: np.ndarray | float = 0.0):
    """(issue, level, payment) per row: the veto a member sells, if any. The chair drafts around a
    veto player, so its veto binds the text even when it does not object; the others (`others`:
    the draft they would write without it) buy it with the price on offer where the contract moves
    the text toward them. Of the member's priced issues not yet settled, the one the contract moves
    furthest; issue NONE (payment 0) where no contract moves the text or none needs paying. (`choices`:
    what the options chosen give the member, as in `contract`.)"""
    r, k = draft_.shape
    best, level, payment = np.full(r, NONE), np.zeros(r), np.zeros(r)
    moved = np.zeros(r)
    for issue in range(k):
        on_offer = (np.broadcast_to(price, (r, k))[:, issue] > 0) & ~fixed[:, issue]
        if not on_offer.any():
            continue
        at = np.full(r, issue)
        y, paid = contract(others[:, issue], draft_, position, weight, status_quo, at,
                           np.broadcast_to(price, (r, k))[:, issue], choices)
        toward = (y - draft_[:, issue]) * np.sign(others[:, issue] - draft_[:, issue])
        better = on_offer & (paid > 0) & (toward > moved)
        best, level, payment, moved = (np.where(better, issue, best), np.where(better, y, level),
                                       np.where(better, paid, payment), np.where(better, toward, moved))
    return best, level, payment


# ---------------------------------------------------------------- choice issues
def _taken(table: np.ndarray, options: np.ndarray, c: int) -> np.ndarray:
    """(R, n) table[i, c, options[r, c]]: each member's entry for the option chosen on choice `c`."""
    return table[:, c, :][:, options[:, c]].T


def choice_gain(gain: np.ndarray, options: np.ndarray, skip: int | None = None) -> np.ndarray:
    """G_i(o): (R, n) what the options chosen (R, C) give each member (gain (n, C, O)) against the
    choices' fallbacks, summed over the choice issues in file order (all but choice `skip`)."""
    total = np.zeros((options.shape[0], gain.shape[0]))
    for c in range(gain.shape[1]):
        if c != skip:
            total = total + _taken(gain, options, c)
    return total


def blocked(veto: np.ndarray, lifted: np.ndarray, options: np.ndarray) -> np.ndarray:
    """(R, n) whether a member vetoes an option chosen (veto (n, C, O)), a veto it has not sold
    (lifted (R, n, C))."""
    out = np.zeros((options.shape[0], veto.shape[0]), bool)
    for c in range(veto.shape[1]):
        out = out | (_taken(veto, options, c) & ~lifted[:, :, c])
    return out


def choice_term(gain: np.ndarray, veto: np.ndarray, lifted: np.ndarray, options: np.ndarray) -> np.ndarray:
    """(R, n) what the choices add to each member's margin: G_i(o), or minus infinity where it vetoes
    an option chosen (it never accepts that package, whatever the noise)."""
    return np.where(blocked(veto, lifted, options), -np.inf, choice_gain(gain, options))


def choice_grievance(gain: np.ndarray, veto: np.ndarray, lifted: np.ndarray, options: np.ndarray) -> np.ndarray:
    """(R, n, C) per choice issue how much worse than its fallback the option chosen is for each
    member (negative where it gains; infinite where it vetoes the option)."""
    out = np.empty(options.shape[:1] + gain.shape[:2])
    for c in range(gain.shape[1]):
        out[..., c] = np.where(_taken(veto, options, c) & ~lifted[:, :, c], np.inf, -_taken(gain, options, c))
    return out


def choice_spare(position: np.ndarray, weight: np.ndarray, status_quo: np.ndarray, draft: np.ndarray,
                 gain: np.ndarray, options: np.ndarray, c: int) -> np.ndarray:
    """(R,) what the package without choice `c` leaves one member (position (R, K), gain (C, O) on
    the declaration's choices) against the status quo: the `spare` of `choice_contract`."""
    return (distance(status_quo, position, weight) - distance(draft, position, weight)
            + choice_gain(gain[None], options, skip=c)[:, 0])


def choice_contract(others_option: np.ndarray, options: np.ndarray, c: int, gain: np.ndarray, veto: np.ndarray,
                    spare: np.ndarray, price: float) -> tuple[np.ndarray, np.ndarray]:
    """(sold, payment) per row: a member (its gain and veto (C, O)) sells its veto on choice `c` when
    the others want another option than the draft's (`others_option`), it blocks that option or
    needs paying for it, and the price on offer covers what the option costs it: the payment is
    what its margin needs, -(spare + gain), at least 0; `spare` is what the rest of the package
    (levels and the other choices) leaves it against the status quo."""
    wanted_gain, vetoes = gain[c, others_option], veto[c, others_option]
    needed = -(spare + wanted_gain)
    sold = (price > 0) & (others_option != options[:, c]) & (vetoes | (needed > 0)) & (needed <= price)
    return sold, np.where(sold, np.maximum(needed, 0.0), 0.0)


def own_proposal(gain: np.ndarray, allowed: np.ndarray, noise: float, fallback: int) -> int:
    """The option the chair puts to a choice decided on its own (not in the declaration): the one
    the voting members (gain (n, O): salience x utility gained against the fallback) are most likely
    all to accept, each accepting when its gain plus noise is >= 0. Failing costs nothing there
    (the fallback stands unharmed), so an option must beat the fallback for everyone; when none
    does, the answer is the fallback, and no vote is held. Nothing in it changes during the talks."""
    n = gain.shape[0]
    return int(drafting.choose(np.zeros((1, n, 0)), np.zeros((1, n, 0)), np.zeros((1, n)), np.ascontiguousarray(gain),
                               np.ascontiguousarray(allowed[None]), float(noise), np.zeros((1, 0)), int(fallback))[0])


def own_allowed(valid: np.ndarray, veto: np.ndarray) -> np.ndarray:
    """(O,) the options of one choice decided on its own that the chair may put to a vote: real ones
    no voting member vetoes (veto (n, O) of the voting members; such a veto is not for sale)."""
    return valid & ~veto.any(axis=0)


# ---------------------------------------------------------------- persuasion
def persuade(position: np.ndarray, ideal: np.ndarray, influence: np.ndarray, anchoring: np.ndarray) -> np.ndarray:
    """Friedkin-Johnsen with salience-dependent anchoring: x(t+1) = a x(0) + (1 - a) W x(t), per
    member and issue, a_ik = a0 + (1 - a0) s_ik (hardest to move where it matters most)."""
    return anchoring * ideal + (1.0 - anchoring) * np.matmul(influence, position)


def adopt(position: np.ndarray, target: np.ndarray, frozen: np.ndarray) -> np.ndarray:
    """The new positions, except on issues whose veto the member sold (they no longer move)."""
    return np.where(frozen, position, target)


# ---------------------------------------------------------------- carve-outs (exemptions)
def exemption(grievances: np.ndarray, noisy_margin: np.ndarray, cost: np.ndarray, carved: np.ndarray) -> np.ndarray:
    """The issue on which a holdout asks for an exemption: among the issues that allow one and on
    which it has none yet, its largest grievance, if exempting it there makes it accept (NONE
    otherwise). A member holds at most one exemption."""
    if np.shape(grievances)[-1] == 0:  # an agenda of choices alone: no level issue to exempt
        return np.full(np.shape(grievances)[:-1], NONE)
    allowed = np.isfinite(cost) & ~carved.any(axis=-1, keepdims=True) & (grievances > 0)
    scored = np.where(allowed, grievances, -np.inf)
    best = scored.argmax(axis=-1)
    gain = np.take_along_axis(scored, best[..., None], axis=-1)[..., 0]
    return np.where(allowed.any(axis=-1) & (noisy_margin + gain >= 0), best, NONE)


def grantable(margins: np.ndarray, voting: np.ndarray, member: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Whether the chair grants `member` its exemption: every other voting member still prefers the
    package (noise aside) once it bears the exemption's cost."""
    others = voting[None, :] & (np.arange(margins.shape[-1])[None, :] != member[:, None])
    return np.all(~others | (margins - cost[:, None] >= 0), axis=-1)


# ---------------------------------------------------------------- the deadline's fallback
def drop_contested(on_table: np.ndarray, objection, grievances) -> np.ndarray:
    """NATO may "agree to disagree": while a voting member objects and issues remain, drop the issue
    with the largest summed grievance of the objectors (it reverts to its status quo) and re-vote
    with the same noise. `objection(on_table) -> (R, n)` the objectors of the package with only
    those issues; `grievances(on_table) -> (R, n, K)`. Returns the issues that survive (none where
    even the status quo alone is refused)."""
    on_table = on_table.copy()
    while True:
        against = objection(on_table)
        failing = against.any(axis=1) & on_table.any(axis=1)
        if not failing.any():
            return on_table & ~against.any(axis=1)[:, None]
        hurt = np.where(against[..., None], grievances(on_table), 0.0)
        burden = member_sum(hurt, np.ones(hurt.shape[1:]))
        worst = np.where(on_table, burden, -np.inf).argmax(axis=1)
        rows = np.flatnonzero(failing)
        on_table[rows, worst[rows]] = False


# ---------------------------------------------------------------- baselines (validation)
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
    Members with zero weight do not count; equal weights for all where all weights are zero."""
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


def weighted_pick(utility: np.ndarray, weight: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(C,) the choice baseline: per choice issue, the option with the largest salience x capability
    weighted utility, sum_i w_ic u_ico (utility (n, C, O), weight (n, C)); ties to the first option."""
    score = np.einsum("ic,ico->co", weight, utility)
    return np.where(valid, score, -np.inf).argmax(axis=1)
