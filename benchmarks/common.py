"""What the benchmark scripts share: a wall clock, the peak memory of a whole process tree, the
argument objects of a job, and the pool initializers compared by the thread-limit benchmark."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def job_args(scenario, root: Path, workers: int = 1, engine: str = "ensemble", chunk_size: int | None = None,
             seed: int | None = None, scheduler: str | None = None):
    """(Job, Output, Execution) for `run_batch` / `run_sweep`: the scenario under its own seed (or
    `seed`), a quiet output folder at `root`, and how to execute (chunk_size None: the timed pilot;
    scheduler None: the local process pool)."""
    from model.experiments.job import Execution, Job, Output

    return (Job(scenario, scenario.run.seed if seed is None else seed), Output(root, quiet=True),
            Execution(workers=workers, engine=engine, scheduler=scheduler, chunk_size=chunk_size))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tree_rss_mib() -> float:
    """Resident memory of this process and all its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid = int(status.parent.name)
        parents[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    family, grew = {os.getpid()}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return sum(rss.get(pid, 0) for pid in family) / 1024


class PeakTreeMemory:
    """Samples `tree_rss_mib` every 20 ms while the `with` block runs; `.peak` is the largest seen."""

    def __init__(self, every: float = 0.02):
        self.every, self.peak = every, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, tree_rss_mib())

    def __enter__(self) -> PeakTreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def run_child(script: str, *args: str) -> dict | None:
    """Run `script --child ARGS` in a fresh interpreter (so its peak memory is its own); the child
    prints one JSON line last. Prints the child's errors and returns None if it failed."""
    out = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True,
                         cwd=Path(script).resolve().parent.parent)
    if out.returncode:
        print(out.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def benchmark_args(doc: str, runs: int, runs_help: str, extra=None) -> argparse.Namespace:
    """--runs, --million, the hidden --child (the fresh-process half of a memory measurement), and
    whatever `extra(parser)` adds."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs, help=runs_help)
    parser.add_argument("--million", type=int, default=1_000_000, help="runs of the fresh-process memory job")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    if extra is not None:
        extra(parser)
    return parser.parse_args()


# ---------------------------------------------------------------- pool initializers, old and new
def env_vars_after_import() -> None:
    """The pool initializer before the thread fix, as a named baseline: it set the thread-count
    variables in a worker whose module (model/batch.py) had already imported numpy, so OpenBLAS,
    which reads them once when it loads, kept its default pool (os.cpu_count() threads)."""
    import numpy  # noqa: F401  (the old initializer's module imported numpy before it ran)

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


INITIALIZERS = {"single_threaded_worker (new)": "new", "env vars after import (old)": "old"}


@contextlib.contextmanager
def pool_initializer(which: str):
    """Run the block with the local process pool's initializer set to the new one
    (`batch.single_threaded_worker`) or the old one (`env_vars_after_import`). The pool looks the
    initializer up in `model.experiments.batch` when it starts, so the swap covers every pool
    started inside the block; spawned workers import this module by name to find it."""
    from model.experiments import batch

    new = batch.single_threaded_worker
    batch.single_threaded_worker = {"new": new, "old": env_vars_after_import}[which]
    try:
        yield
    finally:
        batch.single_threaded_worker = new


def thread_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def blas_in_worker(runs: int) -> dict:
    """Worker task: play `runs` baseline replications with the parameters built here, as a sweep
    worker builds each point's (so SciPy, and the BLAS library it brings, load after the pool
    initializer ran); then each BLAS library's threads (threadpoolctl, read after numpy is
    imported) and the CPU seconds the process's other threads (BLAS helpers among them) used."""
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    from model.negotiation.engines import run_chunk
    from model.scenario.files import load_scenario

    before = thread_cpu_seconds()
    run_chunk(load_scenario(), 1, 0, runs)
    after = thread_cpu_seconds()
    helpers = sum(after[t] - before.get(t, 0.0) for t in after if t != os.getpid())
    return {"pid": os.getpid(), "helper_cpu": helpers, "main_cpu": after[os.getpid()] - before[os.getpid()],
            "blas": {Path(pool["filepath"]).parent.name: pool["num_threads"]
                     for pool in threadpool_info() if pool["user_api"] == "blas"}}


def worker_blas(which: str, runs: int = 20_000, workers: int = 2) -> list[dict]:
    """`blas_in_worker` as tasks on the local process pool started as `batch.run_tasks` starts it,
    with the `which` initializer."""
    from model.experiments.batch import run_tasks

    with pool_initializer(which):
        return [found for _, found in run_tasks([(i, blas_in_worker, (runs,)) for i in range(workers)], workers)]
