"""Core benchmark: ms per baseline replication on one core, the 2-worker speed-up, and the
10,000-replication bar (<= 60 s on a 2-core machine) through the real main job.

    python benchmarks/bench_core.py [--runs 10000] [--pilot 1000]

Reports only; nothing here is asserted (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import timed  # noqa: E402

from model.experiments.batch import run_chunk
from model.experiments.runner import run_batch
from model.scenario.files import load_scenario


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=10_000, help="replications for the main-job bar")
    args.add_argument("--pilot", type=int, default=1_000, help="replications for the per-core figures")
    opts = args.parse_args()
    scenario = load_scenario()
    seed = scenario.run.seed
    run_chunk(scenario, seed, 0, 20)  # warm imports and caches

    one_core = timed(lambda: run_chunk(scenario, seed, 0, opts.pilot, "mesa"))
    print(f"baseline on {os.cpu_count()} cores")
    print(f"  Mesa engine, one core, {opts.pilot} replications in process: "
          f"{1000 * one_core / opts.pilot:.2f} ms per replication")

    big = load_scenario(overrides=[f"run.replications={opts.runs}"])
    for engine in ("mesa", "ensemble"):
        wall = {}
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                wall[workers] = timed(functools.partial(run_batch, big, seed, Path(tmp) / "out", workers=workers,
                                                        quiet=True, engine=engine))
            print(f"  main job, {engine} engine, {opts.runs} replications, {workers} worker(s), all files and "
                  f"figures: {wall[workers]:.1f} s")
        verdict = "meets" if wall[2] <= 60 else "misses"
        print(f"    2-worker speed-up {wall[1] / wall[2]:.2f}x (start-up and figures included); "
              f"bar {opts.runs} replications in <= 60 s on 2 cores: {wall[2]:.1f} s, {verdict} it")


if __name__ == "__main__":
    main()
