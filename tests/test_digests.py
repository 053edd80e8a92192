"""A refactor changes no result: the baseline, a sweep and a history folder (the second codings) at fixed seeds give
the decoded values whose digests are stored (tests/data/digests.json, written by
`python -m tests.digests` from the jobs in `tests.digests.JOBS`).

A change to the rules or inputs changes these digests on purpose: then rerun the validation,
report before/after, and store the new digests (last stored: the drafting solver of performance v2,
which moves levels by less than its 1e-5 tolerance: the baseline's digest changed, the sweep's and
history's did not; before that, scenario format 2 and the bargaining core v2; docs/validation.md)."""

from __future__ import annotations

import json

import pytest

from .conftest import DATA, cli
from .digests import JOBS, table_digest

STORED = json.loads((DATA / "digests.json").read_text())


@pytest.mark.parametrize("name", list(JOBS))
def test_results_match_the_stored_digest(name, tmp_path):
    args, table, order = JOBS[name]
    done = cli(*args, "--out", str(tmp_path / name), "--quiet")
    assert done.returncode == 0, done.stderr
    assert table_digest(tmp_path / name / table, order) == STORED[name]


def test_the_digest_reads_values_not_bytes(tmp_path):
    """The same values in another file layout digest alike; a level within the rounding too; a
    changed level or contract does not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sale = {"member": "TUR", "issue": "sweden", "round": 3, "level": 47.5, "amount": 6.0}
    plain = pa.table({"replication": [0], "level_x": [50.0], "side_payments": [[sale]]})
    reordered = pa.table({"side_payments": [[sale]], "level_x": [50.0 + 1e-9], "replication": [0]})
    moved = pa.table({"replication": [0], "level_x": [50.1], "side_payments": [[sale]]})
    resold = pa.table({"replication": [0], "level_x": [50.0], "side_payments": [[sale | {"level": 48.0}]]})
    digests = []
    for i, table in enumerate((plain, reordered, moved, resold)):
        pq.write_table(table, tmp_path / f"{i}.parquet")
        digests.append(table_digest(tmp_path / f"{i}.parquet", ["replication"]))
    assert digests[0] == digests[1] and len(set(digests[1:])) == 3
