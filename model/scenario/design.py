"""Sweep designs: which scenario values each point sets.

A design is fixed before any run and depends only on the sweep spec and the root seed, so a
resumed or sharded sweep rebuilds exactly the same points. Layouts:

* grid    every combination of `levels` evenly spaced values per parameter (full factorial);
* lhs     `samples` points of a Latin hypercube (scipy.stats.qmc);
* sobol   Saltelli's scheme for Sobol indices, N(D+2) points, N(2D+2) with second order (SALib);
* morris  `samples` elementary-effect trajectories of D+1 points each (SALib).

`model.experiments.persuasion` builds a design of its own (`persuade`) from the model's arrays.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .files import base_raw, point_scenario, value_at
from .schema import Scenario, ScenarioError, Sweep

SALIB_SEED_BITS = 31  # SALib seeds numpy's legacy RandomState, which takes 32-bit seeds
# top-level keys that are not model inputs: the sweep sets seeds and replications itself
NOT_SWEPT = ("run", "sweep", "observed", "name", "title", "description", "references", "schema_version")


@dataclass(frozen=True)
class Design:
    """The points of a sweep: `table` (one row per point, a column per parameter path, for output)
    and `overrides` (per point, path -> value, what is applied to the scenario)."""

    method: str
    table: pd.DataFrame
    overrides: list[dict[str, float]]
    parameters: tuple[str, ...]
    integer: frozenset[str] = frozenset()
    outcome: str = "consensus"  # what paired differences and indices are of (a results column, or consensus)

    @property
    def points(self) -> int:
        return len(self.overrides)


def build_design(scenario: Scenario, seed: int, source: str = "<scenario>") -> Design:
    """The sweep's points, after checking every parameter path and range against the scenario."""
    sweep = scenario.sweep
    raw = base_raw(scenario)
    integer = _check_parameters(raw, sweep, source)
    names = tuple(sweep.parameters)
    lows = np.array([sweep.parameters[n].low for n in names])
    highs = np.array([sweep.parameters[n].high for n in names])
    unit = _unit_points(sweep, names, seed)
    values = lows + unit * (highs - lows)
    for j, name in enumerate(names):
        if name in integer:
            values[:, j] = np.round(values[:, j])
    table = pd.DataFrame(values, columns=list(names))
    table.insert(0, "point", np.arange(len(table), dtype=np.int64))
    overrides = [{n: (int(v) if n in integer else float(v)) for n, v in zip(names, row)} for row in values]
    return Design(sweep.design, table, overrides, names, frozenset(integer), sweep.outcome)


def salib_problem(sweep: Sweep) -> dict:
    names = list(sweep.parameters)
    return {"num_vars": len(names), "names": names,
            "bounds": [[sweep.parameters[n].low, sweep.parameters[n].high] for n in names]}


def _unit_points(sweep: Sweep, names: tuple[str, ...], seed: int) -> np.ndarray:
    """(points, D) coordinates in [0, 1] per parameter."""
    d = len(names)
    if sweep.design == "grid":
        axes = [np.linspace(0.0, 1.0, sweep.parameters[n].levels) for n in names]
        return np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, d)
    if sweep.design == "lhs":
        from scipy.stats import qmc

        return qmc.LatinHypercube(d=d, rng=np.random.default_rng(seed)).random(sweep.samples)
    unit_problem = {"num_vars": d, "names": list(names), "bounds": [[0.0, 1.0]] * d}
    salib_seed = seed % (2**SALIB_SEED_BITS)
    if sweep.design == "sobol":
        from SALib.sample import sobol

        with warnings.catch_warnings():  # N is checked to be a power of two in the schema
            warnings.simplefilter("ignore")
            return sobol.sample(unit_problem, sweep.samples, calc_second_order=sweep.second_order,
                                seed=salib_seed)
    from SALib.sample import morris

    return morris.sample(unit_problem, sweep.samples, num_levels=sweep.morris_levels, seed=salib_seed)


def _check_parameters(raw: dict, sweep: Sweep, source: str) -> set[str]:
    """Each path must name a scenario value and both ends of its range must give a valid scenario.
    Returns the paths that hold whole numbers (swept values are rounded for those)."""
    integer = set()
    for path, rng in sweep.parameters.items():
        where = f"{source}: sweep.parameters.{path if len(path) <= 120 else path[:58] + '...' + path[-58:]}"
        if path.split(".")[0] in NOT_SWEPT:
            raise ScenarioError(f"{where}: {path.split('.')[0]} is not a model input (the sweep sets seeds and "
                                "replications itself); sweep members.*, member_defaults.*, blocs.*, protocol.*, "
                                "capability.* values.")
        current = value_at(raw, path)
        if isinstance(current, (str, bool, list)):
            raise ScenarioError(f"{where}: holds {current!r}, not a number; only numeric values can be swept.")
        if isinstance(current, int):
            integer.add(path)
        for end in (rng.low, rng.high):
            value = round(end) if path in integer else end
            try:
                point_scenario(raw, {path: value}, source)
            except ScenarioError as exc:
                raise ScenarioError(f"{where} = {value}: the scenario is invalid with this value (fix the path, "
                                    f"or narrow the range):\n{exc}") from None
    return integer
