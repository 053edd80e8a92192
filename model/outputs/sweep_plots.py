"""Publication figures for a finished sweep: P(consensus) over the swept parameters, sensitivity
indices, paired differences, and who must be persuaded.

Built like `model.outputs.plots` (bare Agg figures, the house style inside `rc_context`, Okabe-Ito colours,
a grey corner note naming the scenario and the design) so sweep figures sit next to the single-run
figures in a paper. Every figure states its intervals in a caption line under the title.

    from model.outputs.sweep_plots import save_sweep_figures
    save_sweep_figures(folder / "figures", scenario, design, points, differences, indices, warnings)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from model.scenario.design import Design
from model.scenario.files import base_raw, value_at
from model.scenario.schema import Scenario

from .plots import (
    NOTE_GREY,
    NOTE_STRIP_IN,
    OKABE_ITO,
    bloc_handles,
    corner_note,
    issue_grid,
    legend_below,
    member_colours,
    new_figure,
    save_figure,
    styled,
    wrap,
)
from .stats import Z95

SWEEP_DPI = 200
MAX_LINES = 6  # two-parameter grid: one line per level of the other parameter up to this many levels
MAX_ANNOTATED = 12  # heatmap cells carry their value up to 12 x 12
MAX_MARKERS = 60  # difference curves carry point markers up to this many points
MAX_POINTWISE = 25  # up to this many points (multi-parameter designs), differences as separate labelled points
CAPTION_GREY = "#444444"
LEVELS_CMAP = "cividis"  # sequential, designed for colour-vision deficiencies
PAIRED, INDEPENDENT = OKABE_ITO[3], "#333333"  # blue band: paired CI; dark dashes: unpaired CI
FIRST_ORDER, TOTAL_ORDER = OKABE_ITO[0], OKABE_ITO[3]

# units of the scenario values a sweep may set (the last path part that names a field)
UNITS = {
    "ideal": "points on the 0-100 scale", "shift": "points on the 0-100 scale", "status_quo": "points on the 0-100 scale",
    "failure_cost": "salience-weighted points", "price": "salience-weighted points",
    "carve_out_cost": "salience-weighted points", "acceptance_noise": "salience-weighted points",
    "preparatory_cost_share": "share, 0-1", "anchoring": "weight on the ideal, 0-1", "summit_sessions": "sessions",
    "salience": "0-1", "self_weight": "0-1", "gdp_weight": "0-1", "same_bloc_weight": "relative weight",
    "exponent": "exponent",
}
NAMES = {"rounds": "rounds to the deadline", "mu_star": "μ*"}  # where the field name alone would puzzle a reader


# ---------------------------------------------------------------- labels
def _issue_name(scenario: Scenario, issue: str) -> str:
    """An issue's label without its parenthetical: 'Sweden's accession (linked veto: ...)' -> 'Sweden's accession'."""
    return scenario.issues[issue].label.split(" (")[0]


def parameter_label(path: str, scenario: Scenario, unit: bool = False) -> str:
    """A reader's name for a parameter path: 'members.DEU.shift.ukraine' -> "Germany: shift on Ukraine's
    membership path"; with `unit`, the unit in brackets (for axis labels)."""
    parts = path.split(".")
    owner = ""
    if parts[0] in ("members", "blocs") and len(parts) > 2:
        table = scenario.members if parts[0] == "members" else scenario.blocs
        item = table.get(parts[1])
        owner = (getattr(item, "name", None) or getattr(item, "label", None)) if item else parts[1]
        rest = parts[2:]
    elif parts[0] in ("member_defaults", "protocol") and len(parts) > 1:
        rest = parts[1:]
    elif parts[0] == "issues" and len(parts) > 2 and parts[1] in scenario.issues:  # "Sweden's accession: status quo"
        owner, rest = _issue_name(scenario, parts[1]), parts[2:]
    else:  # e.g. capability.gdp_weight -> "capability gdp weight": the section names the value
        rest = [" ".join(parts)]
    issues = [p for p in rest if p in scenario.issues]
    fields = [p for p in rest if p not in scenario.issues]
    text = " ".join(NAMES.get(f, f.replace("_", " ")) for f in fields[:1])
    if len(fields) > 1:
        text += f" ({' '.join(f.replace('_', ' ') for f in fields[1:])})"
    if issues:
        text += f" on {_issue_name(scenario, issues[0])}"
    if parts[0] == "member_defaults":
        text += " (all members)"
    text = f"{owner}: {text}" if owner else text
    units = [UNITS[f] for f in reversed(parts) if f in UNITS]
    return f"{text} ({units[0]})" if unit and units else text


def outcome_name(scenario: Scenario, outcome: str) -> str:
    """What the sweep's differences and indices are of (its design's `outcome`), in words."""
    if outcome == "consensus":
        return "P(consensus)"
    issue, code = outcome.removeprefix("level_"), outcome.removeprefix("satisfied_")
    if outcome.startswith("level_") and issue in scenario.issues:
        return f"mean level on {_issue_name(scenario, issue)} (points)"
    if outcome.startswith("satisfied_") and code in scenario.members:
        return f"P({scenario.members[code].name}'s minimum met)"
    return f"mean {outcome}"


def _scenario_value(scenario: Scenario, path: str) -> float | None:
    """The value the scenario itself gives a swept parameter (a member's unset behaviour falls back
    to member_defaults, an unset shift is 0), or None when it is not one number."""
    value = value_at(base_raw(scenario), path)
    parts = path.split(".")
    if value is None and parts[0] == "members" and len(parts) == 3 and parts[1] in scenario.members:
        value = getattr(scenario.behaviour(parts[1]), parts[2], None)
    if value is None and len(parts) >= 3 and parts[-2] == "shift":
        value = 0.0
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _runs_text(points: pd.DataFrame) -> str:
    low, high = int(points["runs"].min()), int(points["runs"].max())
    text = f"{low:,} replications per point" if low == high else f"{low:,}–{high:,} replications per point"
    failed = int(points["failed"].sum()) if "failed" in points else 0
    return text + (f"; {failed:,} failed runs excluded (failures.csv)" if failed else "")


def _design_note(design: Design, points: pd.DataFrame) -> str:
    seeds = points["seed"].unique() if "seed" in points else []
    crn = f" · common random numbers, seed {seeds[0]}" if len(seeds) == 1 else " · independent seeds"
    return f"{design.method} design · {design.points:,} points{crn}"


# ---------------------------------------------------------------- layout
class Frame:
    """A figure's rows: a caption under the title, the panels, a legend, an optional warning note.

    The caption and the note are titles of zero-height axes, so constrained layout gives them room
    and they can never overlap the panels, however many lines they wrap to."""

    def __init__(self, fig: Figure, nrows: int, ncols: int, **kwargs):
        tiny = 1e-3 * nrows
        self.fig = fig
        self.grid = fig.add_gridspec(nrows + 3, ncols, height_ratios=[tiny, *[1.0] * nrows, tiny, tiny], **kwargs)
        self.legend_spec = self.grid[nrows + 1, :]
        self._caption = self._text_row(self.grid[0, :])
        self._note = self._text_row(self.grid[nrows + 2, :])

    def _text_row(self, spec):
        host = self.fig.add_subplot(spec)
        host.set_axis_off()
        return host

    def _chars(self, per_inch: int) -> int:
        """Characters per line at 8.5 pt that fit right of the y labels (the rows start where the axes do)."""
        return int((self.fig.get_figwidth() - 1.4) * per_inch)

    def panel(self, row: int, col: int):
        return self.fig.add_subplot(self.grid[row + 1, col])

    def caption(self, text: str) -> None:
        self._caption.set_title(wrap(_keep_units(text), self._chars(15)), loc="left", fontsize=8.5,
                                color=CAPTION_GREY, linespacing=1.35)

    def note(self, lines: list[str]) -> None:
        """A boxed note in red, for what a reader must not miss (e.g. an unestablished ranking)."""
        chars = self._chars(14)
        text = "\n".join(wrap(_keep_units(line), chars, indent="    ") for line in lines)
        self._note.set_title(text, loc="left", fontsize=8.5, color="#B2182B", linespacing=1.35,
                             bbox=dict(boxstyle="round,pad=0.45", fc="#FDF1EC", ec="#B2182B", lw=0.8))

    def legend(self, handles: list, ncol: int | None = None) -> None:
        if handles:
            legend_below(self.fig, self.legend_spec, handles, ncol=ncol or min(len(handles), 4))


def _keep_units(text: str) -> str:
    """No line break inside '95 %' when the text is wrapped (a non-breaking space)."""
    return text.replace(" %", "\u00a0%")


def _probability_axis(ax, label: str = "P(consensus)") -> None:
    ax.set_ylim(-0.02, 1.02)  # 0 to 1, with room so markers at 0 or 1 are not cut in half
    ax.set_yticks(np.linspace(0, 1, 5))
    ax.set_ylabel(label)
    _light_grid(ax, "y")


def _light_grid(ax, axis: str) -> None:
    ax.grid(axis=axis, color="#E5E5E5", lw=0.6)
    ax.set_axisbelow(True)


def _level_ticks(ax, values: np.ndarray) -> None:
    """Grid levels as x ticks (when few) so a reader can read off each point's setting."""
    levels = np.unique(values)
    if len(levels) <= 10:
        ax.set_xticks(levels, [f"{v:g}" for v in levels])


SCENARIO_VALUE = Line2D([], [], color="black", ls=":", lw=1.0, label="value in the scenario")


def _mark_scenario_value(ax, scenario: Scenario, path: str, values: np.ndarray) -> bool:
    """A dotted line at the scenario's own value of the parameter, when it lies in the swept range."""
    value = _scenario_value(scenario, path)
    if value is None or not np.nanmin(values) <= value <= np.nanmax(values):
        return False
    ax.axvline(value, color="black", ls=":", lw=1.0, zorder=1)
    return True


# ---------------------------------------------------------------- 1. P(consensus) per parameter
def _interval_errorbars(ax, x: np.ndarray, y: np.ndarray, low: np.ndarray, high: np.ndarray, colour: str,
                        **style):
    """Estimates with asymmetric intervals as vertical error bars (Wilson or paired); returns the container."""
    yerr = np.vstack([y - low, high - y])
    return ax.errorbar(x, y, yerr=yerr, color=colour, ecolor=colour, elinewidth=0.8, capsize=0, **style)


def _line_with_band(ax, x: np.ndarray, y: np.ndarray, low: np.ndarray, high: np.ndarray, colour: str,
                    markers: bool = True) -> None:
    """An estimate along x with its interval shaded (sorted by x, so LHS points draw as a curve)."""
    order = np.argsort(x, kind="stable")
    ax.fill_between(x[order], low[order], high[order], color=colour, alpha=0.2, lw=0)
    ax.plot(x[order], y[order], color=colour, lw=1.8, marker="o" if markers else None, ms=4)


def _wilson(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(rows[c].to_numpy(dtype=float) for c in ("p_consensus", "ci_low", "ci_high"))


def _grid_panel(ax, points: pd.DataFrame, path: str, others: list[str], scenario: Scenario) -> tuple[str, list]:
    """One parameter of a grid. Returns what the panel shows (for the caption) and legend handles."""
    x = points[path].to_numpy(dtype=float)
    if not others:
        _line_with_band(ax, x, *_wilson(points), OKABE_ITO[3])
        return "Band: Wilson 95 % interval of P(consensus) at each point.", []
    if len(others) == 1 and points[others[0]].nunique() <= MAX_LINES:
        other = others[0]
        levels = np.unique(points[other])
        colours = mpl.colormaps["viridis"](np.linspace(0.0, 0.85, len(levels)))  # ordered: dark to light
        step = 0.01 * (np.ptp(x) or 1.0)
        for i, (level, colour) in enumerate(zip(levels, colours)):
            rows = points[points[other] == level].sort_values(path)
            dodge = (i - (len(levels) - 1) / 2) * step  # nudged sideways so the error bars stay apart
            _interval_errorbars(ax, rows[path].to_numpy(dtype=float) + dodge, *_wilson(rows), colour,
                                marker="o", ms=3.5, lw=1.4, label=f"{level:g}")
        ax.legend(title=wrap(parameter_label(other, scenario, unit=True), 22), loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), frameon=False, title_fontsize=8, alignment="left")
        return ("One line per level of the other parameter; error bars: Wilson 95 % intervals (lines nudged "
                "sideways so the bars stay apart)."), []
    stats = points.groupby(path)["p_consensus"].agg(["mean", "min", "max"]).reset_index()
    _line_with_band(ax, stats[path].to_numpy(dtype=float), *(stats[c].to_numpy() for c in ("mean", "min", "max")),
                    OKABE_ITO[0])
    handles = [Line2D([], [], color=OKABE_ITO[0], lw=1.8, marker="o", ms=4,
                      label="mean over the other parameters' points"),
               Patch(color=OKABE_ITO[0], alpha=0.2, label="their range (min–max)")]
    return ("Where a panel averages over the other parameters' points, its band is their range (min–max), "
            "not a confidence interval."), handles


@styled
def plot_sweep_consensus(scenario: Scenario, design: Design, points: pd.DataFrame) -> Figure:
    """P(consensus) against each swept parameter: grid curves, or every LHS point with its interval."""
    params = list(design.parameters)
    nrows, ncols = issue_grid(len(params), max_cols=2)
    side_legend = design.method == "grid" and len(params) == 2 and min(points[p].nunique() for p in params) <= MAX_LINES
    width = 6.4 if len(params) == 1 else (6.2 if side_legend else 4.8) * ncols + 0.4
    fig = new_figure(width, 3.3 * nrows + 1.5 + NOTE_STRIP_IN)
    frame = Frame(fig, nrows, ncols)
    shows, handles = [], {}
    for j, path in enumerate(params):
        ax = frame.panel(j // ncols, j % ncols)
        x = points[path].to_numpy(dtype=float)
        if design.method == "grid":
            what, extra = _grid_panel(ax, points, path, [p for p in params if p != path], scenario)
            _level_ticks(ax, x)
        else:
            _interval_errorbars(ax, x, *_wilson(points), OKABE_ITO[3], ls="none", marker="o", ms=3, alpha=0.7)
            what, extra = "Each design point with its Wilson 95 % interval.", []
        shows.append(what)
        handles |= {h.get_label(): h for h in extra}
        if _mark_scenario_value(ax, scenario, path, x):
            handles[SCENARIO_VALUE.get_label()] = SCENARIO_VALUE
        _probability_axis(ax)
        ax.set_xlabel(wrap(parameter_label(path, scenario, unit=True), 46))
    for j in range(len(params), nrows * ncols):
        frame.panel(j // ncols, j % ncols).set_axis_off()
    frame.caption(" ".join(dict.fromkeys(shows)) + f" {_runs_text(points)}.")
    frame.legend(list(handles.values()))
    fig.suptitle(f"P(consensus) across the {design.method} sweep", x=0.01, ha="left")
    corner_note(fig, scenario, _design_note(design, points))
    return fig


# ---------------------------------------------------------------- 2. two-parameter heatmap
@styled
def plot_sweep_heatmap(scenario: Scenario, design: Design, points: pd.DataFrame) -> Figure:
    """P(consensus) over a two-parameter grid, cells annotated when the grid is small enough to read."""
    x_path, y_path = design.parameters
    table = points.pivot_table(index=y_path, columns=x_path, values="p_consensus", aggfunc="mean")
    ny, nx = table.shape
    fig = new_figure(min(12.0, max(6.4, 2.6 + 0.62 * nx)), min(10.0, max(4.6, 2.3 + 0.42 * ny)) + NOTE_STRIP_IN)
    frame = Frame(fig, 1, 1)
    ax = frame.panel(0, 0)
    cmap = mpl.colormaps[LEVELS_CMAP]
    image = ax.imshow(table.to_numpy(), origin="lower", cmap=cmap, vmin=0, vmax=1, aspect="auto",
                      interpolation="nearest")
    for axis, levels in ((ax.xaxis, table.columns), (ax.yaxis, table.index)):
        keep = np.arange(0, len(levels), max(1, len(levels) // 12))  # at most about 12 tick labels
        axis.set_ticks(keep, [f"{levels[i]:g}" for i in keep])
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    annotated = nx <= MAX_ANNOTATED and ny <= MAX_ANNOTATED
    if annotated:
        for (row, col), value in np.ndenumerate(table.to_numpy()):
            if np.isfinite(value):
                r, g, b, _ = cmap(value)
                dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7.5 if nx > 8 else 8.5,
                        color="white" if dark else "black")
    handles, where = [], _scenario_cell(scenario, (x_path, y_path), (table.columns, table.index))
    if where:  # outline the cell at the scenario's own values (a cell, not a point between cells)
        ax.add_patch(Rectangle((where[0] - 0.5, where[1] - 0.5), 1, 1, fill=False, ec="#D55E00", lw=2.2))
        handles.append(Patch(fill=False, ec="#D55E00", lw=2.2, label="the scenario's own values"))
    fig.colorbar(image, ax=ax, label="P(consensus)", shrink=0.9)
    ax.set_xlabel(wrap(parameter_label(x_path, scenario, unit=True), 100))
    ax.set_ylabel(wrap(parameter_label(y_path, scenario, unit=True), 40))
    widest = float(points["halfwidth"].max()) if "halfwidth" in points else float("nan")
    frame.caption(("Cell values: " if annotated else "Colour: ") + "P(consensus), the share of replications "
                  "reaching consensus at each grid point. "
                  + (f"Wilson 95 % half-widths are at most ±{widest:.3f}. " if np.isfinite(widest) else "")
                  + f"{_runs_text(points)}.")
    frame.legend(handles)
    fig.suptitle("P(consensus) over the two-parameter grid", x=0.01, ha="left")
    corner_note(fig, scenario, _design_note(design, points))
    return fig


def _scenario_cell(scenario: Scenario, paths: tuple[str, str], levels: tuple) -> tuple[int, int] | None:
    """(column, row) of the grid cell at the scenario's own values, when both are grid levels."""
    cell = []
    for path, grid_levels in zip(paths, levels):
        value = _scenario_value(scenario, path)
        hits = np.flatnonzero(np.isclose(np.asarray(grid_levels, dtype=float), value)) if value is not None else []
        if not len(hits):
            return None
        cell.append(int(hits[0]))
    return cell[0], cell[1]


# ---------------------------------------------------------------- 3. sensitivity indices
OVERLAP = re.compile(r"^(\S+) of (.+?) and (.+?): 95 % intervals overlap")


def ranking_notes(warnings: list[str], scenario: Scenario) -> list[str]:
    """The analysis' overlap warnings in a reader's words, one line each (unparsed warnings verbatim)."""
    notes = []
    for warning in warnings:
        match = OVERLAP.match(warning)
        if match:
            index, first, second = match.groups()
            pair = f"{parameter_label(first, scenario)} and {parameter_label(second, scenario)}"
            notes.append(f"95 % intervals of {NAMES.get(index, index)} overlap: "
                         f"the ranking of {pair} is not established")
        else:
            notes.append(warning)
    return notes


def _ranked_bars(ax, labels: list[str], series: list[tuple[np.ndarray, np.ndarray, str, str]]) -> None:
    """Horizontal bars per parameter (largest on top), one bar per series, with error bars = conf."""
    y = np.arange(len(labels))
    height = 0.8 / len(series)
    for k, (value, conf, colour, name) in enumerate(series):
        ax.barh(y + (k - (len(series) - 1) / 2) * height, value, height=height * 0.92, xerr=conf, color=colour,
                edgecolor="#333333", linewidth=0.4, label=name,
                error_kw=dict(ecolor="#333333", elinewidth=0.9, capsize=2.5))
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # rank 1 on top
    ax.axvline(0, color="black", lw=0.8)
    _light_grid(ax, "x")


@styled
def plot_sensitivity(scenario: Scenario, design: Design, indices: pd.DataFrame, warnings: list[str]) -> Figure:
    """Which parameters drive the outcome: Sobol S1/ST or Morris mu* with 95 % bootstrap intervals."""
    outcome = outcome_name(scenario, design.outcome)
    labels = [f"{i + 1}. {wrap(parameter_label(p, scenario), 34, indent='    ')}"
              for i, p in enumerate(indices["parameter"])]
    morris = design.method == "morris"
    height = 1.9 + 0.5 * len(indices) * (1 if morris else 1.3) + 0.35 * len(warnings)
    fig = new_figure(11.0 if morris else 8.0, height + NOTE_STRIP_IN)
    frame = Frame(fig, 1, 2 if morris else 1, **({"width_ratios": [1.35, 1.0]} if morris else {}))
    ax = frame.panel(0, 0)
    if morris:
        _ranked_bars(ax, labels, [(indices["mu_star"], indices["mu_star_conf"], OKABE_ITO[3], "μ*")])
        ax.set_xlabel(f"μ*: mean |elementary effect| on {outcome}\n(change over the parameter's full range)")
        _morris_scatter(frame.panel(0, 1), indices)
        frame.caption("Morris screening: μ* ranks the parameters by influence, σ shows non-linearity or "
                      "interactions (points above the dashed line σ = μ*); error bars: 95 % bootstrap intervals "
                      f"of μ*. Numbers match the ranking on the left. {design.points:,} points.")
    else:
        _ranked_bars(ax, labels, [
            (indices["S1"], indices["S1_conf"], FIRST_ORDER, "first order S1 (alone)"),
            (indices["ST"], indices["ST_conf"], TOTAL_ORDER, "total order ST (with interactions)")])
        ax.set_xlabel(f"Sobol index: share of the variance of {outcome}")
        frame.caption("Sobol indices from a Saltelli design (SALib), ranked by ST; error bars: 95 % bootstrap "
                      f"intervals. {design.points:,} points.")
        frame.legend(ax.get_legend_handles_labels()[0], ncol=2)
    if warnings:
        frame.note(ranking_notes(warnings, scenario))
    fig.suptitle(f"What drives {outcome.split(' (')[0]}: {'Morris' if morris else 'Sobol'} sensitivity",
                 x=0.01, ha="left")
    corner_note(fig, scenario, f"{design.method} design · {design.points:,} points")
    return fig


def _morris_scatter(ax, indices: pd.DataFrame) -> None:
    """mu* against sigma, each parameter numbered by its rank (names stay on the bar chart: no clutter)."""
    mu, sigma = indices["mu_star"].to_numpy(), indices["sigma"].to_numpy()
    top = max(float(np.nanmax(mu)), float(np.nanmax(sigma)), 1e-9) * 1.12
    ax.plot([0, top], [0, top], color=NOTE_GREY, ls="--", lw=0.9)
    ax.scatter(mu, sigma, s=22, color=OKABE_ITO[3], zorder=3)
    for rank, (m, s) in enumerate(zip(mu, sigma), start=1):
        ax.annotate(str(rank), (m, s), xytext=(4, 3), textcoords="offset points", fontsize=8.5)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("μ* (as on the left)")
    ax.set_ylabel("σ: spread of the elementary effects")
    _light_grid(ax, "both")


# ---------------------------------------------------------------- 4./5. paired differences
def _point_values(differences: pd.DataFrame, design: Design, scenario: Scenario, point: int = 0) -> str:
    row = differences.loc[differences["point"] == point].iloc[0]
    return "; ".join(f"{parameter_label(p, scenario)} = {row[p]:.4g}" for p in design.parameters)


def _crn_gain(d: pd.DataFrame) -> str:
    """How much narrower common random numbers make the intervals (median over the non-reference points)."""
    ratio = (d["se_independent"] / d["se_paired"]).replace([np.inf, -np.inf], np.nan).dropna()
    return f" (median {ratio.median():.1f}x wider than paired)" if len(ratio) else ""


def _difference_marks(ax, x: np.ndarray, d: pd.DataFrame, curve: bool) -> list:
    """The differences with their paired interval and, for comparison, the unpaired one: as a curve with a
    band along a parameter (or many ranked points), as separate points with error bars otherwise."""
    diff, low, high = (d[c].to_numpy(dtype=float) for c in ("difference", "ci_low", "ci_high"))
    half = Z95 * d["se_independent"].to_numpy(dtype=float)
    ax.axhline(0, color="black", lw=0.8)
    if curve:
        markers = len(d) <= MAX_MARKERS
        _line_with_band(ax, x, diff, low, high, PAIRED, markers)
        order = np.argsort(x, kind="stable")
        for sign in (-1, 1):
            ax.plot(x[order], (diff + sign * half)[order], color=INDEPENDENT, ls="--", lw=1.0)
        return [Line2D([], [], color=PAIRED, lw=1.8, marker="o" if markers else None, ms=4, label="difference"),
                Patch(color=PAIRED, alpha=0.2, label="paired 95 % interval"),
                Line2D([], [], color=INDEPENDENT, ls="--", lw=1.0, label="unpaired 95 % interval")]
    paired = _interval_errorbars(ax, x, diff, low, high, PAIRED, ls="none", marker="o", ms=4.5,
                                 label="difference with paired 95 % interval")
    ax.plot(np.r_[x, x], np.r_[diff - half, diff + half], ls="none", marker="_", ms=11, mew=1.2, color=INDEPENDENT)
    return [paired,
            Line2D([], [], ls="none", marker="_", ms=11, mew=1.2, color=INDEPENDENT,
                   label="ends of the unpaired 95 % interval")]


@styled
def plot_differences(scenario: Scenario, design: Design, differences: pd.DataFrame) -> Figure:
    """Change from the reference point, paired under common random numbers, beside the unpaired interval."""
    outcome = outcome_name(scenario, design.outcome)
    d = differences.dropna(subset=["difference"])
    single = len(design.parameters) == 1
    if single:
        d = d.sort_values(design.parameters[0], kind="stable")
        x = d[design.parameters[0]].to_numpy(dtype=float)
    else:
        d = d.sort_values("difference", kind="stable")
        x = np.arange(len(d), dtype=float)
    fig = new_figure(8.0, 4.6 + NOTE_STRIP_IN)
    frame = Frame(fig, 1, 1)
    ax = frame.panel(0, 0)
    handles = _difference_marks(ax, x, d, curve=single or len(d) > MAX_POINTWISE)
    reference = (d["point"] == 0).to_numpy()
    ax.plot(x[reference], d["difference"].to_numpy()[reference], ls="none", marker="D", ms=7, mfc="white",
            mec="black", zorder=5)
    if single:
        _level_ticks(ax, x)
        ax.set_xlabel(wrap(parameter_label(design.parameters[0], scenario, unit=True), 80))
    elif len(d) <= MAX_POINTWISE:
        ax.set_xticks(x, [str(p) for p in d["point"]])
        ax.set_xlabel("design point (number as in points.csv), sorted by the difference")
    else:
        ax.set_xlabel("design points, ranked by the difference (rank)")
    ax.set_ylabel(f"change in {outcome}\nfrom the reference point")
    _light_grid(ax, "y")
    pairs = d.loc[~reference, "pairs"]
    n = f"{int(pairs.min()):,}" if pairs.min() == pairs.max() else f"{int(pairs.min()):,}–{int(pairs.max()):,}"
    frame.caption(f"Reference: point 0 ({_point_values(differences, design, scenario)}). Differences are paired by "
                  f"replication under common random numbers ({n} pairs per point), shown with their 95 % interval; "
                  "the unpaired interval is ±1.96 SE, what the same runs would give without common random numbers"
                  f"{_crn_gain(d[~reference])}.")
    frame.legend(handles + [Line2D([], [], ls="none", marker="D", ms=7, mfc="white", mec="black",
                                   label="reference (point 0)")])
    fig.suptitle(f"Change in {outcome.split(' (')[0]} across the sweep, relative to point 0", x=0.01, ha="left")
    corner_note(fig, scenario, f"{design.method} design · {design.points:,} points")
    return fig


@styled
def plot_persuasion(scenario: Scenario, design: Design, points: pd.DataFrame, differences: pd.DataFrame) -> Figure:
    """Who must be persuaded: the change in the outcome when one member moves toward the compromise."""
    outcome = outcome_name(scenario, design.outcome)
    rows = differences[differences["point"] > 0].sort_values("difference", ascending=False, kind="stable")
    colours = member_colours(scenario)
    names = scenario.members
    fig = new_figure(8.0, 2.1 + 0.32 * max(len(rows), 2) + NOTE_STRIP_IN)
    frame = Frame(fig, 1, 1)
    ax = frame.panel(0, 0)
    y = np.arange(len(rows))
    value = rows["difference"].to_numpy()
    xerr = np.vstack([value - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - value])
    ax.barh(y, value, xerr=xerr, height=0.7, color=[colours.get(c, NOTE_GREY) for c in rows["member"]],
            edgecolor="#333333", linewidth=0.4, error_kw=dict(ecolor="#333333", elinewidth=0.9, capsize=2.5))
    ax.set_yticks(y, [f"{names[c].name} ({c})" if c in names else c for c in rows["member"]])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.axvline(0, color="black", lw=0.9)
    high = np.fmax(rows["ci_high"].to_numpy(), 0)
    span = max(float(np.nanmax(high)) - min(float(np.nanmin(rows["ci_low"])), 0.0), 1e-3)
    for yi, v, h in zip(y, value, high):
        ax.text(h + 0.02 * span, yi, f"{v:+.3f}", va="center", ha="left", fontsize=8)
    ax.set_xlim(min(float(np.nanmin(rows["ci_low"])), 0.0) - 0.05 * span, float(np.nanmax(high)) + 0.2 * span)
    ax.set_xlabel(f"change in {outcome} when the member moves toward the compromise")
    _light_grid(ax, "x")
    moves = design.table.loc[design.table["point"] > 0].filter(like="move_").abs().to_numpy()
    distance = f"up to {np.nanmax(moves):.3g} points" if moves.size else ""
    caption = (f"Each voting member in turn moves its ideal points {distance} toward the compromise (the salience x "
               "capability weighted mean of the nominal ideal points) on every issue. Bars: change from the "
               "reference scenario, paired by replication under common random numbers "
               f"({int(rows['pairs'].min()):,} pairs); error bars: 95 % interval of the paired difference.")
    if "p_consensus" in points:
        ref = points.loc[points["point"] == 0].iloc[0]
        caption += f" Reference P(consensus) = {ref['p_consensus']:.3f} (Wilson 95 % {ref['ci_low']:.3f}–" \
                   f"{ref['ci_high']:.3f})."
    frame.caption(caption)
    present = [scenario.members[c].bloc for c in rows["member"] if c in scenario.members]
    frame.legend(bloc_handles(scenario, present), ncol=min(4, len(set(present)) or 1))
    fig.suptitle("Who must be persuaded", x=0.01, ha="left")
    corner_note(fig, scenario, f"persuade design · {design.points:,} points · {_runs_text(points)}")
    return fig


# ---------------------------------------------------------------- files


def sweep_figures(scenario: Scenario, design: Design, points: pd.DataFrame, differences: pd.DataFrame | None,
                  indices: pd.DataFrame | None, warnings: list[str]) -> dict[str, Callable[[], Figure]]:
    """File stem -> builder of each figure this sweep's tables support (the others are left out)."""
    has_p = "p_consensus" in points and points["p_consensus"].notna().any()
    params = design.parameters
    figures: dict[str, Callable[[], Figure]] = {}
    if design.method in ("grid", "lhs") and params and has_p:
        figures["sweep-consensus"] = lambda: plot_sweep_consensus(scenario, design, points)
    if design.method == "grid" and len(params) == 2 and has_p:
        figures["sweep-heatmap"] = lambda: plot_sweep_heatmap(scenario, design, points)
    if design.method in ("sobol", "morris") and indices is not None and not indices.empty:
        figures["sweep-sensitivity"] = lambda: plot_sensitivity(scenario, design, indices, warnings)
    usable = differences is not None and differences["difference"].notna().sum() > 1
    if usable and design.method == "persuade":
        figures["persuasion"] = lambda: plot_persuasion(scenario, design, points, differences)
    elif usable and params:
        figures["sweep-differences"] = lambda: plot_differences(scenario, design, differences)
    return figures


def save_sweep_figures(where: Path, scenario: Scenario, design: Design, points: pd.DataFrame,
                       differences: pd.DataFrame | None, indices: pd.DataFrame | None,
                       warnings: list[str]) -> list[Path]:
    """Write every figure the sweep's tables support into `where` as PNG (200 dpi) and SVG; return the paths."""
    figures = sweep_figures(scenario, design, points, differences, indices, warnings)
    Path(where).mkdir(parents=True, exist_ok=True)  # also when no table supports a figure
    return [path for stem, build in figures.items() for path in save_figure(build(), where, stem, SWEEP_DPI)]


__all__ = ["outcome_name", "parameter_label", "plot_differences", "plot_persuasion", "plot_sensitivity",
           "plot_sweep_consensus", "plot_sweep_heatmap", "ranking_notes", "save_sweep_figures", "sweep_figures"]
