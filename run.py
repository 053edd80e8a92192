"""Command line: run a scenario's Monte Carlo batch, replay one replication, or print the scenario.

Thin on purpose: parse, then call into model/. Bad input exits with code 2 and one message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  python run.py scenarios/baseline.yaml                     # 2,000 runs, all cores, results/baseline/
  python run.py scenarios/baseline.yaml --runs 500 --seed 1 --out results/try
  python run.py scenarios/baseline.yaml --engine mesa       # the Mesa reference engine (same numbers)
  python run.py scenarios/baseline.yaml --set protocol.rounds=4 --set members.TUR.linkage=0
  python run.py scenarios/baseline.yaml --replay 17         # per-round trace of replication 17
  python run.py scenarios/baseline.yaml --print-config      # the resolved scenario, nothing run
  python run.py scenarios/history/                          # validate every summit in the folder
  python run.py scenarios/history/ --calibrate              # calibrate, with leave-one-summit-out errors
  python run.py scenarios/sweeps/germany-turkey.yaml        # a scenario with a sweep: block
  python run.py scenarios/baseline.yaml --sweep members.DEU.shift.ukraine=-20:20:9 --runs 1000
  python run.py scenarios/baseline.yaml --sweep protocol.rounds=4:12:9 --target-halfwidth 0.01
  python run.py scenarios/baseline.yaml --persuade 10       # who must be persuaded (paired, ranked)
  python run.py scenarios/sweeps/protocol-sobol.yaml --shard 0/4      # job-array task 0 of 4, one shared folder
  python run.py scenarios/sweeps/protocol-sobol.yaml --scheduler tcp://10.0.0.5:8786   # on a Dask cluster

Rerunning a command resumes into its output folder; --fresh starts over.
Parameter paths: see docs/scenario-format.md (e.g. members.POL.ideal.ukraine, member_defaults.reservation);
sweeps: docs/sweeps.md.
"""


def number(kind: type, low: float, high: float, meaning: str):
    """An argparse type: a `kind` (int or float) with low <= value <= high; `meaning` says what
    the value is in the message."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {meaning}, got {text!r}") from None
        if not low <= value <= high:
            shown = "{:,}" if kind is int else "{:g}"
            raise argparse.ArgumentTypeError(f"must be from {shown.format(low)} to {shown.format(high)} "
                                             f"({meaning}), got {value}")
        return value
    return parse


positive_int = number(int, 1, 10**9, "a whole number")
seed_int = number(int, 0, 2**63 - 1, "a whole number")  # a root seed or a replication index
halfwidth = number(float, 0.0001, 0.49, "a half-width of a probability, such as 0.01")
distance = number(float, 0.01, 100, "points on the 0-100 issue scale, such as 10")


def sweep_range(text: str) -> tuple[str, dict]:
    """--sweep PATH=LOW:HIGH[:LEVELS] -> (path, {low, high, levels})."""
    path, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or not path or len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"expected PATH=LOW:HIGH[:LEVELS], e.g. protocol.rounds=4:12:9, got {text!r}")
    try:
        low, high = float(parts[0]), float(parts[1])
        levels = int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: LOW and HIGH must be numbers and LEVELS a whole number") from None
    return path.strip(), {"low": low, "high": high} | ({"levels": levels} if levels is not None else {})


def shard_spec(text: str) -> tuple[int, int]:
    """--shard I/N -> (I, N) with 0 <= I < N."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, e.g. 0/4 (task 0 of 4), got {text!r}") from None
    if not sep or n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return i, n


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py", description="Monte Carlo runs of the NATO summit consensus model (Mesa).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", help="scenario YAML file, e.g. scenarios/baseline.yaml, or a folder of scenarios "
                                    "with observed blocks to validate, e.g. scenarios/history/")
    p.add_argument("--runs", type=positive_int, metavar="N",
                   help="replications (default: the scenario's run.replications)")
    p.add_argument("--seed", type=seed_int, metavar="S",
                   help="root seed (default: the scenario's run.seed, else fresh entropy, recorded)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: results/<scenario name>/)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="worker processes (default: all cores; with --scheduler, the cluster's worker threads)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="overrides",
                   help="override a scenario value (repeatable), e.g. --set protocol.rounds=10")
    from model.batch import DEFAULT_ENGINE, ENGINES

    p.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                   help="ensemble: many replications at once as array programs (fast, default); "
                        "mesa: one Mesa model per replication (the reference). Same results either way")
    p.add_argument("--fresh", action="store_true", help="discard results already in the output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary; files only")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved scenario (after extends and --set) and exit")
    p.add_argument("--replay", type=seed_int, metavar="R", help="replay replication R with a per-round trace")
    p.add_argument("--calibrate", action="store_true",
                   help="with a folder of historical scenarios: calibrate the global protocol parameters "
                        "and report leave-one-summit-out errors (docs/validation.md)")
    sweeps = p.add_argument_group("sweeps (docs/sweeps.md)")
    sweeps.add_argument("--sweep", action="append", type=sweep_range, default=[], metavar="PATH=LOW:HIGH[:LEVELS]",
                        help="sweep a scenario value (repeatable; replaces the file's sweep parameters); "
                             "LEVELS for a grid")
    sweeps.add_argument("--design", choices=("grid", "lhs", "sobol", "morris"),
                        help="point layout (default: the sweep block's, else grid)")
    sweeps.add_argument("--samples", type=positive_int, metavar="N",
                        help="lhs points, sobol base sample (a power of two), morris trajectories")
    sweeps.add_argument("--target-halfwidth", type=halfwidth, metavar="H",
                        help="run each point in batches until its Wilson 95%% half-width is at most H "
                             "(--runs is then the cap)")
    sweeps.add_argument("--no-crn", action="store_true",
                        help="independent seeds per point instead of common random numbers")
    sweeps.add_argument("--persuade", type=distance, metavar="D",
                        help="who must be persuaded: P(consensus) when each member moves D points toward "
                             "the compromise, paired and ranked")
    sweeps.add_argument("--scheduler", metavar="ADDRESS",
                        help="run chunks on an existing Dask cluster, e.g. tcp://host:8786 (extra: [cluster])")
    sweeps.add_argument("--shard", type=shard_spec, metavar="I/N",
                        help="run only every N-th chunk, starting at I (job arrays; all shards share --out)")
    return p


def sweep_overrides(args: argparse.Namespace) -> list[str]:
    """The sweep flags as --set overrides on the sweep block."""
    flags = {"design": args.design, "samples": args.samples, "target_halfwidth": args.target_halfwidth,
             "replications": args.runs}
    items = [f"sweep.{key}={value}" for key, value in flags.items() if value is not None]
    return items + (["sweep.common_random_numbers=false"] if args.no_crn else [])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from model.batch import WorkerLost
    from model.config import ScenarioError

    try:
        if Path(args.scenario).is_dir() or args.calibrate:  # validation against history (docs/validation.md)
            return history(args)
        return scenario_job(args)
    except OSError as exc:  # e.g. an --out folder that cannot be written
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}. Check the path and its permissions "
              "(--out DIR chooses where results go).", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished chunks are saved; run the same command again to resume.", file=sys.stderr)
        return 130
    except WorkerLost as exc:
        print(f"error: a worker process died ({exc or 'killed by the system, e.g. out of memory?'}). Finished chunks "
              "are saved; run the same command again to resume, with fewer --workers if memory is short.",
              file=sys.stderr)
        return 1


def scenario_job(args: argparse.Namespace) -> int:
    """One scenario: its Monte Carlo batch, a sweep, --persuade, --replay or --print-config."""
    from model.batch import default_workers
    from model.config import ScenarioError, load_scenario, resolved_yaml

    overrides = list(args.overrides)
    if args.runs:
        overrides.append(f"run.replications={args.runs}")
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    swept = dict(args.sweep) or None
    if swept and args.persuade is not None:
        raise ScenarioError("--persuade and --sweep: choose one (--persuade is a sweep of its own).")
    scenario = None if swept else load_scenario(args.scenario, overrides)
    if args.persuade is None and (swept or scenario.sweep):
        scenario = load_scenario(args.scenario, overrides + sweep_overrides(args), swept)
    elif any((args.target_halfwidth, args.no_crn, args.design, args.samples)) or (args.shard and not args.persuade):
        if args.persuade is not None:
            raise ScenarioError("--persuade: --target-halfwidth, --no-crn, --design and --samples do not apply (the "
                                "persuasion design pairs each member with the reference under common random numbers).")
        raise ScenarioError(f"{args.scenario}: --shard, --target-halfwidth, --no-crn, --design and --samples "
                            "apply to sweeps: add --sweep PATH=LOW:HIGH[:LEVELS] or use a scenario with a "
                            "sweep: block (docs/sweeps.md).")
    if args.print_config:
        print(resolved_yaml(scenario), end="")
        return 0
    out = args.out or Path("results") / default_folder(scenario, args)
    seed, source = root_seed(scenario, args, out)
    workers = args.workers or default_workers()
    if args.scheduler and not args.workers:  # chunks are sized for the cluster, not for this machine
        from model.cluster import worker_threads

        workers = worker_threads(args.scheduler)
    if args.replay is not None:
        return replay(scenario, seed, args.replay, out)
    if args.persuade is not None or scenario.sweep:
        return sweep(scenario, seed, source, workers, out, args)
    from model import report
    from model.runner import run_batch

    result = run_batch(scenario, seed, out, workers, fresh=args.fresh,
                       quiet=args.quiet, scenario_file=args.scenario, seed_source=source,
                       engine=args.engine, scheduler=args.scheduler)
    if not args.quiet:
        print(report.render(result.summary))
        print(f"\nwrote {result.folder.root}/: replications.parquet (.csv), summary.json, manifest.json, "
              f"figures/ ({len(result.figures)} figures)")
    return 0


def default_folder(scenario, args: argparse.Namespace) -> str:
    """results/<name> for a scenario (a sweep file included); <name>-sweep-<hash> for --sweep on the
    command line (the hash names the resolved scenario, so the same command finds its folder again);
    <name>-persuade-<D> for --persuade D."""
    if args.persuade is not None:
        return f"{scenario.name}-persuade-{args.persuade:g}"
    return f"{scenario.name}-sweep-{scenario.spec_hash[:6]}" if args.sweep else scenario.name


def root_seed(scenario, args: argparse.Namespace, out: Path) -> tuple[int, str]:
    """(seed, source) as `store.root_seed` chooses it; shards must agree on one, so they need it fixed."""
    from model.config import ScenarioError
    from model.store import root_seed

    if scenario.run.seed is None and args.shard:
        raise ScenarioError(f"{args.scenario}: --shard needs a fixed seed shared by all shards: add --seed S "
                            "(or set run.seed in the scenario).")
    return root_seed(scenario, out, args.seed, args.fresh)


def history(args: argparse.Namespace) -> int:
    """A folder of historical scenarios: validate each against its observed outcome, or --calibrate."""
    from model.batch import default_workers
    from model.config import ScenarioError

    workers = args.workers or default_workers()
    folder = Path(args.scenario)
    ignored = [flag for flag, given in (("--sweep", args.sweep), ("--persuade", args.persuade is not None),
                                        ("--shard", args.shard), ("--replay", args.replay is not None),
                                        ("--print-config", args.print_config), ("--design", args.design),
                                        ("--samples", args.samples), ("--target-halfwidth", args.target_halfwidth),
                                        ("--no-crn", args.no_crn), ("--scheduler", args.scheduler)) if given]
    if ignored:
        raise ScenarioError(f"{folder}: {', '.join(ignored)} cannot be used on a folder (validation runs each "
                            "scenario once); run them on one scenario file.")
    if args.calibrate:
        from model import calibration

        if not folder.is_dir():
            raise ScenarioError(f"{folder}: --calibrate needs a folder of historical scenarios (each with an "
                                "observed block), e.g. scenarios/history/.")
        overrides = list(args.overrides) + ([f"run.seed={args.seed}"] if args.seed is not None else [])
        out = args.out or Path("results") / f"{folder.resolve().name}-calibration"
        report = calibration.calibrate(calibration.load_cases(folder, overrides), out,
                                       runs=args.runs or calibration.SCREEN_RUNS, workers=workers, quiet=args.quiet)
        if not args.quiet:
            print(calibration.render(report))
            print(f"\nwrote {out}/: calibration.json, calibration.csv (fits and held-out errors), "
                  "calibration-screen.csv, calibration-finalists.csv")
        return 0
    from model.validation import render_folder, validate_folder

    result = validate_folder(folder, args.out or Path("results") / folder.resolve().name, seed=args.seed,
                             replications=args.runs, overrides=args.overrides, workers=workers, fresh=args.fresh,
                             quiet=args.quiet, engine=args.engine)
    if not args.quiet:
        print(render_folder(result))
        print(f"\nwrote {result.root}/: validation.parquet (.csv), validation-cases.csv, figures/validation.png "
              f"(.svg), and one results folder per summit")
    return 0


def sweep(scenario, seed: int, source: str, workers: int, out: Path, args: argparse.Namespace) -> int:
    """A sweep (the scenario's sweep block, or --sweep) or the --persuade analysis."""
    from model.design import persuasion_design
    from model.sweep import Replicates, run_sweep
    from model.sweep_analysis import render_sweep

    design = replicates = None
    if args.persuade is not None:
        design = persuasion_design(scenario, args.persuade)
        replicates = Replicates(scenario.run.replications)
    result = run_sweep(scenario, seed, out, workers, design=design, replicates=replicates, fresh=args.fresh,
                       quiet=args.quiet, scenario_file=args.scenario, seed_source=source, engine=args.engine,
                       scheduler=args.scheduler, shard=args.shard or (0, 1))
    if result.complete and not args.quiet:
        import pandas as pd

        print(render_sweep(result.summary, pd.read_parquet(result.folder.root / "points.parquet")))
        tables = [name for name in ("design", "points", "differences", "sensitivity", "persuasion", "failures")
                  if (result.folder.root / f"{name}.parquet").exists()]
        print(f"\nwrote {result.folder.root}/: {', '.join(tables)} (.parquet, .csv), parts/, summary.json, "
              f"manifest.json, figures/ ({len(result.figures)} files)")
    return 0


def replay(scenario, seed: int, replication: int, out: Path) -> int:
    from model.negotiation import play
    from model.report import render_trace, trace_table

    model = play(scenario, seed, replication)
    print(render_trace(model))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"replay-{replication}.csv"
    trace_table(model).to_csv(path, index=False)
    print(f"\nwrote {path} (positions and votes per member and round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
