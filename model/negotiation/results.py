"""The results table: one row per replication, whichever engine played it.

Both engines record each round's `rules.RoundResult` in a `Ledger` (the ensemble for a batch of
replications, the Mesa model for its one), and the ledger builds the table: one builder, so the
engines cannot drift apart. A replication's `Outcome` (what `NegotiationModel.outcome` shows) is
read from the same ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pandas as pd

    from .params import Params
    from .rules import RoundResult

SIDE_PAYMENT = pa.struct([("member", pa.string()), ("issue", pa.string()), ("round", pa.int32())])


def results_schema(issues: tuple[str, ...] | list[str]) -> pa.Schema:
    """Columns of the results table (documented in README, 'Output files')."""
    fields = [
        ("seed", pa.int64()), ("replication", pa.int64()), ("consensus", pa.bool_()),
        ("outcome", pa.string()), ("agreement_round", pa.int32()), ("rounds_played", pa.int32()),
    ]
    for issue in issues:
        fields += [(f"agreed_{issue}", pa.bool_()), (f"level_{issue}", pa.float64())]
    fields += [("holdouts", pa.list_(pa.string())), ("n_holdouts", pa.int32()),
               ("side_payments", pa.list_(SIDE_PAYMENT)), ("n_side_payments", pa.int32())]
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


def outcome_kind(consensus: np.ndarray, any_agreed: np.ndarray) -> np.ndarray:
    """consensus (the whole declaration) / partial (some issues agreed at the deadline) / none."""
    return np.where(consensus, "consensus", np.where(any_agreed, "partial", "none"))


class SidePayment(NamedTuple):
    """A veto sold: who sold it, on which issue, after the failed vote of which round."""

    member: str
    issue: str
    round: int

    def __str__(self) -> str:
        return f"{self.member}:{self.issue}@{self.round}"  # as the CSV export writes it


@dataclass
class Outcome:
    """The result of one replication (one row of the results table), as Python values."""

    consensus: bool = False  # the whole declaration agreed by the deadline
    kind: str = "none"  # consensus / partial / none
    agreement_round: int | None = None  # round of the agreement (consensus, or a partial text at the deadline)
    rounds_played: int = 0
    levels: dict[str, float] = field(default_factory=dict)  # agreed level per issue, NaN if not agreed
    holdouts: list[str] = field(default_factory=list)  # objectors of the last failed vote on the full package
    side_payments: list[SidePayment] = field(default_factory=list)


class Ledger:
    """Per-replication outcomes of `count` replications, filled in round by round."""

    def __init__(self, count: int, p: Params):
        self.p = p
        self.consensus = np.zeros(count, bool)
        self.rounds_played = np.zeros(count, np.int32)
        self.agreement_round = np.zeros(count, np.int32)  # 0 = nothing agreed (yet)
        self.levels = np.full((count, p.k), np.nan)
        self.holdouts = np.zeros((count, p.n), bool)  # objectors of the last failed full-package vote
        self.payments: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []  # (rows, members, issues, round)

    def record(self, live: np.ndarray, round_: int, result: RoundResult) -> None:
        """Round `round_` of the replications `live` (ledger rows, in the order of `result`'s rows)."""
        failed = ~result.consensus
        self.holdouts[live[failed]] = result.holdouts[failed]
        rows, members = np.nonzero(result.paid_now)
        if len(rows):
            self.payments.append((live[rows], members, result.paid_issue[rows, members], round_))
        self.rounds_played[live] = round_
        done = result.finished
        finished = live[done]
        agreed = result.agreed[done]
        self.consensus[finished] = result.consensus[done]
        self.agreement_round[finished] = np.where(agreed.any(axis=1), round_, 0)
        self.levels[finished] = np.where(agreed, result.draft[done], np.nan)

    def _payments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(row, member, issue, round) of every side payment, by replication, round, then member."""
        if not self.payments:
            empty = np.zeros(0, np.intp)
            return empty, empty, empty, empty
        rows, members, issues, rounds = (np.concatenate(parts) for parts in zip(
            *[(r, m, i, np.full(len(r), t)) for r, m, i, t in self.payments]))
        order = np.lexsort((members, rounds, rows))
        return rows[order], members[order], issues[order], rounds[order]

    def table(self, seed: int, first: int) -> pa.Table:
        """The results rows of replications first .. first+count-1."""
        count, p = len(self.consensus), self.p
        agreed = ~np.isnan(self.levels)
        columns = {
            "seed": np.full(count, seed, np.int64),
            "replication": np.arange(first, first + count, dtype=np.int64),
            "consensus": self.consensus,
            "outcome": outcome_kind(self.consensus, agreed.any(axis=1)),
            "agreement_round": pa.array(self.agreement_round, mask=self.agreement_round == 0),
            "rounds_played": self.rounds_played,
        }
        for k, issue in enumerate(p.issues):
            columns[f"agreed_{issue}"] = agreed[:, k]
            columns[f"level_{issue}"] = self.levels[:, k]
        codes = np.array(p.codes, dtype=object)
        rows, members = np.nonzero(self.holdouts)  # row-major: members in file order
        columns["holdouts"] = _lists(rows, pa.array(codes[members].tolist(), pa.string()), count)
        columns["n_holdouts"] = self.holdouts.sum(axis=1).astype(np.int32)
        rows, members, issues, rounds = self._payments()
        payments = pa.StructArray.from_arrays(
            [pa.array(codes[members].tolist(), pa.string()),
             pa.array(np.array(p.issues, dtype=object)[issues].tolist(), pa.string()),
             pa.array(rounds, pa.int32())], fields=list(SIDE_PAYMENT))
        columns["side_payments"] = _lists(rows, payments, count)
        columns["n_side_payments"] = np.bincount(rows, minlength=count).astype(np.int32)
        schema = results_schema(p.issues)
        return pa.table({name: columns[name] for name in schema.names}, schema=schema)

    def outcome(self, row: int = 0) -> Outcome:
        """Replication `row`'s outcome as Python values (the Mesa model's `outcome`)."""
        p, levels = self.p, self.levels[row]
        agreed = ~np.isnan(levels)
        rows, members, issues, rounds = self._payments()
        mine = rows == row
        return Outcome(
            consensus=bool(self.consensus[row]),
            kind=str(outcome_kind(self.consensus[row], agreed.any())),
            agreement_round=int(self.agreement_round[row]) or None,
            rounds_played=int(self.rounds_played[row]),
            levels=dict(zip(p.issues, map(float, levels))),
            holdouts=[p.codes[i] for i in np.nonzero(self.holdouts[row])[0]],
            side_payments=[SidePayment(p.codes[m], p.issues[i], int(t))
                           for m, i, t in zip(members[mine], issues[mine], rounds[mine])])


def _lists(rows: np.ndarray, values: pa.Array, count: int) -> pa.ListArray:
    """A list column from (row, value) pairs sorted by row."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=count))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def flat_for_csv(table: pa.Table) -> pa.Table:
    """The table with its list columns as space-separated text (CSV has no lists): holdouts as
    `HUN TUR`, side payments as `TUR:sweden@3` (member:issue@round)."""
    for name in ("holdouts", "side_payments"):
        column = table[name].combine_chunks()
        items = column.flatten()
        if pa.types.is_struct(items.type):
            who_what = pc.binary_join_element_wise(items.field("member"), items.field("issue"), ":")
            items = pc.binary_join_element_wise(who_what, pc.cast(items.field("round"), pa.string()), "@")
        offsets = pc.subtract(column.offsets, column.offsets[0])
        text = pc.binary_join(pa.ListArray.from_arrays(offsets, items), " ")
        table = table.set_column(table.schema.get_field_index(name), name, text)
    return table


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
