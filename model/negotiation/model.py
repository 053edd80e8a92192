"""The Mesa model of one negotiation: one step = one round, until consensus or the deadline.

    model = NegotiationModel()            # the Vilnius baseline, its recorded seed, replication 0
    model.run_for(model.params.rounds)    # or step() round by round; stops itself when done
    model.outcome                         # consensus, levels, holdouts, side payments
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import mesa
import numpy as np
import pyarrow as pa

from model.scenario.files import BASELINE, load_scenario
from model.scenario.schema import Scenario

from . import rules
from .agents import Chair, MemberState
from .params import Params, params_for
from .results import results_schema
from .seeds import Purpose, fresh_seed, root_key, uniforms


@dataclass
class Outcome:
    """The result of one replication (one row of the results table)."""

    consensus: bool = False  # the whole declaration agreed by the deadline
    agreement_round: int | None = None  # round of the agreement (consensus, or a partial text at the deadline)
    rounds_played: int = 0
    levels: dict[str, float] = field(default_factory=dict)  # agreed level per issue, NaN if not agreed
    holdouts: list[str] = field(default_factory=list)  # objectors of the last failed vote on the full package
    side_payments: list[str] = field(default_factory=list)  # "TUR:sweden@3": who, on which issue, after which round

    @property
    def kind(self) -> str:
        agreed = sum(not np.isnan(v) for v in self.levels.values())
        return "consensus" if self.consensus else ("partial" if agreed else "none")


class NegotiationModel(mesa.Model):
    """NATO summit negotiation toward a declaration that needs unanimity.

    Args:
        scenario: a validated Scenario, or the path of a scenario file (default: the Vilnius baseline).
        rng: the root seed; None takes the scenario's `run.seed`, or fresh OS entropy if it has none.
            The seed used is kept in `self.seed`.
        replication: which replication of that seed to play (see `seeds.py`).
        collect: record per-round data (DataCollector) for plots and traces; off in batch runs.
        params: precomputed arrays for this scenario (default: `params_for(scenario)`, cached).
    """

    def __init__(self, scenario: Scenario | str | Path | None = None, rng: int | None = None,
                 replication: int = 0, collect: bool = True, params: Params | None = None):
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario or BASELINE)
        seed = rng if rng is not None else (scenario.run.seed if scenario.run.seed is not None else fresh_seed())
        super().__init__(rng=int(seed))
        self.scenario_config = scenario
        self.seed, self.replication = int(seed), replication
        self.params = params or params_for(scenario)
        self._key = root_key(self.seed)
        self.state = rules.State.start(self.params.draw_ideals(self._key, replication, 1))
        self.round = 0
        self.last_round: rules.RoundResult | None = None
        self.outcome = Outcome()
        self._last_holdouts: list[str] = []

        p = self.params
        self.members = MemberState.create_agents(self, p.n, index=list(range(p.n)), code=list(p.codes),
                                                 name=list(p.names), bloc=list(p.blocs), voting=list(p.voting))
        self.chair = Chair(self)
        self.datacollector = _collector(p.issues) if collect else None
        if self.datacollector:
            self.datacollector.collect(self)

    def _draws(self, purpose: Purpose) -> np.ndarray:
        return uniforms(self._key, purpose, self.round, self.replication, 1, self.params.n)

    def step(self) -> None:
        """One round: draft, vote, then consensus, deadline fallback, or linkage and position update."""
        if not self.running:
            return
        self.round += 1
        p = self.params
        accept_u = self._draws(Purpose.ACCEPT) if p.acceptance_noise > 0 else None
        linkage_u = self._draws(Purpose.LINKAGE) if rules.needs_linkage_draws(p) else None
        result = rules.play_round(p, self.state, self.round, accept_u, linkage_u)
        self.last_round = result
        self._record(result)
        if self.datacollector:
            self.datacollector.collect(self)

    def _record(self, result: rules.RoundResult) -> None:
        p, out = self.params, self.outcome
        codes = np.array(p.codes)
        out.rounds_played = self.round
        for member in np.nonzero(result.paid_now[0])[0]:
            out.side_payments.append(f"{codes[member]}:{p.issues[result.paid_issue[0, member]]}@{self.round}")
        consensus = bool(result.consensus[0])
        if not consensus:
            self._last_holdouts = codes[result.holdouts[0]].tolist()
        if not result.finished[0]:
            return
        agreed = result.agreed[0]
        out.consensus = consensus
        out.levels = {issue: float(result.draft[0, k]) if agreed[k] else float("nan")
                      for k, issue in enumerate(p.issues)}
        out.agreement_round = self.round if agreed.any() else None
        out.holdouts = list(self._last_holdouts)
        self.running = False

    # ---- views used by reporters, the dashboard and traces
    @property
    def objectors(self) -> list[str]:
        if self.last_round is None:
            return []
        return [c for c, ok in zip(self.params.codes, self.last_round.accepts[0]) if not ok]


def play(scenario: Scenario, seed: int, replication: int = 0, collect: bool = True,
         params: Params | None = None) -> NegotiationModel:
    """One replication played to its end (with per-round data for plots and `--replay`)."""
    model = NegotiationModel(scenario, rng=seed, replication=replication, collect=collect, params=params)
    model.run_for(model.params.rounds)
    return model


def run_replications(scenario: Scenario, seed: int, first: int, count: int,
                     params: Params | None = None) -> pa.Table:
    """The Mesa engine's batch: one model per replication, one results row each."""
    params = params or params_for(scenario)
    rows = [outcome_row(seed, r, play(scenario, seed, r, collect=False, params=params).outcome)
            for r in range(first, first + count)]
    return pa.Table.from_pylist(rows, schema=results_schema(params.issues))


def outcome_row(seed: int, replication: int, out: Outcome) -> dict:
    row = {"seed": seed, "replication": replication, "consensus": out.consensus, "outcome": out.kind,
           "agreement_round": out.agreement_round, "rounds_played": out.rounds_played}
    for issue, level in out.levels.items():
        row[f"agreed_{issue}"] = not math.isnan(level)
        row[f"level_{issue}"] = level
    row |= {"holdouts": out.holdouts, "n_holdouts": len(out.holdouts),
            "side_payments": out.side_payments, "n_side_payments": len(out.side_payments)}
    return row


def _collector(issues: tuple[str, ...]) -> mesa.DataCollector:
    """Per round: the chair's draft and who objected; per member: positions and its vote."""
    model_reporters = {"round": "round", "objectors": lambda m: " ".join(m.objectors),
                       "consensus": lambda m: m.outcome.consensus}
    model_reporters |= {f"draft_{i}": (lambda m, i=i: m.chair.draft.get(i, float("nan"))) for i in issues}
    agent_reporters = {"code": "code", "bloc": "bloc", "accepts": "accepts"}
    agent_reporters |= {f"position_{i}": (lambda a, i=i: a.position[i]) for i in issues}
    return mesa.DataCollector(
        model_reporters=model_reporters,
        agenttype_reporters={MemberState: agent_reporters},
    )
