"""The results table: one row per replication, whichever engine played it; its schema and pandas view."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd


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


def sweep_part_schema(issues: tuple[str, ...] | list[str]) -> pa.Schema:
    """A sweep's part files: `point`, `run_id`, the results columns, `error` (null for a good run;
    a failed run has only its ids, seed and error)."""
    ids = [pa.field("point", pa.int64()), pa.field("run_id", pa.int64())]
    return pa.schema([*ids, *results_schema(issues), pa.field("error", pa.string())])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns, in its order; missing columns are nulls."""
    return pa.table([table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
                     for f in schema], schema=schema)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The results table as pandas, sorted by replication. Integers stay nullable, and text and list
    columns stay Arrow-backed: a million rows of Python lists and strings would cost ~300 MiB."""
    import pandas as pd  # here, not at the top: worker processes use the schema but never pandas

    def dtype(arrow_type: pa.DataType):
        if arrow_type == pa.int32():
            return pd.Int32Dtype()
        if pa.types.is_string(arrow_type) or pa.types.is_list(arrow_type):
            return pd.ArrowDtype(arrow_type)
        return None

    frame = table.to_pandas(types_mapper=dtype)
    return frame.sort_values("replication", ignore_index=True)
