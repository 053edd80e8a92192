"""The validation corpus (docs/coding-rules.md §8, coding rules v2): a case that carries a
`summit_date` rests only on sources dated before it, codes no member from the outcome, and the
folder's frozen split puts every case in train or test, by date."""

from __future__ import annotations

import re

import pytest
import yaml

from model.experiments.history import SPLIT, read_split, scenario_files

from .conftest import REPO

HISTORY = REPO / "scenarios" / "history"
CASES = scenario_files(HISTORY)
SECOND = scenario_files(HISTORY / "second-coding")
BASELINE = REPO / "scenarios" / "baseline.yaml"  # the Vilnius case, which history/vilnius-2023.yaml extends
V2 = [p for p in [*CASES, *SECOND, BASELINE] if "summit_date" in yaml.safe_load(p.read_text(encoding="utf-8"))]
CITE = re.compile(r"\[([A-Za-z][A-Za-z0-9_]*)\]")
OUTCOME_ONLY = ("observed", "references", "description", "title")  # where outcome sources may be cited


def _strings(node, path=()):
    """(path, text) of every string in a parsed YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, path)
    elif isinstance(node, str):
        yield path, node


def _citations(raw: dict) -> dict[str, set[tuple[str, ...]]]:
    """Reference key -> the paths that cite it, outside the observed block. An issue's `source`
    line says how its observed level was coded (coding rules §3, step 6), so it may cite outcome
    sources; its `status_quo_source` may not."""
    cites: dict[str, set[tuple[str, ...]]] = {}
    kept = {k: v for k, v in raw.items() if k not in OUTCOME_ONLY}
    for path, text in _strings(kept):
        if path[0] == "issues" and path[-1] == "source":
            continue
        for key in CITE.findall(text):
            cites.setdefault(key, set()).add(path)
    return cites


def test_the_corpus_has_cases_coded_ex_ante_and_some_coded_twice():
    assert len(CASES) >= 16 and len(SECOND) >= 4
    assert BASELINE in V2
    assert {p.name for p in SECOND} <= {p.name for p in V2 if p.parent == HISTORY}  # a v2 case, recoded


@pytest.mark.parametrize("path", V2, ids=lambda p: p.relative_to(REPO / "scenarios").as_posix())
def test_a_v2_case_rests_only_on_sources_dated_before_the_summit(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    day, references = raw["summit_date"], raw.get("references", {})
    undated = [key for key, ref in references.items() if not isinstance(ref, dict) or "date" not in ref]
    assert not undated, f"references without a date: {undated}"
    problems = []
    for key, paths in _citations(raw).items():
        where = ", ".join(".".join(p) for p in sorted(paths))
        if key not in references:
            problems.append(f"[{key}] cited by {where} is not in references")
        elif key.startswith("OBS"):
            problems.append(f"[{key}] documents the outcome but is cited by {where}")
        elif references[key]["date"] >= day and not all(p[-2:] == ("sources", "data") for p in paths):
            # structural data (GDP, spending shares) may come from the nearest later release (§8 rule 6)
            problems.append(f"[{key}] dated {references[key]['date']} (summit {day}) is cited by {where}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", V2, ids=lambda p: p.relative_to(REPO / "scenarios").as_posix())
def test_a_v2_case_codes_no_member_from_the_outcome(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = []
    for code, member in raw["members"].items():
        for issue, text in (member.get("sources") or {}).items():
            if re.search(r"\bR3\b|observed level", text):
                problems.append(f"{code}.{issue}: coded from the outcome (rule R3 is abolished in v2)")
            if issue != "data" and not (CITE.search(text) or text.startswith("(prior)") or "judgement" in text):
                problems.append(f"{code}.{issue}: cites no dated source and is not marked (prior) or judgement")
    assert not problems, "\n".join(problems)


def test_the_split_is_frozen_by_date():
    split = read_split(HISTORY, CASES)
    assert split is not None, f"scenarios/history/{SPLIT} is missing"
    year = {p.stem: int(p.stem.rsplit("-", 1)[1]) for p in CASES}  # every case name ends in its year
    assert max(year[n] for n in split["train"]) < min(year[n] for n in split["test"])
    assert split["reason"]
