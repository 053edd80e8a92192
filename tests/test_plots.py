"""Figures: files are written, holdout bars show the shares in the results, bloc colours agree."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pytest
from matplotlib.patches import Rectangle

from model.negotiation.engines import run_chunk
from model.negotiation import rules
from model.negotiation.model import NegotiationModel, play
from model.negotiation.results import to_frame
from model.outputs import plots
from model.scenario.files import load_scenario

from .conftest import TINY, assert_text_fits

REPLICATIONS = 30


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(TINY)


@pytest.fixture(scope="module")
def frame(scenario):
    return to_frame(run_chunk(scenario, scenario.run.seed, 0, REPLICATIONS))


@pytest.fixture(scope="module")
def example(scenario):
    return play(scenario, scenario.run.seed, 0)


def test_save_figures_writes_png_and_svg(tmp_path, frame, scenario, example):
    out = tmp_path / "figures" / "nested"
    pngs = plots.save_figures(frame, scenario, example, out)
    stems = ["levels", "holdouts", "rounds", "trajectories"]
    assert pngs == [out / f"{stem}.png" for stem in stems]
    for stem in stems:
        for ext in ("png", "svg"):
            path = out / f"{stem}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_holdout_bars_equal_shares_from_the_frame(frame, scenario):
    # independent count: in how many rows does each code appear in `holdouts`
    expected = {code: sum(code in list(h) for h in frame["holdouts"]) / len(frame) for code in scenario.members}
    fig = plots.plot_holdouts(frame, scenario)
    bars = {p.get_gid().removeprefix("holdout:"): p.get_width() for p in fig.findobj(Rectangle)
            if (p.get_gid() or "").startswith("holdout:")}
    assert bars, "the tiny scenario has holdouts; some bars must be drawn"
    assert set(bars) == {code for code, share in expected.items() if share > 0}
    for code, width in bars.items():
        assert width == pytest.approx(expected[code])
    # sorted descending from the top of the axis
    ax = next(a for a in fig.axes if a.patches)
    heights = [p.get_width() for p in sorted((p for p in ax.patches if p.get_gid()), key=lambda p: p.get_y())]
    assert heights == sorted(heights, reverse=True)


def test_holdouts_top_limits_the_bars(frame, scenario):
    fig = plots.plot_holdouts(frame, scenario, top=1)
    assert len([p for p in fig.findobj(Rectangle) if (p.get_gid() or "").startswith("holdout:")]) == 1


def test_bloc_colours_agree_across_figures(frame, scenario, example):
    mapping = plots.bloc_colours(scenario)
    assert list(mapping) == list(scenario.blocs)
    assert len(set(mapping.values())) == len(mapping)
    bloc_of = {code: m.bloc for code, m in scenario.members.items()}

    bar_colour = {}
    for p in plots.plot_holdouts(frame, scenario).findobj(Rectangle):
        gid = p.get_gid() or ""
        if gid.startswith("holdout:"):
            bar_colour[gid.removeprefix("holdout:")] = mcolors.to_hex(p.get_facecolor())
    line_colour = {}
    for line in plots.plot_trajectories(example).findobj(lambda a: (getattr(a, "get_gid", lambda: None)() or "")
                                                         .startswith("member:")):
        code = line.get_gid().removeprefix("member:")
        line_colour.setdefault(code, set()).add(mcolors.to_hex(line.get_color()))

    assert bar_colour and line_colour
    for code, colour in bar_colour.items():
        assert colour == mcolors.to_hex(mapping[bloc_of[code]])
    for code, colours in line_colour.items():
        assert colours == {mcolors.to_hex(mapping[bloc_of[code]])}
    # the same bloc gets the same colour in both figures
    for code in set(bar_colour) & set(line_colour):
        assert {bar_colour[code]} == line_colour[code]


def test_no_text_overlaps_or_leaves_the_figure(frame, scenario, example):
    figures = [plots.plot_levels(frame, scenario), plots.plot_holdouts(frame, scenario),
               plots.plot_rounds(frame, scenario), plots.plot_trajectories(example)]
    for fig in figures:
        assert_text_fits(fig)


def test_figures_leave_no_pyplot_state(frame, scenario):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.plot_rounds(frame, scenario)
    assert plt.get_fignums() == before


def test_the_vote_table_shows_each_vote_as_it_stood():
    """After the baseline's first round, persuasion has moved the positions and Türkiye's contract
    the draft; the table shows what each member voted on: its recorded margin is the margin of the
    table's draft at the table's position, and >= 0 exactly where that draft lies inside its band,
    on every issue (the band: where that margin is >= 0)."""
    model = NegotiationModel()
    model.step()
    table = plots.vote_table(model)
    p = model.params
    draft = table[[f"draft_{i}" for i in p.issues]].iloc[0].to_numpy()
    assert (draft != model.chair.draft).any() and model.outcome.side_payments  # the draft moved on
    positions = table[[f"position_{i}" for i in p.issues]].to_numpy()
    assert (positions != [a.position for a in model.allies]).any()  # and so did the positions
    margins = [rules.margin(rules.bound_by(draft, a.carved, p.status_quo), x, a.weight, p.status_quo,
                            a.ballot.kappa, a.ballot.transfers) for a, x in zip(model.allies, positions)]
    assert table["margin"].to_numpy() == pytest.approx(margins, abs=1e-12)
    for k, issue in enumerate(p.issues):
        inside = (table[f"band_low_{issue}"] <= draft[k] + 1e-9) & (draft[k] <= table[f"band_high_{issue}"] + 1e-9)
        assert (inside == (table["margin"] >= 0)).all(), issue
    assert_text_fits(plots.plot_acceptance(model))
