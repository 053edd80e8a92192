"""The ensemble engine: many replications at once, as array programs over the same rules.

It calls `rules.play_round` on a batch of replications (leading axis), where the Mesa engine
calls it on a batch of one, and draws each replication's random numbers from the same addresses
(`seeds.py`). So replication r here gives exactly what `NegotiationModel(rng=seed,
replication=r)` gives: the same consensus flag, rounds, holdouts and side payments, and the same
levels. The Mesa model stays the readable reference and the one the dashboard shows.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import pyarrow as pa

from model.scenario.schema import Scenario

from . import rules
from .params import Params, params_for
from .results import results_schema
from .seeds import Purpose, root_key, uniforms

BATCH = 2048  # replications per array pass: big enough to amortise Python, small enough for the caches


def run_ensemble(scenario: Scenario, seed: int, first: int, count: int, params: Params | None = None) -> pa.Table:
    """Play replications first .. first+count-1, BATCH at a time; one results row each (as `batch.run_chunk`)."""
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


def _play_batch(p: Params, seed: int, first: int, count: int) -> pa.Table:
    key = root_key(seed)
    state = rules.State.start(p.draw_ideals(key, first, count))
    live = np.arange(count)  # chunk-relative index of each replication still negotiating
    ledger = _Ledger(count, p)
    noisy, linked = p.acceptance_noise > 0, rules.needs_linkage_draws(p)
    for round_ in range(1, p.rounds + 1):
        accept_u = _draws(key, Purpose.ACCEPT, round_, first, count, p.n, live) if noisy else None
        linkage_u = _draws(key, Purpose.LINKAGE, round_, first, count, p.n, live) if linked else None
        result = rules.play_round(p, state, round_, accept_u, linkage_u)
        ledger.record(live, round_, result)
        going_on = ~result.finished
        if not going_on.any():
            break
        state = state.take(going_on)
        live = live[going_on]
    return ledger.table(seed, first, results_schema(p.issues))


def _draws(key, purpose: Purpose, round_: int, first: int, count: int, width: int, live: np.ndarray) -> np.ndarray:
    """This round's draws for the replications still negotiating (the chunk's block, then its rows)."""
    block = uniforms(key, purpose, round_, first, count, width)
    return block if len(live) == count else block[live]


class _Ledger:
    """Per-replication outcomes, filled in as replications finish."""

    def __init__(self, count: int, p: Params):
        self.p = p
        self.consensus = np.zeros(count, bool)
        self.rounds_played = np.zeros(count, np.int32)
        self.agreement_round = np.zeros(count, np.int32)  # 0 = nothing agreed
        self.levels = np.full((count, p.k), np.nan)
        self.holdouts = np.zeros((count, p.n), bool)  # objectors of the last failed full-package vote
        self.payments: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []  # (rows, members, issues, round)

    def record(self, live: np.ndarray, round_: int, result: rules.RoundResult) -> None:
        failed = ~result.consensus
        self.holdouts[live[failed]] = result.holdouts[failed]
        rows, members = np.nonzero(result.paid_now)
        if len(rows):
            self.payments.append((live[rows], members, result.paid_issue[rows, members], round_))
        done = result.finished
        finished = live[done]
        agreed = result.agreed[done]
        self.consensus[finished] = result.consensus[done]
        self.rounds_played[finished] = round_
        self.agreement_round[finished] = np.where(agreed.any(axis=1), round_, 0)
        self.levels[finished] = np.where(agreed, result.draft[done], np.nan)

    def table(self, seed: int, first: int, schema: pa.Schema) -> pa.Table:
        count, p = len(self.consensus), self.p
        agreed = ~np.isnan(self.levels)
        outcome = np.where(self.consensus, "consensus", np.where(agreed.any(axis=1), "partial", "none"))
        columns = {
            "seed": np.full(count, seed, np.int64),
            "replication": np.arange(first, first + count, dtype=np.int64),
            "consensus": self.consensus,
            "outcome": outcome,
            "agreement_round": pa.array(self.agreement_round, mask=self.agreement_round == 0),
            "rounds_played": self.rounds_played,
        }
        for k, issue in enumerate(p.issues):
            columns[f"agreed_{issue}"] = agreed[:, k]
            columns[f"level_{issue}"] = self.levels[:, k]
        codes = np.array(p.codes, dtype=object)
        rows, members = np.nonzero(self.holdouts)  # row-major: members in file order, as the Mesa engine lists them
        columns["holdouts"] = _lists(rows, codes[members], count)
        columns["n_holdouts"] = self.holdouts.sum(axis=1).astype(np.int32)
        payment_rows, payment_text = self._payment_strings(codes)
        columns["side_payments"] = _lists(payment_rows, payment_text, count)
        columns["n_side_payments"] = np.bincount(payment_rows, minlength=count).astype(np.int32)
        return pa.table({name: columns[name] for name in schema.names}, schema=schema)

    def _payment_strings(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """'ISO3:issue@round' per side payment, ordered by replication, round, member (as Mesa lists them)."""
        if not self.payments:
            return np.zeros(0, np.intp), np.zeros(0, object)
        rows = np.concatenate([r for r, _, _, _ in self.payments])
        members = np.concatenate([m for _, m, _, _ in self.payments])
        issues = np.concatenate([i for _, _, i, _ in self.payments])
        rounds = np.concatenate([np.full(len(r), t) for r, _, _, t in self.payments])
        order = np.lexsort((members, rounds, rows))
        issue_names = np.array(self.p.issues, dtype=object)
        text = [f"{c}:{i}@{t}" for c, i, t in zip(codes[members[order]], issue_names[issues[order]], rounds[order])]
        return rows[order], np.array(text, dtype=object)


def _lists(rows: np.ndarray, values: np.ndarray, count: int) -> pa.ListArray:
    """A list<string> column from (row, value) pairs sorted by row."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=count))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.tolist(), type=pa.string()))
