"""The randomness contract: every random number is addressable by (seed, replication, vote, purpose).

A replication's draws for one purpose in one vote are a fixed block of a counter-based Philox
stream keyed by the root seed:

    key     = SeedSequence(seed).generate_state(2, uint64)
    counter = [replication * blocks, vote, purpose, 0]     (blocks = ceil(width / 4))

(vote = the round before the summit; rounds + session - 1 in the summit's drafting sessions.)

so the numbers replication r sees never depend on the engine, on the chunk it runs in, on how
many replications run together, on the worker count, or on what other votes drew. Drawing the
block for replications a..b at once gives exactly the blocks drawn one replication at a time.
This also makes common random numbers exact across sweep points: replication r at every point
sees the same uniforms for the same purpose in the same vote.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

WORDS_PER_BLOCK = 4  # Philox4x64 yields four 64-bit words, i.e. four doubles, per counter step


class Purpose(IntEnum):
    IDEAL = 0  # ideal points drawn from their distributions (vote 0)
    ACCEPT = 1  # acceptance noise, one per member and vote
    OWN = 2  # acceptance noise on the choices decided on their own, one per member, choice and vote


def vote_number(round_: int, session: int, rounds: int) -> int:
    """Which vote of the negotiation this is (its draws' address): round t before the summit, then
    rounds, rounds + 1, ... for the summit's drafting sessions 1, 2, ..."""
    return round_ if round_ < rounds else rounds + session - 1


def root_key(seed: int) -> np.ndarray:
    """The 128-bit Philox key derived from a root seed."""
    return np.random.SeedSequence(seed).generate_state(2, np.uint64)


def fresh_seed() -> int:
    """A new root seed from OS entropy, small enough to type and record (63 bits)."""
    return derived_seed(None)


def derived_seed(entropy) -> int:
    """A 63-bit seed from SeedSequence(entropy): OS entropy for None, else e.g. [root, point]."""
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def uniforms(key: np.ndarray, purpose: Purpose, vote: int, first: int, count: int, width: int) -> np.ndarray:
    """U(0,1) draws of shape (count, width) for replications first .. first+count-1."""
    blocks = -(-width // WORDS_PER_BLOCK)
    counter = np.array([first * blocks, vote, int(purpose), 0], dtype=np.uint64)
    gen = np.random.Generator(np.random.Philox(key=key, counter=counter))
    return gen.random(count * blocks * WORDS_PER_BLOCK).reshape(count, -1)[:, :width]


def logistic(u: np.ndarray) -> np.ndarray:
    """Standard logistic variates by inversion, log(u / (1 - u)) (logit noise in the acceptance
    rule); computed in one buffer because the allocations cost more than the arithmetic."""
    out = 1.0 - u
    np.divide(u, out, out=out)
    return np.log(out, out=out)


def scaled_beta_ppf(u: np.ndarray, low: np.ndarray, mode: np.ndarray, high: np.ndarray) -> np.ndarray:
    """PERT (scaled Beta, shape 4) inverse CDF: mode at the expert code, support [low, high].
    (SciPy is imported here: only the parent process tabulates quantiles, workers never load it.)"""
    from scipy import special

    span = np.where(high > low, high - low, 1.0)
    a = 1.0 + 4.0 * (mode - low) / span
    b = 1.0 + 4.0 * (high - mode) / span
    return low + (high - low) * special.betaincinv(a, b, u)


def truncnormal_ppf(u: np.ndarray, mean: np.ndarray, sd: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Normal(mean, sd) truncated to [low, high], inverse CDF."""
    from scipy import stats

    return stats.truncnorm.ppf(u, (low - mean) / sd, (high - mean) / sd, loc=mean, scale=sd)
