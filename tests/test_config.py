"""Scenario loading: extends, --set, validation messages."""

from __future__ import annotations

import pytest

from model.negotiation.params import FIXED, build_params
from model.scenario.files import apply_override, deep_merge, load_scenario
from model.scenario.schema import ScenarioError

from .conftest import TINY


def test_extends_states_only_what_differs_and_may_switch_a_distribution(tmp_path):
    variant = tmp_path / "variant.yaml"
    variant.write_text(f"""extends: {TINY}
name: tiny-variant
protocol: {{rounds: 9}}
members:
  BBB:
    ideal: {{ukraine: {{dist: uniform, low: 10, high: 20}}}}
""")
    scenario = load_scenario(variant)
    base = load_scenario(TINY)
    assert scenario.name == "tiny-variant" and scenario.protocol.rounds == 9
    assert scenario.protocol.acceptance_noise == base.protocol.acceptance_noise  # merged, not replaced
    assert scenario.members["BBB"].ideal["ukraine"].dist == "uniform"  # pert replaced whole
    assert scenario.members["BBB"].ideal["spending"] == base.members["BBB"].ideal["spending"]


def test_circular_extends_is_refused(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: b.yaml\n")
    b.write_text("extends: a.yaml\n")
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(a)


def test_deep_merge_keeps_the_base_untouched():
    base = {"x": {"y": 1, "z": 2}}
    assert deep_merge(base, {"x": {"y": 5}}) == {"x": {"y": 5, "z": 2}} and base == {"x": {"y": 1, "z": 2}}


@pytest.mark.parametrize("item, message", [
    ("members={}", "not the whole collection"),
    ("issues.nato2030.label=x", "unknown issue 'nato2030'"),
    ("blocs.Q.label=x", "unknown bloc 'Q'"),
])
def test_set_never_creates_or_replaces_collections(item, message):
    raw = {"members": {"AAA": {}}, "issues": {"ukraine": {}}, "blocs": {"A": {}}}
    with pytest.raises(ScenarioError, match=message):
        apply_override(raw, item)


def test_set_may_add_an_optional_member_key():
    scenario = load_scenario(TINY, ["members.BBB.failure_cost=40", "members.BBB.price.spending=3",
                                    "blocs.A.shift.ukraine=5"])
    assert scenario.behaviour("BBB").failure_cost == 40 and scenario.members["BBB"].price == {"spending": 3}
    assert scenario.blocs["A"].shift == {"ukraine": 5}


def test_cross_reference_problems_come_one_per_line(tmp_path):
    text = TINY.read_text().replace("    bloc: B\n", "    bloc: ZZ\n").replace("price: {ukraine: 4}", "price: {ukrane: 4}")
    path = tmp_path / "two-problems.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    lines = str(err.value).splitlines()
    assert any("members.CCC.bloc: unknown bloc 'ZZ'; known: A, B" in line for line in lines)
    assert any("members.AAA.price.ukrane: unknown issue; known: ukraine, spending" in line for line in lines)
    assert all(line.startswith(str(path)) for line in lines)


@pytest.mark.parametrize("key, where, fix", [
    ("member_defaults: {tolerance: 5}", "member_defaults.tolerance", "use failure_cost"),
    ("member_defaults: {reservation: 30}", "member_defaults.reservation", "use failure_cost"),
    ("member_defaults: {concession: 1.0}", "member_defaults.concession", "use failure_cost"),
    ("member_defaults: {linkage: 0.3}", "member_defaults.linkage", "use price: {ISSUE: AMOUNT}"),
    ("protocol: {objector_pull: 0.3}", "protocol.objector_pull", "delete the key"),
])
def test_a_format_1_key_is_named_with_what_replaces_it(tmp_path, key, where, fix):
    path = tmp_path / "old.yaml"
    path.write_text(f"extends: {TINY}\n{key}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"{path}: {where}: removed in scenario format 2;") and fix in line
    assert "Migrating from format 1" in line


def test_a_format_1_file_is_refused_with_one_message_saying_what_changed(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(f"extends: {TINY}\nschema_version: 1\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"{path}: schema_version: scenario format 1 is no longer read")
    assert "status_quo" in line and "failure_cost" in line and "price" in line


def test_scenario_name_must_be_usable_as_a_folder_name():
    with pytest.raises(ScenarioError, match="name"):
        load_scenario(TINY, ["name=../../etc"])


def test_truncated_normal_pressed_onto_a_scale_end_becomes_fixed():
    scenario = load_scenario(TINY, ["blocs.B.shift.ukraine=100"])  # CCC: truncnormal 60..100 -> 100..100
    p = build_params(scenario)
    assert p.ideal_kind[2, 0] == FIXED and p.nominal_ideal[2, 0] == 100.0


def test_a_copy_with_changed_content_gets_its_own_spec_hash():
    """The hash names an output folder: a copy made by --set or a sweep must not inherit it."""
    scenario = load_scenario(TINY)
    before = scenario.spec_hash
    protocol = scenario.protocol.model_copy(update={"rounds": scenario.protocol.rounds + 1})
    changed = scenario.model_copy(update={"protocol": protocol})
    assert changed.spec_hash != before
    assert scenario.model_copy().spec_hash == before
