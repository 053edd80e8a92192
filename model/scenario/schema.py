"""The scenario format: a pydantic schema that a scenario file must satisfy.

`files.py` reads the YAML (with `extends` and `--set`) and validates it against `Scenario`. Every
failure a user can cause becomes one `ScenarioError` naming the file, the key path and what is
allowed; the command line turns it into a message and exit code 2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import reprlib
from functools import cached_property
from typing import Annotated, Any, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
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


class Bloc(Strict):
    label: str
    shift: dict[str, Number] = Field(default_factory=dict, description="issue -> points added to ideals")


class Capability(Strict):
    gdp_weight: Unit = 0.5
    exponent: Annotated[Number, Field(ge=0.0, le=2.0)] = 0.5


class MemberData(Strict):
    gdp_usd_bn: Annotated[Number, Field(gt=0)]
    milex_pct_gdp: Annotated[Number, Field(ge=0, le=20)]
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
    wording: dict[str, str] = Field(default_factory=dict, description="issue -> the text the level was coded from")
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


class Scenario(Strict):
    """A validated scenario. Members and issues keep the file's order."""

    schema_version: Annotated[Literal[2], BeforeValidator(_format_2)] = SCHEMA_VERSION
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]  # also the output folder's name
    title: str = ""
    description: str = ""
    references: dict[str, str] = Field(default_factory=dict)
    issues: dict[str, Issue]
    blocs: dict[str, Bloc]
    capability: Capability = Capability()
    member_defaults: Behaviour = Behaviour()
    members: dict[str, Member]
    protocol: Protocol = Protocol()
    run: Run = Run()
    observed: Observed | None = None
    sweep: Sweep | None = None

    @model_validator(mode="after")
    def _cross_references(self):
        problems = []
        issues = set(self.issues)
        if not issues:
            problems.append(("issues", "at least one issue is required"))
        if not any(m.voting for m in self.members.values()):
            problems.append(("members", "at least one member must have voting: true"))
        for code, m in self.members.items():
            where = f"members.{code}"
            if m.bloc not in self.blocs:
                problems.append((f"{where}.bloc", f"unknown bloc {shown(m.bloc)}; known: {listing(self.blocs)}"))
            for field in ("ideal", "salience"):
                given = set(getattr(m, field))
                for missing in sorted(issues - given):
                    problems.append((f"{where}.{field}.{missing}", MISSING_PER_ISSUE))
                for extra in sorted(given - issues):
                    problems.append((f"{where}.{field}.{extra}", f"unknown issue; known: {listing(self.issues)}"))
            for field in ("shift", "price"):
                for extra in sorted(set(getattr(m, field)) - issues):
                    problems.append((f"{where}.{field}.{extra}", f"unknown issue; known: {listing(self.issues)}"))
            if m.capability is None and m.data is None:
                problems.append((f"{where}.data", "give data (gdp_usd_bn, milex_pct_gdp) or a capability"))
        for bloc_id, bloc in self.blocs.items():
            for issue in sorted(set(bloc.shift) - issues):
                problems.append((f"blocs.{bloc_id}.shift.{issue}", f"unknown issue; known: {listing(self.issues)}"))
        if self.observed:
            for field in ("levels", "wording"):
                for issue in sorted(set(getattr(self.observed, field)) - issues):
                    problems.append((f"observed.{field}.{issue}", f"unknown issue; known: {listing(self.issues)}"))
            for code in self.observed.holdouts:
                if code not in self.members:
                    problems.append(("observed.holdouts", f"unknown member {shown(code)}; known: {listing(self.members)}"))
        if problems:
            raise ValueError("\n".join(f"{path}: {text}" for path, text in problems))
        return self

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
        """Content hash of the resolved scenario (what identifies an output folder)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
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
