"""Results table -> summary.json and the console summary a political scientist can quote."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from model.negotiation.agents import Ally
from model.negotiation.model import NegotiationModel
from model.negotiation.results import SIDE_PAYMENT
from model.scenario.schema import Scenario

from .stats import fmt_share, proportion
from .validation import caveat, compare, render_comparison

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
        "issues": {name: (_issue_summary if issue.kind == "level" else _choice_summary)(df, scenario, name)
                   for name, issue in scenario.issues.items()},
        "satisfied": _satisfied(df, scenario),
        "agreement_round": _round_summary(df, scenario.protocol.rounds),
        "holdouts": _member_shares(appearances(df["holdouts"]), scenario, n),
        "side_payments": _member_shares(appearances(df["side_payments"]), scenario, n),
        "contracts": _contracts(df, scenario),
        "carve_outs": _member_shares(appearances(df["carve_outs"]), scenario, n),
        "caveat": (caveat(scenario) if scenario.observed else None),
    }
    if scenario.observed:  # predicted vs observed and the baselines (docs/validation.md)
        summary["validation"] = compare(summary, scenario, df)
    return summary


def _issue_summary(df: pd.DataFrame, scenario: Scenario, name: str) -> dict:
    """The text that stands after the summit on one issue: its level over all runs (the agreed level,
    or the status quo where the issue was not agreed), the share of runs that agreed it, and the
    communiqué phrasing those runs imply."""
    issue = scenario.issues[name]
    levels = df[f"level_{name}"].astype(float)
    agreed = df[f"agreed_{name}"].astype(bool)
    nearest = pd.Series(issue.nearest_anchor(levels[agreed].to_numpy())).value_counts()
    not_agreed = f"{NOT_AGREED}: the status quo ({issue.status_quo:g}) stands"
    phrases = {issue.anchors[a]: int(k) for a, k in nearest.items()} | {not_agreed: int((~agreed).sum())}
    order = [*issue.anchors.values(), not_agreed]
    anchor_of = {text: level for level, text in issue.anchors.items()}
    return {
        "label": issue.label,
        "status_quo": issue.status_quo,
        "agreed": proportion(int(agreed.sum()), len(df)),
        "mean": _num(levels.mean()), "median": _num(levels.median()),
        "p05": _num(levels.quantile(0.05)), "p95": _num(levels.quantile(0.95)),
        "mean_when_agreed": _num(levels[agreed].mean()),
        "phrasing": [{"anchor": anchor_of.get(text), "text": text, **proportion(phrases[text], len(df))}
                     for text in order if phrases.get(text, 0) > 0],
    }


def _choice_summary(df: pd.DataFrame, scenario: Scenario, name: str) -> dict:
    """The option that stands after the summit on a choice issue, over all runs (the option agreed,
    or the fallback where the issue was not agreed), with the vetoes in force."""
    issue = scenario.issues[name]
    agreed = df[f"agreed_{name}"].astype(bool)
    stands = df[f"option_{name}"].value_counts()  # counted in Arrow: no Python string per run
    chosen = df.loc[agreed, f"option_{name}"].value_counts()
    return {
        "kind": "choice",
        "decided": issue.decided,
        "label": issue.label,
        "status_quo": issue.status_quo,
        "agreed": proportion(int(agreed.sum()), len(df)),
        "options": [{"option": option, "text": text, **proportion(int(stands.get(option, 0)), len(df)),
                     "agreed": int(chosen.get(option, 0))} for option, text in issue.options.items()],
        "vetoes": {code: list(m.veto[name]) for code, m in scenario.members.items() if m.veto.get(name)},
    }


def _satisfied(df: pd.DataFrame, scenario: Scenario) -> dict:
    """Per member with a minimum: the share of runs in which the text that stands meets it."""
    return {code: {"name": m.name, "minimum": dict(m.minimum), **proportion(int(df[f"satisfied_{code}"].sum()), len(df))}
            for code, m in ((code, scenario.members[code]) for code in scenario.minded)}


def _round_summary(df: pd.DataFrame, rounds: int) -> dict:
    """When consensus came: the round (the last is the summit) and, at the summit, the drafting session."""
    agreed = df.loc[df["consensus"], "agreement_round"].dropna().astype(int)
    sessions = df.loc[df["consensus"], "summit_session"].dropna().astype(int)
    counts = agreed.value_counts().sort_index()
    return {
        "deadline": rounds,
        "median": _num(agreed.median()),
        "last_round": proportion(int((agreed == rounds).sum()), len(agreed)),
        "histogram": {int(r): int(c) for r, c in counts.items()},
        "summit_sessions": {int(r): int(c) for r, c in sessions.value_counts().sort_index().items()},
    }


def _contracts(df: pd.DataFrame, scenario: Scenario) -> list[dict]:
    """Per member and issue whose veto was sold: the share of runs, the contract's mean level (a
    level issue) or the options it let through with their counts (a choice issue), and the mean
    payment (salience-weighted points of the seller)."""
    items = pc.list_flatten(pa.array(df["side_payments"].array)) if len(df) else pa.array([], type=SIDE_PAYMENT)
    if not len(items):
        return []
    sales = pa.table({f: pc.struct_field(items, f) for f in ("member", "issue", "level", "option", "amount")})
    # grouped in Arrow: a million sales as Python rows would cost hundreds of MiB
    groups = sales.group_by(["member", "issue"]).aggregate([("amount", "count"), ("level", "mean"),
                                                            ("amount", "mean")]).to_pylist()
    picks = sales.filter(pc.is_valid(sales["option"])).group_by(["member", "issue", "option"]).aggregate(
        [("amount", "count")]).to_pylist()
    rows = []
    for g in groups:
        options = sorted((-p["amount_count"], p["option"]) for p in picks
                         if (p["member"], p["issue"]) == (g["member"], g["issue"]))
        rows.append({"member": g["member"], "issue": g["issue"], **proportion(g["amount_count"], len(df)),
                     "mean_level": _num(g["level_mean"]), "options": {o: -k for k, o in options},
                     "mean_payment": float(g["amount_mean"])})
    order = {code: i for i, code in enumerate(scenario.members)}
    return sorted(rows, key=lambda r: (-r["k"], order[r["member"]]))


def appearances(lists: pd.Series | pa.ChunkedArray) -> pd.Series:
    """In how many runs each member appears in a per-run list column: a list of members, or of side
    payments or exemptions (their `member`; a member may sell vetoes, or hold exemptions, on several
    issues in one run, and counts once). Counted on Arrow dictionary codes, without a Python object
    per row (a million runs of string pairs grouped in Arrow took ~260 MiB)."""
    if isinstance(lists, pa.ChunkedArray | pa.Array):
        arrow = lists
    elif isinstance(lists.dtype, pd.ArrowDtype):
        arrow = pa.array(lists.array)  # zero-copy
    else:
        arrow = pa.array(lists.tolist(), type=pa.list_(pa.string()))
    if isinstance(arrow, pa.ChunkedArray):  # one array: run indices count from its start
        arrow = arrow.combine_chunks()
    items = pc.list_flatten(arrow)
    if pa.types.is_struct(items.type):
        items = pc.struct_field(items, "member")
    codes = pc.dictionary_encode(items)
    members = codes.dictionary.to_pylist()
    runs = np.asarray(pc.list_parent_indices(arrow), dtype=np.int64)
    pairs = np.unique(runs * max(len(members), 1) + codes.indices.to_numpy())  # (run, member) once per run
    counts = np.bincount(pairs % max(len(members), 1), minlength=len(members))
    return pd.Series(dict(zip(members, counts.tolist())), dtype="int64")


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
        if issue.get("kind") == "choice":
            lines += ["", *_render_choice(name, issue)]
            continue
        lines += ["", f"{issue['label']} ({name}): status quo {issue['status_quo']:g}, agreed in "
                      f"{issue['agreed']['p']:.1%} of runs",
                  f"  the text that stands after the summit: mean {issue['mean']:.1f}, 90 % of runs in "
                  f"[{issue['p05']:.1f}, {issue['p95']:.1f}]"]
        for row in issue["phrasing"]:
            label = row["text"] if row["anchor"] is None else f"{row['anchor']:>3.0f}  {row['text']}"
            low, high = row["ci95"]
            wrapped = textwrap.shorten(label, 66, placeholder="...")
            lines.append(f"  {row['p']:6.1%} [{low:5.1%}, {high:5.1%}]  {wrapped}")
    rounds = summary["agreement_round"]
    if rounds["median"] is not None:
        last = rounds["last_round"]
        sessions = ", ".join(f"session {s}: {k}" for s, k in rounds["summit_sessions"].items()) or "none"
        lines += ["", f"Round of agreement: median {rounds['median']:.0f} of {rounds['deadline']} (the last round is "
                      f"the summit); at the summit: {fmt_share(last)} of agreements ({sessions})"]
    lines += ["", "Most frequent last holdouts (share of runs):"]
    for row in summary["holdouts"][:top]:
        lines.append(f"  {row['member']}  {row['name']:<16} {fmt_share(row)}")
    if not summary["holdouts"]:
        lines.append("  none")
    for code, row in summary.get("satisfied", {}).items():
        minimum = ", ".join(f"{issue} >= {level:g}" for issue, level in row["minimum"].items())
        lines += ["", f"{row['name']} ({code}) satisfied (its minimum met: {minimum}): {fmt_share(row)}"]
    if summary["contracts"]:
        lines += ["", "Vetoes sold for a side payment (share of runs; what the contract fixed, and the mean payment):"]
        for row in summary["contracts"][:top]:
            fixed = (f"level {row['mean_level']:.1f}" if row["mean_level"] is not None else
                     "option " + ", ".join(f"{o} ({k})" for o, k in row["options"].items()))
            lines.append(f"  {row['member']} on {row['issue']:<14} {fmt_share(row)}  {fixed}, "
                         f"payment {row['mean_payment']:.2f}")
    if summary["carve_outs"]:
        lines += ["", "Exemptions (carve-outs) in the agreed text (share of runs):"]
        for row in summary["carve_outs"][:top]:
            lines.append(f"  {row['member']}  {row['name']:<16} {fmt_share(row)}")
    if summary.get("validation"):
        lines += ["", render_comparison(summary["validation"])]
    return "\n".join(lines)


def _render_choice(name: str, issue: dict) -> list[str]:
    """A choice issue's block of the console summary: the share of runs per option that stands."""
    apart = ", decided on its own (not in the declaration)" if issue["decided"] == "on_its_own" else ""
    lines = [f"{issue['label']} ({name}): a choice{apart}; the fallback {issue['status_quo']} stands unless another "
             f"option is agreed; another was agreed in {issue['agreed']['p']:.1%} of runs" if apart else
             f"{issue['label']} ({name}): a choice; the fallback {issue['status_quo']} stands unless another "
             f"option is agreed; agreed in {issue['agreed']['p']:.1%} of runs"]
    for row in issue["options"]:
        low, high = row["ci95"]
        fallback = " (the fallback)" if row["option"] == issue["status_quo"] else ""
        label = textwrap.shorten(f"{row['option']}{fallback}: {row['text']}", 66, placeholder="...")
        lines.append(f"  {row['p']:6.1%} [{low:5.1%}, {high:5.1%}]  {label}")
    if issue["vetoes"]:
        lines.append("  vetoes in force: " + "; ".join(f"{code} on {', '.join(options)}"
                                                      for code, options in issue["vetoes"].items()))
    return lines


def trace_table(model: NegotiationModel) -> pd.DataFrame:
    """Per member and round: position on each issue and vote (round 0 = the drawn ideal points)."""
    frame = model.datacollector.get_agenttype_vars_dataframe(Ally).reset_index()
    return frame.rename(columns={"Step": "round"}).drop(columns="AgentID")


def render_trace(model: NegotiationModel) -> str:
    """Round by round: the chair's draft and who objected; then the outcome."""
    p = model.params
    out, issues, choices = model.outcome, p.issues, p.choices
    rounds = model.datacollector.get_model_vars_dataframe().iloc[1:]
    head = f"{'round':>5}  " + "  ".join(f"{i[:10]:>10}" for i in issues + choices) + "  objectors"
    fallbacks = [options[q] for options, q in zip(p.options, p.choice_status_quo)]
    quo = "  ".join([f"{q:>10.1f}" for q in p.status_quo] + [f"{o[:10]:>10}" for o in fallbacks])
    lines = [f"{model.scenario_config.name}: replication {model.replication} of seed {model.seed}",
             f"chair's draft per issue (0-100) and the members who objected to it; round {model.params.rounds} is "
             "the summit (its last drafting session shown)", "", head, f"{'quo':>5}  {quo}  (the status quo)"]
    for _, row in rounds.iterrows():
        drafts = "  ".join([f"{row[f'draft_{i}']:>10.1f}" for i in issues] + [f"{row[f'option_{c}'][:10]:>10}"
                                                                               for c in choices])
        lines.append(f"{int(row['round']):>5}  {drafts}  {row['objectors'] or '(none: all accept)'}")
    result = {"consensus": f"consensus in round {out.agreement_round}",
              "partial": f"deadline passed; partial declaration in round {out.agreement_round}",
              "none": "deadline passed; no declaration"}[out.kind]
    if out.summit_session:
        result += f", summit session {out.summit_session}"
    stands = [(k, f"{v:.1f}") for k, v in out.levels.items()] + list(out.options.items())
    levels = ", ".join(f"{k} {v}" + ("" if out.agreed[k] else " (not agreed: the status quo stands)")
                       for k, v in stands)
    lines += ["", f"outcome: {result} ({levels})",
              f"last holdouts: {' '.join(out.holdouts) or 'none'}",
              f"vetoes sold (member:issue@round=level/payment): {' '.join(map(str, out.side_payments)) or 'none'}",
              f"exemptions: {' '.join(map(str, out.carve_outs)) or 'none'}"]
    return "\n".join(lines)
