"""The Mesa model of one negotiation: one step = one round, until consensus or the deadline.

    model = NegotiationModel()            # the Vilnius baseline, its recorded seed, replication 0
    model.run_for(model.params.rounds)    # or step() round by round; stops itself when done
    model.outcome                         # consensus, levels, holdouts, side payments
"""

from __future__ import annotations

from pathlib import Path

import mesa
import numpy as np
import pyarrow as pa

from model.scenario.files import BASELINE, load_scenario
from model.scenario.schema import Scenario

from . import rules
from .agents import Chair, Ally
from .params import Params, params_for
from .results import Ledger, Outcome
from .seeds import Purpose, fresh_seed, root_key, uniforms


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
        self.ledger = Ledger(1, self.params)  # what the results table gets, as in the ensemble

        p = self.params
        self.members = Ally.create_agents(self, p.n, index=list(range(p.n)), code=list(p.codes),
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
        self.ledger.record(np.zeros(1, np.intp), self.round, result)
        self.running = not result.finished[0]
        if self.datacollector:
            self.datacollector.collect(self)

    # ---- views used by reporters, the dashboard and traces
    @property
    def outcome(self) -> Outcome:
        """Consensus, levels, holdouts and side payments so far (final once the model stops)."""
        return self.ledger.outcome(0)

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
    return pa.concat_tables([play(scenario, seed, r, collect=False, params=params).ledger.table(seed, r)
                             for r in range(first, first + count)])


def _collector(issues: tuple[str, ...]) -> mesa.DataCollector:
    """Per round: the chair's draft and who objected; per member: positions and its vote."""
    model_reporters = {"round": "round", "objectors": lambda m: " ".join(m.objectors),
                       "consensus": lambda m: m.outcome.consensus}
    model_reporters |= {f"draft_{i}": (lambda m, i=i: m.chair.draft.get(i, float("nan"))) for i in issues}
    agent_reporters = {"code": "code", "bloc": "bloc", "accepts": "accepts"}
    agent_reporters |= {f"position_{i}": (lambda a, i=i: a.position[i]) for i in issues}
    return mesa.DataCollector(
        model_reporters=model_reporters,
        agenttype_reporters={Ally: agent_reporters},
    )
