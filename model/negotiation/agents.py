"""Mesa agents: the Allies (and invitees) and the chair, each acting through the shared rules.

An `Ally` holds its stance (ideal point, position, salience, failure cost, anchoring, prices) and
decides for itself: it votes on a draft, names the veto it would sell, asks for an exemption,
adopts a new position. The `Chair` (the Secretary General) drafts the package, closes contracts
for vetoes and grants exemptions. Every decision calls a function of `rules.py` on the agent's
own slice (an Ally) or on its one replication's members (the Chair), the functions the ensemble
engine calls on thousands of replications at once.

Give one member its own strategy from Python by subclassing `Ally` and passing
`NegotiationModel(scenario, agent_classes={"TUR": MyAlly})`; the Mesa engine plays it (the
ensemble, which has no agents, refuses such a model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import mesa
import numpy as np

from . import rules
from .results import ONE

if TYPE_CHECKING:
    from .model import NegotiationModel


class Ballot(NamedTuple):
    """What a member voted on, as things stood at the vote (contracts and persuasion move them on
    before the round ends; the dashboard shows the vote)."""

    draft: np.ndarray  # (K,) the chair's draft
    position: np.ndarray  # (K,) the member's position
    kappa: float  # what failing cost it in that round
    transfers: float  # payments received minus exemption costs borne


class Ally(mesa.Agent):
    """One Ally (or a non-voting invitee) at the table: its stance and what it decides."""

    model: NegotiationModel

    def __init__(self, model: NegotiationModel, index: int, code: str, name: str, bloc: str, voting: bool,
                 ideal: np.ndarray, weight: np.ndarray, failure_cost: float, anchoring: np.ndarray,
                 price: np.ndarray):
        super().__init__(model)
        self.index, self.code, self.name, self.bloc, self.voting = index, code, name, bloc, voting
        self.ideal = ideal  # (K,) drawn for this replication; the anchor of its position
        self.position = ideal.copy()  # (K,) its current preference (persuasion moves it)
        self.weight = weight  # (K,) salience shares: how it weighs a point on each issue
        self.failure_cost = failure_cost  # kappa at the summit (salience-weighted points)
        self.anchoring = anchoring  # (K,) Friedkin-Johnsen weight on its ideal, per issue
        self.price = price  # (K,) the side payment on offer for its veto on each issue
        self.payment = np.zeros_like(ideal)  # (K,) payment for a veto sold on the issue
        self.carved = np.zeros(len(ideal), bool)  # (K,) its exemption, if granted
        self.accepted: bool | None = None  # its vote on the last draft
        self.ballot: Ballot | None = None  # what it voted on
        self.margin_now = np.nan  # its margin for the last draft, noise aside
        self.noise = 0.0  # its acceptance noise in the last vote

    # ---- what it weighs
    def transfers(self, exempted: np.ndarray, on_table: np.ndarray | bool = True) -> float:
        """Payments received minus the cost of others' exemptions, on the issues on the table."""
        return rules.transfers(self.payment, self.carved, self.model.params.carve_out_cost, exempted, on_table)

    def margin(self, draft: np.ndarray, kappa: float, exempted: np.ndarray, on_table: np.ndarray | bool = True) -> float:
        """How much better it finds the draft (as it is bound by it) than a failed summit."""
        q = self.model.params.status_quo
        return rules.margin(rules.bound_by(draft, self.carved, q), self.position, self.weight, q, kappa,
                            self.transfers(exempted, on_table))

    def grievances(self, draft: np.ndarray) -> np.ndarray:
        """Per issue, how much worse than the status quo the draft is for it."""
        return rules.grievance(draft, self.position, self.weight, self.model.params.status_quo)

    # ---- what it decides
    def vote(self, draft: np.ndarray, exempted: np.ndarray, noise: np.ndarray | float) -> None:
        """Accept or object (an invitee always associates itself: it never blocks)."""
        self.noise = noise[self.index] if np.ndim(noise) else noise
        self.ballot = Ballot(draft.copy(), self.position.copy(), self.model.kappa(self), self.transfers(exempted))
        self.margin_now = self.margin(draft, self.ballot.kappa, exempted)
        self.accepted = bool(rules.accepts(self.margin_now, self.noise, self.voting))

    def accepts_package(self, package: np.ndarray, kappa: float, exempted: np.ndarray, on_table: np.ndarray) -> bool:
        """Its vote, with the same noise, on the package with only the issues `on_table` (the fallback)."""
        return bool(rules.accepts(self.margin(package, kappa, exempted, on_table), self.noise, self.voting))

    def for_sale(self) -> bool:
        """Whether a price is on offer for one of its vetoes on an issue not yet settled."""
        return bool(self.voting and ((self.price > 0) & ~self.model.chair.fixed).any())

    def ask_price(self, others: np.ndarray, draft: np.ndarray, fixed: np.ndarray) -> tuple[int, float, float]:
        """(issue, level, payment) of the contract it accepts for its veto, given what the others would
        draft without it (issue rules.NONE: no contract)."""
        issue, level, payment = rules.veto_for_sale(others[None], draft[None], self.position[None], self.weight,
                                                    self.model.params.status_quo, self.price, fixed[None])
        return int(issue[0]), float(level[0]), float(payment[0])

    def sell_veto(self, issue: int, payment: float) -> None:
        """It takes the payment; its position on the issue no longer moves."""
        self.payment[issue] = payment

    def ask_exemption(self, draft: np.ndarray) -> int:
        """The issue on which an exemption would make it accept (rules.NONE: none)."""
        cost = self.model.params.carve_out_cost
        return int(rules.exemption(self.grievances(draft), self.margin_now + self.noise, cost, self.carved))

    def exempt(self, issue: int) -> None:
        self.carved[issue] = True

    def adopt(self, targets: np.ndarray) -> None:
        """Take its new position (second phase of the synchronous update), except where it sold its veto."""
        self.position = rules.adopt(self.position, targets[self.index], self.payment > 0)


class Chair(mesa.Agent):
    """The Secretary General: the non-voting agenda-setter who drafts the package, buys vetoes
    with the side payments on offer, and grants exemptions at the summit."""

    model: NegotiationModel

    def __init__(self, model: NegotiationModel):
        super().__init__(model)
        p = model.params
        self.draft = p.status_quo.copy()  # (K,) it starts from the texts that stand
        self.fixed = np.zeros(p.k, bool)  # issues settled by a contract

    @property
    def voters(self) -> mesa.agent.AgentSet:
        return self.model.allies.select(lambda a: a.voting)

    def exempted(self) -> np.ndarray:
        """(K,) exemptions granted per issue."""
        return np.sum([a.carved for a in self.model.allies], axis=0)

    def propose(self, aim: str) -> np.ndarray:
        """Draft the package the voting members are most likely to accept, all of them; `aim` is
        which failure costs it drafts for ("summit" or "current")."""
        self.draft = self._optimum(self.voters, aim)
        return self.draft

    def _optimum(self, members: mesa.agent.AgentSet, aim: str) -> np.ndarray:
        """rules.draft over `members` (one replication)."""
        p = self.model.params
        position, kappa, transfers, weight, carved = self._arrays(members, aim)
        return rules.draft(position, weight, p.status_quo, kappa, transfers, carved, p.acceptance_noise,
                           self.fixed[None], self.draft[None])[0]

    def _arrays(self, members: mesa.agent.AgentSet, aim: str):
        """The members' positions, failure costs aimed at, transfers, weights and exemptions, as the
        rules take them (a batch of one replication)."""
        exempted = self.exempted()
        kappa = np.array([a.failure_cost if aim == "summit" else self.model.kappa(a) for a in members])
        return (np.array(members.get("position"))[None], kappa,
                np.array([[a.transfers(exempted) for a in members]]), np.array(members.get("weight")),
                np.array(members.get("carved"))[None])

    def close_contracts(self, round_: int, aim: str) -> None:
        """Buy vetoes with the side payments on offer, one priced member at a time in file order: the
        member names its contract given what the others would draft without it."""
        for ally in self.voters:
            if not ally.for_sale():  # asked in turn: an earlier contract may have settled its issue
                continue
            voters = self.voters
            position, kappa, transfers, weight, carved = self._arrays(voters, aim)
            others = rules.wanted(position, weight, self.model.params.status_quo, kappa, transfers, carved,
                                  self.model.params.acceptance_noise, self.fixed[None], self.draft[None],
                                  voters.to_list().index(ally), ally.price)[0]
            issue, level, payment = ally.ask_price(others, self.draft, self.fixed)
            if issue != rules.NONE:
                ally.sell_veto(issue, payment)
                self.fixed[issue], self.draft[issue] = True, level
                self.model.ledger.sold(ONE, ally.index, np.array([issue]), round_,
                                       np.array([level]), np.array([payment]))

    def grant_exemptions(self, holdouts: mesa.agent.AgentSet, kappa_of) -> None:
        """Each voting holdout may ask for an exemption on one issue; granted when every other voting
        member still prefers the package bearing its cost (noise aside)."""
        p = self.model.params
        for ally in holdouts:
            issue = ally.ask_exemption(self.draft) if ally.voting else rules.NONE
            if issue == rules.NONE:
                continue
            exempted = self.exempted()
            margins = np.array([[a.margin(self.draft, kappa_of(a), exempted) for a in self.model.allies]])
            if rules.grantable(margins, p.voting, np.array([ally.index]), p.carve_out_cost[[issue]])[0]:
                ally.exempt(issue)

    def fall_back(self, kappa_of) -> np.ndarray:
        """The deadline passed without consensus: the issues that survive (all False: no declaration)."""
        p, allies = self.model.params, self.model.allies
        if p.fallback == "no_declaration":
            return np.zeros(p.k, bool)
        exempted = self.exempted()

        def objection(on_table: np.ndarray) -> np.ndarray:
            package = np.where(on_table[0], self.draft, p.status_quo)
            return np.array([[not a.accepts_package(package, kappa_of(a), exempted, on_table[0]) for a in allies]])

        def grievances(on_table: np.ndarray) -> np.ndarray:
            package = np.where(on_table[0], self.draft, p.status_quo)
            return np.array([a.grievances(rules.bound_by(package, a.carved, p.status_quo)) for a in allies])[None]

        return rules.drop_contested(np.ones((1, p.k), bool), objection, grievances)[0]
