"""Sweeps: designs, bad specs, identical results however the work is split, resume after kills,
failed runs recorded, sequential stopping, paired differences, who must be persuaded, SALib wiring.

Fault injection (kills, Ctrl-C, a dying worker) comes from tests/faults.py; production code has
no fault hooks."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from model.experiments.batch import WorkerLost
from model.experiments.job import Execution, Job, Output
from model.experiments.persuasion import persuasion_design
from model.experiments.store import OutputFolder
from model.experiments.sweep import chunk_plan, run_sweep
from model.negotiation.engines import run_chunk
from model.negotiation.results import sweep_part_schema, to_frame
from model.outputs.sweep_stats import paired_differences
from model.scenario.design import build_design
from model.scenario.files import base_raw, load_scenario, point_scenario
from model.scenario.schema import ScenarioError

from . import faults
from .conftest import DATA, REPO, TINY, cli

SWEEP = DATA / "tiny-sweep.yaml"
SERIAL_CHUNK = 50  # 540 runs -> 11 parts, the last of 40; chunks cross point boundaries (60 runs a point)
Z = norm.ppf(0.975)  # 1.96: normal 95 % intervals


@pytest.fixture(autouse=True)
def no_figures(request, monkeypatch):
    """Sweeps here skip their figures (3-4 s a sweep; tests/test_sweep_plots.py checks them), except
    the module's serial sweep (set up before this) and tests that ask for `real_figures`."""
    if "real_figures" not in request.fixturenames:
        monkeypatch.setattr("model.experiments.sweep.save_sweep_figures", lambda *args, **options: [])


@pytest.fixture
def real_figures():
    """Ask for it to have a sweep write its figures."""


def sweep_scenario(**sweep) -> object:
    """tiny.yaml with the given sweep block."""
    return load_scenario(TINY, sweep=sweep.pop("parameters"),
                         overrides=[f"sweep.{k}={json.dumps(v)}" for k, v in sweep.items()])


def sweep_into(scenario, seed: int, out, *, workers: int = 1, chunk_size: int | None = None, **options):
    """run_sweep of a scenario under a root seed into `out`, quietly."""
    return run_sweep(Job(scenario, seed), Output(out, quiet=True), Execution(workers, chunk_size=chunk_size),
                     **options)


def runs_of(out) -> pd.DataFrame:
    """All runs in a sweep folder, by run id (what 'the same result' means for a sweep)."""
    return to_frame(OutputFolder(out).read_runs()).sort_values("run_id", ignore_index=True)


def points_of(out) -> pd.DataFrame:
    return pd.read_parquet(out / "points.parquet")


def part_keys(out) -> set[int]:
    """The first run id of every chunk whose part file is on disk."""
    return {int(p.stem.split("-")[1]) for p in (out / "parts").glob("part-*.parquet")}


def test_grid_design_order_integer_rounding_and_counts():
    scenario = sweep_scenario(parameters={"protocol.rounds": {"low": 2, "high": 9, "levels": 3},
                                          "protocol.preparatory_cost_share": {"low": 0, "high": 1, "levels": 2}})
    design = build_design(scenario, 1)
    assert design.table["protocol.rounds"].tolist() == [2, 2, 6, 6, 9, 9]  # 5.5 rounds to 6 (half to even)
    assert design.table["protocol.preparatory_cost_share"].tolist() == [0, 1] * 3
    assert design.integer == {"protocol.rounds"} and isinstance(design.overrides[2]["protocol.rounds"], int)


@pytest.mark.parametrize(("path", "low", "high", "read"), [
    ("blocs.A.shift.ukraine", -10, 10, lambda s: s.blocs["A"].shift["ukraine"]),
    ("members.BBB.ideal.ukraine.mode", 55, 65, lambda s: s.members["BBB"].ideal["ukraine"].mode),
    ("member_defaults.failure_cost", 20, 40, lambda s: s.member_defaults.failure_cost),
    ("members.CCC.price.ukraine", 1, 3, lambda s: s.members["CCC"].price["ukraine"]),
    ("issues.spending.status_quo", 10, 30, lambda s: s.issues["spending"].status_quo),
])
def test_a_parameter_path_sets_that_value_at_each_point(path, low, high, read):
    scenario = sweep_scenario(parameters={path: {"low": low, "high": high, "levels": 3}})
    design = build_design(scenario, 1)
    assert [read(point_scenario(base_raw(scenario), o)) for o in design.overrides] == pytest.approx(
        design.table[path].tolist())


def test_lhs_sobol_and_morris_layouts():
    params = {"protocol.preparatory_cost_share": {"low": 0, "high": 1}, "member_defaults.anchoring": {"low": 0.2, "high": 0.8},
              "protocol.acceptance_noise": {"low": 0, "high": 4}}
    lhs = build_design(sweep_scenario(parameters=params, design="lhs", samples=20), 3).table
    bins = np.floor((lhs["protocol.acceptance_noise"] / 4) * 20).clip(0, 19)
    assert sorted(bins.astype(int)) == list(range(20))  # one point per stratum: a Latin hypercube
    assert len(build_design(sweep_scenario(parameters=params, design="sobol", samples=64), 3).table) == 64 * (3 + 2)
    sobol2 = sweep_scenario(parameters=params, design="sobol", samples=16, second_order=True)
    assert len(build_design(sobol2, 3).table) == 16 * (2 * 3 + 2)
    morris = build_design(sweep_scenario(parameters=params, design="morris", samples=10), 3).table
    assert len(morris) == 10 * (3 + 1)
    again = build_design(sweep_scenario(parameters=params, design="lhs", samples=20), 3).table
    pd.testing.assert_frame_equal(lhs, again)  # the design is a function of the spec and the seed


@pytest.mark.parametrize(("sweep", "message"), [
    ({"parameters": {"protocol.roundz": {"low": 2, "high": 4, "levels": 2}}}, "roundz: unknown key"),
    ({"parameters": {"members.XXX.ideal.ukraine": {"low": 2, "high": 4, "levels": 2}}}, "unknown member 'XXX'"),
    ({"parameters": {"protocol.rounds": {"low": 9, "high": 4, "levels": 2}}}, "low (9.0) is above high (4.0)"),
    ({"parameters": {"members.AAA.ideal.spending": {"low": 50, "high": 150, "levels": 2}}},
     "sweep.parameters.members.AAA.ideal.spending = 150.0"),
    ({"parameters": {"protocol.rounds": {"low": 2, "high": 4}}}, "the grid design needs levels"),
    ({"parameters": {"protocol.rounds": {"low": 2, "high": 4}, "protocol.preparatory_cost_share": {"low": 0, "high": 1}},
      "design": "sobol", "samples": 100}, "needs a power of two, got 100; use 64 or 128"),
    ({"parameters": {"protocol.rounds": {"low": 2, "high": 4, "levels": 2}}, "replications": 0},
     "replications: Input should be greater than or equal to 1"),
    ({"parameters": {"run.seed": {"low": 1, "high": 9, "levels": 2}}}, "run is not a model input"),
    ({"parameters": {"protocol.fallback": {"low": 1, "high": 9, "levels": 2}}}, "not a number"),
    ({"parameters": {"protocol.rounds": {"low": float("nan"), "high": 9, "levels": 2}}}, "finite number"),
])
def test_bad_sweep_specs_name_the_key(sweep, message):
    with pytest.raises(ScenarioError) as err:
        build_design(sweep_scenario(**sweep), 1)
    assert message in str(err.value)


@pytest.mark.parametrize(("args", "message"), [
    (["sweep", str(TINY), "--sweep", "protocol.rounds=9:4:3"], "low (9.0) is above high (4.0)"),
    (["sweep", str(TINY), "--sweep", "protocol.nope=1:4:3"], "protocol.nope: unknown key"),
    (["sweep", str(TINY), "--sweep", "protocol.rounds=2:4", "--design", "sobol", "--samples", "12",
      "--sweep", "protocol.preparatory_cost_share=0:1"], "power of two"),
    (["sweep", str(TINY), "--sweep", "protocol.rounds=two:4:3"], "LOW and HIGH must be numbers"),
    (["sweep", str(TINY), "--sweep", "protocol.rounds=2:4:3", "--runs", "0"], "must be from 1 to"),
    (["sweep", str(TINY), "--shard", "0/2"], "no sweep: block in this scenario"),
    (["sweep", str(TINY), "--sweep", "protocol.rounds=2:4:3", "--set", "sweep.outcome=level_nope"],
     "sweep.outcome: unknown outcome"),
    (["sweep", str(TINY), "--sweep", "protocol.rounds=2:4:3", "--shard", "2/2"], "0 <= I < N"),
    (["sweep", str(SWEEP), "--target-halfwidth", "0.05", "--shard", "0/2", "--seed", "1"],
     "sequential stopping (target_halfwidth) cannot be split into shards"),
    (["sweep", str(SWEEP), "--fresh", "--shard", "0/2", "--seed", "1"], "--fresh with --shard"),
    ([str(SWEEP)], "run it with `python run.py sweep"),  # no subcommand: the main job refuses a sweep file
    ([str(TINY), "--sweep", "protocol.rounds=2:4:3"], "--sweep is now `python run.py sweep ...`"),
    (["persuade", str(TINY), "--distance", "0"], "must be from 0.01 to 100"),
])
def test_bad_sweep_flags_exit_2_with_one_message(args, message, tmp_path):
    done = cli(*args, "--out", str(tmp_path / "x"), "--quiet")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("error:") == 1, done.stderr  # one message
    assert not (tmp_path / "x" / "parts").exists() or not any((tmp_path / "x" / "parts").iterdir())


def test_without_a_seed_the_same_command_resumes_and_fresh_clears_the_old_sweep(tmp_path):
    out = tmp_path / "entropy"
    args = ["sweep", str(TINY), "--set", "run.seed=null", "--sweep", "protocol.acceptance_noise=0:2:3",
            "--runs", "40", "--chunk-size", "40", "--workers", "1", "--quiet", "--out", str(out)]
    with faults.parts_written(stop_after=1):  # Ctrl-C after the first of 3 chunks
        interrupted = cli(*args)
    assert interrupted.returncode == 130 and "run the same command again to resume" in interrupted.stderr
    first = json.loads((out / "manifest.json").read_text())
    assert first["seed"]["source"] == "entropy" and first["completed"] is None and part_keys(out) == {0}
    with faults.parts_written() as resumed:
        done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert resumed.keys == [40, 80]  # only the two missing chunks ran, under the seed drawn the first time
    assert json.loads((out / "summary.json").read_text())["seed"] == first["seed"]["root"]
    fixed = tmp_path / "fixed"
    assert cli(*args[:-1], str(fixed), "--seed", str(first["seed"]["root"])).returncode == 0
    pd.testing.assert_frame_equal(runs_of(fixed), runs_of(out))  # = an uninterrupted run under that seed
    assert "--shard needs a fixed seed" in cli(*args, "--shard", "0/2").stderr
    (out / "manifest.json").write_text("{not json")
    damaged = cli(*args)
    assert damaged.returncode == 2 and "not valid JSON" in damaged.stderr
    other = [a if a != "protocol.acceptance_noise=0:2:3" else "protocol.preparatory_cost_share=0:1:2" for a in args]
    assert cli(*other, "--fresh", "--seed", "3").returncode == 0
    assert "protocol.preparatory_cost_share" in (out / "differences.csv").read_text()
    assert not (out / "differences.csv").read_text().count("protocol.acceptance_noise")  # old tables gone
    assert part_keys(out) == {0, 40}  # two points of 40 runs: the three old parts were deleted


def test_a_folder_is_refused_by_sweep():
    folder = str(REPO / "scenarios" / "history")
    done = cli("sweep", folder, "--sweep", "protocol.rounds=2:4:2", "--quiet")
    assert done.returncode == 2 and "this is a folder" in done.stderr and "python run.py validate" in done.stderr


def test_chunk_plan_covers_every_run_once():
    plan = chunk_plan([0, 2, 5], 10, 17, 4)
    runs = [(s.point, r) for chunk in plan for s in chunk for r in range(s.first, s.first + s.count)]
    assert runs == [(p, r) for p in (0, 2, 5) for r in range(10, 17)]
    assert len(plan) == math.ceil(21 / 4) and [sum(s.count for s in c) for c in plan] == [4, 4, 4, 4, 4, 1]


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    scenario = load_scenario(SWEEP)
    out = tmp_path_factory.mktemp("serial") / "out"
    result = sweep_into(scenario, 5, out, chunk_size=SERIAL_CHUNK)
    return scenario, out, result


def test_sweep_point_equals_a_plain_run_of_that_scenario(serial_sweep):
    """Common random numbers: point p, replication r is exactly replication r of the point's scenario."""
    _, out, result = serial_sweep
    runs = runs_of(out)
    for point in (0, 4, 8):
        values = result.design.overrides[point]
        plain = load_scenario(SWEEP, [f"{path}={value}" for path, value in values.items()])
        expected = to_frame(run_chunk(plain, 5, 0, 60))
        got = runs[runs["point"] == point].drop(columns=["point", "run_id", "error"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(expected, got, check_dtype=False)


def test_sweep_outputs_and_points_table(serial_sweep):
    _, out, result = serial_sweep
    points = pd.read_parquet(out / "points.parquet")
    runs = runs_of(out)
    assert len(points) == 9 and (points["runs"] == 60).all() and (points["failed"] == 0).all()
    assert runs["run_id"].tolist() == [p * 60 + r for p in range(9) for r in range(60)]
    k = runs.groupby("point")["consensus"].sum()
    assert (points["consensus"] == k.to_numpy()).all()
    low, high = proportion_confint(k.to_numpy(), 60, alpha=0.05, method="wilson")
    np.testing.assert_allclose(points["p_consensus"], k.to_numpy() / 60)
    np.testing.assert_allclose(points["ci_low"], low, atol=1e-12)
    np.testing.assert_allclose(points["ci_high"], high, atol=1e-12)
    design = pd.read_parquet(out / "design.parquet")
    assert (design["seed"] == 5).all() and design["first_run_id"].tolist() == [60 * p for p in range(9)]
    assert design["protocol.acceptance_noise"].tolist() == [0.5] * 3 + [2.0] * 3 + [3.5] * 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["completed"] and manifest["design"]["points"] == 9
    assert manifest["chunk_size"] == SERIAL_CHUNK  # the size given is the size used...
    assert part_keys(out) == set(range(0, 540, SERIAL_CHUNK))  # ...ceil(540 / 50) = 11 parts, named by first run id
    assert len(part_keys(out)) == math.ceil(540 / SERIAL_CHUNK)
    assert pq.read_metadata(out / "parts" / "part-000000000500.parquet").num_rows == 40
    assert result.summary["runs"] == 540 and result.summary["failed_runs"] == 0
    assert {p.name for p in result.figures} == {f"sweep-{name}.{ext}" for name in ("consensus", "heatmap",
                                                                                    "differences")
                                                for ext in ("png", "svg")}


def test_paired_differences_of_a_known_matrix():
    """By hand: mean of the pairwise differences +- 1.96 sd / sqrt(n); a failed run (NaN) drops its pair."""
    matrix = np.array([[0.0, 1.0, 1.0, 0.0, 1.0],
                       [1.0, 1.0, 1.0, 0.0, 1.0],
                       [1.0, np.nan, 0.0, 1.0, 1.0]])
    table = paired_differences(matrix).set_index("point")
    # point 1: differences 1, 0, 0, 0, 0 -> mean 0.2, sd sqrt(0.2), 5 pairs
    assert table.loc[1, "pairs"] == 5 and table.loc[1, "difference"] == pytest.approx(0.2)
    assert table.loc[1, "se_paired"] == pytest.approx(np.sqrt(0.2) / np.sqrt(5))
    assert table.loc[1, "ci_low"] == pytest.approx(0.2 - Z * np.sqrt(0.2 / 5))
    assert table.loc[1, "ci_high"] == pytest.approx(0.2 + Z * np.sqrt(0.2 / 5))
    # point 2: replication 1 failed; differences 1, -1, 1, 0 -> mean 0.25, sd sqrt(11/12), 4 pairs
    assert table.loc[2, "pairs"] == 4 and table.loc[2, "difference"] == pytest.approx(0.25)
    assert table.loc[2, "ci_low"] == pytest.approx(0.25 - Z * np.sqrt(11 / 12) / 2)
    assert table.loc[2, "ci_high"] == pytest.approx(0.25 + Z * np.sqrt(11 / 12) / 2)
    # unpaired: point 2 has 3/4 with variance 1/4, point 0 3/5 with variance 0.3
    assert table.loc[2, "se_independent"] == pytest.approx(np.sqrt(0.25 / 4 + 0.3 / 5))
    assert table.loc[0, "difference"] == 0 and table.loc[0, "se_paired"] == 0


def test_paired_differences_in_the_sweep_pair_replications_across_points(serial_sweep):
    _, out, _ = serial_sweep
    consensus = runs_of(out).pivot(index="point", columns="replication", values="consensus").to_numpy(float)
    diffs = pd.read_parquet(out / "differences.parquet")
    d = consensus - consensus[0]  # replication r at point p minus replication r at point 0
    half = Z * d.std(axis=1, ddof=1) / np.sqrt(60)
    np.testing.assert_allclose(diffs["difference"], d.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(diffs["ci_low"], d.mean(axis=1) - half, atol=1e-9)
    np.testing.assert_allclose(diffs["ci_high"], d.mean(axis=1) + half, atol=1e-9)
    assert (diffs["pairs"] == 60).all()


def test_pool_shards_and_serial_give_identical_results(serial_sweep, tmp_path):
    scenario, out, _ = serial_sweep
    pooled = tmp_path / "pool"
    sweep_into(scenario, 5, pooled, workers=2, chunk_size=70)  # another chunking, on a process pool
    assert json.loads((pooled / "manifest.json").read_text())["chunk_size"] == 70
    assert len(part_keys(pooled)) == math.ceil(540 / 70)
    sharded = tmp_path / "shards"  # 11 chunks: shard 1 of 3 runs chunks 1, 4, 7, 10
    first = sweep_into(scenario, 5, sharded, chunk_size=SERIAL_CHUNK, shard=(1, 3))
    assert not first.complete and first.missing_chunks == 7 and not (sharded / "points.parquet").exists()
    assert part_keys(sharded) == {50, 200, 350, 500}
    second = sweep_into(scenario, 5, sharded, chunk_size=SERIAL_CHUNK, shard=(0, 3))
    assert not second.complete and second.missing_chunks == 3
    last = sweep_into(scenario, 5, sharded, chunk_size=SERIAL_CHUNK, shard=(2, 3))
    assert last.complete and last.missing_chunks == 0
    for other in (pooled, sharded):
        pd.testing.assert_frame_equal(runs_of(out), runs_of(other))
        pd.testing.assert_frame_equal(points_of(out), points_of(other))


def test_independent_seeds_are_recorded_and_used(tmp_path):
    scenario = load_scenario(SWEEP, ["sweep.common_random_numbers=false", "sweep.replications=20"])
    result = sweep_into(scenario, 5, tmp_path / "ind")
    design = pd.read_parquet(tmp_path / "ind" / "design.parquet")
    assert design["seed"].nunique() == 9 and 5 not in set(design["seed"])
    runs = runs_of(tmp_path / "ind")
    for point in (0, 7):  # each point's runs are those of its recorded seed
        seed = int(design["seed"].iloc[point])
        assert (runs.loc[runs["point"] == point, "seed"] == seed).all()
        plain = point_scenario(base_raw(scenario), result.design.overrides[point])
        got = runs[runs["point"] == point].drop(columns=["point", "run_id", "error"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(to_frame(run_chunk(plain, seed, 0, 20)), got, check_dtype=False)
    assert not (tmp_path / "ind" / "differences.parquet").exists()  # unpaired: no paired differences
    assert "paired_differences" not in result.summary


def test_resume_after_a_kill_runs_only_the_missing_chunks_and_is_identical(serial_sweep, tmp_path):
    """The process group SIGKILLed right after its 2nd part (tests.kill_hooks, deterministic), then
    resumed: the same command runs exactly the chunks missing, and the end result equals the
    uninterrupted run (made with the other engine and chunk size). tests/test_resume.py kills every
    job kind at more points."""
    _, reference, _ = serial_sweep
    out = tmp_path / "killed"
    args = ["sweep", str(SWEEP), "--seed", "5", "--out", str(out), "--workers", "1", "--quiet", "--engine", "mesa",
            "--chunk-size", "20"]
    every = set(range(0, 540, 20))
    done = subprocess.run([sys.executable, "-m", "tests.kill_hooks", "--after-part", "2", "--", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False, start_new_session=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert part_keys(out) == {0, 20} and json.loads((out / "manifest.json").read_text())["completed"] is None
    with faults.parts_written() as resumed:
        done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert sorted(resumed.keys) == sorted(every - {0, 20})  # none rerun, none skipped
    runs = runs_of(out)
    assert runs["run_id"].is_unique and len(runs) == 540  # none lost, none duplicated
    pd.testing.assert_frame_equal(runs_of(reference), runs)
    pd.testing.assert_frame_equal(points_of(reference), points_of(out))


def test_a_worker_that_dies_leaves_finished_chunks_and_a_clear_message(serial_sweep, tmp_path, monkeypatch):
    """A pool worker exits while playing point 5 (run id 300): WorkerLost, exit code 1 and one
    message; the chunks finished before stay; the same command then completes to the same table."""
    import model.experiments.sweep as sweep_module

    scenario, reference, result = serial_sweep
    out = tmp_path / "lost-worker"
    monkeypatch.setenv(*faults.worker_dies_at(result.design.overrides[5], 0))
    real, lost = sweep_module.run_sweep, []

    def with_dying_runner(*args, **options):
        try:
            return real(*args, **options, runner=faults.dies_in_a_worker,
                        part_schema=sweep_part_schema(scenario))
        except WorkerLost as exc:
            lost.append(exc)
            raise

    monkeypatch.setattr(sweep_module, "run_sweep", with_dying_runner)
    args = ["sweep", str(SWEEP), "--seed", "5", "--out", str(out), "--quiet", "--chunk-size", "60"]  # a point a chunk
    with faults.parts_written() as first:
        done = cli(*args, "--workers", "2")
    assert len(lost) == 1 and isinstance(lost[0], WorkerLost)
    assert done.returncode == 1 and "a worker process died" in done.stderr and "Traceback" not in done.stderr
    kept = part_keys(out)
    # chunk 5 (of 9) is submitted only after two chunks have come back, and each is written before
    # the next result is read, so at least two parts are kept
    assert len(kept) >= 2 and 300 not in kept and kept == set(first.keys)
    assert not (out / "points.parquet").exists()
    monkeypatch.delenv(faults.WORKER_DIES_AT)
    with faults.parts_written() as rerun:
        done = cli(*args, "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(rerun.keys) == sorted(set(range(0, 540, 60)) - kept)
    pd.testing.assert_frame_equal(runs_of(reference), runs_of(out))
    pd.testing.assert_frame_equal(points_of(reference), points_of(out))


def flaky_runner(scenario, seed, first, count, engine):
    """A stand-in model that fails on every seventh replication."""
    bad = [r for r in range(first, first + count) if r % 7 == 3]
    if bad:
        raise RuntimeError(f"replication {bad[0]} diverged")
    return run_chunk(scenario, seed, first, count, engine)


def test_failed_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    scenario = sweep_scenario(parameters={"members.BBB.ideal.ukraine.mode": {"low": 55, "high": 70, "levels": 2},
                                          "members.BBB.ideal.ukraine.high": {"low": 65, "high": 80, "levels": 2}},
                              replications=21)
    schema = sweep_part_schema(scenario)
    result = sweep_into(scenario, 3, tmp_path / "f", chunk_size=10, runner=flaky_runner, part_schema=schema)
    points = pd.read_parquet(tmp_path / "f" / "points.parquet")
    failures = pd.read_csv(tmp_path / "f" / "failures.csv")
    invalid = points[(points["members.BBB.ideal.ukraine.mode"] == 70) & (points["members.BBB.ideal.ukraine.high"] == 65)]
    assert invalid["failed"].tolist() == [21] and invalid["runs"].tolist() == [0]  # the mode above the high end
    others = points.drop(invalid.index)
    assert (others["failed"] == 3).all() and (others["runs"] == 18).all()
    assert len(failures) == 21 + 3 * 3 and failures["seed"].eq(3).all()
    assert failures["error"].str.contains("diverged|need low <= mode <= high").all()
    good = failures[~failures["point"].isin(invalid["point"])]
    assert sorted(set(good["replication"])) == [3, 10, 17]  # the failing replications, found one by one
    assert result.summary["failed_runs"] == 30
    parts = sorted((tmp_path / "f" / "parts").glob("part-*.parquet"))
    assert len(parts) == math.ceil(84 / 10)
    assert {tuple(pq.read_schema(p).names) for p in parts} == {tuple(schema.names)}  # failures or not, one schema
    assert pd.read_parquet(tmp_path / "f" / "parts").shape == (84, len(schema))


def test_sequential_stopping_reaches_the_target_or_the_cap(tmp_path):
    scenario = load_scenario(SWEEP, ["sweep.target_halfwidth=0.06", "sweep.min_replications=40",
                                     "sweep.replications=320"],  # noisier votes: P(consensus) from 1 to about 0.84
                             sweep={"protocol.acceptance_noise": {"low": 2, "high": 20, "levels": 3},
                                    "members.CCC.shift.ukraine": {"low": -20, "high": 0, "levels": 3}})
    result = sweep_into(scenario, 5, tmp_path / "seq", chunk_size=100)
    points = pd.read_parquet(tmp_path / "seq" / "points.parquet")
    runs = runs_of(tmp_path / "seq")
    assert set(points["runs"]) <= {40, 80, 160, 320} and len(set(points["runs"])) > 1

    def halfwidth(point: int, n: int) -> float:
        first = runs[(runs["point"] == point) & (runs["replication"] < n)]
        assert len(first) == n
        low, high = proportion_confint(int(first["consensus"].sum()), n, alpha=0.05, method="wilson")
        return (high - low) / 2

    for point, n in zip(points["point"], points["runs"]):
        reached = halfwidth(point, n) <= 0.06
        assert reached or n == 320  # stops at the target, else at the cap
        if n > 40:
            assert halfwidth(point, n // 2) > 0.06  # and not a stage earlier
    reached = points["halfwidth"] <= 0.06
    assert (points["stopped"] == np.where(reached, "target", "cap")).all() and reached.any()
    stopped = result.summary["sequential_stopping"]
    assert stopped["points_reached_target"] == int(reached.sum())
    assert stopped["points_at_cap"] == int((~reached).sum())
    again = sweep_into(scenario, 5, tmp_path / "seq2", chunk_size=33)  # stages do not depend on the chunking
    pd.testing.assert_frame_equal(points, pd.read_parquet(again.folder.root / "points.parquet"))


def test_persuasion_ranks_members_and_a_member_at_the_compromise_changes_nothing(tmp_path, real_figures):
    scenario = load_scenario(TINY, ["run.replications=200"])
    design = persuasion_design(scenario, 10)
    assert design.table["member"].tolist() == ["(reference)", "AAA", "BBB", "CCC"]
    moves = design.table.filter(like="move_").abs().to_numpy()
    assert (moves <= 10).all() and (moves[1:].max(axis=1) > 0).all()
    common = ["--runs", "200", "--seed", "9", "--workers", "1", "--quiet"]
    done = cli("persuade", str(TINY), "--distance", "10", *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "results" / "tiny-persuade-10"  # the default folder names the distance
    ranking = pd.read_csv(out / "persuasion.csv")
    assert ranking["difference"].is_monotonic_decreasing and set(ranking["member"]) == {"AAA", "BBB", "CCC"}
    assert json.loads((out / "summary.json").read_text())["persuasion"][0]["member"] == ranking["member"].iloc[0]
    differences = pd.read_parquet(out / "differences.parquet")
    points = pd.read_parquet(out / "points.parquet")
    for member, difference in zip(ranking["member"], ranking["difference"]):
        moved = points.loc[points["member"] == member, "p_consensus"].item()
        assert difference == pytest.approx(moved - points["p_consensus"].iloc[0])
    assert len(differences) == 4
    assert {p.name for p in (out / "figures").iterdir()} == {"persuasion.png", "persuasion.svg"}
    centred = [f"--set=members.{m}.ideal.{i}=50" for m in ("AAA", "BBB", "CCC") for i in ("ukraine", "spending")]
    moved = persuasion_design(load_scenario(TINY, [c.removeprefix("--set=") for c in centred]), 10)
    assert (moved.table.filter(like="move_").to_numpy() == 0).all()  # everyone already at the compromise
    done = cli("persuade", str(TINY), *centred, *common, "--out", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert (pd.read_csv(tmp_path / "c" / "persuasion.csv")["difference"] == 0).all()


ISHIGAMI_INPUTS = ("protocol.preparatory_cost_share", "member_defaults.anchoring", "member_defaults.failure_cost")


def ishigami_runner(scenario, seed, first, count, engine):
    """A stand-in model: SALib's Ishigami function (a=7, b=0.1) of three swept values, each mapped
    from [0, 1] to [-pi, pi]."""
    from SALib.test_functions import Ishigami

    u = np.array([[scenario.protocol.preparatory_cost_share, scenario.member_defaults.anchoring,
                   scenario.member_defaults.failure_cost]])
    y = float(Ishigami.evaluate(-np.pi + 2 * np.pi * u)[0])
    replication = np.arange(first, first + count)
    return pa.table({"seed": np.full(count, seed), "replication": replication, "y": np.full(count, y)})


def test_sobol_indices_of_ishigami_through_the_sweep_pipeline(tmp_path):
    """Analytic indices (a=7, b=0.1): S1 = 0.3139, 0.4424, 0; ST = 0.5576, 0.4424, 0.2437. With 1024
    base samples the largest error over design seeds 1..40 is 0.027 (512: 0.11), within 0.04."""
    scenario = sweep_scenario(parameters={p: {"low": 0, "high": 1} for p in ISHIGAMI_INPUTS},
                              design="sobol", samples=1024, replications=1, outcome="y")
    result = sweep_into(scenario, 1, tmp_path / "ishigami", chunk_size=1024, runner=ishigami_runner)
    indices = pd.read_csv(tmp_path / "ishigami" / "sensitivity.csv").set_index("parameter")
    np.testing.assert_allclose(indices.loc[list(ISHIGAMI_INPUTS), "S1"], [0.3139, 0.4424, 0.0], atol=0.04)
    np.testing.assert_allclose(indices.loc[list(ISHIGAMI_INPUTS), "ST"], [0.5576, 0.4424, 0.2437], atol=0.04)
    assert result.summary["sensitivity"]["indices"][0]["parameter"] == "protocol.preparatory_cost_share"  # ranked by ST
    points = pd.read_parquet(tmp_path / "ishigami" / "points.parquet")
    assert len(points) == 1024 * 5 and (points["runs"] == 1).all()


def test_morris_flags_the_inert_parameter(tmp_path, real_figures):
    scenario = sweep_scenario(parameters={p: {"low": 0, "high": 1} for p in
                                          (*ISHIGAMI_INPUTS, "protocol.acceptance_noise")},
                              design="morris", samples=40, replications=1, outcome="y")
    result = sweep_into(scenario, 2, tmp_path / "morris", chunk_size=200, runner=ishigami_runner)
    indices = pd.read_csv(tmp_path / "morris" / "sensitivity.csv").set_index("parameter")
    assert indices.loc["protocol.acceptance_noise", "mu_star"] == 0  # not in the function
    assert indices["mu_star"].idxmax() in ("protocol.preparatory_cost_share", "member_defaults.anchoring")
    assert result.summary["sensitivity"]["method"] == "morris"
    assert {p.name for p in result.figures} == {f"sweep-{name}.{ext}" for name in ("sensitivity", "differences")
                                                for ext in ("png", "svg")}
