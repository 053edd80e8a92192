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
from .results import Ledger
from .seeds import Purpose, root_key, uniforms

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


def _play_batch(p: Params, seed: int, first: int, count: int) -> pa.Table:
    key = root_key(seed)
    state = rules.State.start(p.draw_ideals(key, first, count))
    live = np.arange(count)  # chunk-relative index of each replication still negotiating
    ledger = Ledger(count, p)
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
    return ledger.table(seed, first)


def _draws(key, purpose: Purpose, round_: int, first: int, count: int, width: int, live: np.ndarray) -> np.ndarray:
    """This round's draws for the replications still negotiating (the chunk's block, then its rows)."""
    block = uniforms(key, purpose, round_, first, count, width)
    return block if len(live) == count else block[live]
