"""Digests of decoded result values, to prove that a refactor changes no result.

A digest hashes the values of a table, not its file bytes: columns sorted by name, rows by their
ids, floats rounded to DECIMALS decimals (a compiler may order the chair's sums differently on
another processor, which moves the last bits; levels are reported to 0.1 point), and a list of
structs as lists of their values. `python -m tests.digests OUT_ROOT` prints the current digests
of the jobs in `JOBS` (what tests/data/digests.json stores).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq

# (name, command-line arguments without --out, the table to digest, the columns that order its rows)
JOBS = {
    "baseline": (["run", "scenarios/baseline.yaml", "--seed", "20230711", "--runs", "2000"],
                 "replications.parquet", ["replication"]),
    "sweep": (["sweep", "tests/data/tiny-sweep.yaml", "--seed", "5"], "parts", ["point", "run_id"]),
    # the second codings: six cases (three with levels, three choices) exercise every stage of validate
    # in a minute; the sixteen cases of scenarios/history/ would take three
    "history": (["validate", "scenarios/history/second-coding/", "--seed", "11", "--runs", "400"],
                "validation.parquet", ["scenario", "issue"]),
}


DECIMALS = 4


def _value(value):
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return [_value(v) for _, v in sorted(value.items())]
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, DECIMALS) + 0.0  # no -0.0
    return value


def table_digest(path: Path, order: list[str]) -> str:
    """sha256 of the table's decoded values (a folder of Parquet parts reads as one table)."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    rows.sort(key=lambda row: tuple(row[c] for c in order))
    columns = sorted(rows[0]) if rows else []
    text = json.dumps([[_value(row[c]) for c in columns] for row in rows], default=str)
    return hashlib.sha256((json.dumps(columns) + text).encode()).hexdigest()


if __name__ == "__main__":  # python -m tests.digests OUT_ROOT: digest folders written by the jobs
    root = Path(sys.argv[1])
    print(json.dumps({name: table_digest(root / name / table, order)
                      for name, (_, table, order) in JOBS.items()}, indent=2))
