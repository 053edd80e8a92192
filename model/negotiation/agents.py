"""Mesa agents: the Allies (and invitees) and the chair.

Agents hold identity and expose their slice of the negotiation state; the round's rules live in
`rules.py` and run over all members at once, so every update is synchronous and the Mesa engine
computes exactly what the array engine computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from .rules import acceptable_distance

if TYPE_CHECKING:
    from .model import NegotiationModel


class Ally(mesa.Agent):
    """One Ally (or a non-voting invitee) at the table."""

    model: NegotiationModel

    def __init__(self, model: NegotiationModel, index: int, code: str, name: str, bloc: str, voting: bool):
        super().__init__(model)
        self.index, self.code, self.name, self.bloc, self.voting = index, code, name, bloc, voting

    @property
    def position(self) -> dict[str, float]:
        """Stated position per issue (0-100)."""
        row = self.model.state.position[0, self.index]
        return dict(zip(self.model.params.issues, map(float, row)))

    @property
    def ideal(self) -> dict[str, float]:
        """Ideal point per issue this replication (drawn, then moved only by a side payment)."""
        row = self.model.state.ideal[0, self.index]
        return dict(zip(self.model.params.issues, map(float, row)))

    @property
    def accepts(self) -> bool | None:
        """Whether it accepted the last draft (None before the first vote)."""
        last = self.model.last_round
        return None if last is None else bool(last.accepts[0, self.index])

    @property
    def acceptable_distance(self) -> float:
        """How far (salience-weighted points) a draft may be from its position in the current round."""
        p = self.model.params
        t = min(max(self.model.round, 1), p.rounds)
        i = self.index
        return float(acceptable_distance(t, p.rounds, p.tolerance[i], p.reservation[i], p.concession[i]))


class Chair(mesa.Agent):
    """The Secretary General: non-voting agenda-setter who drafts the package each round."""

    model: NegotiationModel

    @property
    def draft(self) -> dict[str, float]:
        last = self.model.last_round
        if last is None:
            return {}
        return dict(zip(self.model.params.issues, map(float, last.draft[0])))
