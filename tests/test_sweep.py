"""Sweeps: designs, bad specs, identical results however the work is split, resume after kills,
failed runs recorded, sequential stopping, paired differences, who must be persuaded, SALib wiring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.experiments.batch import WORKER_FAULT_ENV, run_chunk
from model.experiments.persuasion import persuasion_design
from model.experiments.sweep import FAULT_ENV, Replicates, chunk_plan, run_sweep
from model.negotiation.results import sweep_part_schema, to_frame
from model.outputs.sweep_stats import read_runs
from model.scenario.design import build_design
from model.scenario.files import load_scenario
from model.scenario.schema import ScenarioError

from .conftest import DATA, REPO, TINY, cli

SWEEP = DATA / "tiny-sweep.yaml"


def sweep_scenario(**sweep) -> object:
    """tiny.yaml with the given sweep block."""
    return load_scenario(TINY, sweep=sweep.pop("parameters"),
                         overrides=[f"sweep.{k}={json.dumps(v)}" for k, v in sweep.items()])


def runs_of(out) -> pd.DataFrame:
    """All runs in a sweep folder, by run id (what 'the same result' means for a sweep)."""
    return to_frame(read_runs(_folder(out))).sort_values("run_id", ignore_index=True)


def points_of(out) -> pd.DataFrame:
    return pd.read_parquet(out / "points.parquet")


def _folder(out):
    from model.experiments.store import OutputFolder

    return OutputFolder(out)


def test_grid_design_order_integer_rounding_and_counts():
    scenario = sweep_scenario(parameters={"protocol.rounds": {"low": 2, "high": 9, "levels": 3},
                                          "protocol.objector_pull": {"low": 0, "high": 1, "levels": 2}})
    design = build_design(scenario, 1)
    assert design.table["protocol.rounds"].tolist() == [2, 2, 6, 6, 9, 9]  # 5.5 rounds to 6 (half to even)
    assert design.table["protocol.objector_pull"].tolist() == [0, 1] * 3
    assert design.integer == {"protocol.rounds"} and isinstance(design.overrides[2]["protocol.rounds"], int)


@pytest.mark.parametrize(("path", "low", "high", "read"), [
    ("blocs.A.shift.ukraine", -10, 10, lambda s: s.blocs["A"].shift["ukraine"]),
    ("members.BBB.ideal.ukraine.mode", 55, 65, lambda s: s.members["BBB"].ideal["ukraine"].mode),
    ("member_defaults.reservation", 20, 40, lambda s: s.member_defaults.reservation),
    ("members.CCC.linkage", 0.1, 0.3, lambda s: s.members["CCC"].linkage),
])
def test_a_parameter_path_sets_that_value_at_each_point(path, low, high, read):
    from model.scenario.files import base_raw, point_scenario

    scenario = sweep_scenario(parameters={path: {"low": low, "high": high, "levels": 3}})
    design = build_design(scenario, 1)
    assert [read(point_scenario(base_raw(scenario), o)) for o in design.overrides] == pytest.approx(
        design.table[path].tolist())


def test_lhs_sobol_and_morris_layouts():
    params = {"protocol.objector_pull": {"low": 0, "high": 1}, "member_defaults.anchoring": {"low": 0.2, "high": 0.8},
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
    ({"parameters": {"protocol.rounds": {"low": 2, "high": 4}, "protocol.objector_pull": {"low": 0, "high": 1}},
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
    (["--sweep", "protocol.rounds=9:4:3"], "low (9.0) is above high (4.0)"),
    (["--sweep", "protocol.nope=1:4:3"], "protocol.nope: unknown key"),
    (["--sweep", "protocol.rounds=2:4", "--design", "sobol", "--samples", "12",
      "--sweep", "protocol.objector_pull=0:1"], "power of two"),
    (["--sweep", "protocol.rounds=two:4:3"], "LOW and HIGH must be numbers"),
    (["--sweep", "protocol.rounds=2:4:3", "--runs", "0"], "must be from 1 to"),
    (["--shard", "0/2"], "apply to sweeps"),
    (["--sweep", "protocol.rounds=2:4:3", "--set", "sweep.outcome=level_nope"], "sweep.outcome: unknown outcome"),
    (["--sweep", "protocol.rounds=2:4:3", "--shard", "2/2"], "0 <= I < N"),
])
def test_bad_sweep_flags_exit_2_with_one_message(args, message, tmp_path):
    done = cli(str(TINY), *args, "--out", str(tmp_path / "x"), "--quiet")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_without_a_seed_the_same_command_resumes_and_fresh_clears_the_old_sweep(tmp_path):
    out = tmp_path / "entropy"
    args = [str(TINY), "--set", "run.seed=null", "--sweep", "protocol.acceptance_noise=0:2:3", "--runs", "40",
            "--workers", "1", "--quiet", "--engine", "mesa", "--out", str(out)]
    assert cli(*args, env=os.environ | {FAULT_ENV: "1"}).returncode == -signal.SIGKILL
    first = json.loads((out / "manifest.json").read_text())
    assert first["seed"]["source"] == "entropy"
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == first["seed"]["root"]
    assert "--shard needs a fixed seed" in cli(*args, "--shard", "0/2").stderr
    (out / "manifest.json").write_text("{not json")
    damaged = cli(*args)
    assert damaged.returncode == 2 and "not valid JSON" in damaged.stderr
    other = [a if a != "protocol.acceptance_noise=0:2:3" else "protocol.objector_pull=0:1:2" for a in args]
    assert cli(*other, "--fresh", "--seed", "3").returncode == 0
    assert not (out / "differences.csv").read_text().count("protocol.acceptance_noise")  # old tables gone


def test_a_folder_refuses_sweep_flags():
    done = cli(str(REPO / "scenarios" / "history"), "--sweep", "protocol.rounds=2:4:2", "--quiet")
    assert done.returncode == 2 and "--sweep cannot be used on a folder" in done.stderr


def test_chunk_plan_covers_every_run_once():
    plan = chunk_plan([0, 2, 5], 10, 17, 4)
    runs = [(s.point, r) for chunk in plan for s in chunk for r in range(s.first, s.first + s.count)]
    assert runs == [(p, r) for p in (0, 2, 5) for r in range(10, 17)]
    assert all(sum(s.count for s in chunk) == 4 for chunk in plan[:-1])


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    scenario = load_scenario(SWEEP)
    out = tmp_path_factory.mktemp("serial") / "out"
    result = run_sweep(scenario, 5, out, workers=1, quiet=True)
    return scenario, out, result


def test_sweep_point_equals_a_plain_run_of_that_scenario(serial_sweep):
    """Common random numbers: point p, replication r is exactly replication r of the point's scenario."""
    scenario, out, result = serial_sweep
    runs = runs_of(out)
    for point in (0, 4, 8):
        values = result.design.overrides[point]
        plain = load_scenario(SWEEP, [f"{path}={value}" for path, value in values.items()])
        expected = to_frame(run_chunk(plain, 5, 0, 60, "mesa"))
        got = runs[runs["point"] == point].drop(columns=["point", "run_id", "error"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(expected, got, check_dtype=False)


def test_sweep_outputs_and_points_table(serial_sweep):
    scenario, out, result = serial_sweep
    points = pd.read_parquet(out / "points.parquet")
    runs = runs_of(out)
    assert len(points) == 9 and (points["runs"] == 60).all() and (points["failed"] == 0).all()
    assert runs["run_id"].tolist() == [p * 60 + r for p in range(9) for r in range(60)]
    k = runs.groupby("point")["consensus"].sum()
    assert (points["consensus"] == k.to_numpy()).all()
    assert ((points["ci_low"] <= points["p_consensus"]) & (points["p_consensus"] <= points["ci_high"])).all()
    design = pd.read_parquet(out / "design.parquet")
    assert (design["seed"] == 5).all()
    assert design["protocol.acceptance_noise"].tolist() == [0.5] * 3 + [2.0] * 3 + [3.5] * 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["completed"] and manifest["design"]["points"] == 9 and manifest["chunk_size"] >= 1
    assert result.summary["runs"] == 540 and result.summary["failed_runs"] == 0
    assert any(p.name.endswith(".png") for p in result.figures)


def test_paired_differences_equal_differences_of_shares(serial_sweep):
    _, out, _ = serial_sweep
    points = pd.read_parquet(out / "points.parquet")
    diffs = pd.read_parquet(out / "differences.parquet")
    expected = points["p_consensus"] - points["p_consensus"].iloc[0]
    np.testing.assert_allclose(diffs["difference"], expected, atol=1e-12)
    assert diffs["difference"].iloc[0] == 0 and (diffs["ci_low"] <= diffs["difference"]).all()


def test_pool_shards_and_serial_give_identical_results(serial_sweep, tmp_path):
    scenario, out, _ = serial_sweep
    chunk = json.loads((out / "manifest.json").read_text())["chunk_size"]
    pooled = tmp_path / "pool"
    run_sweep(scenario, 5, pooled, workers=2, quiet=True)
    sharded = tmp_path / "shards"
    first = run_sweep(scenario, 5, sharded, workers=1, quiet=True, shard=(1, 3))
    assert not first.complete and first.missing_chunks > 0
    run_sweep(scenario, 5, sharded, workers=1, quiet=True, shard=(0, 3))
    last = run_sweep(scenario, 5, sharded, workers=2, quiet=True, shard=(2, 3))
    assert last.complete
    for other in (pooled, sharded):
        pd.testing.assert_frame_equal(runs_of(out), runs_of(other))
        pd.testing.assert_frame_equal(points_of(out), points_of(other))
    assert json.loads((sharded / "manifest.json").read_text())["chunk_size"] > 0 and chunk > 0


def test_independent_seeds_are_recorded_and_differ(tmp_path):
    scenario = load_scenario(SWEEP, ["sweep.common_random_numbers=false"])
    run_sweep(scenario, 5, tmp_path / "ind", workers=1, quiet=True)
    design = pd.read_parquet(tmp_path / "ind" / "design.parquet")
    assert design["seed"].nunique() == 9
    assert not (tmp_path / "ind" / "differences.parquet").exists()  # unpaired: no paired differences


def test_resume_after_fault_injection_and_sigkill_is_identical(serial_sweep, tmp_path):
    """Kill the sweep after 1, then 3 parts (deterministic), then with a real SIGKILL of its process
    group; each time the same command resumes, and the end result equals the uninterrupted run."""
    _, reference, _ = serial_sweep
    out = tmp_path / "killed"
    args = [str(SWEEP), "--seed", "5", "--out", str(out), "--workers", "1", "--quiet", "--engine", "mesa"]
    for parts in (1, 3):
        done = cli(*args, env=os.environ | {FAULT_ENV: str(parts)})
        assert done.returncode == -signal.SIGKILL
    kept = len(list((out / "parts").glob("part-*.parquet")))
    assert kept == 4  # 1 part, then 3 more on resume
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"), *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((out / "parts").glob("part-*.parquet"))) <= kept and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    runs = runs_of(out)
    assert runs["run_id"].is_unique and len(runs) == 540  # none lost, none duplicated
    pd.testing.assert_frame_equal(runs_of(reference), runs)
    pd.testing.assert_frame_equal(points_of(reference), points_of(out))


def test_a_worker_that_dies_leaves_finished_chunks_and_a_clear_message(serial_sweep, tmp_path):
    _, reference, _ = serial_sweep
    out = tmp_path / "lost-worker"
    args = [str(SWEEP), "--seed", "5", "--out", str(out), "--workers", "2", "--quiet", "--engine", "mesa"]
    done = cli(*args, env=os.environ | {WORKER_FAULT_ENV: "300"})  # point 5, replication 0
    assert done.returncode == 1 and "a worker process died" in done.stderr and "Traceback" not in done.stderr
    assert not (out / "points.parquet").exists()
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(runs_of(reference), runs_of(out))


def flaky_runner(scenario, seed, first, count, engine):
    """A stand-in model that fails on every seventh replication."""
    bad = [r for r in range(first, first + count) if r % 7 == 3]
    if bad:
        raise RuntimeError(f"replication {bad[0]} diverged")
    return run_chunk(scenario, seed, first, count, engine)


def test_failed_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    scenario = sweep_scenario(parameters={"member_defaults.tolerance": {"low": 0, "high": 15, "levels": 2},
                                          "member_defaults.reservation": {"low": 10, "high": 30, "levels": 2}},
                              replications=21)
    result = run_sweep(scenario, 3, tmp_path / "f", workers=1, quiet=True, runner=flaky_runner,
                       part_schema=sweep_part_schema(("ukraine", "spending")))
    points = pd.read_parquet(tmp_path / "f" / "points.parquet")
    failures = pd.read_csv(tmp_path / "f" / "failures.csv")
    invalid = points[(points["member_defaults.tolerance"] == 15) & (points["member_defaults.reservation"] == 10)]
    assert invalid["failed"].tolist() == [21] and invalid["runs"].tolist() == [0]  # tolerance above reservation
    others = points.drop(invalid.index)
    assert (others["failed"] == 3).all() and (others["runs"] == 18).all()
    assert len(failures) == 21 + 3 * 3 and failures["seed"].eq(3).all()
    assert failures["error"].str.contains("diverged|below tolerance").all()
    assert result.summary["failed_runs"] == 30
    columns = {tuple(pq.read_schema(p).names) for p in (tmp_path / "f" / "parts").glob("part-*.parquet")}
    assert columns == {tuple(sweep_part_schema(("ukraine", "spending")).names)}  # failures or not, one schema
    assert pd.read_parquet(tmp_path / "f" / "parts").shape == (84, len(sweep_part_schema(("ukraine", "spending"))))


def test_sequential_stopping_reaches_the_target_or_the_cap(tmp_path):
    scenario = load_scenario(SWEEP, ["sweep.target_halfwidth=0.06", "sweep.min_replications=40",
                                     "sweep.replications=320"])
    result = run_sweep(scenario, 5, tmp_path / "seq", workers=1, quiet=True)
    points = pd.read_parquet(tmp_path / "seq" / "points.parquet")
    assert set(points["runs"]) <= {40, 80, 160, 320}
    reached = points["halfwidth"] <= 0.06
    assert (reached | (points["runs"] == 320)).all() and reached.any()
    # a point that stopped early was still above the target one stage before
    stopped = result.summary["sequential_stopping"]
    assert stopped["points_reached_target"] == int(reached.sum())
    again = run_sweep(scenario, 5, tmp_path / "seq2", workers=2, quiet=True)
    pd.testing.assert_frame_equal(points, pd.read_parquet(again.folder.root / "points.parquet"))


def test_persuasion_ranks_members_and_a_member_at_the_compromise_changes_nothing(tmp_path):
    scenario = load_scenario(TINY, ["run.replications=200"])
    design = persuasion_design(scenario, 10)
    assert design.table["member"].tolist() == ["(reference)", "AAA", "BBB", "CCC"]
    assert (design.table.filter(like="move_").abs().to_numpy() <= 10).all()
    result = run_sweep(scenario, 9, tmp_path / "p", workers=1, quiet=True, design=design,
                       replicates=Replicates(200))
    ranking = pd.read_csv(tmp_path / "p" / "persuasion.csv")
    assert ranking["difference"].is_monotonic_decreasing and set(ranking["member"]) == {"AAA", "BBB", "CCC"}
    assert result.summary["persuasion"][0]["member"] == ranking["member"].iloc[0]
    centred = [f"members.{m}.ideal.{i}=50" for m in ("AAA", "BBB", "CCC") for i in ("ukraine", "spending")]
    moved = persuasion_design(load_scenario(TINY, centred), 10)
    assert (moved.table.filter(like="move_").to_numpy() == 0).all()  # everyone already at the compromise
    run_sweep(load_scenario(TINY, centred), 9, tmp_path / "c", workers=1, quiet=True, design=moved,
              replicates=Replicates(100))
    assert (pd.read_csv(tmp_path / "c" / "persuasion.csv")["difference"] == 0).all()


def ishigami_runner(scenario, seed, first, count, engine):
    """A stand-in model: the Ishigami function of three swept values, each mapped from [0, 1] to [-pi, pi]."""
    x = [-np.pi + 2 * np.pi * v for v in (scenario.protocol.objector_pull, scenario.member_defaults.anchoring,
                                         scenario.member_defaults.linkage)]
    y = np.sin(x[0]) + 7 * np.sin(x[1]) ** 2 + 0.1 * x[2] ** 4 * np.sin(x[0])
    replication = np.arange(first, first + count)
    return pa.table({"seed": np.full(count, seed), "replication": replication, "y": np.full(count, y)})


def test_sobol_indices_of_ishigami_through_the_sweep_pipeline(tmp_path):
    """Known analytic indices (a=7, b=0.1): S1 = .314, .442, 0; ST = .558, .442, .244."""
    scenario = sweep_scenario(parameters={p: {"low": 0, "high": 1} for p in
                                          ("protocol.objector_pull", "member_defaults.anchoring",
                                           "member_defaults.linkage")},
                              design="sobol", samples=4096, replications=1, outcome="y")
    result = run_sweep(scenario, 1, tmp_path / "ishigami", workers=1, quiet=True, runner=ishigami_runner)
    indices = pd.read_csv(tmp_path / "ishigami" / "sensitivity.csv").set_index("parameter")
    np.testing.assert_allclose(indices.loc[["protocol.objector_pull", "member_defaults.anchoring",
                                            "member_defaults.linkage"], "S1"], [0.314, 0.442, 0.0], atol=0.04)
    np.testing.assert_allclose(indices.loc[["protocol.objector_pull", "member_defaults.anchoring",
                                            "member_defaults.linkage"], "ST"], [0.558, 0.442, 0.244], atol=0.04)
    assert result.summary["sensitivity"]["indices"][0]["parameter"] == "protocol.objector_pull"


def test_morris_flags_the_inert_parameter(tmp_path):
    scenario = sweep_scenario(parameters={p: {"low": 0, "high": 1} for p in
                                          ("protocol.objector_pull", "member_defaults.anchoring",
                                           "member_defaults.linkage", "protocol.acceptance_noise")},
                              design="morris", samples=40, replications=1, outcome="y")
    result = run_sweep(scenario, 2, tmp_path / "morris", workers=1, quiet=True, runner=ishigami_runner)
    indices = pd.read_csv(tmp_path / "morris" / "sensitivity.csv").set_index("parameter")
    assert indices.loc["protocol.acceptance_noise", "mu_star"] == 0  # not in the function
    assert indices["mu_star"].idxmax() in ("protocol.objector_pull", "member_defaults.anchoring")
    assert result.summary["sensitivity"]["method"] == "morris"
