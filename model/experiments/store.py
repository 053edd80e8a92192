"""The output folder: manifest first, one Parquet part per finished chunk, resume by what is on disk.

    results/<scenario>/
      manifest.json          what was run, by what, with which seed (written before any run)
      scenario.yaml          the fully resolved scenario
      parts/part-*.parquet   one file per finished chunk, each written to a temp file then renamed
      replications.parquet   all rows, sorted by replication (and replications.csv)
      summary.json, figures/

Rerunning the same command resumes: chunks whose part exists are skipped. Each part carries the
run's spec hash, its chunk key and its row count in its Parquet metadata (and page checksums); a
part that is foreign, truncated, empty or damaged is reported in one line, moved to
parts/rejected/ (never deleted) and its chunk runs again. A folder holding a different run, or
one written by another version of the model, is refused (unless --fresh, which deletes exactly
the files the tool writes and nothing else).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from model.negotiation.results import flat_for_csv
from model.outputs.files import FIGURES, HOST, SWEEP_FIGURES, atomic_write, temp_name, write_json
from model.scenario.schema import SCHEMA_VERSION, ScenarioError

PACKAGES = ("mesa", "numpy", "scipy", "pandas", "pyarrow", "pydantic", "statsmodels", "matplotlib")

# exactly what runs write in their folder: --fresh deletes these and nothing else
TABLES = ("replications", "design", "points", "differences", "sensitivity", "persuasion", "failures",
          "validation", "validation-cases")
OUTPUT_FILES = ("manifest.json", "scenario.yaml", "summary.json",
                *(f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")))
FIGURE_FILES = tuple(f"{stem}.{ext}" for stem in (*FIGURES, *SWEEP_FIGURES) for ext in ("png", "svg"))
PART = re.compile(r"part-(\d{12})\.parquet")
TEMP = re.compile(r"\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")  # outputs.files.temp_name
STALE_TEMP_SECONDS = 600  # another host's temp file this old belongs to a dead process (chunks take a second)
META = "vilnius."  # prefix of the keys a part file carries in its Parquet metadata


def part_key(path: Path) -> int | None:
    """The chunk key a part file's name gives (`part-<12 digits>.parquet`), None for another name."""
    match = PART.fullmatch(path.name)
    return int(match[1]) if match else None


def model_version() -> str:
    """The rules' version a folder is written with: the package version and the scenario format."""
    try:
        package = metadata.version("vilnius-consensus")
    except metadata.PackageNotFoundError:
        package = "unknown"
    return f"{package} (scenario format {SCHEMA_VERSION})"


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class OutputFolder:
    """One run's output folder. `spec` identifies the run (scenario hash, seed, replications, engine)."""

    def __init__(self, root: Path, report: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.rejected = self.parts / "rejected"
        self.manifest_path = self.root / "manifest.json"
        self.report = report or (lambda line: print(line, file=sys.stderr))
        self.spec_hash: str | None = None  # set by `prepare`: what every part of this run carries

    def existing_manifest(self) -> dict | None:
        """The manifest in the folder, None if there is none; a damaged one is a ScenarioError."""
        path = self.manifest_path
        if not path.exists():
            return None
        fix = "use --fresh to start over, or --out to write elsewhere."
        if not path.is_file():
            raise ScenarioError(f"{path}: is not a file (a folder?), so this is not a results folder; {fix}")
        try:
            manifest = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ScenarioError(f"{path}: not valid JSON (a damaged folder); {fix}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("spec"), dict):
            raise ScenarioError(f"{path}: not a manifest this tool wrote (no spec); {fix}")
        return manifest

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
            self.spec_hash = old["spec_hash"]
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
        self.spec_hash = manifest["spec_hash"]
        return manifest

    def check_same(self, old: dict, spec: dict) -> None:
        """Refuse a folder that holds another run, or one by another version, naming what differs."""
        if old.get("spec") == spec and old.get("spec_hash") == spec_hash(spec):
            return
        before = old.get("spec") or {}
        if before.get("version") != spec.get("version"):
            raise ScenarioError(f"{self.root}: written by another version of the model "
                                f"({before.get('version') or 'an earlier one'}; this is {spec.get('version')}), so it "
                                "cannot be resumed. Use --fresh to replace it, or --out to write elsewhere.")
        differ = [f"{key} {before.get(key)!r} -> {spec.get(key)!r}" for key in sorted({*before, *spec})
                  if before.get(key) != spec.get(key)]
        raise ScenarioError(f"{self.root}: this folder holds a different run ({'; '.join(differ) or 'other spec'}). "
                            "Use --fresh to replace it, or --out to write elsewhere.")

    def _clear(self) -> None:
        """--fresh: delete exactly the files runs write here (tables, manifest, part files, figures,
        their temp files), never a file of another name; folders only if that leaves them empty."""
        figures = self.root / "figures"
        ours = [self.root / name for name in OUTPUT_FILES] + [figures / name for name in FIGURE_FILES]
        if self.parts.is_dir():
            ours += [p for p in self.parts.iterdir() if PART.fullmatch(p.name)]
        for folder in (self.root, self.parts, figures):
            if folder.is_dir():
                ours += [p for p in folder.iterdir() if (m := TEMP.fullmatch(p.name))
                         and (m["name"] in OUTPUT_FILES or m["name"] in FIGURE_FILES or PART.fullmatch(m["name"]))]
        for path in ours:
            if path.is_file():
                path.unlink()
        for folder in (self.parts, figures):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty

    def _remove_stale_temps(self) -> None:
        """Temp files of killed processes: at once where the writer was a process of this host that
        is gone; after STALE_TEMP_SECONDS otherwise (a shard on another host may still be writing)."""
        now = time.time()
        for folder in (self.root, self.parts, self.root / "figures"):
            for path in folder.glob(".*.tmp") if folder.is_dir() else ():
                match = TEMP.fullmatch(path.name)
                if not match:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    gone = match["host"] == HOST and not _alive(int(match["pid"]))
                    if gone or now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                        path.unlink()

    def part_path(self, key: int) -> Path:
        return self.parts / f"part-{key:012d}.parquet"

    def done_chunks(self, expected: dict[int, int]) -> set[int]:
        """The chunks of `expected` (key -> rows) whose part file is on disk and belongs to this run
        (its spec hash, key and row count, readable with its checksums). Any other part of one of
        these keys is reported, moved to parts/rejected/ and left to be run again; parts of other
        keys are not looked at (`reject_others` deals with those)."""
        done = set()
        for path in self.parts.glob("part-*.parquet"):
            key = part_key(path)
            if key not in expected:
                continue
            problem = self._part_problem(path, key, expected[key])
            if problem:
                self._reject(path, problem)
            else:
                done.add(key)
        return done

    def reject_others(self, keys: set[int]) -> None:
        """Move aside every part file whose key is none of `keys` (the run's whole plan)."""
        for path in self.parts.glob("part-*.parquet"):
            if part_key(path) not in keys:
                self._reject(path, "not a chunk of this run (another chunking or range)")

    def _part_problem(self, path: Path, key: int, rows: int) -> str | None:
        """Why the part at `path` is not chunk `key` of this run, or None if it is."""
        try:
            table = pq.read_table(path, page_checksum_verification=True)
        except (OSError, pa.ArrowException) as exc:
            return f"unreadable ({'empty' if path.stat().st_size == 0 else str(exc).splitlines()[0][:80]})"
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k.startswith(b"vilnius.")}
        if meta.get(META + "spec_hash") != self.spec_hash:
            return f"from another run (spec {meta.get(META + 'spec_hash')}, this run {self.spec_hash})"
        if meta.get(META + "key") != str(key) or table.num_rows != rows or meta.get(META + "rows") != str(rows):
            return f"holds {table.num_rows} rows for chunk {meta.get(META + 'key')}, expected {rows} for chunk {key}"
        return None

    def _reject(self, path: Path, problem: str) -> None:
        self.rejected.mkdir(parents=True, exist_ok=True)
        target = self.rejected / f"{path.name}.{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
        os.replace(path, target)
        self.report(f"warning: {path}: {problem}; moved to {target.relative_to(self.root)}, its chunk runs again")

    def write_part(self, key: int, table: pa.Table) -> None:
        """Chunk `key`'s rows, tagged with this run's spec hash, the key and the row count."""
        tags = {META + "spec_hash": self.spec_hash, META + "key": str(key), META + "rows": str(table.num_rows)}
        tagged = table.replace_schema_metadata({**(table.schema.metadata or {}), **tags})
        atomic_write(self.part_path(key), lambda tmp: pq.write_table(tagged, tmp, write_page_checksum=True))

    def combined(self, schema: pa.Schema) -> pa.Table:
        """All part files as one table, in replication order (part names sort in that order)."""
        files = sorted(self.parts.glob("part-*.parquet"))
        table = pa.concat_tables([pq.read_table(f, schema=schema) for f in files]) if files else schema.empty_table()
        replication = table["replication"].to_numpy()
        if (replication[1:] <= replication[:-1]).any():  # parts from chunks of different sizes
            table = table.sort_by("replication")
        return table

    def read_runs(self, wanted=None, keys: set[int] | None = None) -> pa.Table:
        """The runs in the part files (those of chunks `keys`, or all), with the columns
        `wanted(name, type)` accepts (and run_id), sorted by run id: what a sweep's summary reads."""
        tables = []
        for path in sorted(self.parts.glob("part-*.parquet")):
            if keys is not None and part_key(path) not in keys:
                continue
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
