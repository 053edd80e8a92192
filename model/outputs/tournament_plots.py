"""Figures of the forecasting tournament (`model.outputs.tournament`): predicted vs observed levels
for every competitor, a forest plot of skill against the model, and PIT histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .plots import (NOTE_GREY, NOTE_STRIP_IN, OKABE_ITO, grid_with_legend_row, legend_below, new_figure, save_figure,
                    styled, wrap)
from .tournament import LABELS, MODEL

COLS = 4
PIT_BINS = 5


def _panels(fig: Figure, count: int, sharey: bool = False):
    rows = int(np.ceil(count / COLS))
    grid = fig.add_gridspec(rows, COLS)
    axes = []
    for i in range(count):
        axes.append(fig.add_subplot(grid[i // COLS, i % COLS], sharey=axes[0] if sharey and axes else None))
    return axes


def _spread(observed: pd.Series, width: float = 8.0) -> np.ndarray:
    """Observed levels nudged apart where several share one value (coded levels sit on anchors), so
    that every prediction shows: the k-th of m at one value moves by (k - (m - 1) / 2) x width / m."""
    rank = observed.groupby(observed).cumcount().to_numpy()
    count = observed.map(observed.value_counts()).to_numpy()
    return observed.to_numpy() + (rank - (count - 1) / 2) * width / np.maximum(count, 1)


def _colour(name: str) -> str:
    return OKABE_ITO[3] if name.startswith(MODEL) else OKABE_ITO[4]


@styled
def plot_predicted(levels: pd.DataFrame, note: str = "") -> Figure:
    """One panel per competitor: its point prediction of every observed level against the level,
    with the 5th-95th percentile of its runs or draws, the diagonal and the competitor's MAE."""
    names = list(dict.fromkeys(levels["predictor"]))
    rows = int(np.ceil(len(names) / COLS))
    fig = new_figure(12.0, 3.0 * rows + 0.6 + NOTE_STRIP_IN)
    for ax, name in zip(_panels(fig, len(names)), names):
        r = levels[levels["predictor"] == name]
        ax.plot([0, 100], [0, 100], color="#BBBBBB", lw=0.9, zorder=0)
        ax.errorbar(_spread(r["observed"]), r["point"], yerr=[r["point"] - r["p05"].clip(upper=r["point"]),
                                                     r["p95"].clip(lower=r["point"]) - r["point"]],
                    fmt="o", ms=4.5, color=_colour(name), elinewidth=1.0, capsize=2, alpha=0.9)
        scores = f"MAE {r['abs_error'].mean():.1f} · CRPS {r['crps'].mean():.1f}"
        ax.set_title(wrap(LABELS.get(name, name), 34) + "\n" + scores, fontsize=8.5)
        ax.set_xlim(-4, 104)
        ax.set_ylim(-4, 104)
        ax.set_xticks([0, 50, 100])
        ax.set_yticks([0, 50, 100])
        ax.set_aspect("equal")
    fig.supxlabel("observed level (0–100, coded from the adopted text; points at one level nudged apart)"
                  + (f"\n{note}" if note else ""), fontsize=9)
    fig.supylabel("predicted level (point; bar: 5th–95th percentile)", fontsize=9)
    fig.suptitle("Predicted vs observed levels, every competitor of the tournament")
    return fig


@styled
def plot_skill(skill: pd.DataFrame, note: str = "") -> Figure:
    """A forest plot per score: each competitor's mean score per case minus the model's, with its
    95 % bootstrap interval over cases; right of zero the model is better."""
    score_names = list(dict.fromkeys(skill["score"]))
    titles = {"crps": "CRPS of the levels (points)", "brier_changed": "Brier score, issue changed from the status quo"}
    fig = new_figure(11.0, 0.42 * skill["predictor"].nunique() + 2.0 + NOTE_STRIP_IN)
    grid, legend_row = grid_with_legend_row(fig, 1, len(score_names))
    for col, score in enumerate(score_names):
        ax = fig.add_subplot(grid[0, col])
        r = skill[skill["score"] == score].reset_index(drop=True)
        y = np.arange(len(r))[::-1]
        has = r["low"].notna().to_numpy()
        ax.errorbar(r["difference"][has], y[has], xerr=[r["difference"][has] - r["low"][has],
                                                        r["high"][has] - r["difference"][has]],
                    fmt="o", color=OKABE_ITO[3], ms=5, capsize=3, lw=1.2)
        ax.plot(r["difference"][~has], y[~has], "o", mfc="white", color=OKABE_ITO[3], ms=5)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [LABELS.get(n, n) for n in r["predictor"]] if col == 0 else [""] * len(r))
        ax.set_title(titles.get(score, score), fontsize=9.5)
        ax.set_xlabel("competitor minus model (> 0: the model is better)")
    fig.suptitle("Skill of the model against each competitor, 95 % bootstrap interval over cases")
    handles = [Line2D([], [], marker="o", color=OKABE_ITO[3], label="mean difference over cases, 95 % interval")]
    if skill["low"].isna().any():
        handles.append(Line2D([], [], marker="o", ls="none", mfc="white", color=OKABE_ITO[3],
                              label="no interval (fewer than two cases)"))
    legend_below(fig, legend_row, handles, ncol=2)
    fig.supxlabel(note or "tournament", x=0.995, ha="right", fontsize=7.5, color=NOTE_GREY)
    return fig


@styled
def plot_pit(levels: pd.DataFrame, note: str = "") -> Figure:
    """PIT histograms over all observed levels, one panel per competitor: flat is calibrated, a U
    too sharp, a hump too wide, a slope biased."""
    names = list(dict.fromkeys(levels["predictor"]))
    rows = int(np.ceil(len(names) / COLS))
    fig = new_figure(12.0, 2.5 * rows + 0.6 + NOTE_STRIP_IN)
    edges = np.linspace(0, 1, PIT_BINS + 1)
    for ax, name in zip(_panels(fig, len(names), sharey=True), names):
        pit = levels.loc[levels["predictor"] == name, "pit"].to_numpy()
        ax.hist(pit, bins=edges, density=True, color=_colour(name), edgecolor="white")
        ax.axhline(1.0, color="black", ls=":", lw=1)
        ax.set_title(wrap(LABELS.get(name, name), 34), fontsize=8.5)
        ax.set_xticks([0, 0.5, 1])
    fig.supxlabel(f"PIT of the observed level in the competitor's runs or draws ({len(pit)} levels, "
                  f"{PIT_BINS} bins; dotted: uniform)" + (f"\n{note}" if note else ""), fontsize=9)
    fig.supylabel("density", fontsize=9)
    fig.suptitle("Probability integral transform: is each competitor's spread calibrated?")
    return fig


def save_tournament_figures(levels: pd.DataFrame, board: pd.DataFrame, skill: pd.DataFrame, out_dir: Path,
                            note: str = "") -> list[Path]:
    """tournament-levels, tournament-skill and tournament-pit (.png, .svg) as apply; returns the PNGs."""
    figures = {}
    if len(levels):
        figures["tournament-levels"] = lambda: plot_predicted(levels, note)
        figures["tournament-pit"] = lambda: plot_pit(levels, note)
    if len(skill):
        figures["tournament-skill"] = lambda: plot_skill(skill, note)
    return [save_figure(build(), out_dir, stem)[0] for stem, build in figures.items()]
