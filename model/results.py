"""The results table's schema: one row per replication, whichever engine played it."""

from __future__ import annotations

import pyarrow as pa


def results_schema(issues: tuple[str, ...] | list[str]) -> pa.Schema:
    """Columns of the results table (documented in README, 'Output files')."""
    fields = [
        ("seed", pa.int64()), ("replication", pa.int64()), ("consensus", pa.bool_()),
        ("outcome", pa.string()), ("agreement_round", pa.int32()), ("rounds_played", pa.int32()),
    ]
    for issue in issues:
        fields += [(f"agreed_{issue}", pa.bool_()), (f"level_{issue}", pa.float64())]
    fields += [("holdouts", pa.list_(pa.string())), ("n_holdouts", pa.int32()),
               ("side_payments", pa.list_(pa.string())), ("n_side_payments", pa.int32())]
    return pa.schema(fields)
