"""Publication figures for one scenario's Monte Carlo results and one replayed replication.

Every figure is built on a bare `matplotlib.figure.Figure` with an Agg canvas (no pyplot, no global
rcParams changed: the style is applied inside `rc_context`), so plotting from a worker, a notebook
or a test leaves no state behind. Shared conventions, kept in one place so figures agree:

* blocs take Okabe-Ito colours (colour-blind safe) in the scenario file's bloc order, so a bloc has
  the same colour in the holdout bars and in the trajectory lines;
* non-bloc quantities (histograms, the chair's draft, observed values) are drawn in greys/black,
  so a colour always means a bloc;
* every figure carries a small grey corner note naming the scenario and n.

    from model.outputs.plots import save_figures
    save_figures(df, scenario, example_model, Path("out/figures"))
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec, SubplotSpec
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy

from model.negotiation import rules
from model.scenario.schema import SCALE, Scenario

from .files import FIGURES, atomic_write
from .report import appearances
from .stats import proportion

if TYPE_CHECKING:
    from model.negotiation.model import NegotiationModel

# Okabe & Ito (2008), "Color Universal Design"; black is left out: it is the chair's draft.
# Yellow goes last: thin yellow lines are hard to see on white, so it is used only from the 7th bloc.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
# after the seven hues, further blocs get distinguishable greys rather than re-used hues
EXTRA_GREYS = ("#7F7F7F", "#B3B3B3", "#4D4D4D", "#D9D9D9")
NEUTRAL = "#6E6E6E"  # histogram bars: not a bloc
NOTE_GREY = "#7A7A7A"
STATUS_QUO = "#000000"  # the status quo (the text that stands): black, dotted where it is a line
DPI = 150
NOTE_STRIP_IN = 0.28  # inches added to every figure's height for the corner note row

STYLE = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "figure.titlesize": 12.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # keep text as text in SVG, editable in a paper's figure pipeline
}

P = ParamSpec("P")
R = TypeVar("R")


# ---------------------------------------------------------------- shared helpers
def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run a figure builder under the house style without touching global rcParams."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def bloc_colours(scenario: Scenario) -> dict[str, str]:
    """Bloc id -> colour, in the scenario's bloc order: the same bloc is the same colour everywhere."""
    palette = OKABE_ITO + EXTRA_GREYS
    return {bloc: palette[i % len(palette)] for i, bloc in enumerate(scenario.blocs)}


def member_colours(scenario: Scenario) -> dict[str, str]:
    """ISO3 code -> its bloc's colour."""
    blocs = bloc_colours(scenario)
    return {code: blocs[m.bloc] for code, m in scenario.members.items()}


def bloc_handles(scenario: Scenario, present: Iterable[str] | None = None, kind: str = "patch") -> list:
    """Legend handles for the blocs (only those `present`, in scenario order), as patches or lines."""
    colours = bloc_colours(scenario)
    keep = set(scenario.blocs if present is None else present)
    handles = []
    for bloc_id, bloc in scenario.blocs.items():
        if bloc_id not in keep:
            continue
        if kind == "line":
            handles.append(Line2D([], [], color=colours[bloc_id], lw=2, label=bloc.label))
        else:
            handles.append(Patch(facecolor=colours[bloc_id], edgecolor="none", label=bloc.label))
    return handles


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure (Agg canvas) whose constrained layout keeps titles, legends and notes apart."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(h_pad=0.05, w_pad=0.06)
    return fig


def grid_with_legend_row(fig: Figure, nrows: int, ncols: int = 1, **kwargs) -> tuple[GridSpec, SubplotSpec]:
    """The panels' grid plus a thin full-width last row that hosts the legend below them.

    A legend owned by an (invisible) axes counts in constrained layout, so it gets its own space
    between the panels and the corner note, however many entries it wraps to.
    """
    ratios = list(kwargs.pop("height_ratios", [1.0] * nrows))
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=ratios + [1e-3 * sum(ratios)], **kwargs)
    return grid, grid[nrows, :]


def legend_below(fig: Figure, spec: SubplotSpec, handles: list, ncol: int, **kwargs) -> None:
    """Draw `handles` as a frameless legend in the legend row from `grid_with_legend_row`."""
    host = fig.add_subplot(spec)
    host.set_axis_off()
    host.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=ncol, frameon=False,
                **kwargs)


def corner_note(fig: Figure, scenario: Scenario, detail: str) -> None:
    """Small grey provenance text in the bottom-right corner: which scenario, how many runs."""
    # a figure-level x label is laid out by constrained layout, so the note never overlaps a legend
    fig.supxlabel(f"scenario: {scenario.name} · {detail}", x=0.995, ha="right", fontsize=7.5, color=NOTE_GREY)


def _n_note(df: pd.DataFrame) -> str:
    seeds = df["seed"].unique() if "seed" in df else []
    seed = f" · seed {seeds[0]}" if len(seeds) == 1 else ""
    return f"n = {len(df):,} replications{seed}"


def _pct(p: float) -> str:
    """Shares as percentages with a precision that does not hide small values."""
    return f"{100 * p:.1f}%" if p < 0.995 or p == 1 else f"{100 * p:.2f}%"


def wrap(text: str, width: int, indent: str = "") -> str:
    return textwrap.fill(text, width=width, subsequent_indent=indent, break_long_words=False)


def issue_grid(k: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(k, max_cols)
    return math.ceil(k / cols), cols


# ---------------------------------------------------------------- agreed levels
KEY_FONT = 8.0
KEY_LINE_PT = KEY_FONT * 1.4  # baseline-to-baseline distance of the key's wrapped lines
KEY_GAP_PT = 2.5  # extra space between two anchors
KEY_HEADER = "Communiqué phrasing at the anchors (x ticks):"
KEY_CHARS = 72  # fits the key column of the 12-inch figure with a margin for wide glyphs


def _anchor_key_lines(anchors: dict[float, str]) -> list[tuple[str, list[str]]]:
    """(level, wrapped phrase lines) per anchor: the phrasing a reader needs to interpret a level."""
    return [(f"{level:g}", textwrap.wrap(phrase, KEY_CHARS, break_long_words=False))
            for level, phrase in anchors.items()]


def _key_height_pt(key: list[tuple[str, list[str]]]) -> float:
    return 1.6 * KEY_LINE_PT + sum(len(lines) * KEY_LINE_PT + KEY_GAP_PT for _, lines in key)


def _draw_anchor_key(fig: Figure, ax, key: list[tuple[str, list[str]]]) -> None:
    """The anchor phrasings as a two-column key (level right-aligned, phrase with a hanging indent)."""
    ax.text(0.0, 1.0, KEY_HEADER, transform=ax.transAxes, va="top", ha="left", fontsize=KEY_FONT + 0.5,
            fontweight="bold")
    y = -1.6 * KEY_LINE_PT

    def put(dx: float, text: str, **kw) -> None:
        where = offset_copy(ax.transAxes, fig=fig, x=dx, y=y, units="points")
        ax.text(0.0, 1.0, text, transform=where, va="top", fontsize=KEY_FONT, **kw)

    for level, lines in key:
        put(18, level, ha="right", fontweight="bold")
        for line in lines:  # one Text per line: exact, even spacing whatever the font metrics
            put(24, line, ha="left")
            y -= KEY_LINE_PT
        y -= KEY_GAP_PT


@styled
def plot_levels(df: pd.DataFrame, scenario: Scenario, bin_width: float = 2.0) -> Figure:
    """Where the agreed text lands on each issue, read against the communiqué phrasings it means.

    One row per issue: the histogram of agreed levels (bars sum to the share of runs that agreed the
    issue; where it was not agreed the status quo stands, the missing mass, stated in the panel and
    marked on the axis), anchors as dotted lines at the x ticks with their phrasing in a key beside
    the panel, the observed level in black.
    """
    issues = list(scenario.level_issues)
    n = len(df)
    observed = scenario.observed.levels if scenario.observed else {}
    keys = [_anchor_key_lines(scenario.issues[name].anchors) for name in issues]
    heights = [max(2.35, 0.45 + _key_height_pt(k) / 72) for k in keys]
    fig = new_figure(12.0, 0.75 + sum(heights) + NOTE_STRIP_IN)
    grid = fig.add_gridspec(len(issues), 2, width_ratios=[1.2, 1.0], height_ratios=heights)
    bins = np.arange(SCALE[0], SCALE[1] + bin_width, bin_width)

    for row, name in enumerate(issues):
        issue = scenario.issues[name]
        ax = fig.add_subplot(grid[row, 0])
        key = fig.add_subplot(grid[row, 1])
        key.set_axis_off()
        agreed = df[f"agreed_{name}"].astype(bool)
        levels = df.loc[agreed, f"level_{name}"].to_numpy(dtype=float)
        weights = np.full(levels.shape, 1.0 / n) if n else None
        counts, _, _ = ax.hist(levels, bins=bins, weights=weights, color=NEUTRAL, edgecolor="white",
                               linewidth=0.5, zorder=2)
        top = max(float(counts.max()) if len(counts) else 0.0, 0.02)
        ax.set_ylim(0, top * 1.55)
        ax.set_xlim(*SCALE)
        for level in issue.anchors:
            ax.axvline(level, color="#A0A0A0", lw=0.9, ls=":", zorder=1)
        ax.set_xticks(list(issue.anchors))
        ax.set_xticks(np.arange(SCALE[0], SCALE[1] + 1, 5), minor=True)
        ax.set_title(issue.label, loc="left", fontweight="bold", pad=29)
        ax.set_ylabel(f"share of replications\n(per {bin_width:g}-point bin)")
        # the headroom above the bars is for labels: no ticks there, and never a tick above 100%
        ticks = mpl.ticker.MaxNLocator(nbins=5).tick_values(0, top)
        ax.set_yticks([t for t in ticks if t <= min(top * 1.1, 1.0)])
        ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlabel("agreed level (0-100 scale)" if row == len(issues) - 1 else "")

        obs = observed.get(name)
        not_agreed = proportion(int((~agreed).sum()), n)
        lo, hi = not_agreed["ci95"]
        note = (f"not agreed in {_pct(not_agreed['p'])} of runs ({not_agreed['k']:,}/{n:,};"
                f" 95% CI {_pct(lo)}–{_pct(hi)}): the status quo ({issue.status_quo:g}) stands") if n else "no replications"
        if len(levels):
            q1, med, q3 = np.percentile(levels, [25, 50, 75])
            note += f"\nagreed level when agreed: median {med:.1f}, IQR {q1:.1f}–{q3:.1f}"
        else:
            note += "\nnever agreed"
        # a subtitle line between the title and the axes: stated in the panel, never over the bars
        ax.text(0.0, 1.0, note, transform=offset_copy(ax.transAxes, fig=fig, y=3, units="points"),
                va="bottom", ha="left", fontsize=8.5, color="#444444", linespacing=1.3)
        ax.plot([issue.status_quo], [0], marker="^", color=STATUS_QUO, ms=9, clip_on=False, zorder=6,
                markeredgecolor="white", markeredgewidth=0.6)
        if obs is not None:
            ax.axvline(obs, color="black", lw=2.0, zorder=4)
            ax.plot([obs], [top * 1.55], marker="v", color="black", ms=7, clip_on=False, zorder=4)
            right = obs <= 85  # label right of the line unless it would leave the panel
            ax.text(obs + (1.2 if right else -1.2), top * 1.5, f"observed ({obs:g})",
                    ha="left" if right else "right", va="top", fontsize=8.5, zorder=5,
                    bbox=dict(boxstyle="square,pad=0.15", fc="white", ec="none"))

        _draw_anchor_key(fig, key, keys[row])

    handles = [Patch(color=NEUTRAL, label="agreed level"),
               Line2D([], [], ls="none", marker="^", color=STATUS_QUO, ms=8, label="status quo")]
    if observed:
        handles.append(Line2D([], [], color="black", lw=2.0, label="observed"))
    fig.suptitle("Agreed level per issue across replications")
    # below the panels, laid out by constrained layout: never over a panel or a key
    fig.legend(handles=handles, loc="outside lower left", fontsize=8.5, frameon=False, ncol=len(handles))
    corner_note(fig, scenario, _n_note(df))
    return fig


# ---------------------------------------------------------------- holdouts
def holdout_shares(df: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Per member: runs in which it was among the last holdouts, share, Wilson 95% CI (scenario order)."""
    n = len(df)
    counts = appearances(df["holdouts"])
    rows = []
    for code, member in scenario.members.items():
        est = proportion(int(counts.get(code, 0)), n)
        rows.append({"code": code, "name": member.name, "bloc": member.bloc, "k": est["k"], "n": n,
                     "share": est["p"] if n else 0.0, "low": est["ci95"][0] if n else 0.0,
                     "high": est["ci95"][1] if n else 0.0})
    return pd.DataFrame(rows)


@styled
def plot_holdouts(df: pd.DataFrame, scenario: Scenario, top: int = 15) -> Figure:
    """Who is most often the last obstacle: share of replications each member was a final holdout."""
    table = holdout_shares(df, scenario)
    order = {code: i for i, code in enumerate(scenario.members)}
    table["order"] = table["code"].map(order)
    shown = table[table["share"] > 0].sort_values(["share", "order"], ascending=[False, True])
    total = len(shown)
    shown = shown.head(top)
    observed = set(scenario.observed.holdouts) if scenario.observed else set()
    colours = bloc_colours(scenario)
    n = len(df)

    fig = new_figure(8.0, 1.9 + 0.34 * max(len(shown), 2) + NOTE_STRIP_IN)
    grid, legend_spec = grid_with_legend_row(fig, 1)
    ax = fig.add_subplot(grid[0, 0])
    if shown.empty:
        ax.text(0.5, 0.5, "no member was a holdout in any replication", transform=ax.transAxes,
                ha="center", va="center")
        ax.set_yticks([])
    else:
        y = np.arange(len(shown))
        xerr = np.vstack([shown["share"] - shown["low"], shown["high"] - shown["share"]])
        bars = ax.barh(y, shown["share"], xerr=xerr, color=[colours[b] for b in shown["bloc"]],
                       edgecolor="#333333", linewidth=0.4, height=0.7,
                       error_kw=dict(ecolor="#333333", elinewidth=0.9, capsize=2.5))
        for bar, code in zip(bars, shown["code"]):
            bar.set_gid(f"holdout:{code}")
        names = [f"{name} ({code})" + (" *" if code in observed else "")
                 for name, code in zip(shown["name"], shown["code"])]
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        for yi, (_, r) in zip(y, shown.iterrows()):
            ax.text(r["high"] + 0.01, yi, f"{_pct(r['share'])} ({r['k']:,}/{n:,})", va="center", ha="left",
                    fontsize=8)
        ax.set_xlim(0, min(1.0, float(shown["high"].max())) * 1.22 + 0.02)
        ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0, decimals=0))
        ax.grid(axis="x", color="#E5E5E5", lw=0.6)
        ax.set_axisbelow(True)
        legend_below(fig, legend_spec, bloc_handles(scenario, shown["bloc"]),
                     ncol=min(3, shown["bloc"].nunique()), title="bloc", title_fontsize=8.5)
    ax.set_xlabel("share of replications (error bars: Wilson 95% CI)")
    extra = []
    if total > len(shown):
        extra.append(f"top {len(shown)} of {total} members who were ever holdouts")
    if observed and not shown.empty:
        extra.append("* holdout at the actual summit")
    ax.set_title("; ".join(extra), loc="left", fontsize=8.5, color="#444444")
    fig.suptitle("Members among the last holdouts (objectors to the final failed vote)")
    corner_note(fig, scenario, _n_note(df))
    return fig


# ---------------------------------------------------------------- choice issues and members' minima
@styled
def plot_options(df: pd.DataFrame, scenario: Scenario) -> Figure:
    """Who or what the choice issues settle on, and whose minimum the text meets: per choice issue,
    the share of runs in which each option stands after the summit (Wilson 95 % intervals), split
    into runs that agreed it and runs where the fallback stood because nothing was agreed, the
    observed option in bold; then, per member with a minimum, the share of runs that meet it."""
    choices = list(scenario.choice_issues)
    minded = scenario.minded
    n = len(df)
    observed = scenario.observed
    heights = [0.9 + 0.36 * len(scenario.issues[c].options) for c in choices] + ([0.9 + 0.36 * len(minded)] if minded else [])
    fig = new_figure(9.0, 0.9 + sum(heights) + NOTE_STRIP_IN)
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
    for row, name in enumerate(choices):
        issue = scenario.issues[name]
        stands = df[f"option_{name}"].astype(str)
        agreed = df[f"agreed_{name}"].astype(bool)
        seen = observed.options.get(name) if observed else None
        rows = [(f"{o}: {text}" + (" (fallback)" if o == issue.status_quo else "") + (" [observed]" if o == seen else ""),
                 int((stands == o).sum()), int(((stands == o) & agreed).sum()), o == seen)
                for o, text in issue.options.items()]
        title = issue.label + ("\n(decided on its own, not in the declaration)" if issue.decided == "on_its_own" else "")
        _share_panel(fig.add_subplot(grid[row, 0]), rows, n, title, split=True, legend=row == 0)
    if minded:
        rows = [(f"{scenario.members[c].name} ({c}): " + ", ".join(f"{i} >= {v:g}" for i, v in scenario.members[c].minimum.items())
                 + (f" [observed: {'met' if observed.satisfied[c] else 'not met'}]" if observed and c in observed.satisfied else ""),
                 *[int(df[f"satisfied_{c}"].sum())] * 2, False) for c in minded]
        _share_panel(fig.add_subplot(grid[len(choices), 0]), rows, n, "Members' minima:\nruns in which the text "
                     "that stands meets them", split=False, legend=False)
    fig.axes[-1].set_xlabel("share of replications (error bars: Wilson 95% CI)")
    fig.suptitle("Choice issues and members' minima after the summit")
    corner_note(fig, scenario, _n_note(df))
    return fig


def _share_panel(ax, rows: list[tuple[str, int, int, bool]], n: int, title: str, split: bool, legend: bool) -> None:
    """Horizontal bars of k/n with Wilson intervals, one per (label, k, k agreed, bold) row; with
    `split`, the part not agreed hatched."""
    y = np.arange(len(rows))
    shares = [proportion(k, n) for _, k, _, _ in rows]
    total = np.array([s["p"] for s in shares])
    agreed = np.array([a / max(n, 1) for _, _, a, _ in rows])
    ax.barh(y, agreed if split else total, height=0.65, color=NEUTRAL, edgecolor="#333333", linewidth=0.4,
            label="agreed")
    if split:
        ax.barh(y, total - agreed, left=agreed, height=0.65, color="white", edgecolor="#333333", linewidth=0.4,
                hatch="///", label="nothing agreed: the fallback stands")
    xerr = np.vstack([total - [s["ci95"][0] for s in shares], [s["ci95"][1] for s in shares] - total])
    ax.errorbar(total, y, xerr=xerr, fmt="none", ecolor="#333333", elinewidth=0.9, capsize=2.5)
    ax.set_yticks(y, [wrap(label, 56) for label, _, _, _ in rows], fontsize=8)
    for tick, (_, _, _, bold) in zip(ax.get_yticklabels(), rows):
        tick.set_fontweight("bold" if bold else "normal")
    ax.invert_yaxis()
    for yi, s in zip(y, shares):
        ax.text(s["ci95"][1] + 0.01, yi, f"{_pct(s['p'])} ({s['k']:,}/{n:,})", va="center", ha="left", fontsize=8)
    ax.set_xlim(0, 1.22)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0, decimals=0))
    ax.grid(axis="x", color="#E5E5E5", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontweight="bold", fontsize=9.5)
    if legend:
        ax.legend(loc="lower right", fontsize=8, frameon=False)


# ---------------------------------------------------------------- rounds
@styled
def plot_rounds(df: pd.DataFrame, scenario: Scenario) -> Figure:
    """How close to the deadline consensus comes, and how often it does not come at all."""
    rounds = scenario.protocol.rounds
    n = len(df)
    consensus = df["outcome"] == "consensus"
    when = df.loc[consensus, "agreement_round"].dropna().astype(int)
    per_round = when.value_counts().reindex(range(1, rounds + 1), fill_value=0)
    misses = {kind: int((df["outcome"] == kind).sum()) for kind in ("partial", "none")}

    fig = new_figure(max(7.0, 2.6 + 0.5 * (rounds + 3)), 4.3 + NOTE_STRIP_IN)
    grid, legend_spec = grid_with_legend_row(fig, 1)
    ax = fig.add_subplot(grid[0, 0])
    x_rounds = np.arange(1, rounds + 1)
    share = per_round.to_numpy() / n if n else np.zeros(rounds)
    ax.bar(x_rounds, share, width=0.75, color=NEUTRAL, edgecolor="white", label="consensus, by round")
    miss_share = {kind: (k / n if n else 0.0) for kind, k in misses.items()}
    x_miss = {"partial": rounds + 1.5, "none": rounds + 2.5}
    styles = {"partial": dict(color="#C8C8C8", hatch="///", edgecolor="#333333",
                              label="no consensus: partial text"),
              "none": dict(color="white", hatch="xx", edgecolor="#333333", label="no consensus: nothing agreed")}
    for kind, x in x_miss.items():
        ax.bar([x], [miss_share[kind]], width=0.75, linewidth=0.8, **styles[kind])
    ymax = max(float(share.max()), *miss_share.values(), 0.02)
    ax.set_ylim(0, ymax * 1.3)
    for x, k in list(zip(x_rounds, per_round.to_numpy())) + [(x_miss[kk], misses[kk]) for kk in x_miss]:
        ax.text(x, k / n + ymax * 0.015 if n else 0, _pct(k / n) if n else "", ha="center", va="bottom",
                fontsize=7.5)
    ax.axvline(rounds + 0.75, color="black", ls="--", lw=1.2)
    ax.text(rounds + 0.82, ymax * 1.27, f"deadline\n(end of round {rounds})", ha="left", va="top",
            fontsize=8)
    ax.set_xticks(list(x_rounds) + list(x_miss.values()),
                  [str(r) for r in x_rounds] + ["partial", "none"])
    ax.set_xlim(0.3, rounds + 3.2)
    ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlabel("round of agreement (consensus runs) / outcome at the deadline")
    ax.set_ylabel("share of replications")
    est = proportion(int(consensus.sum()), n)
    if n:
        lo, hi = est["ci95"]
        median = f"; median round {when.median():g}" if len(when) else ""
        ax.set_title(f"consensus in {_pct(est['p'])} of runs (95% CI {_pct(lo)}–{_pct(hi)}){median}\n"
                     "partial: only the uncontested issues adopted at the deadline; none: nothing agreed",
                     loc="left", fontsize=8.5, color="#444444", linespacing=1.3)
    legend_below(fig, legend_spec, ax.get_legend_handles_labels()[0], ncol=3)
    fig.suptitle("Round in which the declaration was agreed")
    corner_note(fig, scenario, _n_note(df))
    return fig


# ---------------------------------------------------------------- one replication's trajectories
def _trajectory_frames(model: NegotiationModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    from model.negotiation.agents import Ally

    drafts = model.datacollector.get_model_vars_dataframe()
    members = model.datacollector.get_agenttype_vars_dataframe(Ally).reset_index()
    members["round"] = members["Step"].astype(int)
    return drafts, members


@styled
def plot_trajectories(model: NegotiationModel) -> Figure:
    """How positions converge (or not) on the chair's drafts in one replayed replication."""
    scenario = model.scenario_config
    if model.datacollector is None:
        raise ValueError("plot_trajectories needs a model run with collect=True (see negotiation.play)")
    drafts, members = _trajectory_frames(model)
    issues = list(scenario.level_issues)
    colours = member_colours(scenario)
    voting = {code: m.voting for code, m in scenario.members.items()}
    rounds = scenario.protocol.rounds
    out = model.outcome
    nrows, ncols = issue_grid(len(issues))
    fig = new_figure(4.3 * ncols, 3.5 * nrows + 1.3 + NOTE_STRIP_IN)
    grid, legend_spec = grid_with_legend_row(fig, nrows, ncols)
    axes = [[fig.add_subplot(grid[r, c]) for c in range(ncols)] for r in range(nrows)]

    for i, name in enumerate(issues):
        ax = axes[i // ncols][i % ncols]
        issue = scenario.issues[name]
        for code, rows in members.groupby("code", sort=False):
            rows = rows.sort_values("round")
            (line,) = ax.plot(rows["round"], rows[f"position_{name}"], color=colours[code],
                              lw=0.9 if len(voting) > 10 else 1.6, alpha=0.75, ls="-" if voting[code] else "--",
                              zorder=2)
            line.set_gid(f"member:{code}")
        ax.axhline(issue.status_quo, color=STATUS_QUO, lw=2.0, ls=":", zorder=3)
        ax.plot(drafts["round"], drafts[f"draft_{name}"], color="black", lw=2.6, marker="o", ms=4.5,
                zorder=4)
        level = out.levels.get(name, float("nan"))
        if out.agreed.get(name):
            ax.plot([out.agreement_round], [level], marker="*", ms=16, color="white",
                    markeredgecolor="black", markeredgewidth=1.2, zorder=5)
            status = f"agreed at {level:.1f} in round {out.agreement_round}"
        else:
            status = "open" if model.running else f"not agreed: the status quo ({level:g}) stands"
        ax.axvline(rounds, color="black", ls="--", lw=1.0, zorder=1)
        ax.set_title(wrap(issue.label, 52) + f"\n{status}", loc="left", fontsize=9.5)
        ax.set_xlim(-0.3, rounds + 0.3)
        ax.set_xticks(range(0, rounds + 1))
        ax.set_ylim(*SCALE)
        ax.set_yticks(list(issue.anchors))  # anchors differ per issue, so every panel keeps its labels
        ax.grid(axis="y", color="#EBEBEB", lw=0.6)
        ax.set_axisbelow(True)
        ax.set_xlabel("round (0 = initial positions)")
        ax.set_ylabel("position / draft (0-100 scale)" if i % ncols == 0 else "")
    for j in range(len(issues), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()

    present = [m.bloc for m in scenario.members.values()]
    handles = bloc_handles(scenario, present, kind="line")
    handles.append(Line2D([], [], color="black", lw=2.6, marker="o", ms=4.5, label="chair's draft"))
    handles.append(Line2D([], [], ls="none", marker="*", ms=12, color="white", markeredgecolor="black",
                          label="agreed level"))
    handles.append(Line2D([], [], color=STATUS_QUO, lw=2.0, ls=":", label="status quo"))
    handles.append(Line2D([], [], color="black", ls="--", lw=1.0, label=f"summit (round {rounds})"))
    if not all(voting.values()):
        handles.append(Line2D([], [], color="#555555", ls="--", lw=0.9, label="non-voting invitee"))
    legend_below(fig, legend_spec, handles, ncol=min(5, len(handles)))
    kind = (f"negotiating, round {model.round} of {rounds}" if model.running else
            {"consensus": f"consensus in round {out.agreement_round}",
             "partial": f"partial text at round {out.agreement_round} (contested issues dropped)",
             "none": "no agreement by the deadline"}[out.kind])
    fig.suptitle(f"Positions and drafts in replication {model.replication}: {kind}")
    corner_note(fig, scenario, f"replication {model.replication} · seed {model.seed}")
    return fig


# ---------------------------------------------------------------- the current vote (dashboard)
def vote_table(model: NegotiationModel) -> pd.DataFrame:
    """The last vote, member by member, as things stood at it (`Ally.ballot`): the draft, its
    position, its margin for the draft (how much better than a failed summit it found it, noise
    aside), its vote, and on each issue the band of levels it would accept with the rest of the
    draft as it was (its reversion point: the status quo plus what failing cost it); whether it has
    sold a veto or holds an exemption by now."""
    if model.round == 0:
        return pd.DataFrame()
    p = model.params
    rows = []
    for ally in model.allies:
        ballot = ally.ballot
        low, high = rules.acceptance_band(ballot.draft, ballot.position, ally.weight, p.status_quo, ballot.kappa,
                                          ballot.transfers)
        row = {"code": ally.code, "name": ally.name, "bloc": ally.bloc, "voting": ally.voting,
               "margin": ally.margin_now, "accepts": bool(ally.accepted), "sold": bool((ally.payment > 0).any()),
               "exempt": bool(ally.carved.any())}
        for k, issue in enumerate(p.issues):
            row |= {f"draft_{issue}": ballot.draft[k], f"position_{issue}": ballot.position[k],
                    f"band_low_{issue}": low[k], f"band_high_{issue}": high[k]}
        rows.append(row)
    return pd.DataFrame(rows)


@styled
def plot_acceptance(model: NegotiationModel) -> Figure:
    """Who accepted the chair's last draft: per issue, each member's position and the band of levels
    it would accept on that issue against a failed summit (the rest of the draft as it was, no
    noise), with the status quo and the draft, as they stood at the vote."""
    scenario, table = model.scenario_config, vote_table(model)
    issues = list(scenario.level_issues)
    n = len(scenario.members)
    fig = new_figure(3.6 * len(issues) + 1.4, 1.6 + 0.19 * n + NOTE_STRIP_IN)
    grid, legend_spec = grid_with_legend_row(fig, 1, len(issues))
    if table.empty:
        ax = fig.add_subplot(grid[0, :])
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no vote yet: press Step", ha="center", va="center", transform=ax.transAxes)
        return fig
    colours = member_colours(scenario)
    rows = np.arange(len(table))[::-1]
    draft = [table[f"draft_{name}"].iloc[0] for name in issues]
    for k, name in enumerate(issues):
        ax = fig.add_subplot(grid[0, k])
        for y, (_, member) in zip(rows, table.iterrows()):
            colour = colours[member["code"]]
            low, high = member[f"band_low_{name}"], member[f"band_high_{name}"]
            if not np.isnan(low):
                ax.plot([low, high], [y, y], color=colour, lw=5, alpha=0.35, solid_capstyle="butt")
            ax.plot(member[f"position_{name}"], y, "o", color=colour, ms=4,
                    markeredgecolor="black" if member["voting"] else colour, markeredgewidth=0.5)
        ax.axvline(draft[k], color="black", lw=1.6)
        ax.axvline(scenario.issues[name].status_quo, color=STATUS_QUO, lw=2.0, ls=":")
        ax.set_xlim(*SCALE)
        ax.set_xticks(list(scenario.issues[name].anchors))
        ax.set_ylim(-0.7, len(table) - 0.3)
        ax.set_title(wrap(scenario.issues[name].label, 40) + f"\ndraft {draft[k]:.1f}", loc="left", fontsize=9.5)
        ax.set_xlabel("level (0-100 scale)")
        ax.grid(axis="x", color="#EBEBEB", lw=0.6)
        if k == 0:
            labels = [(f"{c} {'accepts' if ok else 'OBJECTS'} {m:+.0f}" + (" sold" if sold else "")
                       + (" exempt" if ex else "")) if v else f"{c} (non-voting)"
                      for c, ok, v, m, sold, ex in zip(table["code"], table["accepts"], table["voting"],
                                                       table["margin"], table["sold"], table["exempt"])]
            ax.set_yticks(rows, labels, fontsize=7.5)
            for tick, ok in zip(ax.get_yticklabels(), table["accepts"]):
                tick.set_color("black" if ok else "#B2182B")
        else:
            ax.set_yticks(rows, [])
    handles = bloc_handles(scenario, set(table["bloc"]), kind="line")
    handles.append(Line2D([], [], color="black", lw=1.6, label="chair's draft"))
    handles.append(Line2D([], [], color=STATUS_QUO, lw=2.0, ls=":", label="status quo"))
    handles.append(Line2D([], [], color="#999999", lw=5, alpha=0.35,
                          label="levels it accepts against a failed summit (no noise)"))
    legend_below(fig, legend_spec, handles, ncol=min(5, len(handles)))
    objecting = int((~table["accepts"]).sum())
    stage = "summit" if model.summit else "preparatory round"
    title = (f"Round {model.round} ({stage}) vote: {objecting} objecting; label: vote and margin (points)"
             if objecting else f"Round {model.round} ({stage}) vote: all accept")
    p, ballot = model.params, model.allies.to_list()[0].ballot
    if p.choices:  # the options voted on with these levels
        title += "\nwith " + "; ".join(f"{scenario.issues[c].label}: {p.options[j][ballot.options[j]]}"
                                       for j, c in enumerate(p.choices))
    fig.suptitle(title)
    corner_note(fig, scenario, f"replication {model.replication} · seed {model.seed}")
    return fig


# ---------------------------------------------------------------- files
def save_figure(fig: Figure, out_dir: Path, stem: str, dpi: int = DPI) -> list[Path]:
    """`stem`.png (for review) and `stem`.svg (for the paper: text kept as text, no timestamp, so
    identical reruns give identical files); returns both paths and frees the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    with mpl.rc_context(STYLE):  # each file via a temp file and a rename: a kill never leaves half a figure
        atomic_write(paths[0], lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, facecolor="white"))
        atomic_write(paths[1], lambda tmp: fig.savefig(tmp, format="svg", facecolor="white", metadata={"Date": None}))
    fig.clear()  # the figures are not registered with pyplot: clearing frees them at once
    return paths


def save_figures(df: pd.DataFrame, scenario: Scenario, example_model: NegotiationModel,
                 out_dir: Path) -> list[Path]:
    """Write the figures that apply as PNG (150 dpi, for review) and SVG (for the paper): levels and
    trajectories when there are level issues, options when there are choices or minima; return the PNGs."""
    figures = {
        "levels": lambda: plot_levels(df, scenario),
        "holdouts": lambda: plot_holdouts(df, scenario),
        "rounds": lambda: plot_rounds(df, scenario),
        "trajectories": lambda: plot_trajectories(example_model),
    }
    if not scenario.level_issues:  # an agenda of choices alone (a Secretary General selection)
        del figures["levels"], figures["trajectories"]
    if scenario.choice_issues or scenario.minded:
        figures["options"] = lambda: plot_options(df, scenario)
    return [save_figure(build(), out_dir, stem)[0] for stem, build in figures.items()]


# ---------------------------------------------------------------- validation against history
VALIDATION_MARKS = {  # baseline -> (label, marker, colour): not blocs, so the palette is free here
    "compromise": ("compromise model (salience × capability weighted mean)", "D", OKABE_ITO[0]),
    "weighted_median": ("weighted median", "^", OKABE_ITO[1]),
    "plain_mean": ("plain mean", "s", OKABE_ITO[2]),
    "status_quo": ("status quo (no change)", "x", STATUS_QUO),
}


@styled
def plot_validation(table: pd.DataFrame, note: str = "") -> Figure:
    """Predicted vs observed level for every (summit, issue) of a validation table
    (`experiments.history.validate_folder`): the model's mean level (the text that stands after the
    summit) with its 90 % interval (5th-95th percentile of runs), the baselines beside it, the
    observed level as a black bar."""
    cases = list(dict.fromkeys(table["scenario"]))
    widths = [int((table["scenario"] == c).sum()) for c in cases]
    width = max(8.0, 1.25 * sum(widths) + 1.6)
    fig = new_figure(width, 5.4 + NOTE_STRIP_IN)
    grid, legend_row = grid_with_legend_row(fig, 1, len(cases), width_ratios=widths)
    axes = []
    for col, case in enumerate(cases):
        ax = fig.add_subplot(grid[0, col], sharey=axes[0] if axes else None)
        axes.append(ax)
        rows = table[table["scenario"] == case].reset_index(drop=True)
        x = np.arange(len(rows), dtype=float)
        for level in (0, 25, 50, 75, 100):
            ax.axhline(level, color="#DDDDDD", lw=0.7, zorder=0)
        ax.hlines(rows["observed"], x - 0.38, x + 0.38, color="black", lw=2.6, zorder=3)
        lo, hi = rows["predicted"] - rows["p05"], rows["p95"] - rows["predicted"]
        ax.errorbar(x - 0.14, rows["predicted"], yerr=[lo, hi], fmt="o", color=OKABE_ITO[3],
                    ms=6.5, elinewidth=1.8, capsize=4, zorder=4)
        for (name, (_, marker, colour)), dx in zip(VALIDATION_MARKS.items(), (0.04, 0.13, 0.22, 0.31)):
            ax.plot(x + dx, rows[name], ls="none", marker=marker, color=colour, ms=5.5,
                    mec=colour if marker == "x" else "white", mew=1.2 if marker == "x" else 0.5, zorder=5)
        ax.set_xticks(x, [wrap(str(issue).replace("_", " "), 10) for issue in rows["issue"]])
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_title(case, fontweight="bold")
        if col == 0:
            ax.set_ylabel("level on the issue's 0–100 scale\n(anchors = communiqué phrasings)")
        else:
            ax.tick_params(labelleft=False)
    axes[0].set_ylim(-4, 104)
    axes[0].set_yticks([0, 25, 50, 75, 100])
    handles = [Line2D([], [], color="black", lw=2.6, label="observed level (coded from the text)"),
               Line2D([], [], color=OKABE_ITO[3], marker="o", lw=1.8, ms=6.5,
                      label="model: mean level that stands, bar = 5th–95th percentile of runs")]
    handles += [Line2D([], [], ls="none", marker=m, color=c, ms=6, label=label)
                for label, m, c in VALIDATION_MARKS.values()]
    legend_below(fig, legend_row, handles, ncol=3 if width >= 11 else 2)
    fig.suptitle("Predicted vs observed levels, by summit and issue")
    fig.supxlabel(note or "validation", x=0.995, ha="right", fontsize=7.5, color=NOTE_GREY)
    return fig


def save_validation_figure(table: pd.DataFrame, out_dir: Path, note: str = "") -> list[Path]:
    """validation.png (150 dpi) and validation.svg; returns [the PNG]."""
    return save_figure(plot_validation(table, note), out_dir, "validation")[:1]


__all__ = ["bloc_colours", "bloc_handles", "corner_note", "holdout_shares", "member_colours", "plot_acceptance",
           "plot_holdouts", "plot_levels", "plot_rounds", "plot_trajectories", "plot_validation", "save_figure",
           "save_figures", "save_validation_figure", "vote_table"]
