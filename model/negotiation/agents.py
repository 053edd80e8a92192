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

    draft: np.ndarray  # (K,) the chair's levels
    options: np.ndarray  # (C,) the chair's options on the choice issues
    position: np.ndarray  # (K,) the member's position
    kappa: float  # what failing cost it in that round
    transfers: float  # payments received minus exemption costs borne


class Ally(mesa.Agent):
    """One Ally (or a non-voting invitee) at the table: its stance and what it decides."""

    model: NegotiationModel

    def __init__(self, model: NegotiationModel, index: int, code: str, name: str, bloc: str, voting: bool,
                 ideal: np.ndarray, weight: np.ndarray, failure_cost: float, anchoring: np.ndarray,
                 price: np.ndarray, gain: np.ndarray, veto: np.ndarray, own_gain: np.ndarray):
        super().__init__(model)
        self.index, self.code, self.name, self.bloc, self.voting = index, code, name, bloc, voting
        self.ideal = ideal  # (K,) drawn for this replication; the anchor of its position
        self.position = ideal.copy()  # (K,) its current preference (persuasion moves it)
        self.weight = weight  # (K,) salience shares: how it weighs a point on each level issue
        self.failure_cost = failure_cost  # kappa at the summit (salience-weighted points)
        self.anchoring = anchoring  # (K,) Friedkin-Johnsen weight on its ideal, per issue
        self.price = price  # (K + C,) the side payment on offer for its veto on each issue of the agenda
        self.gain = gain  # (C, O) what each option of the declaration's choices gives it against the fallback
        self.veto = veto  # (C, O) the options of the declaration's choices it blocks
        self.own_gain = own_gain  # (C, O) the same on the choices decided on their own
        self.lifted = np.zeros(len(veto), bool)  # (C,) vetoes it has sold
        self.payment = np.zeros(len(price))  # (K + C,) payment for a veto sold on the issue
        self.carved = np.zeros(len(ideal), bool)  # (K,) its exemption, if granted
        self.accepted: bool | None = None  # its vote on the last draft
        self.ballot: Ballot | None = None  # what it voted on
        self.margin_now = np.nan  # its margin for the last draft, noise aside
        self.noise = 0.0  # its acceptance noise in the last vote

    # ---- what it weighs
    def transfers(self, exempted: np.ndarray, on_table: np.ndarray | bool = True) -> float:
        """Payments received minus the cost of others' exemptions, on the issues on the table."""
        return rules.transfers(self.payment, self.carved, self.model.params.carve_out_cost, exempted, on_table)

    def choices(self, options: np.ndarray) -> float:
        """What the options chosen give it (G_i), minus infinity if it vetoes one."""
        if not self.model.params.declaration[len(self.position):].any():  # no choice in the package: G_i = 0
            return 0.0
        return float(rules.choice_term(self.gain[None], self.veto[None], self.lifted[None, None], options[None])[0, 0])

    def margin(self, draft: np.ndarray, options: np.ndarray, kappa: float, exempted: np.ndarray,
               on_table: np.ndarray | bool = True) -> float:
        """How much better it finds the package (as it is bound by it) than a failed summit."""
        return self._margin(draft, options, kappa, self.transfers(exempted, on_table))

    def _margin(self, draft: np.ndarray, options: np.ndarray, kappa: float, transfers: float) -> float:
        """`margin` with its transfers known (a vote has them on its ballot)."""
        q = self.model.params.status_quo
        return rules.margin(rules.bound_by(draft, self.carved, q), self.position, self.weight, q, kappa,
                            transfers + self.choices(options))

    def grievances(self, draft: np.ndarray, options: np.ndarray) -> np.ndarray:
        """Per issue of the agenda, how much worse than the status quo the package is for it."""
        level = rules.grievance(draft, self.position, self.weight, self.model.params.status_quo)
        return np.concatenate([level, rules.choice_grievance(self.gain[None], self.veto[None], self.lifted[None, None],
                                                              options[None])[0, 0]])

    # ---- what it decides
    def vote(self, draft: np.ndarray, options: np.ndarray, exempted: np.ndarray, noise: np.ndarray | float) -> None:
        """Accept or object (an invitee always associates itself: it never blocks)."""
        self.noise = noise[self.index] if np.ndim(noise) else noise
        self.ballot = Ballot(draft.copy(), options.copy(), self.position.copy(), self.model.kappa(self),
                             self.transfers(exempted))
        self.margin_now = self._margin(draft, options, self.ballot.kappa, self.ballot.transfers)
        self.accepted = bool(rules.accepts(self.margin_now, self.noise, self.voting))

    def accepts_own(self, choice: int, option: int, noise: np.ndarray | float) -> bool:
        """Its vote on an option put to a choice decided on its own: what the option gains it against
        the fallback, plus its noise (an invitee never blocks)."""
        u = noise[self.index, choice] if np.ndim(noise) else noise
        return bool(rules.accepts(self.own_gain[choice, option], u, self.voting))

    def accepts_package(self, package: np.ndarray, options: np.ndarray, kappa: float, exempted: np.ndarray,
                        on_table: np.ndarray) -> bool:
        """Its vote, with the same noise, on the package with only the issues `on_table` (the fallback)."""
        return bool(rules.accepts(self.margin(package, options, kappa, exempted, on_table), self.noise, self.voting))

    def ask_price(self, others: np.ndarray, draft: np.ndarray, options: np.ndarray,
                  fixed: np.ndarray) -> tuple[int, float, float]:
        """(issue, level, payment) of the contract it accepts for its veto on a level issue, given what
        the others would draft without it (issue rules.NONE: no contract)."""
        k = len(draft)
        issue, level, payment = rules.veto_for_sale(others[None], draft[None], self.position[None], self.weight,
                                                    self.model.params.status_quo, self.price[:k], fixed[None, :k],
                                                    self.choices(options))
        return int(issue[0]), float(level[0]), float(payment[0])

    def ask_choice_price(self, c: int, others_option: int, draft: np.ndarray, options: np.ndarray) -> tuple[bool, float]:
        """(sold, payment): whether it sells its veto on choice `c` to let the option the others want
        through, and for what."""
        spare = rules.choice_spare(self.position[None], self.weight, self.model.params.status_quo, draft[None],
                                   self.gain, options[None], c)
        sold, payment = rules.choice_contract(np.array([others_option]), options[None], c, self.gain, self.veto,
                                              spare, float(self.price[len(draft) + c]))
        return bool(sold[0]), float(payment[0])

    def sell_veto(self, issue: int, payment: float) -> None:
        """It takes the payment (issue: an index into the agenda); its position on a level issue no
        longer moves, and a veto on a choice is lifted."""
        self.payment[issue] = payment
        k = len(self.position)
        if issue >= k:
            self.lifted[issue - k] = True

    def ask_exemption(self, draft: np.ndarray) -> int:
        """The level issue on which an exemption would make it accept (rules.NONE: none)."""
        p = self.model.params  # an exemption is on a level issue: only their grievances count
        grievances = rules.grievance(draft, self.position, self.weight, p.status_quo)
        return int(rules.exemption(grievances, self.margin_now + self.noise, p.carve_out_cost, self.carved))

    def exempt(self, issue: int) -> None:
        self.carved[issue] = True

    def adopt(self, targets: np.ndarray) -> None:
        """Take its new position (second phase of the synchronous update), except where it sold its veto."""
        self.position = rules.adopt(self.position, targets[self.index], self.payment[:len(self.position)] > 0)


class Chair(mesa.Agent):
    """The Secretary General: the non-voting agenda-setter who drafts the package, buys vetoes
    with the side payments on offer, and grants exemptions at the summit."""

    model: NegotiationModel

    def __init__(self, model: NegotiationModel):
        super().__init__(model)
        p = model.params
        self.draft = p.status_quo.copy()  # (K,) it starts from the texts that stand
        self.options = p.choice_status_quo.copy()  # (C,) and from the fallbacks
        self.fixed = np.zeros(p.k + p.c, bool)  # issues of the agenda settled by a contract

    @property
    def voters(self) -> mesa.agent.AgentSet:
        return self.model.allies.select(lambda a: a.voting)

    def exempted(self) -> np.ndarray:
        """(K,) exemptions granted per issue."""
        return np.sum([a.carved for a in self.model.allies], axis=0)

    def put_to_vote(self, choice: int) -> int:
        """The option it puts to a choice decided on its own (its fallback: no vote)."""
        p, voters = self.model.params, self.voters
        gain = np.array(voters.get("own_gain"))[:, choice, :]
        allowed = rules.own_allowed(p.valid[choice], p.veto[p.voters, choice])
        return rules.own_proposal(gain, allowed, p.acceptance_noise, p.choice_status_quo[choice])

    def decide(self, choice: int, option: int) -> None:
        """A choice decided on its own is settled."""
        p = self.model.params
        self.fixed[p.k + choice], self.options[choice] = True, option
        self.model.ledger.decided(ONE, choice, np.array([option]))

    def propose(self, aim: str) -> tuple[np.ndarray, np.ndarray]:
        """Draft the package the voting members are most likely to accept, all of them; `aim` is
        which failure costs it drafts for ("summit" or "current")."""
        p, voters = self.model.params, self.voters
        position, kappa, transfers, weight, carved = self._arrays(voters, aim)
        levels, options = rules.draft(position, weight, p.status_quo, kappa, transfers, carved, p.acceptance_noise,
                                      self.fixed[None, :p.k], self.draft[None], self._choices(voters))
        self.draft, self.options = levels[0], options[0]
        return self.draft, self.options

    def _arrays(self, members: mesa.agent.AgentSet, aim: str):
        """The members' positions, failure costs aimed at, transfers, weights and exemptions, as the
        rules take them (a batch of one replication)."""
        exempted = self.exempted()
        kappa = np.array([a.failure_cost if aim == "summit" else self.model.kappa(a) for a in members])
        return (np.array(members.get("position"))[None], kappa,
                np.array([[a.transfers(exempted) for a in members]]), np.array(members.get("weight")),
                np.array(members.get("carved"))[None])

    def _choices(self, members: mesa.agent.AgentSet) -> rules.Choices | None:
        """The choice issues as `rules.draft` takes them, for `members` (None: there are none)."""
        p = self.model.params
        if not p.c:
            return None
        return rules.Choices(gain=np.array(members.get("gain")), veto=np.array(members.get("veto")),
                             lifted=np.array(members.get("lifted"))[None], valid=p.valid,
                             fallback=p.choice_status_quo, settled=(self.fixed[p.k:] | p.own)[None],
                             start=self.options[None])

    def close_contracts(self, round_: int, aim: str) -> None:
        """Buy vetoes with the side payments on offer, one priced member at a time in file order: the
        member names its contract given what the others would draft without it (its level issues
        first, then each priced choice)."""
        p = self.model.params
        for ally in self.voters:
            if ((ally.price[:p.k] > 0) & ~self.fixed[:p.k]).any():
                self._level_contract(ally, round_, aim)
            for c in range(p.c):  # asked in turn: an earlier contract may have settled the issue
                if ally.price[p.k + c] > 0 and not self.fixed[p.k + c]:
                    self._choice_contract(ally, c, round_, aim)

    def _level_contract(self, ally: Ally, round_: int, aim: str) -> None:
        p, voters = self.model.params, self.voters
        position, kappa, transfers, weight, carved = self._arrays(voters, aim)
        extra = transfers + np.array([[a.choices(self.options) for a in voters]])
        others = rules.wanted(position, weight, p.status_quo, kappa, extra, carved, p.acceptance_noise,
                              self.fixed[None, :p.k], self.draft[None], voters.to_list().index(ally), ally.price[:p.k])[0]
        issue, level, payment = ally.ask_price(others, self.draft, self.options, self.fixed)
        if issue != rules.NONE:
            self._settle(ally, issue, payment, round_, level)
            self.draft[issue] = level

    def _choice_contract(self, ally: Ally, c: int, round_: int, aim: str) -> None:
        p, voters = self.model.params, self.voters
        position, kappa, transfers, weight, carved = self._arrays(voters, aim)
        want = int(rules.wanted_option(position, weight, p.status_quo, kappa, transfers, carved, p.acceptance_noise,
                                       self.draft[None], self._choices(voters), voters.to_list().index(ally), c)[0])
        sold, payment = ally.ask_choice_price(c, want, self.draft, self.options)
        if sold:
            self._settle(ally, p.k + c, payment, round_, np.nan, want)
            self.options[c] = want

    def _settle(self, ally: Ally, issue: int, payment: float, round_: int, level: float, option: int = rules.NONE):
        """A contract: the issue of the agenda is settled, the ally paid, the ledger told."""
        ally.sell_veto(issue, payment)
        self.fixed[issue] = True
        self.model.ledger.sold(ONE, ally.index, np.array([issue]), round_, np.array([level]), np.array([payment]),
                               np.array([option]))

    def grant_exemptions(self, holdouts: mesa.agent.AgentSet, kappa_of) -> None:
        """Each voting holdout may ask for an exemption on one level issue; granted when every other
        voting member still prefers the package bearing its cost (noise aside)."""
        p = self.model.params
        for ally in holdouts:
            issue = ally.ask_exemption(self.draft) if ally.voting else rules.NONE
            if issue == rules.NONE:
                continue
            exempted = self.exempted()
            margins = np.array([[a.margin(self.draft, self.options, kappa_of(a), exempted) for a in self.model.allies]])
            if rules.grantable(margins, p.voting, np.array([ally.index]), p.carve_out_cost[[issue]])[0]:
                ally.exempt(issue)

    def fall_back(self, kappa_of) -> np.ndarray:
        """The deadline passed without consensus: the issues of the agenda that survive (all False:
        no declaration)."""
        p, allies = self.model.params, self.model.allies
        if p.fallback == "no_declaration":
            return np.zeros(p.k + p.c, bool)
        exempted = self.exempted()

        def package(on_table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (np.where(on_table[:p.k], self.draft, p.status_quo),
                    np.where(on_table[p.k:], self.options, p.choice_status_quo))

        def objection(on_table: np.ndarray) -> np.ndarray:
            levels, options = package(on_table[0])
            return np.array([[not a.accepts_package(levels, options, kappa_of(a), exempted, on_table[0])
                              for a in allies]])

        def grievances(on_table: np.ndarray) -> np.ndarray:
            levels, options = package(on_table[0])
            return np.array([a.grievances(rules.bound_by(levels, a.carved, p.status_quo), options)
                             for a in allies])[None]

        return rules.drop_contested(p.declaration[None].copy(), objection, grievances)[0]
