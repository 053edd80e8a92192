"""Dask: a real `dask scheduler` and `dask worker` on 127.0.0.1 give the same tables as serial runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

from model.experiments.sweep import run_sweep
from model.scenario.files import load_scenario

from .conftest import DATA, REPO, TINY
from .test_sweep import runs_of

pytest.importorskip("distributed", reason="the [cluster] extra is not installed")


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
    scenario = load_scenario(DATA / "tiny-sweep.yaml")
    serial = run_sweep(scenario, 5, tmp_path / "serial", workers=1, quiet=True)
    dask = run_sweep(scenario, 5, tmp_path / "dask", workers=2, quiet=True, scheduler=scheduler)
    assert dask.complete
    pd.testing.assert_frame_equal(runs_of(serial.folder.root), runs_of(dask.folder.root))
    pd.testing.assert_frame_equal(pd.read_parquet(serial.folder.root / "points.parquet"),
                                  pd.read_parquet(dask.folder.root / "points.parquet"))
    assert json.loads((dask.folder.root / "manifest.json").read_text())["scheduler"] == scheduler


def test_main_job_on_dask_from_the_command_line_equals_serial(scheduler, tmp_path):
    common = [str(REPO / "run.py"), str(TINY), "--runs", "500", "--seed", "3", "--engine", "mesa", "--quiet"]
    for name, extra in (("serial", ["--workers", "1"]), ("dask", ["--workers", "2", "--scheduler", scheduler])):
        done = subprocess.run([sys.executable, *common, "--out", str(tmp_path / name), *extra], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "serial" / "replications.parquet"),
                                  pd.read_parquet(tmp_path / "dask" / "replications.parquet"))


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "run.py"), str(TINY), "--quiet", "--out", str(tmp_path / "x"),
                           "--scheduler", "tcp://127.0.0.1:9"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "cannot reach a Dask scheduler" in done.stderr and "Traceback" not in done.stderr
