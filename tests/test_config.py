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
    scenario = load_scenario(TINY, ["members.AAA.reservation=40", "blocs.A.shift.ukraine=5"])
    assert scenario.behaviour("AAA").reservation == 40 and scenario.blocs["A"].shift == {"ukraine": 5}


def test_cross_reference_problems_come_one_per_line(tmp_path):
    text = TINY.read_text().replace("    bloc: B\n", "    bloc: ZZ\n").replace("reservation: 20", "reservation: 2")
    path = tmp_path / "two-problems.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    lines = str(err.value).splitlines()
    assert any("members.CCC.bloc: unknown bloc 'ZZ'; known: A, B" in line for line in lines)
    assert any("members.AAA.reservation: 2.0 is below tolerance 5.0" in line for line in lines)
    assert all(line.startswith(str(path)) for line in lines)


def test_scenario_name_must_be_usable_as_a_folder_name():
    with pytest.raises(ScenarioError, match="name"):
        load_scenario(TINY, ["name=../../etc"])


def test_truncated_normal_pressed_onto_a_scale_end_becomes_fixed():
    scenario = load_scenario(TINY, ["blocs.B.shift.ukraine=100"])  # CCC: truncnormal 60..100 -> 100..100
    p = build_params(scenario)
    assert p.ideal_kind[2, 0] == FIXED and p.nominal_ideal[2, 0] == 100.0
