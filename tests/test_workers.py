"""Pool workers run one BLAS thread each, so two workers do not oversubscribe two cores.

Each worker is started as `batch.run_tasks` starts the local pool (spawn context, initializer
`batch.single_threaded_worker`) and reports, through threadpoolctl, the threads of every BLAS
library loaded in it, after it has imported numpy. The initializer used to set
OPENBLAS_NUM_THREADS=1 after numpy was loaded, too late: each worker kept the default pool.
A job's workers exit when its runs are done, unless the job keeps them for the next (validate).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_in_worker(modules: tuple[str, ...] = ()) -> dict:
    """Worker task: whether numpy was already imported when the task started, and each BLAS
    library's thread count, read after importing numpy (so numpy's BLAS is loaded) and `modules`."""
    numpy_before = "numpy" in sys.modules
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    for name in modules:
        importlib.import_module(name)

    return {"numpy_before": numpy_before, "numpy_loaded": "numpy" in sys.modules,
            "blas": [(pool["internal_api"], pool["filepath"], pool["num_threads"])
                     for pool in threadpool_info() if pool["user_api"] == "blas"]}


def report(initializer=None, *imports: tuple[str, ...]) -> list[dict]:
    """`blas_in_worker` run in one fresh spawned worker started with `initializer` (or none), once
    per entry of `imports` (default: once, numpy alone), in that order."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=initializer) as pool:
        return [pool.submit(blas_in_worker, modules).result(timeout=60) for modules in imports or [()]]


@pytest.fixture(scope="module")
def limited() -> list[dict]:
    """A worker as the pool starts it: first numpy alone, then after SciPy is imported too (as a
    sweep worker does when it builds a point's parameters)."""
    from model.experiments.batch import single_threaded_worker

    return report(single_threaded_worker, (), ("scipy.special",))


def test_pool_workers_run_one_blas_thread(limited):
    seen = limited[0]
    # the initializer's module imports numpy, so the limit is set after the BLAS library loaded
    # (the case an environment variable cannot handle), and the info is read after that import
    assert seen["numpy_before"] and seen["numpy_loaded"]
    assert seen["blas"], "no BLAS library found in the worker: nothing was checked"
    assert all(threads == 1 for _, _, threads in seen["blas"]), seen["blas"]


def test_control_worker_without_initializer_keeps_the_default():
    """Without the initializer a worker keeps the machine's default BLAS pool (more than one
    thread on a multi-core machine), so the test above would fail if the limit did nothing."""
    if (os.cpu_count() or 1) == 1:
        pytest.skip("one CPU: a BLAS library's default pool is one thread, so there is no default to tell apart")
    if set_ := [var for var in THREAD_VARIABLES if var in os.environ]:
        pytest.skip(f"{', '.join(set_)} set in the environment: the workers inherit it, so the default is not seen")
    [seen] = report()
    assert not seen["numpy_before"] and seen["numpy_loaded"]  # the task itself imported numpy
    assert seen["blas"], "no BLAS library found in the worker: nothing was checked"
    assert all(threads > 1 for _, _, threads in seen["blas"]), seen["blas"]


def test_blas_loaded_after_the_initializer_is_limited_too(limited):
    """A sweep worker builds each point's parameters itself, so it imports SciPy after the pool
    initializer ran; the BLAS library SciPy brings should run one thread as well."""
    if (os.cpu_count() or 1) == 1:
        pytest.skip("one CPU: every BLAS pool is one thread anyway")
    seen = limited[1]
    assert len(seen["blas"]) > 1, seen["blas"]  # numpy's and SciPy's
    assert all(threads == 1 for _, _, threads in seen["blas"]), seen["blas"]


@pytest.mark.parametrize("keep", [False, True])
def test_a_jobs_workers_exit_when_its_runs_are_done_unless_kept(tiny, tmp_path, keep):
    """Idle pool workers, each holding numba's runtime and the model, would hold that memory through
    the job's tables and figures (at a million runs, the peak); `validate` keeps them for its next
    case instead, since starting a pool costs seconds."""
    from model.experiments.batch import release_workers
    from model.experiments.job import Execution, Job, Output
    from model.experiments.runner import run_batch

    release_workers()
    before = set(multiprocessing.active_children())
    run_batch(Job(tiny, 3), Output(tmp_path / "out", quiet=True),
              Execution(workers=2, chunk_size=20, keep_workers=keep))
    workers = set(multiprocessing.active_children()) - before
    try:
        assert bool(workers) == keep
    finally:
        release_workers()
    assert not set(multiprocessing.active_children()) - before
