"""Dask distributed: send chunks to an existing cluster (`--scheduler tcp://host:port`).

Optional: `pip install -e ".[cluster]"`. The client only ships chunks and gathers their tables;
this process writes every file, so the output folder is the same as with the local pool. The
workers must be able to import this project (start `dask worker` from the repository, in its
environment); one thread per worker process keeps them from sharing the GIL
(`dask worker tcp://host:port --nthreads 1 --nworkers N`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor

from model.scenario.schema import ScenarioError

CONNECT_TIMEOUT = "10s"


@contextlib.contextmanager
def dask_executor(address: str) -> Iterator[tuple[Executor, int, tuple[type, ...]]]:
    """(a concurrent.futures executor on the Dask cluster at `address`, the cluster's worker
    threads, the exception that means a worker was lost). Tasks are never merged (`pure=False`:
    two chunks with equal arguments must still both run)."""
    from distributed import KilledWorker

    with _client(address) as client:
        yield client.get_executor(pure=False), max(1, sum(client.nthreads().values())), (KilledWorker,)


def worker_threads(address: str) -> int:
    """How many tasks the cluster at `address` runs at once (chunks are sized for that many)."""
    with _client(address) as client:
        return max(1, sum(client.nthreads().values()))


def _client(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError(f"--scheduler {address}: Dask is not installed; "
                            'install the extra with: pip install -e ".[cluster]"') from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ScenarioError(f"--scheduler {address}: cannot reach a Dask scheduler there ({exc}). "
                            "Start one with `dask scheduler`, or check the address (tcp://host:port).") from None
