"""The classic predictors of negotiated outcomes, each a function of the same coded inputs as the
model: the voting members' positions (R draws, or R = 1 for the point codes), capabilities and
saliences, and each issue's status quo. The validation tournament (`model.outputs.tournament`)
scores them beside the model on every historical case.

Every predictor gives the texts of the level issues, `levels(position (R, n, K), capability (n,),
salience (n, K), status_quo (K,)) -> (R, K)`; those that say which option a choice issue takes also
give `options(utility (n, C, O), capability, salience (n, C), veto, valid, fallback) -> (C,)`.
Sources and analytic properties are in each module's docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.negotiation import rules

from . import bdm, egalitarian, exchange, nash, setter


@dataclass(frozen=True)
class Predictor:
    label: str
    levels: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    options: Callable[..., np.ndarray] | None = None  # None: the method says nothing of choice issues


def _pick(weighted: bool) -> Callable[..., np.ndarray]:
    """The option with the largest (capability x salience weighted, or plain) sum of utilities."""
    def options(utility, capability, salience, veto, valid, fallback):
        weight = capability[:, None] * salience if weighted else np.ones_like(salience)
        return rules.weighted_pick(utility, weight, valid)
    return options


def _status_quo_options(utility, capability, salience, veto, valid, fallback):
    return fallback


PREDICTORS: dict[str, Predictor] = {
    "status_quo": Predictor("status quo (no change)",
                            lambda x, c, s, q: np.broadcast_to(q, (x.shape[0], len(q))).copy(), _status_quo_options),
    "plain_mean": Predictor("plain mean", lambda x, c, s, q: rules.plain_mean(x, np.ones(x.shape[1], bool)),
                            _pick(False)),
    "compromise": Predictor("compromise (c x s weighted mean)",
                            lambda x, c, s, q: rules.compromise(x, c[:, None] * s), _pick(True)),
    "weighted_median": Predictor("weighted median", lambda x, c, s, q: rules.weighted_median(x, c[:, None] * s),
                                 _pick(True)),
    "nash": Predictor("Nash bargaining (unanimity win-set)", nash.levels, nash.options),
    "egalitarian": Predictor("egalitarian (Kalai) solution", egalitarian.levels, egalitarian.options),
    "setter": Predictor("agenda setter (Romer-Rosenthal)", setter.levels, setter.options),
    "bdm": Predictor("expected utility (Bueno de Mesquita)",
                     lambda x, c, s, q: bdm.forecast(x, c, s)),
    "exchange": Predictor("exchange (Stokman-van Oosten)", lambda x, c, s, q: exchange.forecast(x, c, s)),
}
