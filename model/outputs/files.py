"""Files that outputs write: each through a temp file in the same folder and a rename, so a kill
never leaves half a file; tables as Parquet with a CSV twin."""

from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HOST = socket.gethostname().replace(".", "-")  # in temp file names, so no dots
# the stems of every figure the main job and validation (plots.py) and sweeps (sweep_plots.py) write:
# named here, beside the files, so that the output folder knows them without loading matplotlib
FIGURES = ("levels", "holdouts", "rounds", "trajectories", "options", "validation")
SWEEP_FIGURES = ("sweep-consensus", "sweep-heatmap", "sweep-sensitivity", "persuasion", "sweep-differences")


def temp_name(path: Path) -> Path:
    """A hidden temp file beside `path`, unique across hosts and processes sharing a file system:
    `.<name>.<host>.<pid>.<8 hex digits>.tmp`."""
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def atomic_write(path: Path, write) -> None:
    """Write via a temp file in the same folder and rename, so a kill never leaves half a file."""
    tmp = temp_name(path)
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_table(folder: Path, name: str, frame: pd.DataFrame) -> None:
    """`name`.parquet and `name`.csv in `folder`."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    atomic_write(folder / f"{name}.parquet", lambda tmp: pq.write_table(table, tmp))
    atomic_write(folder / f"{name}.csv", lambda tmp: pacsv.write_csv(table, tmp))
