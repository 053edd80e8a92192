"""Digests of decoded result values, to prove that a refactor changes no result.

A digest hashes the values of a table, not its file bytes: columns sorted by name, rows by their
ids, floats rounded to 10 decimals, and a side payment normalised to (member, issue, round)
whether it is stored as the old "TUR:sweden@3" text or as a struct. `python -m tests.digests`
prints the current digests of the jobs in `JOBS` (what tests/data/digests.json stores).
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
    "history": (["validate", "scenarios/history/", "--seed", "11", "--runs", "400"],
                "validation.parquet", ["scenario", "issue"]),
}


def _payment(value) -> tuple:
    if isinstance(value, dict):
        return (value["member"], value["issue"], int(value["round"]))
    member, rest = value.split(":", 1)
    issue, round_ = rest.rsplit("@", 1)
    return (member, issue, int(round_))


def _value(column: str, value):
    if column == "side_payments" and value is not None:
        return [_payment(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 10)
    return value


def table_digest(path: Path, order: list[str]) -> str:
    """sha256 of the table's decoded values (a folder of Parquet parts reads as one table)."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    rows.sort(key=lambda row: tuple(row[c] for c in order))
    columns = sorted(rows[0]) if rows else []
    text = json.dumps([[_value(c, row[c]) for c in columns] for row in rows], default=str)
    return hashlib.sha256((json.dumps(columns) + text).encode()).hexdigest()


if __name__ == "__main__":  # python -m tests.digests OUT_ROOT: digest folders written by the jobs
    root = Path(sys.argv[1])
    print(json.dumps({name: table_digest(root / name / table, order)
                      for name, (_, table, order) in JOBS.items()}, indent=2))
