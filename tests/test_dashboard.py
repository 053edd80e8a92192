"""The dashboard, rendered headless with solara (no browser): its buttons drive the real model."""

from __future__ import annotations

import inspect

import ipyvuetify as vw
import ipywidgets
import pytest
import solara

from model.interfaces.dashboard import BASE, DashboardModel, Page, model_params
from model.negotiation.engines import run_chunk
from model.negotiation.model import play

from .test_cli import wilson_by_hand


@pytest.fixture
def dashboard():
    """(reactive model, render context) of the page inside an AppLayout (the sidebar is a portal)."""
    model = solara.reactive(DashboardModel())

    @solara.component
    def Root():
        with solara.AppLayout():
            Page(model)

    box, rc = solara.render(Root(), handle_error=False)
    rc.box = box
    return model, rc


def click(rc, label: str) -> None:
    rc.find(vw.Btn, children=[label]).widget.click()


def widgets(root: ipywidgets.Widget):
    """Every widget on the page, walking children (the panels sit in a grid layout's slots)."""
    seen, todo = set(), [root]
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        for key in widget.keys:
            value = getattr(widget, key, None)
            values = value if isinstance(value, (list, tuple)) else [value]
            todo += [v for v in values if isinstance(v, ipywidgets.Widget)]
            if isinstance(value, dict):
                todo += [v for v in value.values() if isinstance(v, ipywidgets.Widget)]


def texts(rc) -> str:
    """All text in the page's HTML elements (headings, paragraphs, list items)."""
    return "\n".join(child for w in widgets(rc.box) if isinstance(w, vw.Html)
                     for child in w.children if isinstance(child, str))


def figures(rc) -> list[bytes]:
    return [bytes(w.value) for w in widgets(rc.box) if isinstance(w, ipywidgets.Image)]


def test_step_advances_the_model_and_redraws_every_panel(dashboard):
    model, rc = dashboard
    assert "Before round 1 of 8" in texts(rc) and len(figures(rc)) == 2
    before = figures(rc)
    click(rc, "Step")
    assert model.value.round == 1
    assert "Round 1 of 8 (a preparatory round)" in texts(rc) and "Objected to the last draft" in texts(rc)
    assert all(a != b for a, b in zip(before, figures(rc)))  # trajectories and the vote chart redrawn


def test_steps_to_the_end_show_the_declaration_and_reset_starts_over(dashboard):
    model, rc = dashboard
    expected = play(BASE, BASE.run.seed, 0).outcome  # what `replay` shows for this replication
    assert expected.consensus and expected.side_payments  # replication 0 of the baseline seed agrees (README)
    for _ in range(expected.rounds_played - 1):  # every click redraws the figures: the last round by a click
        model.value.step()
    assert model.value.running
    click(rc, "Step")
    out, shown = model.value.outcome, texts(rc)
    assert not model.value.running and out == expected
    assert f"Round {expected.rounds_played} of 8 (the summit)" in shown
    assert f"Consensus in round {out.agreement_round}. Declaration:" in shown
    for name in BASE.level_issues:
        issue = BASE.issues[name]
        assert f"{issue.label}: {out.levels[name]:.1f}, {issue.phrase(out.levels[name])}" in shown
    for name, option in out.options.items():  # the Secretary General: the fallback stands, nothing else agreed
        issue = BASE.issues[name]
        assert f"{issue.label}: {option}, {issue.phrase(option)} (not agreed: the status quo stands)" in shown
    assert "Ukraine's minimum not met" in shown
    assert "Prices on offer: TUR on sweden: 12." in shown
    payments = " ".join(map(str, out.side_payments))
    assert f"Vetoes sold (member:issue@round=level/payment): {payments}; exemptions: none; last holdouts: " \
           f"{' '.join(out.holdouts)}." in shown
    click(rc, "Reset")
    assert model.value.round == 0 and "Before round 1 of 8" in texts(rc)


def test_batch_estimate_shows_consensus_probability_with_an_interval(dashboard):
    model, rc = dashboard
    click(rc, "Run 2000 replications")
    seed = model.value.seed
    k = int(run_chunk(BASE, seed, 0, 2000, engine="ensemble")["consensus"].to_numpy().sum())
    low, high = wilson_by_hand(k, 2000)
    assert f"P(consensus) = {k / 2000:.3f} [{low:.3f}, {high:.3f}] ({k}/2000) (95 % Wilson interval), seed {seed};" \
        in texts(rc)


def test_dashboard_model_applies_its_controls_as_scenario_overrides():
    model = DashboardModel(rounds=5, summit_sessions=2, acceptance_noise=0.0, failure_cost=12.0,
                           preparatory_cost_share=0.3, price_member="HUN", price=7.0, exemptions=True,
                           exemption_cost=4.0, shift_who="bloc B9", shift_ukraine=-10.0, seed="7", replication=3)
    scenario = model.scenario_config
    assert (scenario.protocol.rounds, scenario.protocol.summit_sessions, scenario.protocol.acceptance_noise,
            scenario.protocol.preparatory_cost_share) == (5, 2, 0.0, 0.3)
    assert scenario.behaviour("HUN").failure_cost == 12.0 and scenario.behaviour("TUR").failure_cost == 0.0
    assert scenario.members["HUN"].price == {"sweden": 7.0} and scenario.members["TUR"].price == {"sweden": 12.0}
    assert all(scenario.issues[name].carve_out_cost == 4.0 for name in scenario.level_issues)
    assert scenario.blocs["B9"].shift["ukraine"] == -10.0
    assert model.seed == 7 and model.replication == 3
    member = DashboardModel(shift_who="member POL", shift_spending=5.0).scenario_config
    assert member.members["POL"].shift == {"ukraine": 0.0, "assurances": 0.0, "spending": 5.0, "sweden": 0.0}
    assert DashboardModel(seed="not a number").seed == BASE.run.seed


def test_every_control_is_a_model_parameter():
    accepted = inspect.signature(DashboardModel.__init__).parameters
    assert all(name in accepted or name.startswith("shift_") for name in model_params())
