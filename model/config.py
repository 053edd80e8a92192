"""Scenario files: YAML -> `extends` merge -> `--set` overrides -> a validated `Scenario`.

Every failure a user can cause (missing file, YAML syntax, unknown key, unknown member, a value
out of range, a bad `--set` path) becomes one `ScenarioError` naming the file, the key path and
what is allowed. `run.py` turns it into a message and exit code 2.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
SCALE = (0.0, 100.0)
REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINE = REPO_ROOT / "scenarios" / "baseline.yaml"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster

Level = Annotated[float, Field(ge=SCALE[0], le=SCALE[1])]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class ScenarioError(Exception):
    """A problem with a scenario the user can fix; `str()` is the full message."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    sd: Annotated[float, Field(gt=0.0)]
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
class Issue(Strict):
    label: str
    anchors: dict[Level, str] = Field(description="scale level -> communiqué phrasing")
    source: str = ""

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
    shift: dict[str, float] = Field(default_factory=dict, description="issue -> points added to ideals")


class Capability(Strict):
    gdp_weight: Unit = 0.5
    exponent: Annotated[float, Field(ge=0.0, le=2.0)] = 0.5


class MemberData(Strict):
    gdp_usd_bn: Annotated[float, Field(gt=0)]
    milex_pct_gdp: Annotated[float, Field(ge=0, le=20)]
    population_m: Annotated[float, Field(gt=0)] | None = None


class Behaviour(Strict):
    """Negotiating behaviour; every field may be set on `member_defaults` or on one member."""

    anchoring: Unit = 0.5
    concession: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    tolerance: Annotated[float, Field(ge=0.0)] = 8.0
    reservation: Annotated[float, Field(ge=0.0)] = 30.0
    linkage: Unit = 0.0


class Member(Strict):
    name: str
    bloc: str
    joined: int | None = None
    voting: bool = True
    data: MemberData | None = None
    capability: Annotated[float, Field(ge=0.0)] | None = None
    ideal: dict[str, IdealPoint]
    salience: dict[str, Unit]
    shift: dict[str, float] = Field(default_factory=dict, description="issue -> points added to this member's ideal")
    sources: dict[str, str] = Field(default_factory=dict)
    anchoring: Unit | None = None
    concession: Annotated[float, Field(gt=0.0, le=100.0)] | None = None
    tolerance: Annotated[float, Field(ge=0.0)] | None = None
    reservation: Annotated[float, Field(ge=0.0)] | None = None
    linkage: Unit | None = None


class Influence(Strict):
    self_weight: Unit = 0.5
    same_bloc_weight: Annotated[float, Field(ge=0.0)] = 2.0


class Protocol(Strict):
    rounds: Annotated[int, Field(ge=1, le=200)] = 8
    acceptance_noise: Annotated[float, Field(ge=0.0)] = 2.0
    objector_pull: Unit = 0.3
    influence: Influence = Influence()
    fallback: Literal["drop_contested", "no_declaration"] = "drop_contested"


class Run(Strict):
    replications: Annotated[int, Field(ge=1, le=100_000_000)] = 2000
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None


class Observed(Strict):
    """The coded real outcome: what validation compares the model with."""

    consensus: bool
    levels: dict[str, Level] = Field(default_factory=dict)
    wording: dict[str, str] = Field(default_factory=dict, description="issue -> the text the level was coded from")
    holdouts: list[str] = Field(default_factory=list)
    late: bool | None = Field(None, description="the text was settled only at the summit itself (the last round)")
    source: str = ""


class SweepRange(Strict):
    """One swept parameter: its range and, for a grid, the number of evenly spaced levels."""

    low: Annotated[float, Field(allow_inf_nan=False)]
    high: Annotated[float, Field(allow_inf_nan=False)]
    levels: Annotated[int, Field(ge=2, le=10_000)] | None = Field(
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
    samples: Annotated[int, Field(ge=1)] | None = Field(
        None, description="lhs: points; sobol: base sample N (a power of two); morris: trajectories")
    second_order: bool = Field(False, description="sobol: also estimate second-order indices (N(2D+2) points)")
    morris_levels: Annotated[int, Field(ge=2, le=100)] = 4
    replications: Annotated[int, Field(ge=1, le=100_000_000)] | None = Field(
        None, description="runs per point (default run.replications); the cap when target_halfwidth is set")
    common_random_numbers: bool = Field(True, description="replication r uses the same draws at every point")
    target_halfwidth: Annotated[float, Field(gt=0.0, lt=0.5)] | None = Field(
        None, description="stop a point once the Wilson 95% half-width of P(consensus) is at most this")
    min_replications: Annotated[int, Field(ge=1)] = 100
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

    schema_version: Literal[1] = SCHEMA_VERSION
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
                problems.append((f"{where}.bloc", f"unknown bloc {m.bloc!r}; known: {_listing(self.blocs)}"))
            for field in ("ideal", "salience"):
                given = set(getattr(m, field))
                for missing in sorted(issues - given):
                    problems.append((f"{where}.{field}.{missing}", "missing; every member needs a value per issue"))
                for extra in sorted(given - issues):
                    problems.append((f"{where}.{field}.{extra}", f"unknown issue; known: {_listing(self.issues)}"))
            for extra in sorted(set(m.shift) - issues):
                problems.append((f"{where}.shift.{extra}", f"unknown issue; known: {_listing(self.issues)}"))
            if m.capability is None and m.data is None:
                problems.append((f"{where}.data", "give data (gdp_usd_bn, milex_pct_gdp) or a capability"))
            b = self.behaviour(code)
            if b.reservation < b.tolerance:
                problems.append((f"{where}.reservation", f"{b.reservation} is below tolerance {b.tolerance}; "
                                 "the acceptable distance can only widen toward the deadline"))
        for bloc_id, bloc in self.blocs.items():
            for issue in sorted(set(bloc.shift) - issues):
                problems.append((f"blocs.{bloc_id}.shift.{issue}", f"unknown issue; known: {_listing(self.issues)}"))
        if self.observed:
            for field in ("levels", "wording"):
                for issue in sorted(set(getattr(self.observed, field)) - issues):
                    problems.append((f"observed.{field}.{issue}", f"unknown issue; known: {_listing(self.issues)}"))
            for code in self.observed.holdouts:
                if code not in self.members:
                    problems.append(("observed.holdouts", f"unknown member {code!r}; known: {_listing(self.members)}"))
        if problems:
            raise ValueError("\n".join(f"{path}: {text}" for path, text in problems))
        return self

    def behaviour(self, code: str) -> Behaviour:
        """Member `code`'s behaviour: its own values over `member_defaults`."""
        own = {k: v for k, v in self.members[code].model_dump(include=set(Behaviour.model_fields)).items()
               if v is not None}
        return self.member_defaults.model_copy(update=own)

    @cached_property
    def spec_hash(self) -> str:
        """Content hash of the resolved scenario (what identifies an output folder)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _listing(keys) -> str:
    keys = list(keys)
    return ", ".join(keys) if len(keys) <= 40 else ", ".join(keys[:40]) + ", ..."


# ---------------------------------------------------------------- loading
def load_scenario(path: str | Path = BASELINE, overrides: list[str] | tuple[str, ...] = (),
                  sweep: dict[str, dict] | None = None) -> Scenario:
    """Read, merge `extends`, set `sweep` parameters (path -> {low, high, levels}: they replace the
    file's sweep parameters), apply `--set path=value` overrides, validate.

    Remembered while none of the files read has changed: a Scenario is immutable, and Mesa's
    batch_run and the dashboard build one model (so load one scenario) per run."""
    path = Path(path)
    key = (str(path.resolve()), tuple(overrides), json.dumps(sweep, sort_keys=True))
    cached = _LOADED.get(key)
    if cached and cached[0] == _stamps(cached[0]):
        return cached[1]
    chain: list[Path] = []
    raw = _read_with_extends(path, chain)
    if sweep:
        block = raw.get("sweep") if isinstance(raw.get("sweep"), dict) else {}
        raw["sweep"] = block | {"parameters": sweep}
    for item in overrides:
        apply_override(raw, item, path)
    scenario = validate(raw, path)
    _LOADED[key] = (_stamps(chain), scenario)
    return scenario


_LOADED: dict[tuple, tuple[tuple, Scenario]] = {}


def _stamps(files) -> tuple:
    """(path, mtime, size) of each file, or of the files named in an earlier stamp tuple."""
    paths = [f[0] if isinstance(f, tuple) else f for f in files]
    return tuple((p, p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else (p, None, None) for p in paths)


def validate(raw: dict, path: str | Path = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(_describe(exc, path)) from None


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ScenarioError(f"{path}: file not found. Give the path of a scenario YAML file, "
                            f"e.g. scenarios/baseline.yaml.")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{path}{where}: YAML syntax error: {problem}. Fix the YAML at that line.") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: the top level must be a mapping of keys (name, issues, members, ...).")
    return data


def _read_with_extends(path: Path, chain: list[Path]) -> dict:
    """The file merged over its `extends` ancestors; `chain` collects the files read."""
    path = path.resolve() if path.exists() else path
    if path in chain:
        raise ScenarioError(f"{path}: extends: circular chain {' -> '.join(map(str, [*chain, path]))}.")
    chain.append(path)
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{path}: extends: must be the path of another scenario file, got {parent!r}.")
    base = _read_with_extends(path.parent / parent, chain)
    return deep_merge(base, data)


def deep_merge(base: dict, update: dict) -> dict:
    """Mappings merge key by key; any other value in `update` replaces the base value, and so does a
    distribution (a mapping with `dist`): a variant may switch pert to uniform without leftovers."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "dist" not in value:
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


KEYED_COLLECTIONS = {"members": "member", "issues": "issue", "blocs": "bloc"}


def apply_override(raw: dict, item: str, source: str | Path = "--set") -> None:
    """Apply one `path=value` (value parsed as YAML) in place."""
    if "=" not in item:
        raise ScenarioError(f"--set {item!r}: expected PATH=VALUE, e.g. --set protocol.rounds=10 "
                            f"or --set members.POL.ideal.ukraine=80.")
    dotted, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ScenarioError(f"--set {item!r}: the value {text!r} is not valid YAML.") from None
    set_path(raw, dotted.strip(), value, source)


def set_path(raw: dict, dotted: str, value: Any, source: str | Path = "--set", what: str = "--set") -> None:
    """Set the value at a parameter path (`protocol.rounds`, `members.POL.ideal.ukraine`) in place.

    A path may create a missing optional key, but never a new member, issue or bloc: a typo there
    would otherwise become a half-specified new entry. `what` names the setting in messages
    (`--set` or the sweep parameter)."""
    keys = dotted.split(".")
    if not all(keys):
        raise ScenarioError(f"{source}: {what} {dotted}: empty key in path {dotted!r}.")
    if len(keys) == 1 and keys[0] in KEYED_COLLECTIONS:
        raise ScenarioError(f"{source}: {what} {dotted}: set a path inside {keys[0]} "
                            f"(e.g. {keys[0]}.<id>.<key>), not the whole collection.")
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key) if isinstance(node, dict) else None
        if depth == 1 and keys[0] in KEYED_COLLECTIONS and child is None:
            kind = KEYED_COLLECTIONS[keys[0]]
            raise ScenarioError(f"{source}: {what} {dotted}: unknown {kind} {key!r}; "
                                f"known: {_listing(node)}.")
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            # a scalar ideal point can be refined into a distribution only by replacing it whole
            raise ScenarioError(f"{source}: {what} {dotted}: {'.'.join(keys[:depth + 1])} holds a value, "
                                f"not a mapping; set that path itself.")
        node = child
    if keys[0] in KEYED_COLLECTIONS and len(keys) == 2 and keys[1] not in node:
        raise ScenarioError(f"{source}: {what} {dotted}: unknown {KEYED_COLLECTIONS[keys[0]]} {keys[1]!r}; "
                            f"known: {_listing(node)}.")
    node[keys[-1]] = value


def value_at(raw: dict, path: str):
    """The value at a parameter path in plain scenario data, or None where the path is absent."""
    node = raw
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def base_raw(scenario: Scenario) -> dict:
    """The resolved scenario as plain data without its sweep block: what every point starts from."""
    raw = scenario.model_dump(mode="json", exclude_none=True)
    raw.pop("sweep", None)
    return raw


def point_scenario(raw: dict, overrides: dict[str, float], source: str = "<sweep point>") -> Scenario:
    """The scenario at one point: the base with the point's values set, validated."""
    point = copy.deepcopy(raw)
    for path, value in overrides.items():
        set_path(point, path, value, source, what="sweep parameter")
    return validate(point, source)


def _describe(exc: ValidationError, path: str | Path) -> str:
    """One readable line per problem: file, key path, what is wrong, what is allowed."""
    errors = _drop_other_union_branches(exc.errors())
    lines = []
    for err in errors:
        loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
        where = ".".join(loc) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            text = "unknown key; check the spelling (see docs/scenario-format.md for the keys allowed here)"
        elif kind == "missing":
            text = "required key is missing"
        elif kind == "value_error":
            text = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
            prefix = "" if where == "(top level)" else f"{where}: "  # top level: the cross-reference checks
            lines.extend(f"{path}: {prefix}{part}" for part in text.splitlines())  # one problem per line
            continue
        else:
            text = f"{err['msg']} (got {err.get('input')!r})"
        if "ideal" in loc and kind in ("union_tag_invalid", "float_type", "model_type"):
            text += "; an ideal point is a number from 0 to 100 or {dist: uniform|pert|truncnormal, ...}"
        lines.append(f"{path}: {where}: {text}")
    unique = list(dict.fromkeys(lines))
    return "\n".join(unique[:12]) + (f"\n... and {len(unique) - 12} more" if len(unique) > 12 else "")


def _drop_other_union_branches(errors: list[dict]) -> list[dict]:
    """An ideal point is `number | distribution`; pydantic reports a failure for each branch. Keep
    the branch the user meant: the distribution when a mapping was given, the number otherwise."""
    def meant(err: dict) -> bool:
        wrong_branch = ("float_type", "float_parsing") if isinstance(err.get("input"), dict) else (
            "model_type", "dict_type", "model_attributes_type")
        return err["type"] not in wrong_branch
    return [e for e in errors if meant(e)] or errors


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in {"uniform", "pert", "truncnormal"}
                                      or part.startswith(("float", "constrained-float", "tagged-union")))


def resolved_yaml(scenario: Scenario) -> str:
    """The fully resolved scenario (after `extends` and `--set`), as YAML."""
    return yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False,
                          allow_unicode=True, width=100)
