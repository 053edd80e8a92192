"""Results table -> summary.json and the console summary a political scientist can quote."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from model.negotiation.agents import Ally
from model.negotiation.model import NegotiationModel
from model.scenario.schema import Scenario

from .stats import fmt_share, proportion
from .validation import OUTCOME_KNOWN, compare, render_comparison

NOT_AGREED = "(not agreed)"


def summarize(df: pd.DataFrame, scenario: Scenario, seed: int) -> dict:
    """Every headline number with k/n and a Wilson 95 % interval."""
    n = len(df)
    summary = {
        "scenario": scenario.name,
        "title": scenario.title,
        "replications": n,
        "seed": seed,
        "consensus": proportion(int(df["consensus"].sum()), n),
        "outcomes": {kind: proportion(int((df["outcome"] == kind).sum()), n)
                     for kind in ("consensus", "partial", "none")},
        "issues": {name: _issue_summary(df, scenario, name) for name in scenario.issues},
        "agreement_round": _round_summary(df, scenario.protocol.rounds),
        "holdouts": _member_shares(appearances(df["holdouts"]), scenario, n),
        "side_payments": _member_shares(appearances(df["side_payments"]), scenario, n),
        "caveat": (OUTCOME_KNOWN if scenario.observed else None),
    }
    if scenario.observed:  # predicted vs observed and the baselines (docs/validation.md)
        summary["validation"] = compare(summary, scenario)
    return summary


def _issue_summary(df: pd.DataFrame, scenario: Scenario, name: str) -> dict:
    issue = scenario.issues[name]
    levels = df[f"level_{name}"]
    agreed = levels.dropna()
    nearest = pd.Series(issue.nearest_anchor(agreed.to_numpy())).value_counts()
    phrases = {issue.anchors[a]: int(k) for a, k in nearest.items()} | {NOT_AGREED: int(levels.isna().sum())}
    order = [*issue.anchors.values(), NOT_AGREED]
    anchor_of = {text: level for level, text in issue.anchors.items()}
    return {
        "label": issue.label,
        "agreed": proportion(len(agreed), len(df)),
        "mean": _num(agreed.mean()), "median": _num(agreed.median()),
        "p05": _num(agreed.quantile(0.05)), "p95": _num(agreed.quantile(0.95)),
        "phrasing": [{"anchor": anchor_of.get(text), "text": text, **proportion(phrases[text], len(df))}
                     for text in order if phrases.get(text, 0) > 0],
    }


def _round_summary(df: pd.DataFrame, rounds: int) -> dict:
    agreed = df.loc[df["consensus"], "agreement_round"].dropna().astype(int)
    counts = agreed.value_counts().sort_index()
    return {
        "deadline": rounds,
        "median": _num(agreed.median()),
        "last_round": proportion(int((agreed == rounds).sum()), len(agreed)),
        "histogram": {int(r): int(c) for r, c in counts.items()},
    }


def appearances(lists: pd.Series | pa.ChunkedArray) -> pd.Series:
    """In how many runs each member appears in a per-run list column (a member appears at most once
    per run: holdouts are a set, and a veto is sold once): a list of members, or of side payments
    (their `member`). Counted in Arrow, without a Python object per row."""
    if isinstance(lists, pa.ChunkedArray | pa.Array):
        arrow = lists
    elif isinstance(lists.dtype, pd.ArrowDtype):
        arrow = pa.array(lists.array)  # zero-copy
    else:
        arrow = pa.array(lists.tolist(), type=pa.list_(pa.string()))
    items = pc.list_flatten(arrow)
    if pa.types.is_struct(items.type):
        items = pc.struct_field(items, "member")
    counts = pc.value_counts(items).to_pylist()
    return pd.Series({c["values"]: c["counts"] for c in counts}, dtype="int64")


def _member_shares(counts: pd.Series, scenario: Scenario, n: int) -> list[dict]:
    """Share of runs per member, most frequent first (ties in file order)."""
    order = {code: i for i, code in enumerate(scenario.members)}
    ranked = sorted(counts.items(), key=lambda item: (-item[1], order[item[0]]))
    return [{"member": code, "name": scenario.members[code].name, **proportion(int(k), n)} for code, k in ranked]


def _num(x) -> float | None:
    return None if pd.isna(x) else float(x)


def render(summary: dict, top: int = 8) -> str:
    """The console summary (plain text, quotable)."""
    n = summary["replications"]
    lines = [f"{summary['title'] or summary['scenario']}: {n} replications, seed {summary['seed']}",
             *(textwrap.wrap(f"Note: {summary['caveat']}", 96) if summary.get("caveat") else []),
             "",
             f"P(consensus on the whole declaration by the deadline) = {fmt_share(summary['consensus'])}",
             "  (95 % Wilson interval; k/n)"]
    partial = summary["outcomes"]["partial"]
    if partial["k"]:
        lines.append(f"  partial declaration (contested issues dropped at the deadline): {fmt_share(partial)}")
    for name, issue in summary["issues"].items():
        spread = (f"mean {issue['mean']:.1f}, 90 % of runs in [{issue['p05']:.1f}, {issue['p95']:.1f}]"
                  if issue["mean"] is not None else "never agreed")
        lines += ["", f"{issue['label']} ({name}): agreed level {spread}"]
        for row in issue["phrasing"]:
            label = row["text"] if row["anchor"] is None else f"{row['anchor']:>3.0f}  {row['text']}"
            low, high = row["ci95"]
            wrapped = textwrap.shorten(label, 66, placeholder="...")
            lines.append(f"  {row['p']:6.1%} [{low:5.1%}, {high:5.1%}]  {wrapped}")
    rounds = summary["agreement_round"]
    if rounds["median"] is not None:
        last = rounds["last_round"]
        lines += ["", f"Round of agreement: median {rounds['median']:.0f} of {rounds['deadline']}; "
                      f"in the last round: {fmt_share(last)} of agreements"]
    lines += ["", "Most frequent last holdouts (share of runs):"]
    for row in summary["holdouts"][:top]:
        lines.append(f"  {row['member']}  {row['name']:<16} {fmt_share(row)}")
    if not summary["holdouts"]:
        lines.append("  none")
    if summary["side_payments"]:
        lines += ["", "Side payments (share of runs in which the member sold its veto):"]
        for row in summary["side_payments"][:top]:
            lines.append(f"  {row['member']}  {row['name']:<16} {fmt_share(row)}")
    if summary.get("validation"):
        lines += ["", render_comparison(summary["validation"])]
    return "\n".join(lines)


def trace_table(model: NegotiationModel) -> pd.DataFrame:
    """Per member and round: position on each issue and vote (round 0 = the drawn ideal points)."""
    frame = model.datacollector.get_agenttype_vars_dataframe(Ally).reset_index()
    return frame.rename(columns={"Step": "round"}).drop(columns="AgentID")


def render_trace(model: NegotiationModel) -> str:
    """Round by round: the chair's draft, who objected, side payments; then the outcome."""
    out, issues = model.outcome, model.params.issues
    rounds = model.datacollector.get_model_vars_dataframe().iloc[1:]
    head = f"{'round':>5}  " + "  ".join(f"{i[:10]:>10}" for i in issues) + "  objectors"
    lines = [f"{model.scenario_config.name}: replication {model.replication} of seed {model.seed}",
             "chair's draft per issue (0-100) and the members who objected to it", "", head]
    for _, row in rounds.iterrows():
        drafts = "  ".join(f"{row[f'draft_{i}']:>10.1f}" for i in issues)
        lines.append(f"{int(row['round']):>5}  {drafts}  {row['objectors'] or '(none: all accept)'}")
    result = {"consensus": f"consensus in round {out.agreement_round}",
              "partial": f"deadline passed; partial declaration in round {out.agreement_round}",
              "none": "deadline passed; no declaration"}[out.kind]
    levels = ", ".join(f"{k} {v:.1f}" if not np.isnan(v) else f"{k} dropped" for k, v in out.levels.items())
    lines += ["", f"outcome: {result}" + (f" ({levels})" if out.kind != "none" else ""),
              f"last holdouts: {' '.join(out.holdouts) or 'none'}",
              f"side payments: {' '.join(map(str, out.side_payments)) or 'none'}"]
    return "\n".join(lines)
