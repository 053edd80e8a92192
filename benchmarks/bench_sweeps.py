"""Sweep benchmark (issue 3), in one invocation:

  (1) the same baseline sweep (ensemble engine) run serially, on the local process pool with 2
      workers, and on a Dask LocalCluster with 2 single-threaded worker processes over loopback:
      marginal cost per run ((time at 4N - time at N) / 3N, so start-up costs cancel), the
      per-run overhead each executor adds (core-seconds per run beyond serial), and the 2-worker
      speed-up (bar: >= 1.8x);
  (2) a 1,000,000-run sweep (100 points x 10,000 replications) streamed to disk, with all
      tables and figures, in a fresh process: wall time and the peak resident memory of the whole
      process tree (bar: <= 1 GiB).

    python benchmarks/bench_sweeps.py [--runs 100000] [--million 1000000]

Reports only; nothing here is asserted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import PeakTreeMemory, benchmark_args, run_child, timed  # noqa: E402

WORKERS = 2


def sweep_scenario(points: int, replications: int):
    """The baseline with Türkiye's veto-trading rate swept over `points` grid levels."""
    from model.scenario.files import load_scenario

    return load_scenario(overrides=[f"sweep.replications={replications}"],
                         sweep={"members.TUR.linkage": {"low": 0.0, "high": 0.9, "levels": points}})


def executors(runs: int) -> None:
    from distributed import LocalCluster

    from model.experiments.sweep import run_sweep

    points = 20
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        ways = {"serial (in process)": (1, None), f"process pool, {WORKERS} workers": (WORKERS, None),
                f"Dask LocalCluster, {WORKERS} workers, loopback": (WORKERS, cluster.scheduler_address)}

        def seconds(n: int, workers: int, scheduler: str | None) -> float:
            scenario = sweep_scenario(points, n // points)
            with tempfile.TemporaryDirectory() as tmp:
                return timed(lambda: run_sweep(scenario, 1, Path(tmp) / "out", workers, quiet=True,
                                               scheduler=scheduler, analyse=False))

        seconds(points * 200, 1, None)  # warm imports and caches
        cost, wall, fixed = {}, {}, {}
        print(f"(1) executors: baseline sweep, {points} points, ensemble engine; marginal cost per run "
              f"(time(4N) - time(N)) / 3N with N = {runs:,}")
        for label, (workers, scheduler) in ways.items():
            once = seconds(runs, workers, scheduler)
            wall[label] = seconds(4 * runs, workers, scheduler)
            cost[label] = (wall[label] - once) / (3 * runs)
            fixed[label] = once - runs * cost[label]
        serial = cost["serial (in process)"]
        for label, (workers, _) in ways.items():
            overhead = workers * cost[label] - serial
            print(f"  {label:<42} {1e6 * cost[label]:5.1f} us/run, speed-up {serial / cost[label]:4.2f}x, "
                  f"overhead {1e6 * overhead:+5.1f} core-us/run ({100 * overhead / serial:+.0f} % of a serial run); "
                  f"{wall[label]:5.1f} s for {4 * runs:,} runs, of which ~{fixed[label]:.1f} s start-up")
        print(f"  2-worker speed-up of the process pool: {serial / cost[f'process pool, {WORKERS} workers']:.2f}x "
              "(bar >= 1.8x)")


def million(runs: int) -> None:
    """In a fresh process, so its peak memory is the sweep's own."""
    facts = run_child(__file__, str(runs))
    if facts is None:
        return
    print(f"(2) {runs:,}-run sweep (100 points x {runs // 100:,} replications), ensemble, {WORKERS} workers, "
          f"streamed to part files, then points/differences tables and figures:")
    print(f"  {facts['seconds']:.1f} s in all ({facts['run_seconds']:.1f} s running, {facts['finish_seconds']:.1f} s "
          f"tables and figures); peak memory of the whole process tree (sampled every 20 ms): "
          f"{facts['tree_mib']:.0f} MiB (bar <= 1024 MiB)")


def child(runs: int) -> None:
    """Run the sweep without the tables, then resume it (nothing left to run) to time the tables
    and figures on their own; the memory peak covers both."""
    from model.experiments.sweep import run_sweep

    scenario = sweep_scenario(100, runs // 100)
    with tempfile.TemporaryDirectory() as tmp, PeakTreeMemory() as memory:
        running = timed(lambda: run_sweep(scenario, 1, Path(tmp) / "out", WORKERS, quiet=True, analyse=False))
        finishing = timed(lambda: run_sweep(scenario, 1, Path(tmp) / "out", WORKERS, quiet=True))
    print(json.dumps({"seconds": running + finishing, "finish_seconds": finishing, "run_seconds": running,
                      "tree_mib": memory.peak}))


def main() -> None:
    args = benchmark_args(__doc__, 100_000, "N for the executor comparison")
    if args.child:
        return child(args.child)
    executors(args.runs)
    million(args.million)


if __name__ == "__main__":
    main()
