"""The restructuring changed no result: the baseline, a sweep and the history folder at fixed
seeds give the decoded values whose digests were stored before it (tests/data/digests.json,
written by `python -m tests.digests` from the jobs in `tests.digests.JOBS`).

A change to the rules or inputs changes these digests on purpose: then rerun the validation,
report before/after, and store the new digests."""

from __future__ import annotations

import json

import pytest

from .conftest import DATA, cli
from .digests import JOBS, table_digest

STORED = json.loads((DATA / "digests.json").read_text())


@pytest.mark.parametrize("name", list(JOBS))
def test_results_match_the_digest_stored_before_the_restructuring(name, tmp_path):
    args, table, order = JOBS[name]
    done = cli(*args, "--out", str(tmp_path / name), "--quiet")
    assert done.returncode == 0, done.stderr
    assert table_digest(tmp_path / name / table, order) == STORED[name]


def test_the_digest_reads_values_not_bytes(tmp_path):
    """A side payment as old text and as a struct digest alike; a changed level does not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = pa.table({"replication": [0], "level_x": [50.0], "side_payments": [["TUR:sweden@3"]]})
    struct = pa.table({"replication": [0], "level_x": [50.0 + 1e-13],
                       "side_payments": [[{"member": "TUR", "issue": "sweden", "round": 3}]]})
    moved = pa.table({"replication": [0], "level_x": [50.1], "side_payments": [["TUR:sweden@3"]]})
    digests = []
    for i, table in enumerate((text, struct, moved)):
        pq.write_table(table, tmp_path / f"{i}.parquet")
        digests.append(table_digest(tmp_path / f"{i}.parquet", ["replication"]))
    assert digests[0] == digests[1] != digests[2]
