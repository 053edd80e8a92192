"""Engine benchmark (issue 4): the same baseline replications three ways, in one invocation.

  (a) mesa.batch_run driving NegotiationModel, one process, as a Mesa user would;
  (b) our Mesa engine through the main job's runner, one worker;
  (c) the ensemble engine through the same runner, one worker.

Then 1,000,000 baseline replications with the ensemble engine on 2 workers (bars: <= 10 s, or
<= 21x the reference, and peak memory <= 1 GiB), measured in a fresh process, beside a fixed
reference measured in the same run (one core drawing 10^8 Philox uniforms with numpy, in chunks
of 10^7), so that a noisy machine can be read as a ratio. Last, a profile of the ensemble: where
its time goes, and the share spent drawing random numbers (the floor no engine can go below).

    python benchmarks/bench_engines.py [--runs 1000] [--million 1000000]

The main jobs size their chunks as `python run.py run` does (a short timed pilot): one worker
needs no particular chunking.

Reports only; nothing here is asserted.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import PeakTreeMemory, benchmark_args, job_args, run_child, timed  # noqa: E402


def three_ways(runs: int) -> None:
    """Marginal cost per replication of each way: time at 2N minus time at N, over N, so the fixed
    costs (start-up, summary, figures) cancel and what remains is what each extra run costs."""
    import mesa

    from model.experiments.runner import run_batch
    from model.negotiation.model import NegotiationModel
    from model.scenario.files import BASELINE, load_scenario

    seed = load_scenario().run.seed
    rounds = load_scenario().protocol.rounds
    NegotiationModel(str(BASELINE)).run_for(rounds)  # warm caches and imports for every contender

    def batch_run(n: int) -> float:
        return timed(lambda: mesa.batch_run(NegotiationModel, parameters={"scenario": str(BASELINE)},
                                            rng=list(range(n)), max_steps=rounds, number_processes=1,
                                            display_progress=False))

    def runner(engine: str):
        def run(n: int) -> float:
            scenario = load_scenario(overrides=[f"run.replications={n}"])
            with tempfile.TemporaryDirectory() as tmp:
                return timed(lambda: run_batch(*job_args(scenario, Path(tmp) / "out", 1, engine, seed=seed)))
        return run

    ways = {"(a) mesa.batch_run, 1 process": (batch_run, runs),
            "(b) Mesa engine, run.py runner, 1 worker": (runner("mesa"), runs),
            "(c) ensemble, run.py runner, 1 worker": (runner("ensemble"), 50 * runs)}
    cost = {}
    print("baseline, marginal cost per replication on one core (time(2N) - time(N)) / N:")
    for label, (run, n) in ways.items():
        cost[label] = (run(2 * n) - run(n)) / n
        print(f"  {label:<42} N={n:>7}: {1e6 * cost[label]:8.1f} us/run  {1 / cost[label]:9.0f} runs/s")
    a, b, c = cost.values()
    print(f"  ratios per core: (c) vs (b) {b / c:.0f}x, (c) vs (a) {a / c:.0f}x (bar >= 100x), (b) vs (a) {a / b:.1f}x")


def engine_only(runs: int) -> None:
    """Per-core cost of the engines alone (no files, no figures), the figure the 100x bar is about."""
    from model.negotiation.engines import run_chunk
    from model.scenario.files import load_scenario

    scenario = load_scenario()
    seed = scenario.run.seed
    run_chunk(scenario, seed, 0, 200, "ensemble")
    mesa_s = timed(lambda: run_chunk(scenario, seed, 0, min(runs, 2000), "mesa")) / min(runs, 2000)
    ens_s = timed(lambda: run_chunk(scenario, seed, 0, 50 * runs, "ensemble")) / (50 * runs)
    print(f"engines alone, one core: Mesa {1e6 * mesa_s:.0f} us/replication, ensemble {1e6 * ens_s:.1f} "
          f"us/replication: {mesa_s / ens_s:.0f}x")


def profile() -> None:
    """Where the ensemble's time goes (cProfile, top functions by own time)."""
    import cProfile
    import pstats

    from model.negotiation.ensemble import run_ensemble
    from model.scenario.files import load_scenario

    scenario = load_scenario()
    run_ensemble(scenario, 1, 0, 2048)
    profiler = cProfile.Profile()
    profiler.runcall(run_ensemble, scenario, 1, 0, 40_960)
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    per_run = 1e6 * total / 40_960
    print(f"ensemble profile, 40,960 replications, {per_run:.1f} us/run under the profiler; own time "
          f"(the compiled drafting solver counts in rules.draft):")
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])
    for (file, line, name), (_, _, own, _, _) in rows[:8]:
        print(f"  {100 * own / total:5.1f} %  {name} ({Path(file).name}:{line})")
    # the uniforms (all of them, ideal points' included), their logistic transform, and the ideal points'
    # own inversion of theirs
    draws = sum(own if name == "draw_ideals" else cum for (file, _, name), (_, _, own, cum, _) in rows
                if (Path(file).name, name) in {("seeds.py", "uniforms"), ("seeds.py", "logistic"),
                                               ("params.py", "draw_ideals")})
    print(f"  random draws (seeds.uniforms, seeds.logistic, params.draw_ideals): {100 * draws / total:.1f} % "
          f"({per_run * draws / total:.1f} us/run); the replication without them: {per_run * (1 - draws / total):.1f} "
          f"us/run")


def million(runs: int) -> None:
    """Run in a fresh process so its peak memory is the job's own."""
    facts = run_child(__file__, str(runs))
    if facts is None:
        return
    reference = philox_reference()
    print(f"{runs:,} baseline replications, ensemble, 2 workers, all files and figures: {facts['seconds']:.1f} s "
          f"(bar <= 10 s); the reference (10^8 Philox uniforms on one core) took {reference:.2f} s in this run: "
          f"{facts['seconds'] / reference:.0f}x the reference (bar <= 21x)")
    print(f"  peak memory of the whole job (main + workers, sampled every 20 ms): {facts['tree_mib']:.0f} MiB "
          f"(bar <= 1024 MiB); per-process peaks: main {facts['main_mib']:.0f} MiB, largest worker "
          f"{facts['worker_mib']:.0f} MiB")


def philox_reference() -> float:
    """Seconds one core takes to draw 10^8 Philox uniforms with numpy, in chunks of 10^7: a fixed
    amount of work to read the other figures against on a busy machine."""
    import numpy as np

    gen = np.random.Generator(np.random.Philox(1))
    return timed(lambda: [gen.random(10**7) for _ in range(10)])


def child(runs: int) -> None:
    from model.experiments.runner import run_batch
    from model.scenario.files import load_scenario

    scenario = load_scenario(overrides=[f"run.replications={runs}"])
    with tempfile.TemporaryDirectory() as tmp, PeakTreeMemory() as memory:
        seconds = timed(lambda: run_batch(*job_args(scenario, Path(tmp) / "out", 2, "ensemble")))
    kib = 1024
    print(json.dumps({"seconds": seconds, "tree_mib": memory.peak,
                      "main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
                      "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib}))


def main() -> None:
    args = benchmark_args(__doc__, 1000, "N for (a) and (b); (c) uses 50 N")
    if args.child:
        return child(args.child)
    three_ways(args.runs)
    engine_only(args.runs)
    million(args.million)
    profile()


if __name__ == "__main__":
    main()
