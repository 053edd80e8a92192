"""Kill and resume: a job SIGKILLed as a whole process group at exact points of its output, then
resumed with the same command, ends with the same rows as an uninterrupted run (0 lost, 0
duplicated, 0 differing), no temp file left, no traceback. And what a results folder may hold
besides a clean run: foreign, truncated, empty and stray part files (reported, moved aside to
parts/rejected/, never deleted, their chunks run again), the user's own files (--fresh leaves
them), a folder by another version (refused).

No timers and no polling: the kill comes from a hook inside the child (tests/kill_hooks.py), right
after its k-th part file is renamed into place, or right after the temp file of the final table
(replications.parquet, points.parquet) is written and before its rename. The child is a process
group of its own (`start_new_session=True`, or a `setsid()` child of the kill_hooks zygote, which
saves an interpreter start-up per kill); the whole group (the command and its pool workers) dies.

Each job kind is killed several times in a row on one folder, each kill by the resumed command
(the kills add exactly k parts each), then resumed to the end:
  the main job   tiny, 400 runs in 16 chunks, 2 workers: after part 1, 2, 5, then in the final write
  a sweep        tiny-sweep (9 points x 60), 14 chunks: after part 1, 2, 5, then in the final write
  sequential stopping  a 4-point sweep of tiny to a half-width of 0.038, 3 stages: 6 kills, each after part 1
  shards         tiny-sweep --shard 0/2 and 1/2 into one folder: each killed after part 1, resumed

Resumes and uninterrupted reference runs run in process (`cli`) with the figures stubbed out
(seconds of drawing that no table depends on); the killed runs are real processes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.experiments.store import model_version
from model.outputs.files import HOST

from .conftest import REPO, TINY, cli
from .kill_hooks import KILLED, Zygote, killed_process, survivors

TINY_SWEEP = TINY.parent / "tiny-sweep.yaml"
MAIN = [str(TINY), "--runs", "400", "--chunk-size", "25", "--workers", "2", "--seed", "5", "--quiet"]  # 16 parts
MAIN_PARTS = 16
SWEEP = ["sweep", str(TINY_SWEEP), "--seed", "5", "--chunk-size", "40", "--workers", "2", "--quiet"]  # 540 runs, 14 parts
SWEEP_PARTS = 14
SEQUENTIAL = ["sweep", str(TINY), "--sweep", "protocol.acceptance_noise=2:8:4", "--runs", "2000",
              "--target-halfwidth", "0.028", "--seed", "6", "--chunk-size", "100", "--workers", "2", "--quiet"]
# With this seed, points 0-2 stop after their first 100 runs (half-width 0.019); point 3 (noise 8,
# P ~ 0.96) has a half-width of 0.041 at 100 runs, 0.031 at 200, 0.025 at 300 and 0.022 at 400, so
# it runs stages [0, 100), [100, 200) and [200, 400): 4 + 1 + 2 = 7 parts (run id = point * 2000 +
# replication). The 6th kill leaves one chunk of the last stage on disk: a resume that judged the
# stage-1 decision on everything on disk (300 runs: 0.025 < 0.028) instead of the stage-0 runs
# would stop point 3 early and lose rows.

TALLY: Counter = Counter()  # kills, rows compared / lost / duplicated / differing


# ---------------------------------------------------------------- helpers
def quick(*args: str):
    """`cli(*args)` in process, figures stubbed out."""
    with mock.patch("model.experiments.runner.save_figures", lambda *a, **k: []), \
            mock.patch("model.experiments.sweep.save_sweep_figures", lambda *a, **k: []):
        return cli(*args)


def assert_ran(ran, what: str = "") -> None:
    """Exit 0, no traceback, and no part rejected (a kill never leaves a damaged part behind)."""
    text = ran.stdout + ran.stderr
    assert ran.returncode == 0, (what, ran.returncode, ran.stderr[-3000:])
    assert "Traceback" not in text, (what, text[-3000:])
    assert "warning:" not in ran.stderr, (what, ran.stderr[-3000:])


def assert_killed(done, what: str) -> None:
    """Killed by the hook (SIGKILL), the whole group with it: no worker of its pool lives on."""
    assert done.returncode == KILLED, (what, done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stdout + done.stderr, (what, done.stderr[-3000:])
    assert done.group and not survivors(done.group), (what, survivors(done.group))
    TALLY["kills"] += 1


def part_files(out: Path) -> list[Path]:
    return sorted((out / "parts").glob("part-*.parquet"))


def temp_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob(".*.tmp"))


def all_part_rows(out: Path) -> pa.Table:
    """Every row of every part file, sorted by run id (what a sweep's tables are computed from)."""
    tables = [pq.read_table(path) for path in part_files(out)]
    return pa.concat_tables([t.replace_schema_metadata(None) for t in tables], promote_options="default").sort_by("run_id")


def row_differences(reference: pa.Table, got: pa.Table, key: str, what: str) -> tuple[int, int, int]:
    """(lost, duplicated, differing) rows of `got` against `reference`, matched by `key`; tallied."""
    assert reference.schema.remove_metadata().equals(got.schema.remove_metadata()), (what, reference.schema, got.schema)
    ref = {row[key]: repr(row) for row in reference.to_pylist()}
    assert len(ref) == reference.num_rows, f"{what}: the reference repeats a {key}"
    rows = got.to_pylist()
    seen = Counter(row[key] for row in rows)
    lost = len(set(ref) - set(seen))
    duplicated = sum(n - 1 for n in seen.values())
    differing = sum(1 for row in rows if repr(row) != ref.get(row[key]))  # also rows the reference lacks
    for name, n in (("rows compared", reference.num_rows), ("rows lost", lost), ("rows duplicated", duplicated),
                    ("rows differing", differing)):
        TALLY[name] += n
    return lost, duplicated, differing


def assert_same_rows(reference: pa.Table, got: pa.Table, key: str, what: str) -> None:
    assert row_differences(reference, got, key, what) == (0, 0, 0), what
    assert got.num_rows == reference.num_rows


def assert_same_sweep(reference: Path, out: Path, what: str) -> None:
    """The same runs (all part rows, by run id), the same per-point table, the same chunk plan, no temp files."""
    assert_same_rows(all_part_rows(reference), all_part_rows(out), "run_id", f"{what}: part rows")
    assert_same_rows(pq.read_table(reference / "points.parquet"), pq.read_table(out / "points.parquet"), "point",
                     f"{what}: points.parquet")
    assert [p.name for p in part_files(out)] == [p.name for p in part_files(reference)], what
    assert not temp_files(out), (what, temp_files(out))
    assert json.loads((out / "manifest.json").read_text())["completed"], what


@pytest.fixture(scope="module", autouse=True)
def tally(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and TALLY:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(
                f"\ntest_resume tally: {TALLY['kills']} kills (SIGKILL of the process group); "
                f"{TALLY['rows compared']} reference rows compared: {TALLY['rows lost']} lost, "
                f"{TALLY['rows duplicated']} duplicated, {TALLY['rows differing']} differing; "
                f"{TALLY['parts rejected']} damaged/foreign parts rejected and kept")


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    z = Zygote(REPO, tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted runs of each command, each into a folder of its own."""
    root = tmp_path_factory.mktemp("reference")
    folders = {}
    assert MAIN[-5:] == ["--workers", "2", "--seed", "5", "--quiet"]
    for name, args in (("main", MAIN), ("sweep", SWEEP), ("sequential", SEQUENTIAL),
                       ("main, seed 6", [*MAIN[:-5], "--workers", "1", "--seed", "6", "--quiet"])):
        folders[name] = root / name.replace(", ", "-").replace(" ", "-")
        assert_ran(quick(*args, "--out", str(folders[name])), f"reference {name}")
    assert len(part_files(folders["main"])) == MAIN_PARTS and len(part_files(folders["sweep"])) == SWEEP_PARTS
    return folders


# ---------------------------------------------------------------- kills
def test_main_job_killed_after_parts_1_2_5_and_in_the_final_write_resumes_to_the_same_table(
        zygote, references, tmp_path):
    out = tmp_path / "run"
    args = [*MAIN, "--out", str(out)]
    on_disk = 0
    for k, how in ((1, "process"), (2, "zygote"), (5, "zygote")):
        done = killed_process(args, REPO, after_part=k) if how == "process" else zygote.run(args, after_part=k)
        assert_killed(done, f"main job, kill after part {k}")
        on_disk += k
        assert len(part_files(out)) == on_disk, (k, [p.name for p in part_files(out)])
        assert not (out / "replications.parquet").exists()
    done = killed_process(args, REPO, before_rename="replications.parquet")
    assert_killed(done, "main job, kill in the final write")
    assert len(part_files(out)) == MAIN_PARTS and not (out / "replications.parquet").exists()
    assert [p.name.split(".")[1] for p in temp_files(out)] == ["replications"], temp_files(out)  # written, not renamed

    resumed = quick(*args, "--out", str(out))
    assert_ran(resumed, "main job resume")
    assert_same_rows(pq.read_table(references["main"] / "replications.parquet"),
                     pq.read_table(out / "replications.parquet"), "replication", "main job")
    assert not temp_files(out), temp_files(out)
    assert json.loads((out / "manifest.json").read_text())["completed"]


def test_sweep_killed_after_parts_1_2_5_and_in_the_final_write_resumes_to_the_same_tables(
        zygote, references, tmp_path):
    out = tmp_path / "sweep"
    args = [*SWEEP, "--out", str(out)]
    on_disk = 0
    for k in (1, 2, 5):
        assert_killed(zygote.run(args, after_part=k), f"sweep, kill after part {k}")
        on_disk += k
        assert len(part_files(out)) == on_disk, (k, [p.name for p in part_files(out)])
    assert_killed(zygote.run(args, before_rename="points.parquet"), "sweep, kill in the final write")
    assert len(part_files(out)) == SWEEP_PARTS and not (out / "points.parquet").exists()
    assert [p.name.split(".")[1] for p in temp_files(out)] == ["points"], temp_files(out)

    assert_ran(quick(*args, "--out", str(out)), "sweep resume")
    assert_same_sweep(references["sweep"], out, "sweep")


def test_sequential_stopping_survives_six_kills_in_a_row(zygote, references, tmp_path):
    """Each attempt is killed right after its first part (the stopping decisions of a resumed
    folder must be those of an uninterrupted run, stage after stage)."""
    out = tmp_path / "sequential"
    args = [*SEQUENTIAL, "--out", str(out)]
    for attempt in range(1, 7):
        assert_killed(zygote.run(args, after_part=1), f"sequential stopping, kill {attempt}")
        assert len(part_files(out)) == attempt
    keys = {int(p.stem.split("-")[1]) for p in part_files(out)}
    assert keys == {0, 2000, 4000, 6000, 6100} | (keys & {6200, 6300}) and keys & {6200, 6300}, sorted(keys)
    assert len(part_files(references["sequential"])) == 7  # the kills left the last stage's second chunk to do

    assert_ran(quick(*args, "--out", str(out)), "sequential stopping resume")
    assert_same_sweep(references["sequential"], out, "sequential stopping")


def test_two_shards_each_killed_once_and_resumed_give_the_unsharded_tables(zygote, references, tmp_path):
    out = tmp_path / "shared"
    parts = 0
    for shard in ("0/2", "1/2"):
        args = [*SWEEP, "--shard", shard, "--out", str(out)]
        assert_killed(zygote.run(args, after_part=1), f"shard {shard}, kill after part 1")
        assert len(part_files(out)) == parts + 1
        resumed = quick(*args)
        assert_ran(resumed, f"shard {shard} resume")
        parts = len(part_files(out))
    assert parts == SWEEP_PARTS
    assert_same_sweep(references["sweep"], out, "shards")


# ---------------------------------------------------------------- foreign, truncated, empty, stray parts
@pytest.fixture
def finished(references, tmp_path) -> Path:
    """A copy of the finished main job's folder."""
    out = tmp_path / "finished"
    shutil.copytree(references["main"], out)
    return out


def damage_foreign(out: Path, references: dict[str, Path]) -> Path:
    target = out / "parts" / "part-000000000050.parquet"
    shutil.copyfile(references["main, seed 6"] / "parts" / target.name, target)  # the same chunk, another seed
    return target


def damage_truncated(out: Path, references) -> Path:
    target = out / "parts" / "part-000000000075.parquet"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def damage_empty(out: Path, references) -> Path:
    target = out / "parts" / "part-000000000100.parquet"
    target.write_bytes(b"")
    return target


def damage_stray(out: Path, references) -> Path:
    target = out / "parts" / "part-000000000007.parquet"  # no chunk of this run starts at 7
    shutil.copyfile(out / "parts" / "part-000000000025.parquet", target)
    return target


def damage_misnamed(out: Path, references) -> Path:
    target = out / "parts" / "part-000000000125.parquet"
    shutil.copyfile(out / "parts" / "part-000000000150.parquet", target)  # right run, wrong chunk
    return target


DAMAGES = {"a part of another run (other seed)": (damage_foreign, "another run"),
           "a part truncated to half": (damage_truncated, "unreadable"),
           "a part of zero bytes": (damage_empty, "empty"),
           "a part of no chunk of the plan": (damage_stray, "not a chunk of this run"),
           "a part holding another chunk": (damage_misnamed, "expected 25 for chunk 125")}


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_bad_part_is_reported_moved_aside_and_its_chunk_run_again(kind, finished, references):
    damage, problem = DAMAGES[kind]
    target = damage(finished, references)
    bad_bytes = target.read_bytes()
    ran = quick(*MAIN, "--out", str(finished))
    assert ran.returncode == 0 and "Traceback" not in ran.stdout + ran.stderr, ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, ran.stderr  # one line, naming the file and what is wrong
    assert warnings[0].startswith("warning:") and str(target) in warnings[0] and problem in warnings[0], warnings
    assert "parts/rejected/" in warnings[0] and len(warnings[0]) <= 400, warnings
    kept = list((finished / "parts" / "rejected").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith(target.name) and kept[0].read_bytes() == bad_bytes, kept
    TALLY["parts rejected"] += 1
    assert [p.name for p in part_files(finished)] == [p.name for p in part_files(references["main"])]
    assert_same_rows(pq.read_table(references["main"] / "replications.parquet"),
                     pq.read_table(finished / "replications.parquet"), "replication", kind)
    assert not temp_files(finished)


def test_all_damages_at_once_are_each_reported_once_and_the_table_is_whole(finished, references):
    targets = [damage(finished, references) for damage, _ in DAMAGES.values()]
    ran = quick(*MAIN, "--out", str(finished))
    assert ran.returncode == 0 and "Traceback" not in ran.stdout + ran.stderr, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == len(targets) and all(line.startswith("warning:") for line in lines), ran.stderr
    for target in targets:
        assert sum(str(target) in line for line in lines) == 1, (target, lines)
    assert len(list((finished / "parts" / "rejected").iterdir())) == len(targets)
    TALLY["parts rejected"] += len(targets)
    assert_same_rows(pq.read_table(references["main"] / "replications.parquet"),
                     pq.read_table(finished / "replications.parquet"), "replication", "all damages")


# ---------------------------------------------------------------- --fresh and the user's files
def test_fresh_replaces_the_tools_files_and_leaves_the_users_untouched(finished, references):
    user_files = {"figures/my-thesis-figure.png": b"\x89PNG my figure", "parts/my-notes.txt": b"chunk 3 looked odd\n",
                  "design.xlsx": b"PK my design", "notes.md": b"# my notes\n", "parts/rejected/keep.txt": b"mine\n"}
    for name, data in user_files.items():
        (finished / name).parent.mkdir(parents=True, exist_ok=True)
        (finished / name).write_bytes(data)
    # the tool's own files, made recognisable: each must be replaced (or removed) by --fresh
    manifest = json.loads((finished / "manifest.json").read_text())
    (finished / "manifest.json").write_text(json.dumps(manifest | {"marker": "old"}))
    (finished / "replications.csv").write_text("marker\n")
    (finished / "summary.json").write_text('{"marker": "old"}')
    (finished / "figures" / "levels.png").write_bytes(b"marker")
    shutil.copyfile(references["main, seed 6"] / "parts" / "part-000000000000.parquet",
                    finished / "parts" / "part-000000000000.parquet")  # another run's part: deleted, not rejected
    (finished / "parts" / "part-000000000007.parquet").write_bytes(b"stale part of an older chunking")
    stale_temp = finished / f".replications.parquet.{HOST}.999999.0badc0de.tmp"
    stale_temp.write_bytes(b"half a table")

    ran = cli(*MAIN, "--out", str(finished), "--fresh")  # with the real figures
    assert ran.returncode == 0 and "Traceback" not in ran.stdout + ran.stderr, ran.stderr
    assert "warning:" not in ran.stderr, ran.stderr  # --fresh deletes the tool's parts: nothing to reject
    for name, data in user_files.items():
        assert (finished / name).read_bytes() == data, name
    assert "marker" not in json.loads((finished / "manifest.json").read_text())
    assert "marker" not in (finished / "replications.csv").read_text()
    assert (finished / "replications.csv").read_bytes() == (references["main"] / "replications.csv").read_bytes()
    assert "marker" not in json.loads((finished / "summary.json").read_text())
    assert (finished / "figures" / "levels.png").read_bytes()[:4] == b"\x89PNG"
    assert not (finished / "parts" / "part-000000000007.parquet").exists() and not stale_temp.exists()
    assert [p.name for p in (finished / "parts" / "rejected").iterdir()] == ["keep.txt"]
    assert [p.name for p in part_files(finished)] == [p.name for p in part_files(references["main"])]
    assert_same_rows(pq.read_table(references["main"] / "replications.parquet"),
                     pq.read_table(finished / "replications.parquet"), "replication", "--fresh")


# ---------------------------------------------------------------- another version's folder
@pytest.mark.parametrize("rehash", [pytest.param(False, id="version edited, nothing recomputed"),
                                    pytest.param(True, id="version edited, spec_hash recomputed")])
def test_a_folder_written_by_another_version_is_refused_naming_both_versions(finished, rehash):
    from model.experiments.store import spec_hash

    manifest = json.loads((finished / "manifest.json").read_text())
    manifest["spec"]["version"] = "0.1.0 (scenario format 1)"
    if rehash:  # as the other version would have written it
        manifest["spec_hash"] = spec_hash(manifest["spec"])
    (finished / "manifest.json").write_text(json.dumps(manifest, indent=2))
    before = {str(p.relative_to(finished)): p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    ran = quick(*MAIN, "--out", str(finished))
    assert ran.returncode == 2, (ran.returncode, ran.stderr)
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in ran.stdout + ran.stderr, ran.stderr
    assert "0.1.0 (scenario format 1)" in ran.stderr and model_version() in ran.stderr, ran.stderr
    assert str(finished) in ran.stderr and "--fresh" in ran.stderr, ran.stderr
    after = {str(p.relative_to(finished)): p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    assert after == before  # nothing touched
