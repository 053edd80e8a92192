"""The command line end to end: files written, resume, determinism, and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import REPO, TINY, cli


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "out"
    done = cli(str(TINY), "--runs", "30", "--seed", "5", "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done


def test_main_job_writes_every_file(tiny_run):
    out, done = tiny_run
    for name in ("replications.parquet", "replications.csv", "summary.json", "manifest.json", "scenario.yaml"):
        assert (out / name).stat().st_size > 0, name
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == ["holdouts.png", "levels.png", "rounds.png", "trajectories.png"]
    table = pd.read_parquet(out / "replications.parquet")
    assert table["replication"].tolist() == list(range(30)) and (table["seed"] == 5).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["consensus"]["n"] == 30 and summary["consensus"]["k"] == int(table["consensus"].sum())
    low, high = summary["consensus"]["ci95"]
    assert low <= summary["consensus"]["p"] <= high
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"]["root"] == 5 and manifest["completed"] and manifest["packages"]["mesa"].startswith("3.")
    assert "P(consensus on the whole declaration by the deadline)" in done.stdout


def test_rerun_resumes_and_changed_spec_is_refused(tiny_run):
    out, _ = tiny_run
    before = pd.read_parquet(out / "replications.parquet")
    stamps = {p: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    again = cli(str(TINY), "--runs", "30", "--seed", "5", "--workers", "1", "--out", str(out))
    assert again.returncode == 0 and "resuming: 30 of 30" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == stamps  # nothing rerun
    pd.testing.assert_frame_equal(before, pd.read_parquet(out / "replications.parquet"))
    other = cli(str(TINY), "--runs", "30", "--seed", "6", "--out", str(out), "--quiet")
    assert other.returncode == 2 and "different run" in other.stderr and "--fresh" in other.stderr


@pytest.fixture(scope="module")
def mesa_run(tmp_path_factory):
    """300 replications with the Mesa engine: three chunks of 100, so pools and resumes have work."""
    out = tmp_path_factory.mktemp("mesa") / "out"
    done = cli(str(TINY), "--runs", "300", "--seed", "5", "--workers", "1", "--engine", "mesa", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(list((out / "parts").glob("part-*.parquet"))) == 3
    return out


@pytest.mark.parametrize("engine", ["mesa", "ensemble"])
def test_one_worker_and_two_workers_and_either_engine_give_identical_tables(mesa_run, tmp_path, engine):
    two = cli(str(TINY), "--runs", "300", "--seed", "5", "--workers", "2", "--engine", engine,
              "--out", str(tmp_path / "two"), "--quiet")
    assert two.returncode == 0, two.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(mesa_run / "replications.parquet"),
                                  pd.read_parquet(tmp_path / "two" / "replications.parquet"))


def test_interrupted_run_keeps_finished_chunks_and_resumes_to_the_same_table(mesa_run, tmp_path):
    target = tmp_path / "cut"
    args = (str(TINY), "--runs", "300", "--seed", "5", "--engine", "mesa", "--out", str(target))
    assert cli(*args, "--workers", "1", "--quiet").returncode == 0
    parts = sorted((target / "parts").glob("part-*.parquet"))
    for part in parts[1::2]:  # as if the run had died with these chunks unfinished
        part.unlink()
    (target / "replications.parquet").unlink()
    again = cli(*args, "--workers", "2")
    assert again.returncode == 0 and "resuming: 200 of 300" in again.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(mesa_run / "replications.parquet"),
                                  pd.read_parquet(target / "replications.parquet"))


def test_replay_prints_a_round_by_round_trace(tmp_path):
    done = cli(str(TINY), "--replay", "3", "--seed", "7", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "replication 3 of seed 7" in done.stdout and "objectors" in done.stdout
    trace = pd.read_csv(tmp_path / "replay-3.csv")
    assert {"round", "code", "accepts", "position_ukraine", "position_spending"} <= set(trace.columns)


def test_print_config_shows_the_resolved_scenario_and_round_trips(tmp_path):
    done = cli(str(TINY), "--print-config", "--set", "protocol.rounds=9", "--set", "members.AAA.linkage=0.5")
    assert done.returncode == 0, done.stderr
    (tmp_path / "resolved.yaml").write_text(done.stdout)
    from model.scenario.files import load_scenario

    resolved = load_scenario(tmp_path / "resolved.yaml")
    assert resolved.protocol.rounds == 9 and resolved.members["AAA"].linkage == 0.5
    assert resolved.spec_hash == load_scenario(TINY, ["protocol.rounds=9", "members.AAA.linkage=0.5"]).spec_hash


BAD_FILES = {
    "syntax": ("name: x\nissues: [unclosed\n", "YAML syntax error"),
    "unknown_key": (None, "protocol.roundz: unknown key"),
    "out_of_range": (None, "members.AAA.salience.ukraine"),
    "bad_distribution": (None, "members.BBB.ideal.ukraine"),
    "unknown_bloc": (None, "members.CCC.bloc: unknown bloc 'ZZ'"),
}


def _broken(tmp_path, kind: str) -> str:
    text, _ = BAD_FILES[kind]
    if text is None:
        base = TINY.read_text()
        text = {
            "unknown_key": base.replace("rounds: 6", "roundz: 6"),
            "out_of_range": base.replace("salience: {ukraine: 0.8", "salience: {ukraine: 1.8"),
            "bad_distribution": base.replace("low: 50, mode: 60, high: 75", "low: 80, mode: 60, high: 75"),
            "unknown_bloc": base.replace("    bloc: B\n", "    bloc: ZZ\n"),
        }[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_scenario_files_exit_2_with_one_clear_message(tmp_path, kind):
    path = _broken(tmp_path, kind)
    done = cli(path, "--runs", "2", "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and path in done.stderr
    assert BAD_FILES[kind][1] in done.stderr, done.stderr


@pytest.mark.parametrize("args, expected", [
    (["no/such/file.yaml"], "file not found"),
    ([str(TINY), "--set", "members.XXX.ideal.ukraine=10"], "unknown member 'XXX'"),
    ([str(TINY), "--set", "protocol.rounds"], "expected PATH=VALUE"),
    ([str(TINY), "--set", "protocol.roundz=3"], "protocol.roundz: unknown key"),
    ([str(TINY), "--set", "protocol.rounds=0"], "protocol.rounds: Input should be greater than or equal to 1"),
    ([str(TINY), "--set", "issues.ukraine.label.x=1"], "holds a value"),
    ([str(TINY), "--runs", "0"], "must be from 1 to"),
    ([str(TINY), "--workers", "two"], "expected a whole number"),
    ([str(TINY), "--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_command_lines_exit_2_with_one_clear_message(tmp_path, args, expected):
    done = cli(*args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert expected in done.stderr, done.stderr


def test_help_shows_examples():
    done = cli("--help")
    assert done.returncode == 0 and "examples:" in done.stdout and "--replay" in done.stdout


def test_ctrl_c_keeps_finished_chunks_and_the_same_command_resumes(tmp_path):
    import signal
    import time

    from model.experiments.batch import run_chunk
    from model.negotiation.results import to_frame
    from model.scenario.files import load_scenario

    out = tmp_path / "ctrl-c"
    args = [sys.executable, str(REPO / "run.py"), str(TINY), "--runs", "3000", "--seed", "8", "--workers", "1",
            "--engine", "mesa", "--out", str(out), "--quiet"]  # the slower engine, so there is time to interrupt
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 120
    while not list((out / "parts").glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again to resume" in err and "Traceback" not in err
    kept = list((out / "parts").glob("part-*.parquet"))
    assert 0 < len(kept) < 12 and all(pd.read_parquet(p).shape[0] == 250 for p in kept)
    resumed = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    expected = to_frame(run_chunk(load_scenario(TINY), 8, 0, 3000))
    got = pd.read_parquet(out / "replications.parquet")
    pd.testing.assert_frame_equal(expected, got, check_dtype=False)
