"""Sweep benchmark (issue 3), in one invocation:

  (1) the same baseline sweep (ensemble engine) run serially, on the local process pool with 2
      workers, and on a Dask LocalCluster with 2 single-threaded worker processes over loopback:
      marginal cost per run ((time at 4N - time at N) / 3N, so start-up costs cancel), the
      per-run overhead each executor adds (core-seconds per run beyond serial), and the 2-worker
      speed-up (bars: >= 1.9x, and Dask within 15 % of the pool). `--compare-initializers` adds the
      process pool started with the pool initializer from before the thread fix ("env vars after
      import (old)": it set OPENBLAS_NUM_THREADS=1 after numpy was loaded, too late) next to today's
      (`batch.single_threaded_worker`), and reports the BLAS threads a worker of each actually has.
      `--repeat R` repeats every measurement R times, interleaved, and reports min / median.
  (2) a 1,000,000-run sweep (100 points x 10,000 replications) streamed to disk, with all
      tables and figures, in a fresh process: wall time and the peak resident memory of the whole
      process tree (bar: <= 1 GiB).

    python benchmarks/bench_sweeps.py [--runs 100000] [--million 1000000] [--repeat 1]
                                      [--compare-initializers] [--no-dask] [--chunk-size N]

In (1) every sweep of n runs is cut into chunks of n / 8 (four per worker, what the timed pilot
gives at ~20 us per run; `--chunk-size` fixes one size instead), so the serial and parallel
runs, and the runs of every repetition, play the same chunks. (2) sizes its chunks as
`python run.py sweep` does, from the pilot. `--million 0` skips (2).

Reports only; nothing here is asserted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import (  # noqa: E402
    INITIALIZERS,
    PeakTreeMemory,
    benchmark_args,
    job_args,
    pool_initializer,
    run_child,
    timed,
    worker_blas,
)

WORKERS = 2
POINTS = 20
SERIAL = "serial (in process)"
DASK = f"Dask LocalCluster, {WORKERS} workers, loopback"


def sweep_scenario(points: int, replications: int):
    """The baseline with Türkiye's veto-trading rate swept over `points` grid levels."""
    from model.scenario.files import load_scenario

    return load_scenario(overrides=[f"sweep.replications={replications}"],
                         sweep={"members.TUR.price.sweden": {"low": 0.0, "high": 24.0, "levels": points}})


def ways(compare_initializers: bool, dask: bool) -> dict[str, tuple[int, str, str | None]]:
    """label -> (workers, pool initializer, "dask" or None)."""
    pool = f"process pool, {WORKERS} workers"
    found = {SERIAL: (1, "new", None)}
    if compare_initializers:
        found |= {f"{pool}, {label}": (WORKERS, which, None) for label, which in INITIALIZERS.items()}
    else:
        found[pool] = (WORKERS, "new", None)
    if dask:
        found[DASK] = (WORKERS, "new", "dask")
    return found


def blas_report() -> None:
    """What each pool initializer leaves a worker: its BLAS libraries' thread counts (threadpoolctl)
    after the worker played runs as a sweep worker does, and what the helper threads cost."""
    runs = 20_000
    print(f"BLAS threads per worker process ({WORKERS}-worker pool as batch.run_tasks starts it; threadpoolctl, "
          f"after each worker played {runs:,} runs building its own parameters, as a sweep worker does):")
    for label, which in INITIALIZERS.items():
        found = worker_blas(which, runs, WORKERS)
        libraries = sorted({name for f in found for name in f["blas"]})
        threads = ", ".join(f"{name} {sorted({f['blas'].get(name) for f in found})}" for name in libraries)
        helpers, main = max(f["helper_cpu"] for f in found), [f["main_cpu"] for f in found]
        print(f"  {label:<30} {threads}; CPU of threads other than the main one {helpers:.2f} s "
              f"(main thread {min(main):.1f}-{max(main):.1f} s)")


def executors(runs: int, repeat: int, compare_initializers: bool, dask: bool, chunk_size: int | None) -> None:
    from model.experiments.sweep import run_sweep

    with contextlib.ExitStack() as stack:
        scheduler = None
        if dask:
            from distributed import LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                                       host="127.0.0.1", dashboard_address=None))
            scheduler = cluster.scheduler_address
        contenders = ways(compare_initializers, dask)

        def measure(n: int, workers: int, which: str, executor: str | None) -> tuple[float, float]:
            """(wall seconds, CPU seconds of this process and of the pool workers it joined)."""
            scenario = sweep_scenario(POINTS, n // POINTS)
            with tempfile.TemporaryDirectory() as tmp, pool_initializer(which):
                args = job_args(scenario, Path(tmp) / "out", workers, "ensemble",
                                chunk_size or math.ceil(n / (4 * WORKERS)), seed=1,
                                scheduler=scheduler if executor else None)
                before = os.times()
                wall = timed(lambda: run_sweep(*args, analyse=False))
                after = os.times()
            return wall, sum(after[:4]) - sum(before[:4])

        measure(POINTS * 200, 1, "new", None)  # warm imports and caches
        cost: dict[str, list[float]] = {label: [] for label in contenders}
        cpu: dict[str, list[float]] = {label: [] for label in contenders}
        wall: dict[str, list[float]] = {label: [] for label in contenders}
        fixed: dict[str, list[float]] = {label: [] for label in contenders}
        size = f"chunks of {chunk_size:,}" if chunk_size else "8 chunks each"
        load = os.getloadavg()[0]
        print(f"(1) executors: baseline sweep, {POINTS} points, ensemble engine, {size}; marginal cost per run "
              f"(time(4N) - time(N)) / 3N with N = {runs:,}; {repeat} repetition(s), interleaved")
        for _ in range(repeat):
            for label, (workers, which, executor) in contenders.items():
                once, once_cpu = measure(runs, workers, which, executor)
                total, total_cpu = measure(4 * runs, workers, which, executor)
                wall[label].append(total)
                cost[label].append((total - once) / (3 * runs))
                cpu[label].append((total_cpu - once_cpu) / (3 * runs))
                fixed[label].append(once - runs * cost[label][-1])
    serial = statistics.median(cost[SERIAL])

    def spread(values: list[float], scale: float = 1.0, fmt: str = "5.1f") -> str:
        if len(values) == 1:
            return f"{scale * values[0]:{fmt}}"
        return f"{scale * min(values):{fmt}} / {scale * statistics.median(values):{fmt}}"

    what = "min / median" if repeat > 1 else "one measurement"
    print(f"  ({what}; speed-up = serial / this, repetition by repetition; CPU = marginal core-us per run used by "
          f"this process and its pool workers, not counted for Dask; load average {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for label, (workers, _, executor) in contenders.items():
        speedup = [s / c for s, c in zip(cost[SERIAL], cost[label])]
        overhead = [workers * c - s for s, c in zip(cost[SERIAL], cost[label])]
        used = "n/a" if executor else spread(cpu[label], 1e6)
        print(f"  {label:<54} {spread(cost[label], 1e6)} us/run, speed-up {spread(speedup, fmt='4.2f')}x, "
              f"CPU {used} core-us/run, overhead {spread(overhead, 1e6, '+5.1f')} core-us/run "
              f"({100 * statistics.median(overhead) / serial:+.0f} % of a serial run); "
              f"{spread(wall[label])} s for {4 * runs:,} runs, of which ~{spread(fixed[label], fmt='.1f')} s start-up")
    pools = [label for label in contenders if label.startswith("process pool")]
    for label in pools:
        speedup = statistics.median(s / c for s, c in zip(cost[SERIAL], cost[label]))
        print(f"  {WORKERS}-worker speed-up of the {label}: {speedup:.2f}x (median; bar >= 1.9x)")
    if DASK in contenders:
        ratio = statistics.median(d / p for d, p in zip(cost[DASK], cost[pools[0]]))
        print(f"  Dask over loopback / the {pools[0]}: {ratio:.2f} (median; bar <= 1.15)")


def million(runs: int) -> None:
    """In a fresh process, so its peak memory is the sweep's own."""
    facts = run_child(__file__, str(runs))
    if facts is None:
        return
    print(f"(2) {runs:,}-run sweep (100 points x {runs // 100:,} replications), ensemble, {WORKERS} workers, "
          f"streamed to part files, then points/differences tables and figures:")
    print(f"  {facts['seconds']:.1f} s in all ({facts['run_seconds']:.1f} s running, {facts['finish_seconds']:.1f} s "
          f"tables and figures); peak memory of the whole process tree (sampled every 20 ms): "
          f"{facts['tree_mib']:.0f} MiB (bar <= 1024 MiB): {facts['run_mib']:.0f} MiB while running (main + workers), "
          f"{facts['finish_mib']:.0f} MiB making the tables and figures")


def child(runs: int) -> None:
    """Run the sweep without the tables, then resume it (nothing left to run) to time the tables
    and figures on their own; the memory peak covers both."""
    from model.experiments.sweep import run_sweep

    scenario = sweep_scenario(100, runs // 100)
    with tempfile.TemporaryDirectory() as tmp:
        job, output, execution = job_args(scenario, Path(tmp) / "out", WORKERS, "ensemble", seed=1)
        with PeakTreeMemory() as run_memory:
            running = timed(lambda: run_sweep(job, output, execution, analyse=False))
        with PeakTreeMemory() as finish_memory:
            finishing = timed(lambda: run_sweep(job, output, execution))
    print(json.dumps({"seconds": running + finishing, "finish_seconds": finishing, "run_seconds": running,
                      "tree_mib": max(run_memory.peak, finish_memory.peak), "run_mib": run_memory.peak,
                      "finish_mib": finish_memory.peak}))


def options(parser) -> None:
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of (1), interleaved (min / median)")
    parser.add_argument("--compare-initializers", action="store_true",
                        help="also run the process pool with the old initializer (env vars after import)")
    parser.add_argument("--no-dask", action="store_true", help="leave the Dask LocalCluster out of (1)")
    parser.add_argument("--chunk-size", type=int, help="runs per chunk in (1) (default: n / 8 for a sweep of n runs)")


def main() -> None:
    args = benchmark_args(__doc__, 100_000, "N for the executor comparison", options)
    if args.child:
        return child(args.child)
    if args.compare_initializers:
        blas_report()
    executors(args.runs, args.repeat, args.compare_initializers, not args.no_dask, args.chunk_size)
    if args.million:
        million(args.million)


if __name__ == "__main__":
    main()
