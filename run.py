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

Rerunning a command resumes into its output folder; --fresh starts over.
Parameter paths: see docs/scenario-format.md (e.g. members.POL.ideal.ukraine, member_defaults.reservation).
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed_int(text: str) -> int:
    """A root seed or replication index: 0 .. 2**63-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63-1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py", description="Monte Carlo runs of the NATO summit consensus model (Mesa).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", help="scenario YAML file, e.g. scenarios/baseline.yaml")
    p.add_argument("--runs", type=positive_int, metavar="N",
                   help="replications (default: the scenario's run.replications)")
    p.add_argument("--seed", type=seed_int, metavar="S",
                   help="root seed (default: the scenario's run.seed, else fresh entropy, recorded)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: results/<scenario name>/)")
    p.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (default: all cores)")
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from model.batch import default_workers
    from model.config import ScenarioError, load_scenario, resolved_yaml
    from model.seeds import fresh_seed

    overrides = list(args.overrides)
    if args.runs:
        overrides.append(f"run.replications={args.runs}")
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    try:
        scenario = load_scenario(args.scenario, overrides)
        if args.print_config:
            print(resolved_yaml(scenario), end="")
            return 0
        seed, source = ((scenario.run.seed, "--seed" if args.seed is not None else "scenario")
                        if scenario.run.seed is not None else (fresh_seed(), "entropy"))
        out = args.out or Path("results") / scenario.name
        if args.replay is not None:
            return replay(scenario, seed, args.replay, out)
        from model import report
        from model.runner import run_batch

        result = run_batch(scenario, seed, out, args.workers or default_workers(), fresh=args.fresh,
                           quiet=args.quiet, scenario_file=args.scenario, seed_source=source,
                           engine=args.engine)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished chunks are saved; run the same command again to resume.", file=sys.stderr)
        return 130
    if not args.quiet:
        print(report.render(result.summary))
        print(f"\nwrote {result.folder.root}/: replications.parquet (.csv), summary.json, manifest.json, "
              f"figures/ ({len(result.figures)} figures)")
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
