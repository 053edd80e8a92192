"""The command line: the main job end to end, resume, determinism, each subcommand, and every kind
of bad input (exit 2 with one message).

Most checks call the CLI's `main(argv)` in process (`cli`); a few run `python run.py` (or the
`vilnius` console script) in a process of their own, where only a process shows the behaviour: the
main job end to end, Ctrl-C, the exit status and the console script."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.interfaces.cli import SUBCOMMANDS
from model.negotiation.engines import run_chunk
from model.negotiation.results import SidePayment, to_frame
from model.scenario.files import load_scenario

from .conftest import DATA, REPO, TINY, cli, cli_process

KNOWN = DATA / "known"
TINY_SWEEP = DATA / "tiny-sweep.yaml"
Z = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """The Wilson score 95 % interval of k/n, from its textbook formula (not the code's)."""
    p = k / n
    centre = p + Z**2 / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return (centre - spread) / (1 + Z**2 / n), (centre + spread) / (1 + Z**2 / n)


def assert_refused(done, *named: str) -> None:
    """Exit 2 with one `error:` message that names each of `named`; no traceback, nothing on stdout.
    `done` is a conftest `Ran` (in process) or a `CompletedProcess`."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and done.stderr.startswith("error:"), done.stderr
    assert "Traceback" not in done.stderr and not done.stdout, (done.stdout, done.stderr)
    for text in named:
        assert text in done.stderr, (text, done.stderr)


# ---------------------------------------------------------------- the main job
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`python run.py tests/data/tiny.yaml ...` as a user runs it: a process of its own."""
    out = tmp_path_factory.mktemp("tiny") / "out"
    args = (str(TINY), "--runs", "30", "--seed", "5", "--workers", "1", "--out", str(out))
    done = cli_process(*args)
    assert done.returncode == 0, done.stderr
    return out, done, args


def test_main_job_writes_every_file(tiny_run):
    out, done, args = tiny_run
    for name in ("replications.parquet", "replications.csv", "summary.json", "manifest.json", "scenario.yaml"):
        assert (out / name).stat().st_size > 0, name
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == ["holdouts.png", "levels.png", "rounds.png", "trajectories.png"]
    table = pd.read_parquet(out / "replications.parquet")
    assert table["replication"].tolist() == list(range(30)) and (table["seed"] == 5).all()
    summary = json.loads((out / "summary.json").read_text())
    k = int(table["consensus"].sum())
    assert summary["consensus"]["n"] == 30 and summary["consensus"]["k"] == k
    assert summary["consensus"]["p"] == pytest.approx(k / 30, abs=1e-15)
    assert summary["consensus"]["ci95"] == pytest.approx(wilson_by_hand(k, 30), abs=1e-12)
    # an interior share too (the consensus share of this seed is 30/30): AAA sells its veto in 18 of 30 runs
    paid = {row["member"]: row for row in summary["side_payments"]}
    assert paid["AAA"]["k"] == 18 and paid["AAA"]["ci95"] == pytest.approx(wilson_by_hand(18, 30), abs=1e-12)
    (contract,) = summary["contracts"]
    sales = [p for payments in table["side_payments"] for p in payments]
    assert (contract["member"], contract["issue"], contract["k"]) == ("AAA", "ukraine", 18)
    assert contract["mean_level"] == pytest.approx(np.mean([p["level"] for p in sales]), abs=1e-12)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"]["root"] == 5 and manifest["completed"] and manifest["packages"]["mesa"].startswith("3.")
    assert manifest["engine"] == "ensemble" and manifest["command"] == [str(REPO / "run.py"), *args]
    assert "P(consensus on the whole declaration by the deadline)" in done.stdout


def test_a_member_counts_once_per_run_however_many_vetoes_it_sells_or_exemptions_it_holds():
    """Shares in the summary are of runs: two contracts of one member in one run count once."""
    import pyarrow as pa

    from model.outputs.report import appearances

    def sale(issue: str) -> dict:
        return {"member": "AAA", "issue": issue, "round": 1, "level": 50.0, "amount": 1.0}

    payments = pa.chunked_array([pa.array([[sale("x"), sale("y")], [], [sale("x")]])])
    assert appearances(payments).to_dict() == {"AAA": 2}
    holdouts = pd.Series([["AAA", "BBB"], [], ["AAA"]])
    assert appearances(holdouts).to_dict() == {"AAA": 2, "BBB": 1}


def test_csv_export_writes_side_payments_as_member_issue_at_round_with_level_and_payment(tiny_run):
    out, _, _ = tiny_run
    table = pd.read_parquet(out / "replications.parquet")
    csv = pd.read_csv(out / "replications.csv", keep_default_na=False)
    expected = [" ".join(str(SidePayment(**p)) for p in payments) for payments in table["side_payments"]]
    assert csv["side_payments"].tolist() == expected
    assert sum(map(bool, expected)) == 18 and expected[2].startswith("AAA:ukraine@1=")
    assert csv["holdouts"].tolist() == [" ".join(h) for h in table["holdouts"]]


def test_rerun_resumes_and_changed_spec_is_refused(tiny_run):
    out, _, args = tiny_run
    before = pd.read_parquet(out / "replications.parquet")
    stamps = {p: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    again = cli(*args)
    assert again.returncode == 0 and "resuming: 30 of 30" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == stamps  # nothing rerun
    pd.testing.assert_frame_equal(before, pd.read_parquet(out / "replications.parquet"))
    other = cli(str(TINY), "--runs", "30", "--seed", "6", "--out", str(out), "--quiet")
    assert_refused(other, str(out), "different run", "seed 5 -> 6", "--fresh")


@pytest.fixture(scope="module")
def mesa_run(tmp_path_factory):
    """150 replications with the Mesa engine in three chunks of 50, so pools and resumes have work."""
    out = tmp_path_factory.mktemp("mesa") / "out"
    args = (str(TINY), "--runs", "150", "--seed", "5", "--workers", "1", "--engine", "mesa",
            "--chunk-size", "50", "--out", str(out))
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (out / "parts").glob("part-*.parquet")) == [
        "part-000000000000.parquet", "part-000000000050.parquet", "part-000000000100.parquet"]
    return out, args


def test_manifest_records_the_command_given_to_main(mesa_run):
    out, args = mesa_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chunk_size"] == 50 and manifest["engine"] == "mesa"
    assert manifest["command"][-len(args):] == list(args)


def test_one_worker_and_two_workers_and_either_engine_give_identical_tables(mesa_run, tmp_path):
    """The Mesa engine on one worker in chunks of 50, the ensemble on a real two-process pool in
    chunks of 25: the same table. (Both engines on a pool: tests/test_model.py.)"""
    two = cli(str(TINY), "--runs", "150", "--seed", "5", "--workers", "2", "--engine", "ensemble",
              "--chunk-size", "25", "--out", str(tmp_path / "two"), "--quiet")
    assert two.returncode == 0, two.stderr
    assert len(list((tmp_path / "two" / "parts").glob("part-*.parquet"))) == 6
    pd.testing.assert_frame_equal(pd.read_parquet(mesa_run[0] / "replications.parquet"),
                                  pd.read_parquet(tmp_path / "two" / "replications.parquet"))


def test_interrupted_run_keeps_finished_chunks_and_resumes_to_the_same_table(mesa_run, tmp_path):
    target = tmp_path / "cut"
    args = (str(TINY), "--runs", "150", "--seed", "5", "--out", str(target))
    assert cli(*args, "--workers", "1", "--chunk-size", "25", "--quiet").returncode == 0
    parts = sorted((target / "parts").glob("part-*.parquet"))
    assert len(parts) == 6
    for part in parts[1::2]:  # as if the run had died with these chunks unfinished
        part.unlink()
    (target / "replications.parquet").unlink()
    again = cli(*args, "--workers", "1")  # the manifest's chunk size holds: three chunks of 25 to redo
    assert again.returncode == 0 and "resuming: 75 of 150" in again.stderr
    assert len(list((target / "parts").glob("part-*.parquet"))) == 6
    pd.testing.assert_frame_equal(pd.read_parquet(mesa_run[0] / "replications.parquet"),
                                  pd.read_parquet(target / "replications.parquet"))


def test_ctrl_c_keeps_finished_chunks_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "ctrl-c"
    args = [str(TINY), "--runs", "3000", "--seed", "8", "--workers", "1", "--chunk-size", "100",
            "--out", str(out), "--quiet"]
    # the slower engine, so there is time to interrupt
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"), *args, "--engine", "mesa"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 120
    while not list((out / "parts").glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again to resume" in err and "Traceback" not in err
    kept = list((out / "parts").glob("part-*.parquet"))
    assert 0 < len(kept) < 30 and all(pd.read_parquet(p).shape[0] == 100 for p in kept)
    # the engine is not part of the run's spec: the rest may be played by the faster one
    resumed = cli(*args, "--engine", "ensemble")
    assert resumed.returncode == 0, resumed.stderr
    expected = to_frame(run_chunk(load_scenario(TINY), 8, 0, 3000, engine="ensemble"))
    got = pd.read_parquet(out / "replications.parquet")
    pd.testing.assert_frame_equal(expected, got, check_dtype=False)


# ---------------------------------------------------------------- replay and show
def test_replay_prints_the_trace_of_the_batch_replication(tmp_path):
    done = cli("replay", str(TINY), "3", "--seed", "7", cwd=tmp_path)  # default folder: results/<name>/
    assert done.returncode == 0, done.stderr
    row = to_frame(run_chunk(load_scenario(TINY), 7, 3, 1, engine="ensemble")).iloc[0]
    payments = " ".join(str(SidePayment(**p)) for p in row["side_payments"])
    assert row["consensus"] and payments.startswith("AAA:ukraine@")  # the same replication as the batch's
    assert "replication 3 of seed 7" in done.stdout and "objectors" in done.stdout
    assert f"outcome: consensus in round {row['agreement_round']}, summit session {row['summit_session']} (" \
        in done.stdout
    assert f"vetoes sold (member:issue@round=level/payment): {payments}\n" in done.stdout
    trace = pd.read_csv(tmp_path / "results" / "tiny" / "replay-3.csv")
    assert {"round", "code", "accepts", "position_ukraine", "position_spending"} <= set(trace.columns)
    assert sorted(trace["round"].unique()) == list(range(row["agreement_round"] + 1))
    assert len(trace) == 3 * (row["agreement_round"] + 1)  # three members, round 0 (the ideals) and each round


def test_show_prints_the_resolved_scenario_and_round_trips(tmp_path):
    overrides = ["protocol.rounds=9", "members.AAA.price.spending=2.5"]
    done = cli("show", str(TINY), "--set", overrides[0], "--set", overrides[1])
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "extends" not in done.stdout
    (tmp_path / "resolved.yaml").write_text(done.stdout)
    resolved = load_scenario(tmp_path / "resolved.yaml")
    assert resolved.protocol.rounds == 9 and resolved.members["AAA"].price == {"ukraine": 4, "spending": 2.5}
    assert resolved.spec_hash == load_scenario(TINY, overrides).spec_hash
    assert resolved.spec_hash != load_scenario(TINY).spec_hash  # the overrides did change something
    # a file that extends another: shown merged, and it loads to the same scenario
    merged = cli("show", str(TINY_SWEEP))
    assert merged.returncode == 0 and "extends" not in merged.stdout and "sweep:" in merged.stdout
    (tmp_path / "sweep.yaml").write_text(merged.stdout)
    assert load_scenario(tmp_path / "sweep.yaml").spec_hash == load_scenario(TINY_SWEEP).spec_hash


# ---------------------------------------------------------------- help
def test_help_lists_every_subcommand_with_examples():
    done = cli("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: run.py") and "examples:" in done.stdout
    for command in SUBCOMMANDS:
        assert re.search(rf"^    {command}\b", done.stdout, re.MULTILINE), command  # in the list of commands
        assert f"python run.py {command} " in done.stdout, command  # and in an example


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_each_subcommand_has_help_with_its_examples(command):
    done = cli(command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"usage: run.py {command} ")
    examples = done.stdout.split("examples:\n", 1)[1]
    lines = [line for line in examples.splitlines() if line.strip().startswith("python run.py")]
    assert lines and all(f"python run.py {command} " in line or command == "run" for line in lines), examples
    assert "--set PATH=VALUE" in done.stdout


def test_the_console_script_exits_with_2_and_one_message():
    """`vilnius` (pyproject's console script) is `python run.py`, and the exit status a shell sees is
    `main`'s return code: here, a folder given without a subcommand."""
    vilnius = Path(sys.executable).with_name("vilnius")
    done = subprocess.run([str(vilnius), str(KNOWN)], check=False, capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert_refused(done, f"`python run.py validate {KNOWN}`")


def test_without_arguments_the_help_is_printed_with_exit_2():
    done = cli()
    assert done.returncode == 2 and done.stdout.startswith("usage: run.py") and "Traceback" not in done.stderr


# ---------------------------------------------------------------- what needs a subcommand
def test_a_folder_without_a_subcommand_is_refused_naming_validate():
    assert_refused(cli(str(KNOWN), "--runs", "5"), str(KNOWN), f"`python run.py validate {KNOWN}`",
                   f"`python run.py calibrate {KNOWN}`")


@pytest.mark.parametrize("command", [(), ("run",)])
def test_a_scenario_with_a_sweep_block_is_refused_naming_sweep(tmp_path, command):
    done = cli(*command, str(TINY_SWEEP), "--out", str(tmp_path / "out"))
    assert_refused(done, str(TINY_SWEEP), "sweep: block", f"`python run.py sweep {TINY_SWEEP}`")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("old, command", [
    (["--replay", "3"], "replay"),
    (["--print-config"], "show"),
    (["--persuade"], "persuade"),
    (["--calibrate"], "calibrate"),
    (["--sweep", "protocol.rounds=4:8:3"], "sweep"),
    (["--shard", "0/2"], "sweep"),
])
def test_an_old_flag_names_the_subcommand_that_replaced_it(tmp_path, old, command):
    done = cli(str(TINY), *old, "--out", str(tmp_path / "out"))
    assert_refused(done, f"unrecognized arguments: {' '.join(old)}", f"{old[0]} is now `python run.py {command} ...`")
    assert not (tmp_path / "out").exists()


def test_an_old_folder_flag_names_the_subcommand():
    assert_refused(cli(str(KNOWN), "--calibrate"), f"`python run.py calibrate {KNOWN}`")


# ---------------------------------------------------------------- bad input: exit 2, one message
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
        assert text != base, kind  # the replacement found its target
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_scenario_files_exit_2_with_one_clear_message(tmp_path, kind):
    path = _broken(tmp_path, kind)
    assert_refused(cli(path, "--runs", "2", "--out", str(tmp_path / "out")), path, BAD_FILES[kind][1])
    assert_refused(cli("show", path), path, BAD_FILES[kind][1])


@pytest.mark.parametrize("args, expected", [
    (["no/such/file.yaml"], ["no/such/file.yaml", "file not found"]),
    (["show", "no/such/file.yaml"], ["no/such/file.yaml", "file not found"]),
    ([str(TINY), "--set", "members.XXX.ideal.ukraine=10"], ["unknown member 'XXX'"]),
    ([str(TINY), "--set", "protocol.rounds"], ["expected PATH=VALUE"]),
    ([str(TINY), "--set", "protocol.roundz=3"], ["protocol.roundz: unknown key"]),
    ([str(TINY), "--set", "protocol.rounds=0"], ["protocol.rounds: Input should be greater than or equal to 1"]),
    ([str(TINY), "--set", "issues.ukraine.label.x=1"], ["issues.ukraine.label", "holds a value"]),
    ([str(TINY), "--runs", "0"], ["run.py run: argument --runs", "must be from 1 to"]),
    ([str(TINY), "--workers", "two"], ["argument --workers", "expected a whole number"]),
    ([str(TINY), "--chunk-size", "0"], ["argument --chunk-size", "must be from 1 to"]),
    ([str(TINY), "--engine", "fast"], ["argument --engine", "invalid choice: 'fast'"]),
    ([str(TINY), "--bogus"], ["unrecognized arguments: --bogus"]),
    (["run", str(KNOWN)], [str(KNOWN), "this is a folder", "python run.py validate"]),
    (["replay", str(TINY)], ["run.py replay", "required: replication"]),
    (["replay", str(TINY), "third"], ["run.py replay: argument replication", "expected a whole number"]),
    (["replay", str(TINY), "3", "--runs", "5"], ["unrecognized arguments: --runs 5"]),
    (["persuade", str(TINY), "--distance", "0"], ["argument --distance", "must be from 0.01 to 100"]),
    (["validate", str(TINY)], [str(TINY), "validate needs a folder"]),
    (["calibrate", str(TINY)], [str(TINY), "calibrate needs a folder"]),
    (["show", str(TINY), "--runs", "5"], ["unrecognized arguments: --runs 5"]),
    (["nonsense"], ["nonsense", "file not found"]),
])
def test_bad_command_lines_exit_2_with_one_clear_message(tmp_path, args, expected):
    done = cli(*args, *(["--out", str(tmp_path / "out")] if args[0] != "show" else []))  # show has no --out
    assert_refused(done, *expected)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_made_exits_2_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = cli(str(TINY), "--runs", "2", "--out", str(blocker / "out"))
    assert_refused(done, str(blocker / "out"), "Not a directory", "--out DIR")
