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
    payment: np.ndarray  # (R, n, K) payment for a veto sold on the issue (0: none)
    carved: np.ndarray  # (R, n, K) exemptions granted
    fixed: np.ndarray  # (R, K) issues settled by a contract
    draft: np.ndarray  # (R, K) the chair's last draft (at first, the status quo)

    @classmethod
    def start(cls, ideal: np.ndarray, p: Params) -> Talks:
        r, n, k = ideal.shape
        return cls(rows=np.arange(r), ideal=ideal, position=ideal.copy(), payment=np.zeros((r, n, k)),
                   carved=np.zeros((r, n, k), bool), fixed=np.zeros((r, k), bool),
                   draft=np.broadcast_to(p.status_quo, (r, k)).copy())

    def take(self, keep: np.ndarray) -> Talks:
        return Talks(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def transfers(self, p: Params, on_table: np.ndarray | bool = True) -> np.ndarray:
        exempted = self.carved.sum(axis=1)[:, None, :]
        on = on_table[:, None, :] if np.ndim(on_table) else on_table
        return rules.transfers(self.payment, self.carved, p.carve_out_cost, exempted, on)

    def margins(self, p: Params, package: np.ndarray, kappa: np.ndarray, on_table: np.ndarray | bool = True):
        """(R, n) every member's acceptance margin for `package` (as each is bound by it)."""
        bound = rules.bound_by(package[:, None, :], self.carved, p.status_quo)
        return rules.margin(bound, self.position, p.weight, p.status_quo, kappa, self.transfers(p, on_table))


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
            _redraft(p, talks, aim)
            noise = rules.acceptance_noise(p.acceptance_noise, _draws(p, key, vote_number(round_, session, p.rounds),
                                                                      first, count, talks.rows))
            margins = talks.margins(p, talks.draft, kappa)
            accepts = rules.accepts(margins, noise, p.voting)
            ledger.voted(talks.rows, round_, accepts)
            agreed = accepts.all(axis=1)
            if agreed.any():
                done = talks.take(agreed)
                ledger.finish(done.rows, round_, session, np.ones(len(done.rows), bool),
                              np.ones((len(done.rows), p.k), bool), done.draft, done.carved)
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
            talks.position = rules.adopt(talks.position, target, talks.payment > 0)
    return ledger.table(seed, first)


def _redraft(p: Params, talks: Talks, aim: np.ndarray) -> None:
    """The chair's draft for the voting members, for the failure costs `aim` (as `Chair.propose`)."""
    v = p.voters
    talks.draft = rules.draft(talks.position[:, v], p.weight[v], p.status_quo, aim[v], talks.transfers(p)[:, v],
                              talks.carved[:, v], p.acceptance_noise, talks.fixed, talks.draft)


def _sell_vetoes(p: Params, talks: Talks, ledger: Ledger, aim: np.ndarray, round_: int) -> None:
    """The chair buys vetoes with the side payments on offer, one priced member at a time in file
    order, with what the others want drafted for the failure costs `aim` (as `Chair.close_contracts`)."""
    v = p.voters
    for i in p.priced:
        rows = np.flatnonzero(((p.price[i] > 0) & ~talks.fixed).any(axis=1))
        if not len(rows):
            continue
        sub = talks.take(rows)
        others = rules.wanted(sub.position[:, v], p.weight[v], p.status_quo, aim[v], sub.transfers(p)[:, v],
                              sub.carved[:, v], p.acceptance_noise, sub.fixed, sub.draft,
                              int(np.flatnonzero(v == i)[0]), p.price[i])
        issue, level, amount = rules.veto_for_sale(others, sub.draft, sub.position[:, i], p.weight[i], p.status_quo,
                                                   p.price[i], sub.fixed)
        sold = issue != rules.NONE
        rows, k, level, amount = rows[sold], issue[sold], level[sold], amount[sold]
        talks.fixed[rows, k] = True
        talks.draft[rows, k] = level
        talks.payment[rows, i, k] = amount
        ledger.sold(talks.rows[rows], i, k, round_, level, amount)


def _grant_exemptions(p: Params, talks: Talks, accepts: np.ndarray, noisy: np.ndarray, kappa: np.ndarray) -> None:
    """At the summit, holdouts ask for an exemption on one issue; the chair grants it when every other
    voting member still accepts the package bearing its cost (as `Chair.grant_exemptions`)."""
    if not np.isfinite(p.carve_out_cost).any():
        return
    for i in p.voters:
        grievances = rules.grievance(talks.draft, talks.position[:, i], p.weight[i], p.status_quo)
        issue = rules.exemption(grievances, noisy[:, i], p.carve_out_cost, talks.carved[:, i])
        rows = np.flatnonzero(~accepts[:, i] & (issue != rules.NONE))
        if not len(rows):
            continue
        margins = talks.take(rows).margins(p, talks.draft[rows], kappa)
        k = issue[rows]
        granted = rows[rules.grantable(margins, p.voting, np.full(len(rows), i), p.carve_out_cost[k])]
        talks.carved[granted, i, issue[granted]] = True


def _fall_back(p: Params, talks: Talks, ledger: Ledger, kappa: np.ndarray, noise, round_: int, session: int) -> None:
    """The deadline passed without consensus: drop contested issues, or adopt no declaration."""
    r = len(talks.rows)
    if p.fallback == "no_declaration":
        ledger.finish(talks.rows, round_, session, np.zeros(r, bool), np.zeros((r, p.k), bool), talks.draft,
                      talks.carved)
        return

    def objection(on_table: np.ndarray) -> np.ndarray:
        package = np.where(on_table, talks.draft, p.status_quo)
        return ~rules.accepts(talks.margins(p, package, kappa, on_table), noise, p.voting)

    def grievances(on_table: np.ndarray) -> np.ndarray:
        bound = rules.bound_by(np.where(on_table, talks.draft, p.status_quo)[:, None, :], talks.carved, p.status_quo)
        return rules.grievance(bound, talks.position, p.weight, p.status_quo)

    survivors = rules.drop_contested(np.ones((r, p.k), bool), objection, grievances)
    ledger.finish(talks.rows, round_, session, np.zeros(r, bool), survivors, talks.draft, talks.carved)


def _draws(p: Params, key, vote: int, first: int, count: int, rows: np.ndarray) -> np.ndarray | None:
    """This vote's draws for the replications still negotiating (the chunk's block, then its rows)."""
    if p.acceptance_noise == 0:
        return None
    block = uniforms(key, Purpose.ACCEPT, vote, first, count, p.n)
    return block if len(rows) == count else block[rows]
