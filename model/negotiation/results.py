"""The results table: one row per replication, whichever engine played it.

Both engines record each vote, sale and ending in a `Ledger` (the ensemble for a batch of
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

    from model.scenario.schema import Scenario

    from .params import Params

SIDE_PAYMENT = pa.struct([("member", pa.string()), ("issue", pa.string()), ("round", pa.int32()),
                          ("level", pa.float64()), ("option", pa.string()), ("amount", pa.float64())])
CARVE_OUT = pa.struct([("member", pa.string()), ("issue", pa.string())])
LISTS = ("holdouts", "side_payments", "carve_outs")


def results_schema(issues: tuple[str, ...], choices: tuple[str, ...] = (), minded: tuple[str, ...] = ()) -> pa.Schema:
    """Columns of the results table (documented in README, 'Output files'): per level issue whether
    it was agreed and the level that stands, per choice issue whether it was agreed and the option
    that stands, per member with a minimum whether the text met it."""
    fields = [
        ("seed", pa.int64()), ("replication", pa.int64()), ("consensus", pa.bool_()),
        ("outcome", pa.string()), ("agreement_round", pa.int32()), ("summit_session", pa.int32()),
        ("rounds_played", pa.int32()),
    ]
    for issue in issues:
        fields += [(f"agreed_{issue}", pa.bool_()), (f"level_{issue}", pa.float64())]
    for choice in choices:
        fields += [(f"agreed_{choice}", pa.bool_()), (f"option_{choice}", pa.string())]
    fields += [(f"satisfied_{code}", pa.bool_()) for code in minded]
    fields += [("holdouts", pa.list_(pa.string())), ("n_holdouts", pa.int32()),
               ("side_payments", pa.list_(SIDE_PAYMENT)), ("n_side_payments", pa.int32()),
               ("carve_outs", pa.list_(CARVE_OUT)), ("n_carve_outs", pa.int32())]
    return pa.schema(fields)


def schema_for(scenario: Scenario) -> pa.Schema:
    """The results columns of `scenario`'s runs."""
    return results_schema(scenario.level_issues, scenario.choice_issues, scenario.minded)


def sweep_part_schema(scenario: Scenario) -> pa.Schema:
    """A sweep's part files: `point`, `run_id`, the results columns, `error` (null for a good run;
    a failed run has only its ids, seed and error)."""
    ids = [pa.field("point", pa.int64()), pa.field("run_id", pa.int64())]
    return pa.schema([*ids, *schema_for(scenario), pa.field("error", pa.string())])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns, in its order; missing columns are nulls."""
    return pa.table([table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
                     for f in schema], schema=schema)


def outcome_kind(consensus: np.ndarray, any_agreed: np.ndarray) -> np.ndarray:
    """consensus (the whole declaration) / partial (some issues agreed at the deadline) / none."""
    return np.where(consensus, "consensus", np.where(any_agreed, "partial", "none"))


class SidePayment(NamedTuple):
    """A veto sold: who sold it, on which issue, after which round's failed vote, the level (on a
    level issue) or the option (on a choice issue) the contract fixed, and the payment
    (salience-weighted points of the seller)."""

    member: str
    issue: str
    round: int
    level: float | None
    option: str | None
    amount: float

    def __str__(self) -> str:  # as in the CSV
        fixed = self.option if self.option is not None else f"{round(self.level, 1):g}"
        return f"{self.member}:{self.issue}@{self.round}={fixed}/{round(self.amount, 2):g}"


class CarveOut(NamedTuple):
    """An exemption in the agreed text: the member is not bound on the issue (the status quo stands for it)."""

    member: str
    issue: str

    def __str__(self) -> str:
        return f"{self.member}:{self.issue}"


@dataclass
class Outcome:
    """The result of one replication (one row of the results table), as Python values."""

    consensus: bool = False  # the whole declaration agreed by the deadline
    kind: str = "none"  # consensus / partial / none
    agreement_round: int | None = None  # round of the agreement (consensus, or a partial text at the deadline)
    summit_session: int | None = None  # the summit's drafting session that agreed it (None: before the summit)
    rounds_played: int = 0
    agreed: dict[str, bool] = field(default_factory=dict)  # per issue of the agenda
    levels: dict[str, float] = field(default_factory=dict)  # the text that stands: agreed, else the status quo
    options: dict[str, str] = field(default_factory=dict)  # per choice issue, the option that stands
    satisfied: dict[str, bool] = field(default_factory=dict)  # per member with a minimum: was it met
    holdouts: list[str] = field(default_factory=list)  # objectors of the last failed vote on the full package
    side_payments: list[SidePayment] = field(default_factory=list)
    carve_outs: list[CarveOut] = field(default_factory=list)


ONE = np.zeros(1, np.intp)  # the Mesa model's one replication, as a ledger row


class Ledger:
    """Per-replication outcomes of `count` replications, filled in vote by vote (both engines)."""

    def __init__(self, count: int, p: Params):
        self.p = p
        self.consensus = np.zeros(count, bool)
        self.rounds_played = np.zeros(count, np.int32)
        self.agreement_round = np.zeros(count, np.int32)  # 0 = nothing agreed (yet)
        self.summit_session = np.zeros(count, np.int32)  # 0 = not agreed at the summit
        self.agreed = np.zeros((count, p.k + p.c), bool)  # per issue of the agenda
        self.levels = np.broadcast_to(p.status_quo, (count, p.k)).copy()  # the text that stands
        self.options = np.broadcast_to(p.choice_status_quo, (count, p.c)).copy()  # the options that stand
        self.holdouts = np.zeros((count, p.n), bool)  # objectors of the last failed full-package vote
        self.carved = np.zeros((count, p.n, p.k), bool)  # exemptions in the agreed text
        self.sales: list[tuple[np.ndarray, ...]] = []  # (rows, members, issues, rounds, levels, options, amounts)

    def voted(self, rows: np.ndarray, round_: int, accepts: np.ndarray) -> None:
        """A vote on the full package in replications `rows` (ledger rows, in the order of `accepts`)."""
        self.rounds_played[rows] = round_
        failed = ~accepts.all(axis=1)
        self.holdouts[rows[failed]] = ~accepts[failed]

    def sold(self, rows: np.ndarray, member: int, issues: np.ndarray, round_: int, levels: np.ndarray,
             amounts: np.ndarray, options: np.ndarray) -> None:
        """`member` sold its veto in replications `rows` (issues: indices into the agenda; a level
        contract's level, or NaN; a choice contract's option, or NONE)."""
        self.sales.append((rows, np.full(len(rows), member), issues, np.full(len(rows), round_), levels, options,
                           amounts))

    def decided(self, rows: np.ndarray, choice: int, options: np.ndarray) -> None:
        """A choice decided on its own was agreed in replications `rows`, on `options`."""
        self.agreed[rows, self.p.k + choice] = True
        self.options[rows, choice] = options

    def finish(self, rows: np.ndarray, round_: int, session: int, consensus: np.ndarray, agreed: np.ndarray,
               package: np.ndarray, options: np.ndarray, carved: np.ndarray) -> None:
        """Replications `rows` end in `round_` (summit `session`): the issues of the declaration
        `agreed` at `package` (levels) and `options`, the others at their status quo; exemptions
        count only on agreed issues. A choice decided on its own keeps what `decided` recorded."""
        p, k = self.p, self.p.k
        declared = agreed & p.declaration
        done = declared.any(axis=1)
        self.consensus[rows] = consensus
        self.agreement_round[rows] = np.where(done, round_, 0)
        self.summit_session[rows] = np.where(done & (round_ == p.rounds), session, 0)
        self.agreed[rows] = np.where(p.declaration, declared, self.agreed[rows])
        self.levels[rows] = np.where(agreed[:, :k], package, p.status_quo)
        self.options[rows] = np.where(p.own, self.options[rows], np.where(declared[:, k:], options, p.choice_status_quo))
        self.carved[rows] = carved & agreed[:, None, :k]

    def _declared(self) -> np.ndarray:
        """(count, K + C) the issues agreed in the declaration (not the choices decided on their own)."""
        return self.agreed & self.p.declaration

    def satisfied(self) -> np.ndarray:
        """(count, members with a minimum): whether the levels that stand meet each one's minimum."""
        minimum = self.p.minimum[self.p.minded]
        return ((self.levels[:, None, :] >= minimum[None]) | np.isnan(minimum)[None]).all(axis=2)

    def _sales(self) -> tuple[np.ndarray, ...]:
        """(row, member, issue, round, level, option, amount) of every sale, by replication, round,
        then member."""
        if not self.sales:
            return tuple(np.zeros(0, t) for t in (np.intp, np.intp, np.intp, np.intp, float, np.intp, float))
        parts = [np.concatenate(column) for column in zip(*self.sales)]
        order = np.lexsort((parts[1], parts[3], parts[0]))
        return tuple(column[order] for column in parts)

    def table(self, seed: int, first: int) -> pa.Table:
        """The results rows of replications first .. first+count-1."""
        count, p = len(self.consensus), self.p
        codes = np.array(p.codes, dtype=object)
        issues = np.array(p.issues, dtype=object)
        columns = {
            "seed": np.full(count, seed, np.int64),
            "replication": np.arange(first, first + count, dtype=np.int64),
            "consensus": self.consensus,
            "outcome": outcome_kind(self.consensus, self._declared().any(axis=1)),
            "agreement_round": pa.array(self.agreement_round, mask=self.agreement_round == 0),
            "summit_session": pa.array(self.summit_session, mask=self.summit_session == 0),
            "rounds_played": self.rounds_played,
        }
        for k, issue in enumerate(p.issues):
            columns[f"agreed_{issue}"] = self.agreed[:, k]
            columns[f"level_{issue}"] = self.levels[:, k]
        for c, choice in enumerate(p.choices):
            columns[f"agreed_{choice}"] = self.agreed[:, p.k + c]
            columns[f"option_{choice}"] = pa.array(np.array(p.options[c], dtype=object)[self.options[:, c]].tolist(),
                                                   pa.string())
        for j, code in enumerate(np.array(p.codes)[p.minded]):
            columns[f"satisfied_{code}"] = self.satisfied()[:, j]
        rows, members = np.nonzero(self.holdouts)  # row-major: members in file order
        columns["holdouts"] = _lists(rows, pa.array(codes[members].tolist(), pa.string()), count)
        columns["n_holdouts"] = self.holdouts.sum(axis=1).astype(np.int32)
        rows, members, sold, rounds, levels, options, amounts = self._sales()
        agenda = np.array(p.issues + p.choices, dtype=object)
        payments = pa.StructArray.from_arrays(
            [pa.array(codes[members].tolist(), pa.string()), pa.array(agenda[sold].tolist(), pa.string()),
             pa.array(rounds, pa.int32()), pa.array(levels, pa.float64(), from_pandas=True),
             pa.array([self._option(k, o) for k, o in zip(sold, options)], pa.string()),
             pa.array(amounts, pa.float64())],
            fields=list(SIDE_PAYMENT))
        columns["side_payments"] = _lists(rows, payments, count)
        columns["n_side_payments"] = np.bincount(rows, minlength=count).astype(np.int32)
        rows, members, carved = np.nonzero(self.carved)  # by replication, member, issue
        exemptions = pa.StructArray.from_arrays(
            [pa.array(codes[members].tolist(), pa.string()), pa.array(issues[carved].tolist(), pa.string())],
            fields=list(CARVE_OUT))
        columns["carve_outs"] = _lists(rows, exemptions, count)
        columns["n_carve_outs"] = np.bincount(rows, minlength=count).astype(np.int32)
        schema = results_schema(p.issues, p.choices, tuple(np.array(p.codes)[p.minded]))
        return pa.table({name: columns[name] for name in schema.names}, schema=schema)

    def _option(self, issue: int, option: int) -> str | None:
        """The option id a contract on agenda issue `issue` fixed (None on a level issue)."""
        return None if issue < self.p.k else self.p.options[issue - self.p.k][option]

    def outcome(self, row: int = 0) -> Outcome:
        """Replication `row`'s outcome as Python values (the Mesa model's `outcome`)."""
        p = self.p
        rows, members, sold, rounds, levels, options, amounts = self._sales()
        mine = rows == row
        agenda = p.issues + p.choices
        return Outcome(
            consensus=bool(self.consensus[row]),
            kind=str(outcome_kind(self.consensus[row], self._declared()[row].any())),
            agreement_round=int(self.agreement_round[row]) or None,
            summit_session=int(self.summit_session[row]) or None,
            rounds_played=int(self.rounds_played[row]),
            agreed=dict(zip(agenda, map(bool, self.agreed[row]))),
            levels=dict(zip(p.issues, map(float, self.levels[row]))),
            options={choice: p.options[c][self.options[row, c]] for c, choice in enumerate(p.choices)},
            satisfied=dict(zip(np.array(p.codes)[p.minded].tolist(), map(bool, self.satisfied()[row]))),
            holdouts=[p.codes[i] for i in np.nonzero(self.holdouts[row])[0]],
            side_payments=[SidePayment(p.codes[m], agenda[k], int(t), None if k >= p.k else float(y),
                                       self._option(k, o), float(a))
                           for m, k, t, y, o, a in zip(members[mine], sold[mine], rounds[mine], levels[mine],
                                                       options[mine], amounts[mine])],
            carve_outs=[CarveOut(p.codes[m], p.issues[k]) for m, k in zip(*np.nonzero(self.carved[row]))])


def _lists(rows: np.ndarray, values: pa.Array, count: int) -> pa.ListArray:
    """A list column from (row, value) pairs sorted by row."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=count))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def flat_for_csv(table: pa.Table) -> pa.Table:
    """The table with its list columns as space-separated text (CSV has no lists): holdouts as
    `HUN TUR`, side payments as `TUR:sweden@7=47.5/6.2` (member:issue@round=level/amount; on a choice
    issue the option in place of the level),
    carve-outs as `HUN:ukraine` (member:issue)."""
    for name in LISTS:
        column = table[name].combine_chunks()
        items = column.flatten()
        if pa.types.is_struct(items.type):
            text = pc.binary_join_element_wise(items.field("member"), items.field("issue"), ":")
            if name == "side_payments":
                at = pc.binary_join_element_wise(text, pc.cast(items.field("round"), pa.string()), "@")
                level = pc.coalesce(items.field("option"), pc.cast(pc.round(items.field("level"), 1), pa.string()))
                amount = pc.cast(pc.round(items.field("amount"), 2), pa.string())
                text = pc.binary_join_element_wise(at, pc.binary_join_element_wise(level, amount, "/"), "=")
            items = text
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
