"""The command line: one subcommand per job, each with its own flags, help and examples.

    python run.py scenarios/baseline.yaml            # the main job (the `run` subcommand)
    python run.py sweep|persuade|replay|validate|calibrate|agreement|show ...

Thin on purpose: parse, build the job's argument objects, call the experiment layer, print.
Every error a user can cause exits with code 2 and one message (`main` returns the exit code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from model.experiments.batch import WorkerLost
from model.experiments.job import Execution, Job, Output, default_workers
from model.experiments.store import root_seed
from model.negotiation.engines import DEFAULT_ENGINE, ENGINES
from model.scenario.files import load_scenario, resolved_yaml
from model.scenario.schema import Scenario, ScenarioError

RESULTS = Path("results")
WORKERS_PER_CORE = 4  # the most local worker processes per core --workers may ask for
COMMON = """\
Rerunning a command resumes into its output folder; --fresh starts over (it deletes only the
files the tool writes). Parameter paths for --set and --sweep: docs/scenario-format.md
(e.g. members.POL.ideal.ukraine, member_defaults.failure_cost); sweeps: docs/sweeps.md.
"""
EXAMPLES = {
    "run": """\
  python run.py scenarios/baseline.yaml                     # 2,000 runs, all cores, results/baseline/
  python run.py run scenarios/baseline.yaml --runs 500 --seed 1 --out results/try
  python run.py scenarios/baseline.yaml --engine mesa       # the Mesa reference engine (same numbers)
  python run.py scenarios/baseline.yaml --set protocol.rounds=4 --set members.TUR.price.sweden=0""",
    "sweep": """\
  python run.py sweep scenarios/sweeps/germany-turkey.yaml  # a scenario with a sweep: block
  python run.py sweep scenarios/baseline.yaml --sweep members.DEU.shift.ukraine=-20:20:9 --runs 1000
  python run.py sweep scenarios/baseline.yaml --sweep protocol.rounds=4:12:9 --target-halfwidth 0.01
  python run.py sweep scenarios/sweeps/protocol-sobol.yaml --shard 0/4 --seed 1   # job-array task 0 of 4
  python run.py sweep scenarios/sweeps/protocol-sobol.yaml --scheduler tcp://10.0.0.5:8786   # on Dask""",
    "persuade": """\
  python run.py persuade scenarios/baseline.yaml            # who must be persuaded, 10 points each
  python run.py persuade scenarios/baseline.yaml --distance 5 --runs 4000""",
    "replay": """\
  python run.py replay scenarios/baseline.yaml 17           # per-round trace of replication 17
  python run.py replay scenarios/baseline.yaml 0 --seed 3 --set protocol.rounds=4""",
    "validate": """\
  python run.py validate scenarios/history/                 # every summit in the folder vs history
  python run.py validate scenarios/history/ --runs 4000 --seed 1
  python run.py validate scenarios/history/ --calibration results/history-calibration/calibration.json""",
    "calibrate": """\
  python run.py calibrate scenarios/history/                # global parameters, leave-one-summit-out""",
    "agreement": """\
  python run.py agreement scenarios/history/                # the second codings against the first""",
    "show": """\
  python run.py show scenarios/baseline.yaml                # the resolved scenario, nothing run
  python run.py show scenarios/history/vilnius-2023.yaml --set protocol.rounds=9""",
}


class UsageError(Exception):
    """A command line argparse refuses; `main` prints it as one message and exits with 2."""


# flags of the command line before it had subcommands -> the subcommand that does it now
MOVED = {"--print-config": "show", "--replay": "replay", "--calibrate": "calibrate", "--persuade": "persuade",
         "--sweep": "sweep", "--shard": "sweep", "--design": "sweep", "--target-halfwidth": "sweep"}


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        moved = [f"{flag} is now `python run.py {command} ...`" for flag, command in MOVED.items()
                 if "unrecognized arguments" in message and flag in message.split()]
        hint = f"; {'; '.join(moved)}" if moved else ""
        raise UsageError(f"{self.prog}: {message}{hint} (see {self.prog} --help)")


# ---------------------------------------------------------------- value types
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


def out_dir(text: str) -> Path:
    """--out DIR: a folder name; an empty one would mean the current folder, so it is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a folder name (an empty --out would write into the current folder)")
    return Path(text)


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


# ---------------------------------------------------------------- flags shared by subcommands
def add_scenario(p: argparse.ArgumentParser, what: str = "scenario YAML file, e.g. scenarios/baseline.yaml",
                 metavar: str = "SCENARIO") -> None:
    p.add_argument("scenario", metavar=metavar, help=what)
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="overrides",
                   help="override a scenario value (repeatable), e.g. --set protocol.rounds=10")


def add_batch(p: argparse.ArgumentParser, engine: bool = True, fresh: bool = True) -> None:
    p.add_argument("--runs", type=positive_int, metavar="N",
                   help="replications (default: the scenario's run.replications)")
    p.add_argument("--seed", type=seed_int, metavar="S",
                   help="root seed (default: the scenario's run.seed, else fresh entropy, recorded)")
    p.add_argument("--out", type=out_dir, metavar="DIR", help="output folder (default: under results/)")
    p.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (default: all cores)")
    if engine:
        p.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                       help="ensemble: many replications at once as array programs (fast, default); "
                            "mesa: one Mesa model per replication (the reference). Same results either way")
    if fresh:
        p.add_argument("--fresh", action="store_true", help="delete what earlier runs wrote to the output folder first")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary; files only")


def add_distributed(p: argparse.ArgumentParser, shards: bool = True) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run chunks on an existing Dask cluster, e.g. tcp://host:8786 (extra: [cluster]); "
                        "--workers then defaults to the cluster's worker threads")
    p.add_argument("--chunk-size", type=positive_int, metavar="N",
                   help="runs per chunk (default: about a second of work, from a short timed pilot)")
    if shards:
        p.add_argument("--shard", type=shard_spec, metavar="I/N",
                       help="run only every N-th chunk, starting at I (job arrays; all shards share --out)")


def parser() -> Parser:
    p = Parser(prog="run.py", description="Monte Carlo runs of the NATO summit consensus model (Mesa). "
               "Without a subcommand, `run.py SCENARIO` runs the main job (`run`).",
               epilog="examples:\n" + "\n".join(EXAMPLES.values()) + "\n\n" + COMMON,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        note = "" if name in ("replay", "show") else f"\n\n{COMMON}"
        c = sub.add_parser(name, help=help, description=help, epilog=f"examples:\n{EXAMPLES[name]}{note}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        c.set_defaults(handler=handler)
        return c

    c = command("run", "the scenario's Monte Carlo batch: results table, summary, figures", run)
    add_scenario(c)
    add_batch(c)
    add_distributed(c, shards=False)

    c = command("sweep", "a parameter sweep (the file's sweep: block, or --sweep): grid, LHS, Sobol, Morris", sweep)
    add_scenario(c)
    add_batch(c)
    add_distributed(c)
    c.add_argument("--sweep", action="append", type=sweep_range, default=[], metavar="PATH=LOW:HIGH[:LEVELS]",
                   dest="ranges", help="sweep a scenario value (repeatable; replaces the file's sweep parameters); "
                                       "LEVELS for a grid")
    c.add_argument("--design", choices=("grid", "lhs", "sobol", "morris"),
                   help="point layout (default: the sweep block's, else grid)")
    c.add_argument("--samples", type=positive_int, metavar="N",
                   help="lhs points, sobol base sample (a power of two), morris trajectories")
    c.add_argument("--target-halfwidth", type=halfwidth, metavar="H",
                   help="run each point in batches until its Wilson 95%% half-width is at most H "
                        "(--runs is then the cap)")
    c.add_argument("--no-crn", action="store_true",
                   help="independent seeds per point instead of common random numbers")

    c = command("persuade", "who must be persuaded: P(consensus) when each Ally moves toward the compromise",
                persuade)
    add_scenario(c)
    add_batch(c)
    add_distributed(c)
    c.add_argument("--distance", type=distance, default=10.0, metavar="D",
                   help="how far each member moves toward the compromise, in points (default 10)")
    c.add_argument("--outcome", default="consensus", metavar="OUTCOME",
                   help="what to rank the members by: consensus (default), level_ISSUE, or satisfied_CODE "
                        "(the share of runs meeting that member's minimum, e.g. satisfied_UKR)")

    c = command("replay", "replay one replication with a per-round trace (drafts, objectors, side payments)",
                replay)
    add_scenario(c)
    c.add_argument("replication", type=seed_int, help="the replication to replay (0, 1, ...)")
    c.add_argument("--seed", type=seed_int, metavar="S", help="root seed (default: the scenario's run.seed)")
    c.add_argument("--out", type=out_dir, metavar="DIR", help="where replay-R.csv goes (default: results/<name>/)")

    c = command("validate", "every scenario of a folder against its observed outcome: the model and the classic "
                "bargaining models in one forecasting tournament", validate)
    add_scenario(c, "folder of scenarios with observed blocks, e.g. scenarios/history/", "FOLDER")
    add_batch(c)
    c.add_argument("--calibration", type=Path, metavar="FILE",
                   help="a calibration.json of `calibrate` on the same folder: also score the model at the "
                        "parameters of the fold that held each case out")

    c = command("calibrate", "calibrate the global parameters on a folder of historical cases, "
                "with leave-one-summit-out errors", calibrate)
    add_scenario(c, "folder of scenarios with observed blocks, e.g. scenarios/history/", "FOLDER")
    add_batch(c, engine=False, fresh=False)

    c = command("agreement", "inter-coder agreement: each case of FOLDER/second-coding/ against its first coding "
                "(Krippendorff's alpha, the baselines' errors under each coding)", agreement)
    add_scenario(c, "folder of scenarios with a second-coding/ subfolder, e.g. scenarios/history/", "FOLDER")
    c.add_argument("--out", type=out_dir, metavar="DIR",
                   help="where agreement.parquet (.csv) goes (default: results/<folder name>-agreement/)")
    c.add_argument("--quiet", action="store_true", help="print nothing but errors")

    c = command("show", "print the resolved scenario (after extends and --set); nothing runs", show)
    add_scenario(c)
    return p


SUBCOMMANDS = ("run", "sweep", "persuade", "replay", "validate", "calibrate", "agreement", "show")


# ---------------------------------------------------------------- the subcommands
def run(args: argparse.Namespace) -> int:
    """The main job."""
    from model.experiments.runner import run_batch
    from model.outputs.report import render

    scenario = load(args)
    if scenario.sweep is not None:
        raise ScenarioError(f"{args.scenario}: this scenario has a sweep: block; run it with "
                            f"`python run.py sweep {args.scenario}`.")
    job, output, execution = prepared(args, scenario, RESULTS / scenario.name)
    result = run_batch(job, output, execution)
    if not args.quiet:
        print(render(result.summary))
        print(f"\nwrote {result.folder.root}/: replications.parquet (.csv), summary.json, manifest.json, "
              f"figures/ ({len(result.figures)} figures)")
    return 0


def sweep(args: argparse.Namespace) -> int:
    """A sweep of the file's sweep block, or of --sweep ranges (which replace the block's parameters)."""
    flags = {"design": args.design, "samples": args.samples, "target_halfwidth": args.target_halfwidth,
             "replications": args.runs}
    extra = [f"sweep.{key}={value}" for key, value in flags.items() if value is not None]
    extra += ["sweep.common_random_numbers=false"] if args.no_crn else []
    ranges = dict(args.ranges) or None
    if ranges is None and load(args).sweep is None:
        raise ScenarioError(f"{args.scenario}: no sweep: block in this scenario; add one, or give "
                            "--sweep PATH=LOW:HIGH[:LEVELS] (docs/sweeps.md).")
    scenario = load(args, extra, ranges)
    folder = f"{scenario.name}-sweep-{scenario.spec_hash[:6]}" if ranges else scenario.name
    return _sweep(args, scenario, RESULTS / folder)


def persuade(args: argparse.Namespace) -> int:
    """Who must be persuaded: a sweep of its own (one point per voting member)."""
    from model.experiments.persuasion import persuasion_design
    from model.experiments.sweep import Replicates

    scenario = load(args)
    design = persuasion_design(scenario, args.distance, args.outcome)
    suffix = "" if args.outcome == "consensus" else f"-{args.outcome}"
    return _sweep(args, scenario, RESULTS / f"{scenario.name}-persuade-{args.distance:g}{suffix}", design,
                  Replicates(scenario.run.replications))


def _sweep(args, scenario: Scenario, default_out: Path, design=None, replicates=None) -> int:
    import pandas as pd

    from model.experiments.sweep import run_sweep
    from model.outputs.sweep_stats import render_sweep

    job, output, execution = prepared(args, scenario, default_out)
    result = run_sweep(job, output, execution, design=design, replicates=replicates, shard=args.shard or (0, 1))
    if result.complete and not args.quiet:
        root = result.folder.root
        print(render_sweep(result.summary, pd.read_parquet(root / "points.parquet")))
        tables = [name for name in ("design", "points", "differences", "sensitivity", "persuasion", "failures")
                  if (root / f"{name}.parquet").exists()]
        print(f"\nwrote {root}/: {', '.join(tables)} (.parquet, .csv), parts/, summary.json, "
              f"manifest.json, figures/ ({len(result.figures)} files)")
    return 0


def replay(args: argparse.Namespace) -> int:
    from model.negotiation.model import play
    from model.outputs.report import render_trace, trace_table

    scenario = load(args)
    seed, _ = root_seed(scenario, args.out or RESULTS / scenario.name, args.seed)
    model = play(scenario, seed, args.replication)
    print(render_trace(model))
    out = args.out or RESULTS / scenario.name
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"replay-{args.replication}.csv"
    trace_table(model).to_csv(path, index=False)
    print(f"\nwrote {path} (positions and votes per member and round)")
    return 0


def validate(args: argparse.Namespace) -> int:
    from model.experiments.history import validate_folder
    from model.outputs.tournament import render
    from model.outputs.validation import render_folder

    folder = _folder(args)
    output = Output(args.out or RESULTS / folder.resolve().name, args.fresh, args.quiet)
    result = validate_folder(folder, output, execution(args), seed=args.seed, replications=args.runs,
                             overrides=args.overrides, command=tuple(args.argv), calibration=args.calibration)
    if not args.quiet:
        print(render_folder(result.table, result.summaries))
        print("\n" + render(result.tournament, result.skill, **result.sizes))
        if result.test:
            print(f"\nOn the test cases of {folder}/split.yaml alone (the calibrated model fitted on the train "
                  "cases):\n"
                  + render(result.test["table"], result.test["skill"], **result.test["sizes"]))
        figures = ", ".join(f"{p.stem}" for p in result.figures)
        test = ", tournament-test, tournament-test-skill" if result.test else ""
        print(f"\nwrote {result.root}/: validation, validation-cases, tournament, tournament-levels, "
              f"tournament-events, tournament-skill{test} (.parquet, .csv), summary.json, figures/ ({figures}; "
              ".png, .svg), and one results folder per summit")
    return 0


def calibrate(args: argparse.Namespace) -> int:
    from model.experiments import calibration

    folder = _folder(args)
    overrides = list(args.overrides) + ([f"run.seed={args.seed}"] if args.seed is not None else [])
    out = args.out or RESULTS / f"{folder.resolve().name}-calibration"
    report = calibration.calibrate(calibration.load_cases(folder, overrides, args.quiet), out,
                                   runs=args.runs or calibration.SCREEN_RUNS, workers=execution(args).workers,
                                   quiet=args.quiet)
    if not args.quiet:
        print(calibration.render(report))
        print(f"\nwrote {out}/: calibration.json, calibration.csv (fits and held-out errors), "
              "calibration-screen.csv, calibration-finalists.csv")
    return 0


def agreement(args: argparse.Namespace) -> int:
    from model.experiments.history import agreement_table
    from model.outputs.agreement import render

    folder = _folder(args)
    out = args.out or RESULTS / f"{folder.resolve().name}-agreement"
    frame = agreement_table(folder, out, args.overrides)
    if not args.quiet:
        print(render(frame))
        print(f"\nwrote {out}/agreement.parquet (.csv)")
    return 0


def show(args: argparse.Namespace) -> int:
    print(resolved_yaml(load(args)), end="")
    return 0


# ---------------------------------------------------------------- helpers
def load(args: argparse.Namespace, extra: list[str] = (), ranges: dict | None = None) -> Scenario:
    """The scenario with --set, then the flags (--runs, --seed, the sweep flags) applied: the file
    and each --set are checked as given, so a flag may complete or replace them, never excuse them."""
    flags = [f"run.replications={args.runs}"] if getattr(args, "runs", None) else []
    flags += [f"run.seed={args.seed}"] if getattr(args, "seed", None) is not None else []
    return load_scenario(_file(args.scenario), list(args.overrides), ranges, [*flags, *extra])


def _file(path: str) -> str:
    if Path(path).is_dir():
        raise ScenarioError(f"{path}: this is a folder; validate its scenarios with `python run.py validate {path}`, "
                            "or give a scenario file.")
    return path


def _folder(args: argparse.Namespace) -> Path:
    folder = Path(args.scenario)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: {args.command} needs a folder of historical scenarios (each with an observed "
                            "block), e.g. scenarios/history/.")
    return folder


def execution(args: argparse.Namespace) -> Execution:
    """Workers, engine, scheduler and chunk size: how runs execute (never what they give)."""
    scheduler = getattr(args, "scheduler", None)
    workers = args.workers
    if workers is None and scheduler:  # chunks are sized for the cluster, not for this machine
        from model.experiments.cluster import worker_threads

        workers = worker_threads(scheduler)
    elif workers is not None and workers > WORKERS_PER_CORE * default_workers():
        raise ScenarioError(f"--workers {workers}: at most {WORKERS_PER_CORE * default_workers()} on this machine "
                            f"({WORKERS_PER_CORE} per core; more would only compete for the {default_workers()} cores).")
    return Execution(workers or default_workers(), getattr(args, "engine", DEFAULT_ENGINE), scheduler,
                     getattr(args, "chunk_size", None))


def prepared(args: argparse.Namespace, scenario: Scenario, default_out: Path) -> tuple[Job, Output, Execution]:
    """The job (scenario and root seed), its output folder and its execution, from the flags."""
    out = args.out or default_out
    seed, source = root_seed(scenario, out, args.seed, args.fresh)
    if source == "entropy" and getattr(args, "shard", None):
        raise ScenarioError(f"{args.scenario}: --shard needs a fixed seed shared by all shards: add --seed S "
                            "(or set run.seed in the scenario).")
    job = Job(scenario, seed, source, args.scenario, tuple(args.argv))
    return job, Output(out, args.fresh, args.quiet), execution(args)


def with_default_command(argv: list[str]) -> list[str]:
    """`run.py SCENARIO ...` means `run.py run SCENARIO ...`; a folder or a sweep file given without
    a subcommand is refused with the subcommand to use (never a guess)."""
    if not argv or argv[0] in SUBCOMMANDS or argv[0].startswith("-"):
        return argv
    first = argv[0]
    if Path(first).is_dir():
        raise ScenarioError(f"{first}: this is a folder; validate it with `python run.py validate {first}` "
                            f"(or calibrate on it with `python run.py calibrate {first}`).")
    return ["run", *argv]


def main(argv: list[str] | None = None) -> int:
    """Parse and run one command; returns the exit code (0, 1 for a lost worker, 2 for bad input,
    130 for Ctrl-C)."""
    program = sys.argv[0] if argv is None else "run.py"  # for the manifest's record of the command
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(with_default_command(argv))
        args.argv = [program, *argv]
        if args.command is None:
            parser().print_help()
            return 2
        return args.handler(args)
    except (UsageError, ScenarioError) as exc:
        print(bounded(f"error: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an --out folder that cannot be written
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}. Check the path and its permissions "
              "(--out DIR chooses where results go).", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished chunks are saved; run the same command again to resume.", file=sys.stderr)
        return 130
    except WorkerLost as exc:
        print(f"error: a worker process died ({exc or 'killed by the system, e.g. out of memory?'}). Finished chunks "
              "are saved; run the same command again to resume, with fewer --workers if memory is short.",
              file=sys.stderr)
        return 1


def bounded(message: str, width: int = 400) -> str:
    """Every line of a message at most `width` characters: whatever a message echoes of the input
    (argparse quotes the arguments it refuses), it stays readable."""
    return "\n".join(line if len(line) <= width else line[:width - 3] + "..." for line in message.splitlines())


def entry_point() -> None:
    """The `vilnius` console script (pyproject.toml): the same as `python run.py`."""
    sys.exit(main())
