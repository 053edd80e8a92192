"""Fault injection for the kill and resume tests. Test code only: nothing under model/ reads it,
imports it or branches on it; every hook below wraps or replaces a production function from outside.

Two hooks (kills of a whole process group at exact points are in tests/kill_hooks.py):

* **Ctrl-C after k parts, in this process**: `with parts_written(stop_after=k):` raises
  KeyboardInterrupt right after the k-th part (what the command line turns into exit 130).
  Without `stop_after` it only records the key of every part written (`.keys`), which tells a
  test exactly which chunks a resume ran.

* **A worker process dies at one run**: `dies_in_a_worker` is a sweep `runner=` (importable by
  spawned workers) that plays `model.negotiation.engines.run_chunk`, except that a worker about
  to play the run named by the environment variable TESTS_FAULTS_WORKER_DIES_AT
  (`WORKER_DIES_AT`) exits at once with `os._exit(70)`, as a worker killed by the system would.
  Set the variable with `worker_dies_at(values, replication)`, e.g.
  `monkeypatch.setenv(*worker_dies_at(design.overrides[5], 0))`; spawned workers inherit the
  environment. The run is named by its point's parameter values ({path: value}, as in
  `Design.overrides`) and its replication, because a runner sees the point's scenario, not its
  index. Pass it to `run_sweep(..., runner=dies_in_a_worker)`, or wrap
  `model.experiments.sweep.run_sweep` to pass it when testing the command line in process. The
  runner never exits in the process that started the sweep (one worker runs in process), so a
  test cannot kill pytest with it, and a rerun with one worker always completes.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

WORKER_DIES_AT = "TESTS_FAULTS_WORKER_DIES_AT"  # {"point": {path: value}, "replication": r} as JSON; read below only


@dataclass
class PartsWritten:
    """The keys (first run id or replication of the chunk) of the parts written so far, in order."""

    keys: list[int] = field(default_factory=list)


@contextlib.contextmanager
def parts_written(stop_after: int | None = None) -> Iterator[PartsWritten]:
    """Record every part file this process writes; with `stop_after=k`, raise KeyboardInterrupt
    (Ctrl-C) right after the k-th."""
    from model.experiments.store import OutputFolder

    seen = PartsWritten()
    original = OutputFolder.write_part

    def write_part(self, key, table):
        original(self, key, table)
        seen.keys.append(key)
        if stop_after is not None and len(seen.keys) == stop_after:
            raise KeyboardInterrupt(f"tests.faults: interrupted after {stop_after} parts")

    OutputFolder.write_part = write_part
    try:
        yield seen
    finally:
        OutputFolder.write_part = original


def worker_dies_at(values: dict[str, float], replication: int) -> tuple[str, str]:
    """(name, value) of the environment variable that makes `dies_in_a_worker` exit in the worker
    about to play `replication` of the point with these parameter values."""
    return WORKER_DIES_AT, json.dumps({"point": dict(values), "replication": int(replication)})


def dies_in_a_worker(scenario, seed: int, first: int, count: int, engine: str):
    """A sweep runner: `run_chunk`, except in a worker process about to play the run WORKER_DIES_AT
    names, which exits at once with status 70."""
    from model.negotiation.engines import run_chunk

    target = os.environ.get(WORKER_DIES_AT)
    if target and multiprocessing.parent_process() is not None:
        from model.scenario.files import value_at

        target = json.loads(target)
        raw = scenario.model_dump(mode="json")
        if (first <= target["replication"] < first + count
                and all(value_at(raw, path) == value for path, value in target["point"].items())):
            os._exit(70)
    return run_chunk(scenario, seed, first, count, engine)
