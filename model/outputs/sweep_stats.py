"""A finished sweep's runs -> per-point table, paired differences, sensitivity indices, summary.

Functions of the runs table (read from the part files by `experiments.store`, column by column, so
a million-run sweep is summarised in a few hundred MiB): a resumed, sharded or distributed sweep
is summarised exactly like an uninterrupted one.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from model.scenario.design import Design, salib_problem
from model.scenario.schema import Scenario

from .stats import CONFIDENCE, Z95, wilson

ID_COLUMNS = {"point", "run_id", "seed", "replication", "agreement_round", "rounds_played", "n_holdouts",
              "n_side_payments"}
TOP_HOLDOUTS = 3


def summary_columns(name: str, kind: pa.DataType) -> bool:
    """The columns a summary needs: ids, seeds and errors, consensus, levels and stand-in outcomes,
    whether members' minima were met, holdouts."""
    if name in ("point", "replication", "seed", "error", "consensus", "holdouts") or name.startswith("satisfied_"):
        return True
    return name not in ID_COLUMNS and (pa.types.is_floating(kind) or pa.types.is_integer(kind))


def consensus_counts(runs: pa.Table) -> tuple[dict[int, int], dict[int, int]]:
    """Per point: runs that reached consensus, and runs that finished without error."""
    ok = good_runs(runs)
    grouped = ok.group_by("point").aggregate([("consensus", "sum"), ("consensus", "count")]).to_pydict()
    k = dict(zip(grouped["point"], grouped["consensus_sum"]))
    n = dict(zip(grouped["point"], grouped["consensus_count"]))
    return k, n


def good_runs(runs: pa.Table) -> pa.Table:
    """The runs that finished without error (the only ones estimates use)."""
    return runs.filter(pc.is_null(runs["error"]))


def point_table(runs: pa.Table, design: Design, seeds: np.ndarray, target_halfwidth: float | None,
                cap: int) -> pd.DataFrame:
    """One row per point: its values and seed, runs and failures, P(consensus) with a Wilson 95 %
    interval, the mean level that stands per issue (or mean of a stand-in outcome), top holdouts."""
    table = design.table.copy()
    table["seed"] = seeds
    failed = pc.is_valid(runs["error"]).to_numpy(zero_copy_only=False)  # a run with an error text failed
    point = runs["point"].to_numpy()
    table["runs"] = np.bincount(point[~failed], minlength=design.points)
    table["failed"] = np.bincount(point[failed], minlength=design.points)
    ok = good_runs(runs)
    ok_point = ok["point"].to_numpy()
    n = table["runs"].to_numpy()
    if "consensus" in ok.column_names:
        k = np.bincount(ok_point, weights=ok["consensus"].to_numpy(zero_copy_only=False), minlength=design.points)
        table["consensus"] = k.astype(np.int64)
        table["p_consensus"], table["ci_low"], table["ci_high"] = wilson(k, n)
        table["halfwidth"] = (table["ci_high"] - table["ci_low"]) / 2
        if target_halfwidth is not None:
            table["stopped"] = np.where(table["halfwidth"] <= target_halfwidth, "target", "cap")
    for name in ok.column_names:
        if name in ID_COLUMNS or name in ("error", "consensus", "holdouts"):
            continue
        values = ok[name].to_numpy(zero_copy_only=False).astype(float)
        seen = ~np.isnan(values)
        total = np.bincount(ok_point[seen], weights=values[seen], minlength=design.points)
        count = np.bincount(ok_point[seen], minlength=design.points)
        table[f"mean_{name}"] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if "holdouts" in ok.column_names:
        table["top_holdouts"] = _top_holdouts(ok, n, design.points)
    return table


def _top_holdouts(ok: pa.Table, n: np.ndarray, points: int) -> list[str]:
    """'TUR 0.31, HUN 0.12' per point: the members most often among the last holdouts."""
    lists = ok["holdouts"].combine_chunks()
    members = pc.list_flatten(lists)
    if len(members) == 0:
        return [""] * points
    owner = ok["point"].to_numpy()[pc.list_parent_indices(lists).to_numpy()]
    counts = pd.DataFrame({"point": owner, "member": members.to_numpy(zero_copy_only=False)})
    counts = counts.value_counts().reset_index(name="k").sort_values(["point", "k", "member"],
                                                                     ascending=[True, False, True])
    text = [""] * points
    for p, group in counts.groupby("point", sort=True):
        text[p] = ", ".join(f"{m} {k / n[p]:.2f}" for m, k in zip(group["member"][:TOP_HOLDOUTS],
                                                                  group["k"][:TOP_HOLDOUTS]))
    return text


def outcome_matrix(runs: pa.Table, outcome: str, points: int, stride: int) -> np.ndarray:
    """(points, stride) the outcome of replication r at point p; NaN where the run failed, was not
    run, or (for a level) the issue was not agreed."""
    ok = good_runs(runs)
    matrix = np.full((points, stride), np.nan)
    values = ok[outcome].to_numpy(zero_copy_only=False).astype(float)
    matrix[ok["point"].to_numpy(), ok["replication"].to_numpy()] = values
    return matrix


def paired_differences(matrix: np.ndarray, reference: int = 0) -> pd.DataFrame:
    """Per point, outcome minus the reference point's, paired replication by replication (common
    random numbers), with a normal 95 % interval; `se_independent` is the standard error the same
    runs would give unpaired, so `se_independent / se_paired` is the variance reduction CRN buys."""
    ref = matrix[reference]
    rows = []
    for p, values in enumerate(matrix):
        both = ~np.isnan(values) & ~np.isnan(ref)
        d = values[both] - ref[both]
        n = int(both.sum())
        mean = float(d.mean()) if n else np.nan
        se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
        a, b = values[~np.isnan(values)], ref[~np.isnan(ref)]
        se_ind = (float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
                  if len(a) > 1 and len(b) > 1 else np.nan)
        rows.append({"point": p, "pairs": n, "difference": mean, "se_paired": se,
                     "ci_low": mean - Z95 * se, "ci_high": mean + Z95 * se, "se_independent": se_ind})
    return pd.DataFrame(rows)


def sensitivity(design: Design, scenario: Scenario, points: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Sobol (S1, ST) or Morris (mu*, sigma) indices of the sweep's outcome, with SALib's bootstrap
    95 % intervals, and warnings where those intervals are too wide to rank the factors."""
    sweep = scenario.sweep
    column = outcome_column(design.outcome)
    y = points[column].to_numpy(dtype=float)
    if np.isnan(y).any():
        missing = points.loc[np.isnan(y), "point"].tolist()
        return pd.DataFrame(), [f"no sensitivity indices: {len(missing)} points have no {column} "
                                f"(all its runs failed), e.g. point {missing[0]}"]
    problem = salib_problem(sweep)
    salib_seed = seed % 2**31
    if design.method == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, y, calc_second_order=sweep.second_order, num_resamples=1000,
                            conf_level=CONFIDENCE, seed=salib_seed)
        table = pd.DataFrame({"parameter": problem["names"], "S1": res["S1"], "S1_conf": res["S1_conf"],
                              "ST": res["ST"], "ST_conf": res["ST_conf"]})
        rank_by = "ST"
    else:
        from SALib.analyze import morris

        x = points[list(design.parameters)].to_numpy(dtype=float)
        res = morris.analyze(problem, x, y, num_resamples=1000, conf_level=CONFIDENCE,
                             num_levels=sweep.morris_levels, seed=salib_seed)
        table = pd.DataFrame({"parameter": problem["names"], "mu_star": res["mu_star"],
                              "mu_star_conf": res["mu_star_conf"], "sigma": res["sigma"], "mu": res["mu"]})
        rank_by = "mu_star"
    table = table.sort_values(rank_by, ascending=False, ignore_index=True)
    return table, _ranking_warnings(table, rank_by)


def _ranking_warnings(table: pd.DataFrame, by: str) -> list[str]:
    """One warning per pair of neighbours in the ranking whose 95 % intervals overlap."""
    conf = table[f"{by}_conf"].to_numpy()
    value = table[by].to_numpy()
    names = table["parameter"].tolist()
    warnings = [f"{by} of {names[i]} and {names[i + 1]}: 95 % intervals overlap "
                f"({value[i]:.3f} ± {conf[i]:.3f} vs {value[i + 1]:.3f} ± {conf[i + 1]:.3f}), so their order is "
                "not established; more samples (or replications per point) would narrow them"
                for i in range(len(table) - 1) if value[i] - conf[i] <= value[i + 1] + conf[i + 1]]
    return warnings


def outcome_column(outcome: str) -> str:
    return "p_consensus" if outcome == "consensus" else f"mean_{outcome}"


@dataclass
class SweepTables:
    """What a finished sweep reports: its tables (None where they do not apply) and summary."""

    points: pd.DataFrame
    failures: pd.DataFrame
    summary: dict
    differences: pd.DataFrame | None = None
    sensitivity: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    persuasion: pd.DataFrame | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables to write, by file name."""
        named = {"points": self.points, "failures": self.failures, "differences": self.differences,
                 "sensitivity": self.sensitivity, "persuasion": self.persuasion}
        return {name: t for name, t in named.items() if t is not None and not (name == "sensitivity" and t.empty)}


def analyse(runs: pa.Table, scenario: Scenario, design: Design, seeds: np.ndarray, replicates, seed: int) -> SweepTables:
    """Points, failures, paired differences, sensitivity indices and persuasion ranking of a sweep's
    runs (the columns `summary_columns` selects), with the summary.json dictionary."""
    points = point_table(runs, design, seeds, replicates.target_halfwidth, replicates.replications)
    failures = runs.select([c for c in ("point", "run_id", "replication", "seed", "error") if c in runs.column_names])
    failures = failures.filter(pc.is_valid(failures["error"])).to_pandas()
    outcome = design.outcome
    summary = {
        "scenario": scenario.name, "title": scenario.title, "seed": seed,
        "design": design.method, "parameters": list(design.parameters), "points": design.points,
        "replications_per_point": replicates.replications,
        "common_random_numbers": replicates.common_random_numbers,
        "runs": int(points["runs"].sum()), "failed_runs": int(points["failed"].sum()),
        "outcome": outcome,
    }
    result = SweepTables(points, failures, summary)
    if replicates.target_halfwidth is not None:
        summary["sequential_stopping"] = {
            "rule": "Chow-Robbins fixed width: batches until the Wilson 95 % half-width <= target",
            "target_halfwidth": replicates.target_halfwidth, "min_replications": replicates.min_replications,
            "max_replications": replicates.replications,
            "points_reached_target": int((points["stopped"] == "target").sum()),
            "points_at_cap": int((points["stopped"] == "cap").sum())}
    if replicates.common_random_numbers and design.points > 1 and outcome in runs.column_names:
        matrix = outcome_matrix(runs, outcome, design.points, replicates.replications)
        result.differences = design.table.merge(paired_differences(matrix), on="point")
        summary["paired_differences"] = {"reference_point": 0, "outcome": outcome, "file": "differences.csv"}
    if design.method in ("sobol", "morris"):
        result.sensitivity, result.warnings = sensitivity(design, scenario, points, seed)
        summary["sensitivity"] = {"method": design.method, "outcome": outcome,
                                  "indices": result.sensitivity.to_dict("records"), "warnings": result.warnings}
    if design.method == "persuade" and result.differences is not None:
        result.persuasion = persuasion_ranking(result.differences)
        summary["persuasion"] = result.persuasion.to_dict("records")
    return result


def persuasion_ranking(differences: pd.DataFrame) -> pd.DataFrame:
    """Members by how much moving them toward the compromise raises P(consensus), largest first."""
    ranked = differences[differences["point"] > 0].sort_values("difference", ascending=False, kind="stable")
    return ranked.reset_index(drop=True)


def render_sweep(summary: dict, points: pd.DataFrame, limit: int = 25) -> str:
    """The console summary of a sweep."""
    cap = "up to " if "sequential_stopping" in summary else ""
    lines = [f"{summary['title'] or summary['scenario']}: {summary['design']} sweep, {summary['points']} points x "
             f"{cap}{summary['replications_per_point']} replications, seed {summary['seed']}"
             + (" (common random numbers)" if summary["common_random_numbers"] else " (independent seeds)"),
             f"runs: {summary['runs']}" + (f", FAILED: {summary['failed_runs']} (see failures.csv)"
                                           if summary["failed_runs"] else "")]
    if "sequential_stopping" in summary:
        s = summary["sequential_stopping"]
        lines.append(f"sequential stopping: {s['points_reached_target']} points reached half-width "
                     f"{s['target_halfwidth']}; {s['points_at_cap']} stopped at the cap of {s['max_replications']}")
    if "persuasion" in summary:
        what = "P(consensus)" if summary["outcome"] == "consensus" else f"mean {summary['outcome']}"
        lines += ["", f"Who must be persuaded: change in {what} when the member moves toward the compromise",
                  "(paired under common random numbers; 95 % interval)"]
        for row in summary["persuasion"][:limit]:
            lines.append(f"  {row['member']:<4} {row['difference']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]")
    elif "p_consensus" in points:
        shown = points.head(limit)
        params = [c for c in summary["parameters"]]
        lines += ["", "  ".join(f"{textwrap.shorten(p, 28, placeholder='..'):>28}" for p in params)
                  + "    runs   P(consensus) [95 % CI]"]
        for _, row in shown.iterrows():
            values = "  ".join(f"{row[p]:>28.4g}" for p in params)
            lines.append(f"{values}  {row['runs']:>6}   {row['p_consensus']:.3f} [{row['ci_low']:.3f}, "
                         f"{row['ci_high']:.3f}]")
        if len(points) > limit:
            lines.append(f"... {len(points) - limit} more points in points.csv")
    if "sensitivity" in summary:
        sens = summary["sensitivity"]
        lines += ["", f"{sens['method'].capitalize()} indices of {sens['outcome']} (95 % bootstrap intervals):"]
        for row in sens["indices"]:
            if sens["method"] == "sobol":
                lines.append(f"  {row['parameter']:<40} S1 {row['S1']:+.3f} ± {row['S1_conf']:.3f}   "
                             f"ST {row['ST']:.3f} ± {row['ST_conf']:.3f}")
            else:
                lines.append(f"  {row['parameter']:<40} mu* {row['mu_star']:.4f} ± {row['mu_star_conf']:.4f}   "
                             f"sigma {row['sigma']:.4f}")
        lines += [f"  warning: {w}" for w in sens["warnings"]]
    return "\n".join(lines)
