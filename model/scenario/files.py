"""Scenario files: YAML -> `extends` merge -> `--set` overrides -> a validated `Scenario`.

The shipped scenarios (the repository's `scenarios/` folder, installed as the package data
`model.scenarios`) are found through `importlib.resources`, so `NegotiationModel()` works from
any folder after a plain `pip install .`.
"""

from __future__ import annotations

import copy
import json
import re
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .schema import MISSING_PER_ISSUE, Scenario, ScenarioError, listing, shown

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster


def packaged(name: str) -> Path:
    """A shipped scenario file, e.g. `packaged("baseline.yaml")` or `packaged("history/madrid-2022.yaml")`."""
    return Path(str(resources.files("model.scenarios").joinpath(name)))


BASELINE = packaged("baseline.yaml")


def load_scenario(path: str | Path = BASELINE, overrides: list[str] | tuple[str, ...] = (),
                  sweep: dict[str, dict] | None = None, flags: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, merge `extends`, set `sweep` parameters (path -> {low, high, levels}: they replace the
    file's sweep parameters), apply `--set path=value` overrides, then `flags` (the command line's
    own settings, as path=value: --runs, --seed, the sweep flags), validate.

    The files are validated as written first, and again with the --set overrides: an override may
    complete a file (a key it lacks), and a flag an override, never excuse a value either states.
    Each problem is reported against the file (or the `--set`) that set the key.

    Remembered while none of the files read has changed: a Scenario is immutable, and Mesa's
    batch_run and the dashboard build one model (so load one scenario) per run."""
    path = Path(path)
    key = (str(path.resolve()), tuple(overrides), json.dumps(sweep, sort_keys=True), tuple(flags))
    if (scenario := _RECENT.get(key)) is not None:
        return scenario
    chain: list[tuple[Path, dict]] = []
    raw = _read_with_extends(path, chain)
    if not overrides and not sweep and not flags:
        scenario = validate(raw, path, chain)
    else:
        validate(raw, path, chain, allow_missing=True)
        for item in overrides:
            apply_override(raw, item, path)
        if overrides and (flags or sweep):
            validate(raw, path, chain, allow_missing=True, overrides=list(overrides))
        if sweep:
            block = raw.get("sweep") if isinstance(raw.get("sweep"), dict) else {}
            raw["sweep"] = block | {"parameters": sweep}
        for item in flags:
            apply_override(raw, item, path)
        scenario = validate(raw, path, chain, overrides=[*(f"--sweep {k}" for k in sweep or ()), *overrides, *flags])
    _RECENT.put(key, [f for f, _ in chain], scenario)
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


def validate(raw: dict, path: str | Path = "<scenario>", chain: list[tuple[Path, dict]] = (),
             allow_missing: bool = False, overrides: list[str] = ()) -> Scenario | None:
    """The validated Scenario, or a ScenarioError naming for each problem the file in `chain` (the
    file and its `extends` ancestors, each with its own data) or the override that set the key.
    `allow_missing`: check only the values present (a later override may complete the rest)."""
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = _problems(exc.errors())
        if allow_missing:  # what an override may still supply
            problems = [(where, text) for where, text in problems if text not in (REQUIRED, MISSING_PER_ISSUE)]
        if problems:
            raise ScenarioError(_describe(problems, path, chain, overrides)) from None
        return None


MAX_BYTES = 5_000_000  # a scenario is a few hundred KB at most
MAX_VALUES = 200_000  # values a document may expand to (YAML aliases repeat what they point at)


class UniqueKeyLoader(YAML_LOADER):
    """The YAML loader, refusing a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable; the constructor reports it
            if key in seen:
                raise ScenarioError(f"{shown(key)} is given twice, on lines {seen[key] + 1} and "
                                    f"{key_node.start_mark.line + 1}; keep one (YAML would silently use the last).")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, label: str) -> dict:
    """One scenario file as data; every problem a ScenarioError naming the file as `label`."""
    if path.is_dir():
        raise ScenarioError(f"{label}: is a folder, not a scenario file; give a .yaml file (or run "
                            f"`python run.py validate {label}` for a folder of scenarios).")
    if not path.is_file():
        raise ScenarioError(f"{label}: file not found. Give the path of a scenario YAML file, "
                            f"e.g. scenarios/baseline.yaml.")
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ScenarioError(f"{label}: not a scenario file; scenario files end in .yaml or .yml.")
    if path.stat().st_size > MAX_BYTES:
        raise ScenarioError(f"{label}: {path.stat().st_size:,} bytes; a scenario file has at most "
                            f"{MAX_BYTES:,} (is this the right file?).")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{label}: not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}); "
                            "save the file as UTF-8.") from None
    try:
        loaded = yaml.load(text, Loader=UniqueKeyLoader)
    except ScenarioError as exc:
        raise ScenarioError(f"{label}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ScenarioError(f"{label}{where}: YAML syntax error: {shown(problem)}. Fix the YAML at that line.") from None
    except RecursionError:
        raise ScenarioError(f"{label}: nested too deeply to be a scenario.") from None
    except ValueError:  # e.g. an integer of more digits than Python converts (4300)
        line = next((i + 1 for i, row in enumerate(text.splitlines()) if re.search(r"\d{4000}", row)), None)
        where = f" (line {line})" if line else ""
        raise ScenarioError(f"{label}{where}: a number with thousands of digits; a scenario's numbers are short.") \
            from None
    if not isinstance(loaded, dict):
        raise ScenarioError(f"{label}: not a scenario: the top level must be a mapping of keys "
                            "(name, issues, members, ...).")
    _check_size(loaded, label)
    return loaded


MAX_DEPTH = 20  # a scenario nests a handful of levels (members.POL.ideal.ukraine.mode)


def _check_size(data: Any, shown: str) -> None:
    """Refuse data that expands to more than MAX_VALUES values (aliases counted each time they are
    used) or nests deeper than MAX_DEPTH, before anything walks it recursively."""
    count, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ScenarioError(f"{shown}: expands to more than {MAX_VALUES:,} values (YAML anchors and aliases "
                                "repeat what they point at); a scenario needs far fewer.")
        if depth > MAX_DEPTH:
            raise ScenarioError(f"{shown}: nested more than {MAX_DEPTH} levels deep; a scenario needs a handful.")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for pair in node.items() for child in pair)
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def _read_with_extends(path: Path, chain: list[tuple[Path, dict]], label: str | None = None) -> dict:
    """The file merged over its `extends` ancestors; `chain` collects (file, its own data), child
    first. `label` is how messages name the file (the path as the user gave it)."""
    label = label or str(path)
    resolved = path.resolve() if path.exists() else path
    if resolved in [f for f, _ in chain]:
        raise ScenarioError(f"{label}: extends: circular chain "
                            f"{' -> '.join(str(f) for f, _ in chain)} -> {resolved}.")
    data = _read_yaml(path, label)
    chain.append((resolved, copy.deepcopy(data)))
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError(f"{label}: extends: must be the path of another scenario file (.yaml), relative to "
                            f"this one, e.g. extends: ../baseline.yaml; got {shown(parent)}.")
    target = path.parent / parent
    if target.suffix.lower() not in (".yaml", ".yml") or not target.is_file():
        problem = "no such file" if not target.exists() else "not a scenario file (.yaml or .yml)"
        raise ScenarioError(f"{label}: extends: {shown(parent)}: {problem}; extends names another scenario "
                            "file, relative to this one, e.g. extends: ../baseline.yaml.")
    return deep_merge(_read_with_extends(target, chain, _display(target)), data)


def _display(path: Path) -> str:
    """A path as short as it can be said: relative to the current folder where it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path.resolve())


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
        raise ScenarioError(f"--set {shown(item)}: expected PATH=VALUE, e.g. --set protocol.rounds=10 "
                            f"or --set members.POL.ideal.ukraine=80.")
    dotted, text = item.split("=", 1)
    try:
        value = yaml.load(text, Loader=UniqueKeyLoader)
    except (yaml.YAMLError, ScenarioError, RecursionError, ValueError):
        raise ScenarioError(f"--set {shown(item)}: the value {shown(text)} is not valid YAML.") from None
    _check_size(value, f"--set {shown(item)}")
    set_path(raw, dotted.strip(), value, source)


def set_path(raw: dict, dotted: str, value: Any, source: str | Path = "--set", what: str = "--set") -> None:
    """Set the value at a parameter path (`protocol.rounds`, `members.POL.ideal.ukraine`) in place.

    A path may create a missing optional key, but never a new member, issue or bloc: a typo there
    would otherwise become a half-specified new entry. `what` names the setting in messages
    (`--set` or the sweep parameter)."""
    keys = dotted.split(".")
    dotted = _cut(dotted)  # as messages show it
    if not all(keys):
        raise ScenarioError(f"{source}: {what} {dotted}: empty key in path '{dotted}'.")
    if len(keys) == 1 and keys[0] in KEYED_COLLECTIONS:
        raise ScenarioError(f"{source}: {what} {dotted}: set a path inside {keys[0]} "
                            f"(e.g. {keys[0]}.<id>.<key>), not the whole collection.")
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key) if isinstance(node, dict) else None
        if depth == 1 and keys[0] in KEYED_COLLECTIONS and child is None:
            kind = KEYED_COLLECTIONS[keys[0]]
            raise ScenarioError(f"{source}: {what} {dotted}: unknown {kind} {shown(key)}; "
                                f"known: {listing(node)}.")
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            # a scalar ideal point can be refined into a distribution only by replacing it whole
            raise ScenarioError(f"{source}: {what} {dotted}: {shown('.'.join(keys[:depth + 1]))[1:-1]} holds a value, "
                                f"not a mapping; set that path itself.")
        node = child
    if keys[0] in KEYED_COLLECTIONS and len(keys) == 2 and keys[1] not in node:
        raise ScenarioError(f"{source}: {what} {dotted}: unknown {KEYED_COLLECTIONS[keys[0]]} {shown(keys[1])}; "
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


REQUIRED = "required key is missing"


def _problems(errors: list[dict]) -> list[tuple[str, str]]:
    """(key path, what is wrong and what is allowed) per problem pydantic found."""
    problems = []
    for err in _drop_other_union_branches(errors):
        loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
        if len(loc) > 2 and loc[0] == "issues" and loc[2] in ("level", "choice"):
            del loc[2]  # the kind of issue pydantic validated against, not a key of the file
        where = ".".join(loc)
        kind = err["type"]
        if kind == "removed_key":  # a format-1 key: name it and what replaces it
            where, text = ".".join([*loc, err["ctx"]["key"]]), err["msg"]
        elif kind == "format_1":
            text = err["msg"]
        elif kind == "extra_forbidden":
            text = "unknown key; check the spelling (see docs/scenario-format.md for the keys allowed here)"
        elif kind == "missing":
            text = REQUIRED
        elif kind == "value_error":
            text = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
            if not where:  # the cross-reference checks: one "path: text" line per problem
                problems.extend(tuple(line.split(": ", 1)) if ": " in line else ("", line)
                                for line in text.splitlines())
                continue
        else:
            text = f"{err['msg']} (got {shown(err.get('input'))})"
        if "ideal" in loc and kind in ("union_tag_invalid", "float_type", "model_type"):
            text += "; an ideal point is a number from 0 to 100 or {dist: uniform|pert|truncnormal, ...}"
        problems.append((where, text))
    return list(dict.fromkeys(problems))


def _describe(problems: list[tuple[str, str]], path: str | Path, chain: list[tuple[Path, dict]],
              overrides: list[str]) -> str:
    """One line per problem: the file (or override) that set the key, the key path, the text."""
    lines = [f"{_origin(where, path, chain, overrides)}: {_cut(where) or '(top level)'}: {text}" for where, text in problems]
    return "\n".join(lines[:12]) + (f"\n... and {len(lines) - 12} more" if len(lines) > 12 else "")


def _origin(where: str, path: str | Path, chain: list[tuple[Path, dict]], overrides: list[str]) -> str:
    """Who set the key path `where`: an override on it (or above or below it), else the first file
    of the extends chain (child first) that holds it, else the file itself."""
    keys = where.split(".") if where else []
    for item in overrides:
        swept = item.startswith("--sweep ")
        target = ["sweep", "parameters", *item[8:].split(".")] if swept else item.split("=", 1)[0].strip().split(".")
        if keys and keys[:len(target)] == target[:len(keys)]:
            return f"{path}: {_cut(item)}" if swept else f"{path}: --set {_cut(item)}"
    for depth in range(len(keys), 0, -1):
        for i, (file, data) in enumerate(chain):
            if _holds(data, keys[:depth]):
                return str(path) if i == 0 else _display(file)
    return str(path)


def _cut(text: str, width: int = 120) -> str:
    """A key path or an override as a message shows it: at most `width` characters."""
    return text if len(text) <= width else text[:width // 2 - 2] + "..." + text[-(width // 2 - 2):]


def _holds(data: Any, keys: list[str]) -> bool:
    """Whether the plain data has the key path (also where its value is null)."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True




def _drop_other_union_branches(errors: list[dict]) -> list[dict]:
    """An ideal point is `number | distribution`; pydantic reports a failure for each branch. Keep
    the branch the user meant: the distribution when a mapping was given, the number otherwise."""
    def meant(err: dict) -> bool:
        wrong_branch = ("float_type", "float_parsing") if isinstance(err.get("input"), dict) else (
            "model_type", "dict_type", "model_attributes_type")
        return err["type"] not in wrong_branch
    return [e for e in errors if meant(e)] or errors


def _is_union_tag(part: Any) -> bool:
    """A branch label pydantic adds to the path of a union member (not a key of the file)."""
    return isinstance(part, str) and (part in {"uniform", "pert", "truncnormal"} or part.startswith(
        ("float", "constrained-float", "tagged-union", "function-after[", "function-before[", "function-wrap[")))


def resolved_yaml(scenario: Scenario) -> str:
    """The fully resolved scenario (after `extends` and `--set`), as YAML."""
    return yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False,
                          allow_unicode=True, width=100)
