"""The ensemble engine: many replications at once, as array programs over the same rules.

It plays the round that `NegotiationModel.step` plays with agents, in the same order, calling the
same functions of `rules.py` on a batch of replications (leading axis) where the agents call them
on their own slices, and it draws each replication's random numbers from the same addresses
(`seeds.py`). So replication r here gives what `NegotiationModel(rng=seed, replication=r)` gives:
the same consensus, rounds, holdouts, contracts and exemptions, and the same levels (to 1e-12).
The Mesa model stays the readable reference and the one the dashboard shows.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa

from model.scenario.schema import Scenario

from . import rules
from .params import Params, params_for
from .results import Ledger
from .seeds import Purpose, root_key, uniforms, vote_number

BATCH = 2048  # replications per array pass: big enough to amortise Python, small enough for the caches


def run_ensemble(scenario: Scenario, seed: int, first: int, count: int, params: Params | None = None) -> pa.Table:
    """Play replications first .. first+count-1, BATCH at a time; one results row each (as `engines.run_chunk`)."""
    _keep_freed_memory()
    p = params or params_for(scenario)
    return pa.concat_tables([_play_batch(p, seed, start, min(BATCH, first + count - start))
                             for start in range(first, first + count, BATCH)])


@functools.cache
def _keep_freed_memory() -> None:
    """Ask glibc to keep freed array buffers (up to 32 MiB each, up to 64 MiB in all) in the heap
    instead of returning them to the OS: every round allocates and frees the same temporaries, and
    faulting their pages back in cost about a fifth of the run time (measured). No effect where
    libc is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 64 << 20)


@dataclass
class Talks:
    """The replications still negotiating: what the agents hold in the Mesa engine."""

    rows: np.ndarray  # (R,) ledger row of each replication
    ideal: np.ndarray  # (R, n, K) the drawn ideal points (Friedkin-Johnsen anchors)
    position: np.ndarray  # (R, n, K) current preferences
    payment: np.ndarray  # (R, n, K + C) payment for a veto sold on an issue of the agenda (0: none)
    lifted: np.ndarray  # (R, n, C) vetoes sold on the choice issues
    carved: np.ndarray  # (R, n, K) exemptions granted
    fixed: np.ndarray  # (R, K + C) issues of the agenda settled by a contract
    draft: np.ndarray  # (R, K) the chair's last levels (at first, the status quo)
    options: np.ndarray  # (R, C) the chair's last options (at first, the fallbacks)

    @classmethod
    def start(cls, ideal: np.ndarray, p: Params) -> Talks:
        r, n, k = ideal.shape
        return cls(rows=np.arange(r), ideal=ideal, position=ideal.copy(), payment=np.zeros((r, n, k + p.c)),
                   lifted=np.zeros((r, n, p.c), bool), carved=np.zeros((r, n, k), bool),
                   fixed=np.zeros((r, k + p.c), bool), draft=np.broadcast_to(p.status_quo, (r, k)).copy(),
                   options=np.broadcast_to(p.choice_status_quo, (r, p.c)).copy())

    def take(self, keep: np.ndarray) -> Talks:
        return Talks(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def transfers(self, p: Params, on_table: np.ndarray | bool = True) -> np.ndarray:
        exempted = self.carved.sum(axis=1)[:, None, :] if self.carved.any() else 0  # (none before the summit)
        on = on_table[:, None, :] if np.ndim(on_table) else on_table
        return rules.transfers(self.payment, self.carved, p.carve_out_cost, exempted, on)

    def extra(self, p: Params, options: np.ndarray, on_table: np.ndarray | bool = True) -> np.ndarray:
        """(R, n) what enters the margins besides the levels: transfers and what `options` give."""
        return self.transfers(p, on_table) + rules.choice_term(p.package_gain, p.package_veto, self.lifted, options)

    def margins(self, p: Params, package: np.ndarray, options: np.ndarray, kappa: np.ndarray,
                on_table: np.ndarray | bool = True):
        """(R, n) every member's acceptance margin for the package (levels as each is bound by them)."""
        bound = rules.bound_by(package[:, None, :], self.carved, p.status_quo)
        return rules.margin(bound, self.position, p.weight, p.status_quo, kappa, self.extra(p, options, on_table))

    def choices(self, p: Params) -> rules.Choices | None:
        """The choice issues as `rules.draft` takes them, for the voting members (None: there are none)."""
        v = p.voters
        if not p.c:
            return None
        return rules.Choices(gain=p.package_gain[v], veto=p.package_veto[v], lifted=self.lifted[:, v], valid=p.valid,
                             fallback=p.choice_status_quo, settled=self.fixed[:, p.k:] | p.own, start=self.options)


def _play_batch(p: Params, seed: int, first: int, count: int) -> pa.Table:
    key = root_key(seed)
    talks = Talks.start(p.draw_ideals(key, first, count), p)
    ledger = Ledger(count, p)
    for round_ in range(1, p.rounds + 1):
        summit = round_ == p.rounds
        kappa = rules.failure_cost_at(p.failure_cost, summit, p.preparatory_cost_share)
        aim = p.failure_cost if p.drafting == "summit" else kappa  # the failure costs the chair drafts for
        sessions = p.summit_sessions if summit else 1
        for session in range(1, sessions + 1):
            vote = vote_number(round_, session, p.rounds)
            _own_decisions(p, talks, ledger, key, vote, first, count)
            _redraft(p, talks, aim)
            noise = rules.acceptance_noise(p.acceptance_noise, _draws(p, key, vote, first, count, talks.rows))
            margins = talks.margins(p, talks.draft, talks.options, kappa)
            accepts = rules.accepts(margins, noise, p.voting)
            ledger.voted(talks.rows, round_, accepts)
            agreed = accepts.all(axis=1)
            if agreed.any():
                done = talks.take(agreed)
                ledger.finish(done.rows, round_, session, np.ones(len(done.rows), bool),
                              np.ones((len(done.rows), p.k + p.c), bool), done.draft, done.options, done.carved)
                if agreed.all():
                    return ledger.table(seed, first)
                talks, margins, accepts = talks.take(~agreed), margins[~agreed], accepts[~agreed]
                noise = noise[~agreed] if np.ndim(noise) else noise
            if summit and session == sessions:
                _fall_back(p, talks, ledger, kappa, noise, round_, session)
                return ledger.table(seed, first)
            _sell_vetoes(p, talks, ledger, aim, round_)
            if summit:
                _grant_exemptions(p, talks, accepts, margins + noise, kappa)
        if not summit:
            target = rules.persuade(talks.position, talks.ideal, p.influence, p.anchoring)
            talks.position = rules.adopt(talks.position, target, talks.payment[..., :p.k] > 0)
    return ledger.table(seed, first)


def _own_decisions(p: Params, talks: Talks, ledger: Ledger, key, vote: int, first: int, count: int) -> None:
    """The choices decided on their own, before the package is drafted: where one is still open, the
    chair puts the option most likely accepted by all to a vote (none where that is the fallback);
    all accept: it is decided (as `NegotiationModel.own_decisions`)."""
    v, k = p.voters, p.k
    for c in np.flatnonzero(p.own):
        option = rules.own_proposal(p.gain[v, c], rules.own_allowed(p.valid[c], p.veto[v, c]), p.acceptance_noise,
                                    p.choice_status_quo[c])
        rows = np.flatnonzero(~talks.fixed[:, k + c])
        if option == p.choice_status_quo[c] or not len(rows):
            continue
        proposal = np.full(len(rows), option)
        u = _own_draws(p, key, vote, first, count, talks.rows[rows])
        noise = rules.acceptance_noise(p.acceptance_noise, None if u is None else u[:, :, c])
        accepts = rules.accepts(p.gain[:, c, :][:, proposal].T, noise, p.voting)
        rows, proposal = rows[accepts.all(axis=1)], proposal[accepts.all(axis=1)]
        talks.fixed[rows, k + c] = True
        talks.options[rows, c] = proposal
        ledger.decided(talks.rows[rows], int(c), proposal)


def _redraft(p: Params, talks: Talks, aim: np.ndarray) -> None:
    """The chair's draft for the voting members, for the failure costs `aim` (as `Chair.propose`)."""
    v = p.voters
    talks.draft, talks.options = rules.draft(talks.position[:, v], p.weight[v], p.status_quo, aim[v],
                                             talks.transfers(p)[:, v], talks.carved[:, v], p.acceptance_noise,
                                             talks.fixed[:, :p.k], talks.draft, talks.choices(p))


def _sell_vetoes(p: Params, talks: Talks, ledger: Ledger, aim: np.ndarray, round_: int) -> None:
    """The chair buys vetoes with the side payments on offer, one priced member at a time in file
    order, its level issues first, then each priced choice, with what the others want drafted for
    the failure costs `aim` (as `Chair.close_contracts`)."""
    for i in p.priced:
        _level_contracts(p, talks, ledger, aim, round_, i)
        for c in range(p.c):
            if p.choice_price[i, c] > 0:
                _choice_contracts(p, talks, ledger, aim, round_, i, c)


def _level_contracts(p: Params, talks: Talks, ledger: Ledger, aim: np.ndarray, round_: int, i: int) -> None:
    v, k = p.voters, p.k
    rows = np.flatnonzero(((p.price[i] > 0) & ~talks.fixed[:, :k]).any(axis=1))
    if not len(rows):
        return
    sub = talks.take(rows)
    extra = sub.extra(p, sub.options)
    others = rules.wanted(sub.position[:, v], p.weight[v], p.status_quo, aim[v], extra[:, v], sub.carved[:, v],
                          p.acceptance_noise, sub.fixed[:, :k], sub.draft, int(np.flatnonzero(v == i)[0]), p.price[i])
    issue, level, amount = rules.veto_for_sale(others, sub.draft, sub.position[:, i], p.weight[i], p.status_quo,
                                               p.price[i], sub.fixed[:, :k],
                                               rules.choice_term(p.package_gain[[i]], p.package_veto[[i]], sub.lifted[:, [i]],
                                                                 sub.options)[:, 0])
    sold = issue != rules.NONE
    rows, issue, level, amount = rows[sold], issue[sold], level[sold], amount[sold]
    talks.fixed[rows, issue] = True
    talks.draft[rows, issue] = level
    talks.payment[rows, i, issue] = amount
    ledger.sold(talks.rows[rows], i, issue, round_, level, amount, np.full(len(rows), rules.NONE))


def _choice_contracts(p: Params, talks: Talks, ledger: Ledger, aim: np.ndarray, round_: int, i: int, c: int) -> None:
    v, k = p.voters, p.k
    rows = np.flatnonzero(~talks.fixed[:, k + c])
    if not len(rows):
        return
    sub = talks.take(rows)
    want = rules.wanted_option(sub.position[:, v], p.weight[v], p.status_quo, aim[v], sub.transfers(p)[:, v],
                               sub.carved[:, v], p.acceptance_noise, sub.draft, sub.choices(p),
                               int(np.flatnonzero(v == i)[0]), c)
    spare = rules.choice_spare(sub.position[:, i], p.weight[i], p.status_quo, sub.draft, p.package_gain[i], sub.options, c)
    sold, amount = rules.choice_contract(want, sub.options, c, p.package_gain[i], p.package_veto[i], spare, float(p.choice_price[i, c]))
    rows, want, amount = rows[sold], want[sold], amount[sold]
    talks.fixed[rows, k + c] = True
    talks.options[rows, c] = want
    talks.lifted[rows, i, c] = True
    talks.payment[rows, i, k + c] = amount
    ledger.sold(talks.rows[rows], i, np.full(len(rows), k + c), round_, np.full(len(rows), np.nan), amount, want)


def _grant_exemptions(p: Params, talks: Talks, accepts: np.ndarray, noisy: np.ndarray, kappa: np.ndarray) -> None:
    """At the summit, holdouts ask for an exemption on one level issue; the chair grants it when every
    other voting member still accepts the package bearing its cost (as `Chair.grant_exemptions`)."""
    if not np.isfinite(p.carve_out_cost).any():
        return
    for i in p.voters:
        grievances = rules.grievance(talks.draft, talks.position[:, i], p.weight[i], p.status_quo)
        issue = rules.exemption(grievances, noisy[:, i], p.carve_out_cost, talks.carved[:, i])
        rows = np.flatnonzero(~accepts[:, i] & (issue != rules.NONE))
        if not len(rows):
            continue
        sub = talks.take(rows)
        margins = sub.margins(p, sub.draft, sub.options, kappa)
        k = issue[rows]
        granted = rows[rules.grantable(margins, p.voting, np.full(len(rows), i), p.carve_out_cost[k])]
        talks.carved[granted, i, issue[granted]] = True


def _fall_back(p: Params, talks: Talks, ledger: Ledger, kappa: np.ndarray, noise, round_: int, session: int) -> None:
    """The deadline passed without consensus: drop contested issues, or adopt no declaration."""
    r, k = len(talks.rows), p.k
    if p.fallback == "no_declaration":
        ledger.finish(talks.rows, round_, session, np.zeros(r, bool), np.zeros((r, k + p.c), bool), talks.draft,
                      talks.options, talks.carved)
        return

    def package(on_table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.where(on_table[:, :k], talks.draft, p.status_quo),
                np.where(on_table[:, k:], talks.options, p.choice_status_quo))

    def objection(on_table: np.ndarray) -> np.ndarray:
        levels, options = package(on_table)
        return ~rules.accepts(talks.margins(p, levels, options, kappa, on_table), noise, p.voting)

    def grievances(on_table: np.ndarray) -> np.ndarray:
        levels, options = package(on_table)
        bound = rules.bound_by(levels[:, None, :], talks.carved, p.status_quo)
        return np.concatenate([rules.grievance(bound, talks.position, p.weight, p.status_quo),
                               rules.choice_grievance(p.package_gain, p.package_veto, talks.lifted, options)], axis=-1)

    survivors = rules.drop_contested(np.broadcast_to(p.declaration, (r, k + p.c)), objection, grievances)
    ledger.finish(talks.rows, round_, session, np.zeros(r, bool), survivors, talks.draft, talks.options, talks.carved)


def _own_draws(p: Params, key, vote: int, first: int, count: int, rows: np.ndarray) -> np.ndarray | None:
    """(rows, n, C) this vote's draws on the choices decided on their own, for ledger rows `rows`."""
    if p.acceptance_noise == 0:
        return None
    return uniforms(key, Purpose.OWN, vote, first, count, p.n * p.c).reshape(count, p.n, p.c)[rows]


def _draws(p: Params, key, vote: int, first: int, count: int, rows: np.ndarray) -> np.ndarray | None:
    """This vote's draws for the replications still negotiating (the chunk's block, then its rows)."""
    if p.acceptance_noise == 0:
        return None
    block = uniforms(key, Purpose.ACCEPT, vote, first, count, p.n)
    return block if len(rows) == count else block[rows]
