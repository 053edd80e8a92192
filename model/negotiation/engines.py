"""The two engines behind one call: `run_chunk` plays replications first .. first+count-1 of a
scenario under a root seed and returns one results row each, the same rows whichever engine."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from model.scenario.schema import Scenario

from .params import Params, params_for

ENGINES = ("ensemble", "mesa")
DEFAULT_ENGINE = "ensemble"  # the faster; equal to the Mesa engine replication by replication


def run_chunk(scenario: Scenario, seed: int, first: int, count: int, engine: str = DEFAULT_ENGINE,
              params: Params | None = None, agent_classes: Mapping | None = None) -> pa.Table:
    """Play replications first .. first+count-1 with `engine` ("ensemble" or "mesa"); one row each.
    `agent_classes` (member code -> Ally subclass) plays members with their own strategy: Mesa only.

    Engines are imported here, not at the top: a worker process then loads only the one it runs
    (the ensemble needs neither Mesa nor pandas), which keeps each worker ~150 MiB lighter."""
    params = params or params_for(scenario)
    if engine == "ensemble":
        if agent_classes:
            raise ValueError("agent_classes: the ensemble engine plays the shared rules on arrays and has no agents "
                             "to replace; run members with their own strategy on engine='mesa'")
        from .ensemble import run_ensemble

        return run_ensemble(scenario, seed, first, count, params)
    if engine == "mesa":
        from .model import run_replications

        return run_replications(scenario, seed, first, count, params, agent_classes)
    raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
