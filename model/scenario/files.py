"""Scenario files: YAML -> `extends` merge -> `--set` overrides -> a validated `Scenario`.

The shipped scenarios (the repository's `scenarios/` folder, installed as the package data
`model.scenarios`) are found through `importlib.resources`, so `NegotiationModel()` works from
any folder after a plain `pip install .`.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .schema import Scenario, ScenarioError, listing

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster


def packaged(name: str) -> Path:
    """A shipped scenario file, e.g. `packaged("baseline.yaml")` or `packaged("history/madrid-2022.yaml")`."""
    return Path(str(resources.files("model.scenarios").joinpath(name)))


BASELINE = packaged("baseline.yaml")


def load_scenario(path: str | Path = BASELINE, overrides: list[str] | tuple[str, ...] = (),
                  sweep: dict[str, dict] | None = None) -> Scenario:
    """Read, merge `extends`, set `sweep` parameters (path -> {low, high, levels}: they replace the
    file's sweep parameters), apply `--set path=value` overrides, validate.

    Remembered while none of the files read has changed: a Scenario is immutable, and Mesa's
    batch_run and the dashboard build one model (so load one scenario) per run."""
    path = Path(path)
    key = (str(path.resolve()), tuple(overrides), json.dumps(sweep, sort_keys=True))
    if (scenario := _RECENT.get(key)) is not None:
        return scenario
    chain: list[Path] = []
    raw = _read_with_extends(path, chain)
    if sweep:
        block = raw.get("sweep") if isinstance(raw.get("sweep"), dict) else {}
        raw["sweep"] = block | {"parameters": sweep}
    for item in overrides:
        apply_override(raw, item, path)
    scenario = validate(raw, path)
    _RECENT.put(key, chain, scenario)
    return scenario


class RecentScenarios:
    """The last `size` scenarios loaded, each kept while the files it was read from are unchanged."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[tuple, tuple[tuple, Scenario]] = OrderedDict()

    def get(self, key: tuple) -> Scenario | None:
        item = self._items.get(key)
        if item is None or item[0] != _stamps(item[0]):
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: tuple, files: list[Path], scenario: Scenario) -> None:
        self._items[key] = (_stamps(files), scenario)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


_RECENT = RecentScenarios(64)


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
                                f"known: {listing(node)}.")
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            # a scalar ideal point can be refined into a distribution only by replacing it whole
            raise ScenarioError(f"{source}: {what} {dotted}: {'.'.join(keys[:depth + 1])} holds a value, "
                                f"not a mapping; set that path itself.")
        node = child
    if keys[0] in KEYED_COLLECTIONS and len(keys) == 2 and keys[1] not in node:
        raise ScenarioError(f"{source}: {what} {dotted}: unknown {KEYED_COLLECTIONS[keys[0]]} {keys[1]!r}; "
                            f"known: {listing(node)}.")
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
