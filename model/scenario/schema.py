"""The scenario format: a pydantic schema that a scenario file must satisfy.

`files.py` reads the YAML (with `extends` and `--set`) and validates it against `Scenario`. Every
failure a user can cause becomes one `ScenarioError` naming the file, the key path and what is
allowed; the command line turns it into a message and exit code 2.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import reprlib
from functools import cached_property
from typing import Annotated, Any, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T")
SCHEMA_VERSION = 2
MISSING_PER_ISSUE = "missing; every member needs a value per issue"
SCALE = (0.0, 100.0)

def _not_a_boolean(value):
    """YAML reads yes/no/true/false as booleans; pydantic would take them as 1 and 0."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


def _format_2(value):
    """Format 1 files get one message naming what changed, not 'input should be 2'."""
    if value == 1 and not isinstance(value, bool):
        raise PydanticCustomError(
            "format_1", "scenario format 1 is no longer read. Format 2 adds each issue's status_quo and replaces "
            "tolerance, reservation and concession with failure_cost, linkage with price, and drops "
            "objector_pull; migrate the file ({doc}) and set schema_version: 2", {"doc": MIGRATION})
    return _not_a_boolean(value)


Number = Annotated[float, BeforeValidator(_not_a_boolean)]  # finite: the models forbid inf and nan
Whole = Annotated[int, Field(strict=True)]  # a whole number, not a boolean or 8.0
Flag = Annotated[bool, Field(strict=True)]  # true or false, not 1 or 0
Level = Annotated[Number, Field(ge=SCALE[0], le=SCALE[1])]
Unit = Annotated[Number, Field(ge=0.0, le=1.0)]


@dataclasses.dataclass(frozen=True)
class ByContent(Generic[T]):
    """A value compared and hashed by a content key alone (e.g. a scenario by its spec hash), so an
    `lru_cache` can key on it: a scenario or its plain data is not hashable itself."""

    key: str
    value: T = dataclasses.field(compare=False, hash=False)


class ScenarioError(Exception):
    """A problem with a scenario the user can fix; `str()` is the full message."""


MIGRATION = "docs/scenario-format.md, 'Migrating from format 1'"
REMOVED = {  # format-1 keys -> what replaces them in format 2 (each gets its own message)
    "tolerance": "acceptance is judged against the status quo: a member accepts a draft it prefers to "
                 "the issues' status_quo by at least minus its failure_cost; use failure_cost",
    "reservation": "use failure_cost (what a failed summit costs the member, in salience-weighted points)",
    "concession": "the deadline now bites through the cost of failure: use failure_cost and "
                  "protocol.preparatory_cost_share",
    "linkage": "a veto is sold for a priced side payment: use price: {ISSUE: AMOUNT}",
    "objector_pull": "the chair now drafts the package most likely to be accepted by all; delete the key",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # every number is finite

    @model_validator(mode="before")
    @classmethod
    def _no_format_1_keys(cls, data):
        """A key removed in format 2 gets a message naming what replaces it (not 'unknown key')."""
        if isinstance(data, dict):
            for key in REMOVED:
                if key in data and key not in cls.model_fields:
                    raise PydanticCustomError("removed_key", "removed in scenario format 2; {fix} ({doc})",
                                              {"key": key, "fix": REMOVED[key], "doc": MIGRATION})
        return data


# ---------------------------------------------------------------- ideal-point distributions
class Uniform(Strict):
    """Ideal point uniform on [low, high]."""

    dist: Literal["uniform"]
    low: Level
    high: Level

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self

    @property
    def nominal(self) -> float:
        return (self.low + self.high) / 2


class Pert(Strict):
    """Scaled Beta on [low, high] with its mode at the expert code (PERT, shape 4)."""

    dist: Literal["pert"]
    low: Level
    mode: Level
    high: Level

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low <= self.mode <= self.high:
            raise ValueError(f"need low <= mode <= high, got {self.low}, {self.mode}, {self.high}")
        return self

    @property
    def nominal(self) -> float:
        return self.mode


class TruncNormal(Strict):
    """Normal(mean, sd) truncated to [low, high]."""

    dist: Literal["truncnormal"]
    mean: Level
    sd: Annotated[Number, Field(gt=0.0)]
    low: Level = SCALE[0]
    high: Level = SCALE[1]

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low <= self.mean <= self.high or self.low == self.high:
            raise ValueError(f"need low <= mean <= high and low < high, got {self.low}, {self.mean}, {self.high}")
        return self

    @property
    def nominal(self) -> float:
        return self.mean


Distribution = Annotated[Uniform | Pert | TruncNormal, Field(discriminator="dist")]
IdealPoint = Level | Distribution


def nominal(ideal: IdealPoint) -> float:
    """The point code of an ideal (its mode/mean), used for baselines and plots."""
    return float(ideal) if isinstance(ideal, (int, float)) else ideal.nominal


# ---------------------------------------------------------------- scenario sections
Cost = Annotated[Number, Field(ge=0.0)]  # salience-weighted points (a member's distances are in these units)


class Issue(Strict):
    """A level issue: the text is a level on the issue's 0-100 scale."""

    kind: Literal["level"] = "level"
    label: str
    anchors: dict[Level, str] = Field(description="scale level -> communiqué phrasing")
    source: str = ""
    status_quo: Level = Field(description="the last text adopted by all Allies on the issue: what stands if "
                                          "the issue is not agreed")
    status_quo_source: str = Field("", description="where the status quo was coded from, with its date")
    carve_out_cost: Cost | None = Field(None, description="cost to every other member of one member's exemption "
                                                          "on this issue; null: no exemptions")

    @field_validator("anchors")
    @classmethod
    def _covers_scale(cls, anchors: dict[float, str]) -> dict[float, str]:
        if SCALE[0] not in anchors or SCALE[1] not in anchors:
            raise ValueError("anchors must include the scale ends 0 and 100")
        return dict(sorted(anchors.items()))

    def phrase(self, level: float) -> str:
        """The anchor phrasing nearest to `level` (ties go to the lower anchor)."""
        return self.anchors[self.nearest_anchor(level)]

    def nearest_anchor(self, levels):
        """The anchor level nearest to each level (ties go to the lower anchor); works on arrays."""
        anchors = np.array(list(self.anchors))  # sorted ascending
        gaps = np.abs(np.asarray(levels, dtype=float)[..., None] - anchors)
        return anchors[gaps.argmin(axis=-1)]  # argmin takes the first, i.e. lower, of equal gaps


OptionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]


class ChoiceIssue(Strict):
    """A choice issue: the outcome is one of named options (who becomes Secretary General)."""

    kind: Literal["choice"]
    label: str
    options: dict[OptionId, str] = Field(description="option id -> what the outcome is, in words")
    source: str = ""
    status_quo: str = Field(description="the option that stands if none is agreed (the fallback)")
    status_quo_source: str = Field("", description="where the fallback was coded from, with its date")
    decided: Literal["in_declaration", "on_its_own"] = Field(
        "in_declaration", description="part of the declaration's package, or a decision of its own (the North "
                                      "Atlantic Council appoints the Secretary General apart from the communique)")

    @model_validator(mode="after")
    def _fallback_is_an_option(self):
        if len(self.options) < 2:
            raise ValueError("options: a choice needs at least two options (one of them the status_quo)")
        if self.status_quo not in self.options:
            raise ValueError(f"status_quo: {shown(self.status_quo)} is not one of the options "
                             f"({listing(self.options)}); name the option that stands if none is agreed")
        return self

    def phrase(self, option: str) -> str:
        return self.options[option]


def _issue_kind(value) -> str:
    """A level issue needs no `kind` key (files written before choice issues existed)."""
    return value.get("kind", "level") if isinstance(value, dict) else getattr(value, "kind", "level")


AnyIssue = Annotated[Annotated[Issue, Tag("level")] | Annotated[ChoiceIssue, Tag("choice")],
                     Discriminator(_issue_kind)]
Utility = Annotated[Number, Field(ge=0.0, le=100.0)]


class Bloc(Strict):
    label: str
    shift: dict[str, Number] = Field(default_factory=dict, description="issue -> points added to ideals")


class Capability(Strict):
    gdp_weight: Unit = 0.5
    exponent: Annotated[Number, Field(ge=0.0, le=2.0)] = 0.5


class MemberData(Strict):
    gdp_usd_bn: Annotated[Number, Field(gt=0)]
    milex_pct_gdp: Annotated[Number, Field(ge=0, le=60)]  # a war economy too (Ukraine 2023: 37 %)
    population_m: Annotated[Number, Field(gt=0)] | None = None


class Behaviour(Strict):
    """Negotiating behaviour; every field may be set on `member_defaults` or on one member."""

    anchoring: Unit = 0.5
    failure_cost: Cost = 30.0


class Member(Strict):
    name: str
    bloc: str
    joined: Whole | None = None
    voting: Flag = True
    data: MemberData | None = None
    capability: Annotated[Number, Field(ge=0.0)] | None = None
    ideal: dict[str, IdealPoint]
    salience: dict[str, Unit]
    shift: dict[str, Number] = Field(default_factory=dict, description="issue -> points added to this member's ideal")
    sources: dict[str, str] = Field(default_factory=dict)
    anchoring: Unit | None = None
    failure_cost: Cost | None = None
    price: dict[str, Cost] = Field(default_factory=dict, description="issue -> the side payment on offer for "
                                                                    "this member's veto on it")
    utility: dict[str, dict[str, Utility]] = Field(
        default_factory=dict, description="choice issue -> option -> 0-100 (100: the member's best outcome)")
    veto: dict[str, list[str]] = Field(default_factory=dict, description="choice issue -> options it blocks")
    minimum: dict[str, Level] = Field(default_factory=dict, description="level issue -> the least it can accept")


class Influence(Strict):
    self_weight: Unit = 0.5
    same_bloc_weight: Annotated[Number, Field(ge=0.0)] = 2.0


class Protocol(Strict):
    rounds: Annotated[Whole, Field(ge=1, le=200)] = 8
    summit_sessions: Annotated[Whole, Field(ge=1, le=20)] = 3
    acceptance_noise: Annotated[Number, Field(ge=0.0)] = 10.0
    preparatory_cost_share: Unit = 0.1
    drafting: Literal["summit", "current"] = "summit"
    influence: Influence = Influence()
    fallback: Literal["drop_contested", "no_declaration"] = "drop_contested"


class Run(Strict):
    replications: Annotated[Whole, Field(ge=1, le=100_000_000)] = 2000
    seed: Annotated[Whole, Field(ge=0, lt=2**63)] | None = None


class Observed(Strict):
    """The coded real outcome: what validation compares the model with."""

    consensus: Flag
    levels: dict[str, Level] = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict, description="choice issue -> the option that stood")
    wording: dict[str, str] = Field(default_factory=dict, description="issue -> the text the level was coded from")
    satisfied: dict[str, Flag] = Field(default_factory=dict, description="member -> whether its minimum was met")
    holdouts: list[str] = Field(default_factory=list)
    late: Flag | None = Field(None, description="the text was settled only at the summit itself (the last round)")
    source: str = ""


class SweepRange(Strict):
    """One swept parameter: its range and, for a grid, the number of evenly spaced levels."""

    low: Annotated[Number, Field(allow_inf_nan=False)]
    high: Annotated[Number, Field(allow_inf_nan=False)]
    levels: Annotated[Whole, Field(ge=2, le=10_000)] | None = Field(
        None, description="grid levels from low to high; required by the grid design, unused by the others")

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high}); give low <= high")
        return self


class Sweep(Strict):
    """A parameter sweep: which scenario values vary, how the points are laid out, how many runs each."""

    design: Literal["grid", "lhs", "sobol", "morris"] = "grid"
    parameters: dict[str, SweepRange] = Field(description="parameter path (as for --set) -> range")
    samples: Annotated[Whole, Field(ge=1)] | None = Field(
        None, description="lhs: points; sobol: base sample N (a power of two); morris: trajectories")
    second_order: Flag = Field(False, description="sobol: also estimate second-order indices (N(2D+2) points)")
    morris_levels: Annotated[Whole, Field(ge=2, le=100)] = 4
    replications: Annotated[Whole, Field(ge=1, le=100_000_000)] | None = Field(
        None, description="runs per point (default run.replications); the cap when target_halfwidth is set")
    common_random_numbers: Flag = Field(True, description="replication r uses the same draws at every point")
    target_halfwidth: Annotated[Number, Field(gt=0.0, lt=0.5)] | None = Field(
        None, description="stop a point once the Wilson 95% half-width of P(consensus) is at most this")
    min_replications: Annotated[Whole, Field(ge=1)] = 100
    outcome: str = Field("consensus", description="what sensitivity indices explain: consensus or level_<issue>")

    @model_validator(mode="after")
    def _consistent(self):
        problems = []
        if not self.parameters:
            problems.append("parameters: give at least one parameter path with low and high")
        if self.design == "grid":
            for path, rng in self.parameters.items():
                if rng.levels is None:
                    problems.append(f"parameters.{path}.levels: the grid design needs levels (e.g. 5; on the "
                                    f"command line --sweep {path}=LOW:HIGH:LEVELS), or choose another design")
        elif self.samples is None:
            problems.append(f"samples: the {self.design} design needs samples "
                            + ("(a power of two, e.g. 256)" if self.design == "sobol" else "(e.g. 64)"))
        if self.design == "sobol" and self.samples is not None and self.samples & (self.samples - 1):
            below = 1 << (self.samples.bit_length() - 1)
            problems.append(f"samples: Sobol (Saltelli) sampling needs a power of two, got {self.samples}; "
                            f"use {below} or {below * 2}")
        if self.design in ("sobol", "morris") and len(self.parameters) < 2:
            problems.append(f"parameters: {self.design} indices need at least two parameters")
        if problems:
            raise ValueError("\n".join(problems))
        return self


ADDED_KEYS = ("summit_date",)  # top-level keys added to format 2 after its first release


class Reference(Strict):
    """A dated source (coding rules v2): a code may rest only on what was published before the summit."""

    url: str
    title: str = ""
    date: datetime.date = Field(description="publication date, from the page's text or its URL")


class Scenario(Strict):
    """A validated scenario. Members and issues keep the file's order."""

    schema_version: Annotated[Literal[2], BeforeValidator(_format_2)] = SCHEMA_VERSION
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]  # also the output folder's name
    title: str = ""
    description: str = ""
    summit_date: datetime.date | None = Field(
        None, description="the first day of the summit (or of the decision): coding rules v2 sources predate it")
    references: dict[str, str | Reference] = Field(default_factory=dict)
    issues: dict[str, AnyIssue]
    blocs: dict[str, Bloc]
    capability: Capability = Capability()
    member_defaults: Behaviour = Behaviour()
    members: dict[str, Member]
    protocol: Protocol = Protocol()
    run: Run = Run()
    observed: Observed | None = None
    sweep: Sweep | None = None

    @property
    def level_issues(self) -> tuple[str, ...]:
        """The level issues, in file order."""
        return tuple(name for name, issue in self.issues.items() if issue.kind == "level")

    @property
    def choice_issues(self) -> tuple[str, ...]:
        """The choice issues, in file order."""
        return tuple(name for name, issue in self.issues.items() if issue.kind == "choice")

    @property
    def minded(self) -> tuple[str, ...]:
        """The members with a minimum (each gets a `satisfied_<code>` result), in file order."""
        return tuple(code for code, member in self.members.items() if member.minimum)

    @model_validator(mode="after")
    def _cross_references(self):
        problems = []
        if not self.issues:
            problems.append(("issues", "at least one issue is required"))
        elif all(getattr(issue, "decided", None) == "on_its_own" for issue in self.issues.values()):
            problems.append(("issues", "every issue is decided on its own, so the declaration holds nothing; code a "
                                       "selection alone as decided: in_declaration (docs/coding-rules.md §7)"))
        if not any(m.voting for m in self.members.values()):
            problems.append(("members", "at least one member must have voting: true"))
        for code, m in self.members.items():
            problems += self._member_problems(code, m)
        for bloc_id, bloc in self.blocs.items():
            problems += self._keys(f"blocs.{bloc_id}.shift", bloc.shift, self.level_issues, "a level issue")
        if self.observed:
            problems += self._observed_problems(self.observed)
        if problems:
            raise ValueError("\n".join(f"{path}: {text}" for path, text in problems))
        return self

    def _keys(self, where: str, given, allowed: tuple[str, ...], kind: str, required: bool = False) -> list:
        """Problems with the issue keys of one mapping: unknown ones, the wrong kind, missing ones."""
        problems = []
        for key in given:
            if key not in self.issues:
                problems.append((f"{where}.{key}", f"unknown issue; known: {listing(self.issues)}"))
            elif key not in allowed:
                problems.append((f"{where}.{key}", f"{key} is a {self.issues[key].kind} issue; this key takes {kind}"))
        if required:
            problems += [(f"{where}.{key}", MISSING_PER_ISSUE) for key in allowed if key not in given]
        return problems

    def _member_problems(self, code: str, m: Member) -> list:
        where = f"members.{code}"
        problems = []
        if m.bloc not in self.blocs:
            problems.append((f"{where}.bloc", f"unknown bloc {shown(m.bloc)}; known: {listing(self.blocs)}"))
        problems += self._keys(f"{where}.salience", m.salience, tuple(self.issues), "any issue", required=True)
        problems += self._keys(f"{where}.ideal", m.ideal, self.level_issues,
                               "a level issue (a choice issue takes utility)", required=True)
        problems += self._keys(f"{where}.utility", m.utility, self.choice_issues,
                               "a choice issue (a level issue takes ideal)", required=True)
        for field in ("shift", "minimum"):
            problems += self._keys(f"{where}.{field}", getattr(m, field), self.level_issues, "a level issue")
        declaration = tuple(n for n, i in self.issues.items() if i.kind == "level" or i.decided == "in_declaration")
        problems += self._keys(f"{where}.price", m.price, declaration,
                               "an issue of the declaration (a choice decided on its own has no contracts)")
        problems += self._keys(f"{where}.veto", m.veto, self.choice_issues, "a choice issue")
        for name in set(m.utility) & set(self.choice_issues):
            options = self.issues[name].options
            for option in options:
                if option not in m.utility[name]:
                    problems.append((f"{where}.utility.{name}.{option}", "missing; give a utility (0-100) for every option"))
            for option in set(m.utility[name]) - set(options):
                problems.append((f"{where}.utility.{name}.{option}", f"unknown option; known: {listing(options)}"))
        for name in set(m.veto) & set(self.choice_issues):
            issue = self.issues[name]
            if m.veto[name] and not m.voting:
                problems.append((f"{where}.veto.{name}", "only a voting member can veto; delete the key or set voting: true"))
            for option in m.veto[name]:
                if option not in issue.options:
                    problems.append((f"{where}.veto.{name}", f"unknown option {shown(option)}; known: {listing(issue.options)}"))
                elif option == issue.status_quo:
                    problems.append((f"{where}.veto.{name}", f"{option} is the status quo, which stands when nothing is "
                                                             "agreed and cannot be vetoed; delete it from the list"))
        if m.capability is None and m.data is None:
            problems.append((f"{where}.data", "give data (gdp_usd_bn, milex_pct_gdp) or a capability"))
        return problems

    def _observed_problems(self, obs: Observed) -> list:
        problems = self._keys("observed.levels", obs.levels, self.level_issues, "a level issue")
        problems += self._keys("observed.options", obs.options, self.choice_issues, "a choice issue")
        problems += self._keys("observed.wording", obs.wording, tuple(self.issues), "any issue")
        for name, option in obs.options.items():
            if name in self.choice_issues and option not in self.issues[name].options:
                problems.append((f"observed.options.{name}", f"unknown option {shown(option)}; "
                                                             f"known: {listing(self.issues[name].options)}"))
        for code in obs.holdouts:
            if code not in self.members:
                problems.append(("observed.holdouts", f"unknown member {shown(code)}; known: {listing(self.members)}"))
        for code in obs.satisfied:
            if code not in self.minded:
                problems.append((f"observed.satisfied.{code}", "not a member with a minimum; known: "
                                                               f"{listing(self.minded) if self.minded else '(none)'}"))
        return problems

    def behaviour(self, code: str) -> Behaviour:
        """Member `code`'s behaviour: its own values over `member_defaults`."""
        own = {k: v for k, v in self.members[code].model_dump(include=set(Behaviour.model_fields)).items()
               if v is not None}
        return self.member_defaults.model_copy(update=own)

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> Scenario:
        """A copy, with its content hash recomputed (pydantic would copy the cached one)."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("spec_hash", None)
        return copy

    @cached_property
    def spec_hash(self) -> str:
        """Content hash of the resolved scenario (what identifies an output folder). A key added to
        format 2 later (`ADDED_KEYS`) counts only when set, so existing folders keep their hash."""
        data = self.model_dump(mode="json")
        for key in ADDED_KEYS:
            if data[key] is None:
                del data[key]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def shown(value: Any, width: int = 80) -> str:
    """`value` as a message may echo it: a bounded repr of at most `width` characters."""
    text = _REPR.repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


_REPR = reprlib.Repr(maxlevel=2, maxdict=4, maxlist=4, maxtuple=4, maxset=4, maxstring=70, maxother=70)


def listing(keys) -> str:
    """Known keys for a message: at most 40, each cut to 30 characters."""
    keys = [k if len(k) <= 30 else k[:27] + "..." for k in map(str, keys)]
    return ", ".join(keys) if len(keys) <= 40 else ", ".join(keys[:40]) + ", ..."
