"""The Mesa model of one negotiation: one step = one round; the last round is the summit.

    model = NegotiationModel()            # the Vilnius baseline, its recorded seed, replication 0
    model.run_for(model.params.rounds)    # or step() round by round; stops itself when done
    model.outcome                         # consensus, levels, holdouts, contracts, exemptions
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import mesa
import numpy as np
import pyarrow as pa

from model.scenario.files import BASELINE, load_scenario
from model.scenario.schema import Scenario

from . import rules
from .agents import Ally, Chair
from .params import Params, params_for
from .results import ONE, Ledger, Outcome
from .seeds import Purpose, fresh_seed, root_key, uniforms, vote_number


class NegotiationModel(mesa.Model):
    """NATO summit negotiation toward a declaration that needs unanimity.

    Args:
        scenario: a validated Scenario, or the path of a scenario file (default: the Vilnius baseline).
        rng: the root seed; None takes the scenario's `run.seed`, or fresh OS entropy if it has none.
            The seed used is kept in `self.seed`.
        replication: which replication of that seed to play (see `seeds.py`).
        collect: record per-round data (DataCollector) for plots and traces; off in batch runs.
        params: precomputed arrays for this scenario (default: `params_for(scenario)`, cached).
        agent_classes: member code -> an `Ally` subclass that plays that member (Python only).
    """

    def __init__(self, scenario: Scenario | str | Path | None = None, rng: int | None = None,
                 replication: int = 0, collect: bool = True, params: Params | None = None,
                 agent_classes: Mapping[str, type[Ally]] | None = None):
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario or BASELINE)
        seed = rng if rng is not None else (scenario.run.seed if scenario.run.seed is not None else fresh_seed())
        super().__init__(rng=int(seed))
        self.scenario_config = scenario
        self.seed, self.replication = int(seed), replication
        self.params = p = params or params_for(scenario)
        self.custom = dict(agent_classes or {})
        _check_classes(self.custom, p)
        self._key = root_key(self.seed)
        self.round = 0
        self.ledger = Ledger(1, p)  # what the results table gets, as in the ensemble
        ideal = p.draw_ideals(self._key, replication, 1)[0]
        for i, code in enumerate(p.codes):  # each agent owns copies of its stance (the params are shared, cached)
            self.custom.get(code, Ally)(self, i, code, p.names[i], p.blocs[i], bool(p.voting[i]), ideal[i],
                                        p.weight[i].copy(), float(p.failure_cost[i]), p.anchoring[i].copy(),
                                        np.concatenate([p.price[i], p.choice_price[i]]), p.package_gain[i].copy(),
                                        p.package_veto[i].copy(), p.gain[i].copy())
        # the members in file order (a custom strategy is a subclass, so a type of its own for Mesa)
        self.allies = self.agents_by_type[Ally] if not self.custom else self.agents.select(
            lambda a: isinstance(a, Ally))
        self.chair = Chair(self)
        self.datacollector = _collector(p.issues, p.choices) if collect else None
        if self.datacollector:
            self.datacollector.collect(self)

    @property
    def summit(self) -> bool:
        return self.round == self.params.rounds

    def kappa(self, ally: Ally) -> float:
        """What failing costs `ally` in this round: all of it at the summit, a share before."""
        return float(rules.failure_cost_at(ally.failure_cost, self.summit, self.params.preparatory_cost_share))

    def step(self) -> None:
        """One round: the chair drafts and the Allies vote (at the summit, in several drafting
        sessions); after a failed vote, members with a price on offer may sell their veto, and at
        the summit holdouts ask for exemptions; at the summit's end the fallback decides; before
        it, positions move (persuasion)."""
        p = self.params
        self.round += 1
        sessions = p.summit_sessions if self.summit else 1
        for session in range(1, sessions + 1):
            if self.session(session, last=self.summit and session == sessions):
                return self.stop()
        if self.summit:
            agreed = self.chair.fall_back(self.kappa)
            self.ledger.finish(ONE, self.round, sessions, np.zeros(1, bool), agreed[None], self.chair.draft[None],
                               self.chair.options[None], np.array(self.allies.get("carved"))[None])
            return self.stop()
        targets = rules.persuade(np.array(self.allies.get("position")), np.array(self.allies.get("ideal")),
                                 p.influence, np.array(self.allies.get("anchoring")))
        self.allies.do("adopt", targets)
        self.collect()

    def session(self, session: int, last: bool) -> bool:
        """One draft and one vote; True when all accept. After a failed vote (but the summit's last),
        the chair buys the vetoes for sale and, at the summit, grants the holdouts' exemptions."""
        p = self.params
        vote = vote_number(self.round, session, p.rounds)
        self.own_decisions(vote)
        draft, options = self.chair.propose(p.drafting)
        noise = rules.acceptance_noise(p.acceptance_noise, self._draws(vote))
        self.allies.do("vote", draft, options, self.chair.exempted(), noise)
        accepts = np.array(self.allies.get("accepted"))[None]
        self.ledger.voted(ONE, self.round, accepts)
        if accepts.all():
            self.ledger.finish(ONE, self.round, session, np.ones(1, bool), np.ones((1, p.k + p.c), bool), draft[None],
                               options[None], np.array(self.allies.get("carved"))[None])
            return True
        if not last:
            self.chair.close_contracts(self.round, p.drafting)
            if self.summit:
                self.chair.grant_exemptions(self.allies.select(lambda a: not a.accepted), self.kappa)
        return False

    def own_decisions(self, vote: int) -> None:
        """The choices decided on their own: where one is open, the chair puts an option to a vote
        (none when the fallback is the best it has); all accept: it is decided."""
        p = self.params
        for choice in np.flatnonzero(p.own & ~self.chair.fixed[p.k:]):
            option = self.chair.put_to_vote(int(choice))
            if option == p.choice_status_quo[choice]:
                continue
            u = None if p.acceptance_noise == 0 else uniforms(self._key, Purpose.OWN, vote, self.replication, 1,
                                                               p.n * p.c)[0].reshape(p.n, p.c)
            noise = rules.acceptance_noise(p.acceptance_noise, u)
            if all(self.allies.map("accepts_own", int(choice), option, noise)):
                self.chair.decide(int(choice), option)

    def stop(self) -> None:
        """The negotiation is over: Mesa's own step counter stops with it."""
        self.running = False
        self._default_schedule.stop()  # a stopped model does not count rounds it did not play
        self.collect()

    def collect(self) -> None:
        if self.datacollector:
            self.datacollector.collect(self)

    def _draws(self, vote: int) -> np.ndarray | None:
        if self.params.acceptance_noise == 0:
            return None
        return uniforms(self._key, Purpose.ACCEPT, vote, self.replication, 1, self.params.n)[0]

    # ---- views used by reporters, the dashboard and traces
    @property
    def outcome(self) -> Outcome:
        """Consensus, levels, holdouts, contracts and exemptions so far (final once the model stops)."""
        return self.ledger.outcome(0)

    @property
    def objectors(self) -> list[str]:
        return [a.code for a in self.allies if a.accepted is False]


def _check_classes(custom: Mapping[str, type[Ally]], p: Params) -> None:
    for code, cls in custom.items():
        if code not in p.codes:
            raise ValueError(f"agent_classes: unknown member {code!r}; known: {', '.join(p.codes)}")
        if not (isinstance(cls, type) and issubclass(cls, Ally)):
            raise TypeError(f"agent_classes[{code!r}]: give a subclass of model.negotiation.agents.Ally, got {cls!r}")


def play(scenario: Scenario, seed: int, replication: int = 0, collect: bool = True,
         params: Params | None = None, agent_classes: Mapping[str, type[Ally]] | None = None) -> NegotiationModel:
    """One replication played to its end (with per-round data for plots and `replay`)."""
    model = NegotiationModel(scenario, rng=seed, replication=replication, collect=collect, params=params,
                             agent_classes=agent_classes)
    model.run_for(model.params.rounds)
    return model


def run_replications(scenario: Scenario, seed: int, first: int, count: int, params: Params | None = None,
                     agent_classes: Mapping[str, type[Ally]] | None = None) -> pa.Table:
    """The Mesa engine's batch: one model per replication, one results row each."""
    params = params or params_for(scenario)
    return pa.concat_tables([play(scenario, seed, r, collect=False, params=params,
                                  agent_classes=agent_classes).ledger.table(seed, r)
                             for r in range(first, first + count)])


def _collector(issues: tuple[str, ...], choices: tuple[str, ...]) -> mesa.DataCollector:
    """Per round: the chair's draft and who objected; per member: positions, margin and vote."""
    model_reporters = {"round": "round", "objectors": lambda m: " ".join(m.objectors),
                       "consensus": lambda m: m.outcome.consensus}
    model_reporters |= {f"draft_{i}": (lambda m, k=k: float(m.chair.draft[k])) for k, i in enumerate(issues)}
    model_reporters |= {f"option_{c}": (lambda m, j=j: m.params.options[j][m.chair.options[j]])
                        for j, c in enumerate(choices)}
    agent_reporters = {"code": "code", "bloc": "bloc", "accepts": "accepted", "margin": "margin_now"}
    agent_reporters |= {f"position_{i}": (lambda a, k=k: float(a.position[k])) for k, i in enumerate(issues)}
    return mesa.DataCollector(model_reporters=model_reporters, agenttype_reporters={Ally: agent_reporters})
