"""docs/scenario-format.md cannot drift from the pydantic schema: every model reachable from
`Scenario` has a table in the doc (under a heading or line naming it as (`ModelName`)), every field is
a row of that table, no row names a field that does not exist, and documented defaults equal the
schema's."""

from __future__ import annotations

import re
import typing

import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from model.scenario.schema import Scenario

from .conftest import REPO

DOC = (REPO / "docs" / "scenario-format.md").read_text(encoding="utf-8")


def reachable(model: type[BaseModel] = Scenario) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from `model` through field annotations (Optional, unions,
    dicts, lists, Annotated), `model` included, by class name."""
    seen: dict[str, type[BaseModel]] = {}

    def visit(tp) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ not in seen:
                seen[tp.__name__] = tp
                for field in tp.model_fields.values():
                    visit(field.annotation)
            return
        for arg in typing.get_args(tp):
            visit(arg)

    visit(model)
    return seen


MODELS = reachable()


def doc_table(name: str) -> dict[str, list[str]]:
    """The first markdown table after the text (`name`): first-column key -> the row's cells."""
    at = DOC.find(f"(`{name}`)")
    assert at >= 0, f"docs/scenario-format.md has no section or line naming (`{name}`)"
    lines = DOC[at:].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = {}
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        key = re.fullmatch(r"`([^`]+)`", cells[0])
        if key:
            rows[key.group(1)] = dict(zip(header, cells))
    return rows


def test_every_model_reachable_from_scenario_is_found():
    assert {"Scenario", "Issue", "Bloc", "Capability", "Behaviour", "Member", "MemberData", "Uniform", "Pert",
            "TruncNormal", "Protocol", "Influence", "Run", "Observed"} <= set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_field_is_documented(name):
    model = MODELS[name]
    rows = doc_table(name)
    fields = set(model.model_fields)
    assert not fields - set(rows), f"{name}: fields missing from the doc's table: {sorted(fields - set(rows))}"
    extra = set(rows) - fields - {"extends"}  # `extends` is read while loading, before the schema
    assert not extra, f"{name}: the doc's table names keys the schema does not have: {sorted(extra)}"


def _documented_default(cell: str):
    found = re.fullmatch(r"`([^`]*)`.*", cell)
    return yaml.safe_load(found.group(1)) if found else None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_documented_defaults_match_the_schema(name):
    rows = doc_table(name)
    for field_name, field in MODELS[name].model_fields.items():
        cells = rows.get(field_name)
        if cells is None:
            continue  # reported by test_every_field_is_documented
        text = " ".join(cells.values())
        if field.is_required():
            assert "required" in text, f"{name}.{field_name}: required in the schema, not marked 'required' in the doc"
            continue
        default = field.default if field.default_factory is None else field.default_factory()
        if isinstance(default, BaseModel) or default is PydanticUndefined:
            continue  # a nested section: "all defaults"
        documented = _documented_default(cells.get("default", ""))
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert isinstance(documented, (int, float)) and float(documented) == float(default), (
                f"{name}.{field_name}: doc default {cells.get('default')!r}, schema {default!r}")
        else:
            assert documented == default, (
                f"{name}.{field_name}: doc default {cells.get('default')!r}, schema {default!r}")
