"""Tournament benchmark (issue 14): what the forecasting tournament adds to `validate` on the history
folder, against the model's own runs of the same cases, in one invocation.

For each case: (a) the model's runs through the main job's runner (the scenario's replications,
files and figures, as `validate` runs them), then (b) every classic predictor over the tournament's
draws, with its level and event scores. The bar: (b) costs less than (a) in total. Per predictor
the seconds are reported too, so the expensive ones (BDM, the exchange model) are visible.

    python benchmarks/bench_tournament.py [--workers 2]

Reports only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import job_args, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from model.experiments.history import load_cases
    from model.experiments.runner import run_batch
    from model.negotiation.params import params_for
    from model.negotiation.predictors import PREDICTORS
    from model.negotiation.seeds import root_key
    from model.outputs import tournament

    model_s, extra_s, per_predictor = 0.0, 0.0, dict.fromkeys(PREDICTORS, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for _, scenario in load_cases(ROOT / "scenarios" / "history"):
            holder = {}
            model_s += timed(lambda: holder.setdefault("r", run_batch(
                *job_args(scenario, Path(tmp) / scenario.name, workers=args.workers))))
            result = holder["r"]
            start = time.perf_counter()
            forecasts = {tournament.MODEL: tournament.model_forecast(scenario, result.summary, result.table)}
            forecasts |= tournament.predictor_forecasts(scenario, scenario.run.seed)
            tournament.level_rows(scenario.name, scenario, forecasts)
            tournament.event_rows(scenario.name, scenario, forecasts)
            extra_s += time.perf_counter() - start
            p = params_for(scenario)
            x = p.draw_ideals(root_key(scenario.run.seed), 0, tournament.DRAWS)[:, p.voters]
            for name, predictor in PREDICTORS.items():
                per_predictor[name] += timed(lambda: predictor.levels(
                    x, p.capability[p.voters], p.salience[p.voters], p.status_quo))
    print(f"history folder, {args.workers} workers for the model's runs, {tournament.DRAWS} draws per predictor")
    print(f"  model's runs (runner: files, figures)   {model_s:7.1f} s")
    print(f"  tournament (predictors, scores)         {extra_s:7.1f} s   ratio {extra_s / model_s:.2f} "
          f"(bar: < 1, i.e. adds less than the model's own runs)")
    for name, seconds in per_predictor.items():
        print(f"    {name:<18}{seconds:7.2f} s")


if __name__ == "__main__":
    main()
