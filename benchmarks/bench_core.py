"""Core benchmark: ms per baseline replication on one core, the 2-worker speed-up, and the
10,000-replication bar (<= 60 s on a 2-core machine) through the real main job.

    python benchmarks/bench_core.py [--runs 10000] [--pilot 1000] [--chunk-size N]

The main job runs with 1 and 2 workers on the same chunks: `--chunk-size` (default a quarter of
each worker's share, 8 chunks for 2 workers), since the timed-pilot policy would give the fast
ensemble engine a single chunk, run in process, and nothing to compare. Each figure is what
`python run.py run scenarios/baseline.yaml --runs N --workers W --engine E --chunk-size C` does.

Reports only; nothing here is asserted (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import job_args, timed  # noqa: E402

from model.experiments.job import default_workers  # noqa: E402
from model.experiments.runner import run_batch  # noqa: E402
from model.negotiation.engines import run_chunk  # noqa: E402
from model.scenario.files import load_scenario  # noqa: E402

WORKERS = 2


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=10_000, help="replications for the main-job bar")
    args.add_argument("--pilot", type=int, default=1_000, help="replications for the per-core figures")
    args.add_argument("--chunk-size", type=int, help="runs per chunk of the main job (default: runs / 8)")
    opts = args.parse_args()
    scenario = load_scenario()
    seed = scenario.run.seed
    run_chunk(scenario, seed, 0, 20)  # warm imports and caches

    one_core = timed(lambda: run_chunk(scenario, seed, 0, opts.pilot, "mesa"))
    print(f"baseline on {default_workers()} cores")
    print(f"  Mesa engine, one core, {opts.pilot} replications in process: "
          f"{1000 * one_core / opts.pilot:.2f} ms per replication")

    big = load_scenario(overrides=[f"run.replications={opts.runs}"])
    size = opts.chunk_size or math.ceil(opts.runs / (4 * WORKERS))
    for engine in ("mesa", "ensemble"):
        wall = {}
        for workers in (1, WORKERS):
            with tempfile.TemporaryDirectory() as tmp:
                wall[workers] = timed(functools.partial(run_batch, *job_args(big, Path(tmp) / "out", workers,
                                                                             engine, size)))
            print(f"  main job, {engine} engine, {opts.runs} replications, {workers} worker(s), "
                  f"{math.ceil(opts.runs / size)} chunks of {size}, all files and figures: {wall[workers]:.1f} s")
        verdict = "meets" if wall[WORKERS] <= 60 else "misses"
        print(f"    {WORKERS}-worker speed-up {wall[1] / wall[WORKERS]:.2f}x against 1 worker (start-up and figures "
              f"included); bar {opts.runs} replications in <= 60 s on 2 cores: {wall[WORKERS]:.1f} s, {verdict} it")
    print(f"  (each: python run.py run scenarios/baseline.yaml --runs {opts.runs} --workers W --engine E "
          f"--chunk-size {size} --quiet --out DIR)")


if __name__ == "__main__":
    main()
