"""The output folder: manifest first, one Parquet part per finished chunk, resume by what is on disk.

    results/<scenario>/
      manifest.json          what was run, by what, with which seed (written before any run)
      scenario.yaml          the fully resolved scenario
      parts/part-*.parquet   one file per finished chunk, each written to a temp file then renamed
      replications.parquet   all rows, sorted by replication (and replications.csv)
      summary.json, figures/

Rerunning the same command resumes: chunks whose part exists are skipped. A folder holding a
different run is refused (unless --fresh), so two specs are never mixed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from model.negotiation.results import flat_for_csv
from model.outputs.files import atomic_write, temp_name, write_json
from model.scenario.schema import ScenarioError

PACKAGES = ("mesa", "numpy", "scipy", "pandas", "pyarrow", "pydantic", "statsmodels", "matplotlib")


# what a run writes at the top of its folder: --fresh deletes exactly these (and parts/, figures/)
OUTPUT_FILES = ("manifest.json", "scenario.yaml", "summary.json", "replications.*", "design.*", "points.*",
                "differences.*", "sensitivity.*", "persuasion.*", "failures.*")
STALE_TEMP_SECONDS = 600  # a temp file this old belongs to a dead process (chunks take about a second)


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class OutputFolder:
    """One run's output folder. `spec` identifies the run (scenario hash, seed, replications, engine)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.manifest_path = self.root / "manifest.json"

    def existing_manifest(self) -> dict | None:
        if not self.manifest_path.is_file():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError:
            raise ScenarioError(f"{self.manifest_path}: not valid JSON (a damaged folder); use --fresh to start "
                                "over, or --out to write elsewhere.") from None

    def prepare(self, spec: dict, manifest: dict | Callable[[], dict], fresh: bool) -> dict:
        """Create or reopen the folder; returns the manifest in force (an existing one on resume).

        `manifest` may be a function, called only when a new manifest is made (after the folder
        is checked and created): a sweep writes its design and times its pilot there. The
        manifest is created exclusively (a hard link of a finished temp file), so shards of one
        sweep starting together agree on one manifest, whichever wrote it."""
        if fresh:
            self._clear()
        old = self.existing_manifest()
        if old:
            self.check_same(old, spec)
        self.parts.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()
        if old:
            return old
        facts = manifest() if callable(manifest) else manifest
        manifest = {"spec": spec, "spec_hash": spec_hash(spec), **facts, "created": utc_now(), "completed": None}
        tmp = temp_name(self.manifest_path)
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        try:
            os.link(tmp, self.manifest_path)
        except FileExistsError:  # another shard was first: use its manifest
            manifest = self.existing_manifest()
            self.check_same(manifest, spec)
        finally:
            tmp.unlink()
        return manifest

    def check_same(self, old: dict, spec: dict) -> None:
        """Refuse a folder that holds another run, naming what differs."""
        if old.get("spec_hash") == spec_hash(spec):
            return
        before = old.get("spec") or {}
        differ = [f"{key} {before.get(key)!r} -> {spec.get(key)!r}" for key in sorted({*before, *spec})
                  if before.get(key) != spec.get(key)]
        raise ScenarioError(f"{self.root}: this folder holds a different run ({'; '.join(differ) or 'other spec'}). "
                            "Use --fresh to replace it, or --out to write elsewhere.")

    def _clear(self) -> None:
        """--fresh: delete what runs write here (parts, figures, tables, manifest), nothing else."""
        for child in ("parts", "figures"):
            shutil.rmtree(self.root / child, ignore_errors=True)
        for pattern in OUTPUT_FILES:
            for path in self.root.glob(pattern):
                path.unlink(missing_ok=True)

    def _remove_stale_temps(self) -> None:
        """Temp files of killed processes; recent ones may belong to a shard still writing."""
        now = time.time()
        for stale in [*self.parts.glob(".*.tmp"), *self.root.glob(".*.tmp")]:
            with contextlib.suppress(FileNotFoundError):
                if now - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                    stale.unlink()

    def done_chunks(self) -> set[int]:
        """Key (first replication or run id) of every chunk whose part file is on disk."""
        return {int(p.stem.split("-")[1]) for p in self.parts.glob("part-*.parquet")}

    def write_part(self, key: int, table: pa.Table) -> None:
        atomic_write(self.parts / f"part-{key:012d}.parquet", lambda tmp: pq.write_table(table, tmp))

    def combined(self, schema: pa.Schema) -> pa.Table:
        """All part files as one table, in replication order (part names sort in that order)."""
        files = sorted(self.parts.glob("part-*.parquet"))
        table = pa.concat_tables([pq.read_table(f, schema=schema) for f in files]) if files else schema.empty_table()
        replication = table["replication"].to_numpy()
        if (replication[1:] <= replication[:-1]).any():  # parts from chunks of different sizes
            table = table.sort_by("replication")
        return table

    def read_runs(self, wanted=None) -> pa.Table:
        """The runs in all part files, with the columns `wanted(name, type)` accepts (and run_id),
        sorted by run id: what a sweep's summary reads."""
        tables = []
        for path in sorted(self.parts.glob("part-*.parquet")):
            schema = pq.read_schema(path)
            names = [f.name for f in schema if wanted is None or f.name == "run_id" or wanted(f.name, f.type)]
            tables.append(pq.read_table(path, columns=names))
        if not tables:
            return pa.table({"point": pa.array([], pa.int64()), "run_id": pa.array([], pa.int64())})
        return pa.concat_tables(tables, promote_options="default").sort_by("run_id")

    def finish(self, manifest: dict, table: pa.Table) -> None:
        """replications.parquet and .csv (lists as text), then mark the run complete."""
        atomic_write(self.root / "replications.parquet", lambda tmp: pq.write_table(table, tmp))
        atomic_write(self.root / "replications.csv", lambda tmp: pacsv.write_csv(flat_for_csv(table), tmp))
        write_json(self.manifest_path, manifest | {"completed": utc_now()})


def root_seed(scenario, out: Path, given: int | None = None, fresh: bool = False) -> tuple[int, str]:
    """(seed, source): `given` (--seed), else the scenario's run.seed, else the seed an interrupted
    run of this same scenario left in `out` (so the same command resumes), else fresh OS entropy
    (recorded in the manifest)."""
    from model.negotiation.seeds import fresh_seed

    if given is not None:
        return given, "--seed"
    if scenario.run.seed is not None:
        return scenario.run.seed, "scenario"
    old = None if fresh else OutputFolder(out).existing_manifest()
    if old and old.get("scenario", {}).get("content_hash") == scenario.spec_hash:
        return old["seed"]["root"], "entropy"
    return fresh_seed(), "entropy"


def environment() -> dict:
    """Package versions and interpreter, for the manifest."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
