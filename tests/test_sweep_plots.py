"""Sweep figures: which files each design writes, what they state, and that their text stays readable.

The tables are synthetic, in the formats `model.outputs.sweep_stats` writes, so these tests check
the figures alone, without running a sweep (tests/test_sweep.py runs the whole pipeline)."""

from __future__ import annotations

import dataclasses
import html
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from model.outputs import sweep_plots
from model.outputs.sweep_plots import parameter_label, save_sweep_figures, sweep_figures
from model.scenario.design import Design
from model.scenario.files import load_scenario

from .conftest import TINY, assert_text_fits

NOISE, SHIFT, ROUNDS = "protocol.acceptance_noise", "members.CCC.shift.ukraine", "protocol.rounds"
PRICE, ANCHORING = "members.BBB.price.ukraine", "member_defaults.anchoring"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(TINY)


# ---------------------------------------------------------------- synthetic tables
def grid_design(axes: dict[str, list[float]]) -> Design:
    rows = list(itertools.product(*axes.values()))
    table = pd.DataFrame(rows, columns=list(axes), dtype=float)
    table.insert(0, "point", np.arange(len(table), dtype=np.int64))
    return Design("grid", table, [dict(zip(axes, row)) for row in rows], tuple(axes))


def sampled_design(method: str, parameters: list[str], points: int, seed: int = 1) -> Design:
    values = np.random.default_rng(seed).uniform(0.0, 1.0, (points, len(parameters)))
    table = pd.DataFrame(values, columns=parameters)
    table.insert(0, "point", np.arange(points, dtype=np.int64))
    return Design(method, table, [dict(zip(parameters, row)) for row in values], tuple(parameters))


def persuade_design(distance: float = 10.0) -> Design:
    table = pd.DataFrame({"point": np.arange(4, dtype=np.int64), "member": ["(reference)", "AAA", "BBB", "CCC"],
                          "move_ukraine": [0.0, 10.0, -4.5, -distance], "move_spending": [0.0, 3.0, 10.0, -7.0]})
    return Design("persuade", table, [{}] * 4, ())


def with_consensus(design: Design, p: np.ndarray, runs: int = 400) -> pd.DataFrame:
    """The per-point table as point_table writes it for the model's own outcome."""
    points = design.table.assign(seed=5, runs=runs, failed=0)
    k = np.round(np.clip(p, 0, 1) * runs).astype(np.int64)
    low, high = proportion_confint(k, runs, alpha=0.05, method="wilson")
    points["consensus"], points["p_consensus"] = k, k / runs
    points["ci_low"], points["ci_high"], points["halfwidth"] = low, high, (high - low) / 2
    points["mean_level_ukraine"], points["mean_level_spending"] = 50 + 10 * p, np.nan
    points["top_holdouts"] = "CCC 0.20, AAA 0.05"
    return points


def paired(design: Design, points: pd.DataFrame, column: str = "p_consensus") -> pd.DataFrame:
    """Differences from point 0 as paired_differences writes them (paired SEs a third of the unpaired)."""
    diff = points[column].to_numpy() - points[column].iloc[0]
    se_ind = np.full(len(diff), 0.03)
    se = np.where(points["point"] == 0, 0.0, se_ind / 3)
    frame = pd.DataFrame({"point": points["point"], "pairs": points["runs"], "difference": diff, "se_paired": se,
                          "ci_low": diff - 1.96 * se, "ci_high": diff + 1.96 * se, "se_independent": se_ind})
    return design.table.merge(frame, on="point")


def logistic(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def sobol_indices() -> pd.DataFrame:
    return pd.DataFrame({"parameter": [NOISE, ANCHORING, PRICE], "S1": [0.41, 0.30, -0.01],
                         "S1_conf": [0.05, 0.08, 0.02], "ST": [0.55, 0.50, 0.04], "ST_conf": [0.06, 0.07, 0.02]})


OVERLAP_WARNING = (f"ST of {NOISE} and {ANCHORING}: 95 % intervals overlap (0.550 ± 0.060 vs 0.500 ± 0.070), "
                   "so their order is not established; more samples (or replications per point) would narrow them")


def svg_text(path: Path) -> str:
    """The SVG's text (kept as text: svg.fonttype none), wrapped lines joined by single spaces."""
    text = re.sub(r"<[^>]+>", " ", path.read_text())
    return " ".join(html.unescape(text).split())


def written(paths: list[Path]) -> set[str]:
    for path in paths:
        assert path.is_file() and path.stat().st_size > 1000, path
        assert path.read_bytes()[:4] == (b"\x89PNG" if path.suffix == ".png" else b"<?xm"), path
    return {p.name for p in paths}


def files(*stems: str) -> set[str]:
    return {f"{stem}.{ext}" for stem in stems for ext in ("png", "svg")}


# ---------------------------------------------------------------- which figures each design writes
def test_one_parameter_grid_writes_curve_and_paired_differences(tmp_path, scenario):
    design = grid_design({ROUNDS: [2.0, 4.0, 6.0, 8.0, 10.0]})
    points = with_consensus(design, logistic(design.table[ROUNDS].to_numpy() - 5))
    out = tmp_path / "nested" / "figures"
    paths = save_sweep_figures(out, scenario, design, points, paired(design, points), None, [])
    assert written(paths) == files("sweep-consensus", "sweep-differences")
    assert all(p.parent == out for p in paths)
    consensus = svg_text(out / "sweep-consensus.svg")
    assert "Wilson 95 %" in consensus and "rounds to the deadline" in consensus  # interval and unit stated
    assert "value in the scenario" in consensus  # tiny.yaml's 6 rounds lie in the swept range
    differences = svg_text(out / "sweep-differences.svg")
    assert "without common random numbers" in differences and "3.0x wider" in differences


def test_two_parameter_grid_adds_an_annotated_heatmap(tmp_path, scenario):
    design = grid_design({NOISE: [0.5, 2.0, 3.5], SHIFT: [-20.0, -10.0, 0.0]})
    p = logistic(design.table[SHIFT].to_numpy() / 10 + 1 - design.table[NOISE].to_numpy() / 2)
    points = with_consensus(design, p)
    paths = save_sweep_figures(tmp_path, scenario, design, points, paired(design, points), None, [])
    assert written(paths) == files("sweep-consensus", "sweep-heatmap", "sweep-differences")
    heatmap = svg_text(tmp_path / "sweep-heatmap.svg")
    for value in points["p_consensus"]:
        assert f"{value:.2f}" in heatmap  # every cell is annotated
    assert "Gammaland: shift on Ukraine" in heatmap and "share of replications reaching consensus" in heatmap
    consensus = svg_text(tmp_path / "sweep-consensus.svg")
    assert "One line per level of the other parameter" in consensus


def test_many_parameters_show_the_mean_over_the_other_points_and_its_range(tmp_path, scenario):
    design = grid_design({NOISE: [0.5, 2.0, 3.5], SHIFT: [-20.0, 0.0], ROUNDS: [4.0, 8.0]})
    points = with_consensus(design, logistic(design.table[ROUNDS].to_numpy() - 6 - design.table[NOISE].to_numpy()))
    paths = save_sweep_figures(tmp_path, scenario, design, points, paired(design, points), None, [])
    assert written(paths) == files("sweep-consensus", "sweep-differences")
    text = svg_text(tmp_path / "sweep-consensus.svg")
    assert "mean over the other parameters' points" in text and "their range (min–max)" in text


def test_lhs_plots_every_point_without_a_heatmap(tmp_path, scenario):
    design = sampled_design("lhs", [NOISE, PRICE], 40)
    points = with_consensus(design, 0.2 + 0.6 * design.table[PRICE].to_numpy())
    paths = save_sweep_figures(tmp_path, scenario, design, points, paired(design, points), None, [])
    assert written(paths) == files("sweep-consensus", "sweep-differences")
    assert "Each design point with its Wilson 95 % interval" in svg_text(tmp_path / "sweep-consensus.svg")


def test_sobol_bars_carry_the_overlap_warning(tmp_path, scenario):
    design = sampled_design("sobol", [NOISE, ANCHORING, PRICE], 40)
    points = with_consensus(design, design.table[NOISE].to_numpy())
    paths = save_sweep_figures(tmp_path, scenario, design, points, None, sobol_indices(), [OVERLAP_WARNING])
    assert written(paths) == files("sweep-sensitivity")
    text = svg_text(tmp_path / "sweep-sensitivity.svg")
    assert "95 % intervals of ST overlap: the ranking of acceptance noise and anchoring (all members) is not " \
           "established" in text
    assert "total order ST" in text and "first order S1" in text

    save_sweep_figures(tmp_path / "clean", scenario, design, points, None, sobol_indices(), [])
    assert "overlap" not in svg_text(tmp_path / "clean" / "sweep-sensitivity.svg")


def test_morris_shows_mu_star_and_sigma_and_keeps_unparsed_warnings(tmp_path, scenario):
    design = sampled_design("morris", [NOISE, ANCHORING, PRICE], 40)
    points = with_consensus(design, design.table[NOISE].to_numpy())
    indices = pd.DataFrame({"parameter": [ANCHORING, NOISE, PRICE], "mu_star": [0.30, 0.12, 0.01],
                            "mu_star_conf": [0.04, 0.03, 0.01], "sigma": [0.35, 0.05, 0.01], "mu": [0.2, -0.1, 0.0]})
    warnings = [f"mu_star of {NOISE} and {PRICE}: 95 % intervals overlap (0.120 ± 0.030 vs 0.010 ± 0.010)",
                "something else went wrong"]
    paths = save_sweep_figures(tmp_path, scenario, design, points, None, indices, warnings)
    assert written(paths) == files("sweep-sensitivity")
    text = svg_text(tmp_path / "sweep-sensitivity.svg")
    assert "σ = μ*" in text and "something else went wrong" in text
    assert "95 % intervals of μ* overlap: the ranking of acceptance noise and Betaland: price on Ukraine's" in text


def test_sensitivity_figure_is_skipped_without_indices(tmp_path, scenario):
    design = sampled_design("sobol", [NOISE, ANCHORING], 16)
    points = with_consensus(design, design.table[NOISE].to_numpy())
    for indices in (None, pd.DataFrame()):
        assert save_sweep_figures(tmp_path, scenario, design, points, None, indices, ["no sensitivity indices"]) == []


def test_persuasion_ranks_members_by_name_with_the_move_distance(tmp_path, scenario):
    design = persuade_design(distance=10.0)
    points = with_consensus(design, np.array([0.5, 0.52, 0.61, 0.45]))
    differences = paired(design, points)
    paths = save_sweep_figures(tmp_path, scenario, design, points, differences, None, [])
    assert written(paths) == files("persuasion")
    text = svg_text(tmp_path / "persuasion.svg")
    assert "Who must be persuaded" in text and "up to 10 points" in text
    assert "change in P(consensus) when the member moves toward the compromise" in text
    assert "Reference P(consensus) = 0.500" in text
    fig = sweep_plots.plot_persuasion(scenario, design, points, differences)
    ax = next(a for a in fig.axes if a.patches)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    ranked = sorted(zip(ax.get_yticks(), labels))  # top of the axis (smallest y, axis inverted) first
    assert [label for _, label in ranked] == ["Betaland (BBB)", "Alphaland (AAA)", "Gammaland (CCC)"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]


def test_a_stand_in_outcome_without_p_consensus_skips_the_consensus_figures(tmp_path):
    scenario = load_scenario(TINY, ["sweep.outcome=y"], sweep={NOISE: {"low": 0.5, "high": 3.5, "levels": 3}})
    design = dataclasses.replace(grid_design({NOISE: [0.5, 2.0, 3.5], SHIFT: [-20.0, -10.0, 0.0]}), outcome="y")
    points = design.table.assign(seed=5, runs=1, failed=0, mean_y=design.table[NOISE] * 2)
    paths = save_sweep_figures(tmp_path, scenario, design, points, paired(design, points, "mean_y"), None, [])
    assert written(paths) == files("sweep-differences")
    assert not (tmp_path / "sweep-consensus.png").exists() and not (tmp_path / "sweep-heatmap.png").exists()
    assert "change in mean y" in svg_text(tmp_path / "sweep-differences.svg")


def test_no_figures_for_a_stand_in_without_differences(tmp_path, scenario):
    design = sampled_design("lhs", [NOISE], 8)
    points = design.table.assign(seed=5, runs=3, failed=0, mean_y=1.0)
    assert save_sweep_figures(tmp_path / "out", scenario, design, points, None, None, []) == []
    assert (tmp_path / "out").is_dir()


# ---------------------------------------------------------------- labels and layout
@pytest.mark.parametrize(("path", "label"), [
    ("members.CCC.shift.ukraine", "Gammaland: shift on Ukraine's membership path (points on the 0-100 scale)"),
    ("members.AAA.ideal.ukraine.low",
     "Alphaland: ideal (low) on Ukraine's membership path (points on the 0-100 scale)"),
    ("member_defaults.failure_cost", "failure cost (all members) (salience-weighted points)"),
    ("members.BBB.price.ukraine", "Betaland: price on Ukraine's membership path (salience-weighted points)"),
    ("issues.spending.status_quo", "Defence spending pledge: status quo (points on the 0-100 scale)"),
    ("protocol.rounds", "rounds to the deadline"),
    ("protocol.influence.self_weight", "influence (self weight) (0-1)"),
    ("blocs.B.shift.spending", "Bloc B: shift on Defence spending pledge (points on the 0-100 scale)"),
    ("run.seed", "run seed"),
    ("capability.gdp_weight", "capability gdp weight (0-1)"),
])
def test_parameter_labels_are_readable_and_carry_units(scenario, path, label):
    assert parameter_label(path, scenario, unit=True) == label


def all_figures(scenario):
    grid2 = grid_design({NOISE: [0.5, 2.0, 3.5], SHIFT: [-20.0, -10.0, 0.0]})
    grid2_points = with_consensus(grid2, np.linspace(0.1, 0.9, 9))
    lhs = sampled_design("lhs", [NOISE, PRICE, ANCHORING], 30)
    lhs_points = with_consensus(lhs, lhs.table[PRICE].to_numpy())
    sobol = sampled_design("sobol", [NOISE, ANCHORING, PRICE], 40)
    persuade = persuade_design()
    persuade_points = with_consensus(persuade, np.array([0.5, 0.52, 0.61, 0.45]))
    builders = {}
    for name, args in {"grid2": (grid2, grid2_points, paired(grid2, grid2_points), None, []),
                       "lhs": (lhs, lhs_points, paired(lhs, lhs_points), None, []),
                       "sobol": (sobol, with_consensus(sobol, np.full(40, 0.5)), None, sobol_indices(),
                                 [OVERLAP_WARNING]),
                       "persuade": (persuade, persuade_points, paired(persuade, persuade_points), None, [])}.items():
        builders |= {f"{name}:{stem}": build for stem, build in sweep_figures(scenario, *args).items()}
    return builders


def test_no_text_overlaps_another_or_leaves_the_figure(scenario):
    builders = all_figures(scenario)
    assert len(builders) == 7
    for name, build in builders.items():
        fig = build()
        assert_text_fits(fig, name)
