"""Dask: a real `dask scheduler` and `dask worker` on 127.0.0.1 give the same tables as serial runs.

The scheduler and workers are processes of their own (what is tested); the commands run in this
process (`cli`, `run_sweep`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

from model.experiments.job import Execution, Job, Output
from model.experiments.sweep import run_sweep
from model.scenario.files import load_scenario

from .conftest import DATA, REPO, TINY, cli
from .test_sweep import part_keys, runs_of

pytest.importorskip("distributed", reason="the [cluster] extra is not installed")


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """The runs here skip their figures (seconds each; tests/test_plots.py and test_sweep_plots.py check them)."""
    monkeypatch.setattr("model.experiments.sweep.save_sweep_figures", lambda *args, **options: [])
    monkeypatch.setattr("model.experiments.runner.save_figures", lambda *args, **options: [])


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A scheduler on a free loopback port (no dashboard) and one worker process with one thread."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    address_file = folder / "scheduler.json"
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                 "--port", "0", "--no-dashboard", "--scheduler-file", str(address_file)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        started.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                         "--nthreads", "1", "--nworkers", "2", "--no-dashboard",
                                         "--local-directory", str(folder)],
                                        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in started:
            proc.wait(timeout=30)


def test_sweep_on_dask_equals_serial(scheduler, tmp_path):
    job = Job(load_scenario(DATA / "tiny-sweep.yaml"), 5)
    serial = run_sweep(job, Output(tmp_path / "serial", quiet=True), Execution(workers=1, chunk_size=50))
    dask = run_sweep(job, Output(tmp_path / "dask", quiet=True),
                     Execution(workers=2, scheduler=scheduler, chunk_size=50))  # 11 chunks over 2 workers
    assert dask.complete and part_keys(tmp_path / "dask") == set(range(0, 540, 50))
    pd.testing.assert_frame_equal(runs_of(serial.folder.root), runs_of(dask.folder.root))
    pd.testing.assert_frame_equal(pd.read_parquet(serial.folder.root / "points.parquet"),
                                  pd.read_parquet(dask.folder.root / "points.parquet"))
    manifest = json.loads((dask.folder.root / "manifest.json").read_text())
    assert manifest["scheduler"] == scheduler and manifest["chunk_size"] == 50


def test_main_job_on_dask_from_the_command_line_equals_serial(scheduler, tmp_path):
    common = [str(TINY), "--runs", "500", "--seed", "3", "--chunk-size", "100", "--quiet"]
    for name, extra in (("serial", ["--workers", "1"]), ("dask", ["--scheduler", scheduler])):
        done = cli(*common, "--out", str(tmp_path / name), *extra)
        assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert manifest["scheduler"] == scheduler and manifest["workers"] == 2  # the cluster's two worker threads
    assert len(list((tmp_path / "dask" / "parts").glob("part-*.parquet"))) == 5
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "serial" / "replications.parquet"),
                                  pd.read_parquet(tmp_path / "dask" / "replications.parquet"))


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("model.experiments.cluster.CONNECT_TIMEOUT", "2s")  # refused at once; no need to wait 10 s
    done = cli(str(TINY), "--quiet", "--out", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == 2 and "cannot reach a Dask scheduler" in done.stderr and "Traceback" not in done.stderr
