"""A validated `Scenario` turned into the arrays the round's rules work on.

Shapes: n members (voting Allies and non-voting invitees, in file order), K level issues, C choice
issues with at most O options each (a choice's options in file order; shorter ones padded).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from model.scenario.schema import SCALE, ByContent, Pert, Scenario, TruncNormal, Uniform

from .seeds import Purpose, scaled_beta_ppf, truncnormal_ppf, uniforms

FIXED, UNIFORM, PERT, TRUNCNORMAL = range(4)
QUANTILE_POINTS = 4097  # inverse-CDF table size: draws are within 1/4096 of the exact CDF (KS distance)


@dataclass(frozen=True)
class Params:
    codes: tuple[str, ...]  # ISO3 per member
    names: tuple[str, ...]
    blocs: tuple[str, ...]
    issues: tuple[str, ...]  # the K level issues
    choices: tuple[str, ...]  # the C choice issues
    options: tuple[tuple[str, ...], ...]  # (C,) each choice's option ids
    voting: np.ndarray  # (n,) bool: only voting members can block
    capability: np.ndarray  # (n,) influence weight, sums to 1
    salience: np.ndarray  # (n, K) in [0, 1]
    choice_salience: np.ndarray  # (n, C) in [0, 1]
    utility: np.ndarray  # (n, C, O) 0-100 per option (0 in the padding)
    veto: np.ndarray  # (n, C, O) bool: the options a voting member blocks
    choice_status_quo: np.ndarray  # (C,) the index of the option that stands if none is agreed
    own: np.ndarray  # (C,) bool: a choice decided on its own, not in the declaration's package
    minimum: np.ndarray  # (n, K) the least a member can accept on a level issue (NaN: no minimum)
    anchoring: np.ndarray  # (n, K) Friedkin-Johnsen weight on the own ideal point, a0 + (1 - a0) * salience
    failure_cost: np.ndarray  # (n,) kappa: what a failed summit costs the member (salience-weighted points)
    price: np.ndarray  # (n, K) side payment on offer for the member's veto on the issue (0: none)
    choice_price: np.ndarray  # (n, C) the same on a choice issue
    status_quo: np.ndarray  # (K,) the text that stands if an issue is not agreed
    carve_out_cost: np.ndarray  # (K,) cost to every other member of one exemption (inf: none allowed)
    influence: np.ndarray  # (n, n) row-stochastic influence matrix W
    ideal_kind: np.ndarray  # (n, K) FIXED | UNIFORM | PERT | TRUNCNORMAL
    # (4, n, K): fixed (x), uniform (low, high), pert (low, mode, high), truncnormal (mean, sd, low, high)
    ideal_args: np.ndarray
    ideal_quantiles: np.ndarray  # (n*K, QUANTILE_POINTS) inverse CDF of each ideal point on a uniform grid
    rounds: int  # the last round is the summit
    summit_sessions: int  # drafting sessions in the summit round
    acceptance_noise: float  # logistic scale of the acceptance noise (salience-weighted points)
    preparatory_cost_share: float  # the share of its failure cost a member feels before the summit
    drafting: str  # "summit": the chair drafts for the summit's failure costs; "current": for this round's
    fallback: str

    @property
    def n(self) -> int:
        return len(self.codes)

    @property
    def k(self) -> int:
        return len(self.issues)

    @property
    def c(self) -> int:
        return len(self.choices)

    @cached_property
    def valid(self) -> np.ndarray:
        """(C, O) which option slots are real options (the rest is padding)."""
        count = np.array([len(o) for o in self.options], dtype=int)
        return np.arange(self.utility.shape[-1])[None, :] < count[:, None]

    @cached_property
    def gain(self) -> np.ndarray:
        """(n, C, O) what each option gives a member against the choice's fallback, in the same
        salience-weighted points as its distances: weight_ic * (u_ico - u_ic,fallback)."""
        fallback = np.take_along_axis(self.utility, self.choice_status_quo[None, :, None], axis=2)
        return self.choice_weight[:, :, None] * (self.utility - fallback) * self.valid[None]

    @cached_property
    def package_gain(self) -> np.ndarray:
        """(n, C, O) `gain` on the choices in the declaration's package, 0 on those decided on their own."""
        return self.gain * ~self.own[None, :, None]

    @cached_property
    def declaration(self) -> np.ndarray:
        """(K + C,) the issues of the agenda that are in the declaration (not decided on their own)."""
        return np.concatenate([np.ones(self.k, bool), ~self.own])

    @cached_property
    def package_veto(self) -> np.ndarray:
        """(n, C, O) the vetoes that bear on the package (not those on a choice decided on its own)."""
        return self.veto & ~self.own[None, :, None]

    @cached_property
    def minded(self) -> np.ndarray:
        """Indices of the members with a minimum on some level issue (their `satisfied_` results)."""
        return np.flatnonzero((~np.isnan(self.minimum)).any(axis=1))

    @cached_property
    def compromise_weight(self) -> np.ndarray:
        """(n, K) the compromise model's weights c_i * s_ik, voting members only (a validation baseline)."""
        return self.capability[:, None] * self.salience * self.voting[:, None]

    @cached_property
    def weight(self) -> np.ndarray:
        """(n, K) the distance weights s_ik / (the member's salience summed over all issues, level and
        choice): a member's points on every issue are shares of one budget (computed once)."""
        return self.salience / self._salience_total

    @cached_property
    def choice_weight(self) -> np.ndarray:
        """(n, C) the same weights on the choice issues of the package; on a choice decided on its own,
        the member's salience itself (it is weighed alone, with no other issue to share a budget)."""
        package = np.broadcast_to(~self.own[None, :], self.choice_salience.shape)
        shares = np.divide(self.choice_salience, self._salience_total, out=np.zeros_like(self.choice_salience),
                           where=package)  # (an own decision's salience is no share of the total)
        return np.where(package, shares, self.choice_salience)

    @cached_property
    def _salience_total(self) -> np.ndarray:
        """(n, 1) a member's salience summed over the declaration's issues (level and package choices)."""
        total = self.salience.sum(axis=1, keepdims=True) + (self.choice_salience * ~self.own).sum(axis=1, keepdims=True)
        return np.where(total > 0, total, 1.0)

    @cached_property
    def voters(self) -> np.ndarray:
        """Indices of the voting members (the chair drafts for them; only they can block)."""
        return np.flatnonzero(self.voting)

    @cached_property
    def priced(self) -> np.ndarray:
        """Indices of the voting members with a price on offer for some veto, in file order (an
        invitee has no veto to sell)."""
        return np.flatnonzero(((self.price > 0).any(axis=1) | (self.choice_price > 0).any(axis=1)) & self.voting)

    @property
    def nominal_ideal(self) -> np.ndarray:
        """(n, K) the point codes (fixed value, PERT mode, uniform midpoint, normal mean)."""
        kind, a = self.ideal_kind, self.ideal_args
        mid = np.where(kind == UNIFORM, (a[0] + a[1]) / 2, a[0])
        return np.where(kind == PERT, a[1], mid)

    def draw_ideals(self, key: np.ndarray, first: int, count: int) -> np.ndarray:
        """(count, n, K) ideal points of replications first .. first+count-1 (randomness contract).

        Inversion through each distribution's tabulated quantile function, linearly interpolated:
        exact for fixed and uniform ideals, within 1/4096 of the exact CDF for PERT and truncated
        normal ones, and 15-20x cheaper than evaluating a Beta inverse per draw (measured)."""
        width = self.n * self.k
        u = uniforms(key, Purpose.IDEAL, 0, first, count, width)
        out = np.broadcast_to(self.ideal_quantiles[:, 0], (count, width)).copy()  # fixed ideals
        drawn = np.flatnonzero(self.ideal_kind.ravel() != FIXED)
        position = u[:, drawn] * (QUANTILE_POINTS - 1)
        cell = np.minimum(position.astype(np.intp), QUANTILE_POINTS - 2)
        position -= cell  # the fraction of the way through the cell
        flat = cell + (drawn * QUANTILE_POINTS)[None, :]  # indices into the whole table: no copy of it
        table = self.ideal_quantiles.ravel()
        low = np.take(table, flat)
        out[:, drawn] = low + position * (np.take(table, flat + 1) - low)
        return out.reshape(count, self.n, self.k)


def params_for(scenario: Scenario) -> Params:
    """`build_params`, remembered for the 8 scenarios used last (a model per run need not rebuild them;
    a sweep worker meets its points in order, and each holds about 3 MiB of quantile tables)."""
    return _params(ByContent(scenario.spec_hash, scenario))


@lru_cache(maxsize=8)
def _params(scenario: ByContent[Scenario]) -> Params:
    return build_params(scenario.value)


def build_params(scenario: Scenario) -> Params:
    """Arrays for the rules, with bloc and member shifts applied and capability derived from member data."""
    codes = tuple(scenario.members)
    issues, choices = scenario.level_issues, scenario.choice_issues
    members = [scenario.members[c] for c in codes]
    behaviour = [scenario.behaviour(c) for c in codes]
    kind, args = _ideal_arrays(scenario, codes, issues)
    capability = _capability(scenario, codes)
    blocs = tuple(m.bloc for m in members)
    infl, protocol = scenario.protocol.influence, scenario.protocol
    salience = np.array([[m.salience[i] for i in issues] for m in members], dtype=float)
    a0 = np.array([b.anchoring for b in behaviour])[:, None]
    carve = [scenario.issues[i].carve_out_cost for i in issues]
    options = tuple(tuple(scenario.issues[c].options) for c in choices)
    utility, veto = _choice_arrays(scenario, codes, choices, options)
    return Params(
        codes=codes,
        names=tuple(m.name for m in members),
        blocs=blocs,
        issues=issues,
        choices=choices,
        options=options,
        voting=np.array([m.voting for m in members]),
        capability=capability,
        salience=salience,
        choice_salience=np.array([[m.salience[c] for c in choices] for m in members], dtype=float).reshape(len(codes), -1),
        utility=utility,
        veto=veto,
        choice_status_quo=np.array([o.index(scenario.issues[c].status_quo) for c, o in zip(choices, options)], dtype=int),
        own=np.array([scenario.issues[c].decided == "on_its_own" for c in choices], dtype=bool),
        minimum=np.array([[m.minimum.get(i, np.nan) for i in issues] for m in members], dtype=float),
        anchoring=a0 + (1.0 - a0) * salience,
        failure_cost=np.array([b.failure_cost for b in behaviour]),
        price=np.array([[m.price.get(i, 0.0) for i in issues] for m in members], dtype=float),
        choice_price=np.array([[m.price.get(c, 0.0) for c in choices] for m in members], dtype=float).reshape(len(codes), -1),
        status_quo=np.array([scenario.issues[i].status_quo for i in issues], dtype=float),
        carve_out_cost=np.array([np.inf if c is None else c for c in carve], dtype=float),
        influence=influence_matrix(capability, blocs, infl.self_weight, infl.same_bloc_weight),
        ideal_kind=kind,
        ideal_args=args,
        ideal_quantiles=np.vstack([np.zeros((0, QUANTILE_POINTS))] + [_quantiles(int(c), tuple(a)) for c, a in
                                                                      zip(kind.ravel(), args.reshape(4, -1).T)]),
        rounds=protocol.rounds,
        summit_sessions=protocol.summit_sessions,
        acceptance_noise=protocol.acceptance_noise,
        preparatory_cost_share=protocol.preparatory_cost_share,
        drafting=protocol.drafting,
        fallback=protocol.fallback,
    )


def _choice_arrays(scenario: Scenario, codes, choices, options) -> tuple[np.ndarray, np.ndarray]:
    """(n, C, O) utilities and vetoes (a non-voting member has none: the schema says so)."""
    width = max((len(o) for o in options), default=0)
    utility = np.zeros((len(codes), len(choices), width))
    veto = np.zeros(utility.shape, bool)
    for i, code in enumerate(codes):
        member = scenario.members[code]
        for c, (choice, ids) in enumerate(zip(choices, options)):
            utility[i, c, :len(ids)] = [member.utility[choice][o] for o in ids]
            veto[i, c, :len(ids)] = [o in member.veto.get(choice, ()) for o in ids]
    return utility, veto


def _ideal_arrays(scenario: Scenario, codes, issues) -> tuple[np.ndarray, np.ndarray]:
    n, k = len(codes), len(issues)
    kind = np.zeros((n, k), dtype=np.int8)
    args = np.zeros((4, n, k))
    for i, code in enumerate(codes):
        member = scenario.members[code]
        bloc_shift = scenario.blocs[member.bloc].shift
        for j, issue in enumerate(issues):
            ideal = member.ideal[issue]
            shift = bloc_shift.get(issue, 0.0) + member.shift.get(issue, 0.0)
            clip = functools.partial(_shifted, shift=shift)
            if isinstance(ideal, Uniform):
                kind[i, j], args[:2, i, j] = UNIFORM, (clip(ideal.low), clip(ideal.high))
            elif isinstance(ideal, Pert):
                kind[i, j], args[:3, i, j] = PERT, (clip(ideal.low), clip(ideal.mode), clip(ideal.high))
            elif isinstance(ideal, TruncNormal) and clip(ideal.low) == clip(ideal.high):
                kind[i, j], args[0, i, j] = FIXED, clip(ideal.low)  # a shift pressed it onto a scale end
            elif isinstance(ideal, TruncNormal):
                kind[i, j] = TRUNCNORMAL
                args[:, i, j] = (clip(ideal.mean), ideal.sd, clip(ideal.low), clip(ideal.high))
            else:
                kind[i, j], args[0, i, j] = FIXED, clip(ideal)
    return kind, args


@lru_cache(maxsize=4096)
def _quantiles(kind: int, args: tuple[float, ...]) -> np.ndarray:
    """The exact inverse CDF of one ideal-point distribution at QUANTILE_POINTS evenly spaced levels."""
    u = np.linspace(0.0, 1.0, QUANTILE_POINTS)
    a = np.array(args)[:, None]
    if kind == FIXED:
        values = np.full_like(u, a[0, 0])
    elif kind == UNIFORM:
        values = a[0] + u * (a[1] - a[0])
    elif kind == PERT:
        values = scaled_beta_ppf(u, a[0], a[1], a[2])
    else:
        values = truncnormal_ppf(u, a[0], a[1], a[2], a[3])
    values = np.asarray(values, dtype=float).ravel()
    values.flags.writeable = False
    return values


def _capability(scenario: Scenario, codes) -> np.ndarray:
    """c_i = (w * GDP share + (1 - w) * military-spending share) ** exponent, shares over members with
    data; a member's explicit `capability` replaces its derived value; the result sums to 1."""
    cap = scenario.capability
    members = [scenario.members[c] for c in codes]
    gdp = np.array([m.data.gdp_usd_bn if m.data else 0.0 for m in members])
    mil = np.array([m.data.gdp_usd_bn * m.data.milex_pct_gdp / 100 if m.data else 0.0 for m in members])
    mix = cap.gdp_weight * _share(gdp) + (1 - cap.gdp_weight) * _share(mil)
    derived = _share(np.where(mix > 0, mix, 0.0) ** cap.exponent * (gdp > 0))
    raw = np.array([m.capability if m.capability is not None else d for m, d in zip(members, derived)])
    return _share(raw) if raw.sum() > 0 else np.full(len(codes), 1 / len(codes))


def _share(x: np.ndarray) -> np.ndarray:
    total = x.sum()
    return x / total if total > 0 else np.zeros_like(x)


def _shifted(level: float, shift: float) -> float:
    """A level moved by a bloc shift, kept on the scale."""
    return min(max(level + shift, SCALE[0]), SCALE[1])


def influence_matrix(capability: np.ndarray, blocs, self_weight: float, same_bloc_weight: float) -> np.ndarray:
    """Row-stochastic W: each member keeps `self_weight` on its own position and spreads the rest over
    the others in proportion to their capability, times `same_bloc_weight` for members of its bloc."""
    bloc = np.asarray(blocs)
    affinity = np.where(bloc[:, None] == bloc[None, :], same_bloc_weight, 1.0) * capability[None, :]
    np.fill_diagonal(affinity, 0.0)
    totals = affinity.sum(axis=1, keepdims=True)
    others = np.divide(affinity, totals, out=np.zeros_like(affinity), where=totals > 0)
    keep = np.where(totals[:, 0] > 0, self_weight, 1.0)
    return others * (1 - keep)[:, None] + np.diag(keep)
