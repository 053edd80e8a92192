"""What the benchmark scripts share: a wall clock, and the peak memory of a whole process tree."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tree_rss_mib() -> float:
    """Resident memory of this process and all its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid = int(status.parent.name)
        parents[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    family, grew = {os.getpid()}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return sum(rss.get(pid, 0) for pid in family) / 1024


class PeakTreeMemory:
    """Samples `tree_rss_mib` every 20 ms while the `with` block runs; `.peak` is the largest seen."""

    def __init__(self, every: float = 0.02):
        self.every, self.peak = every, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, tree_rss_mib())

    def __enter__(self) -> PeakTreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def run_child(script: str, *args: str) -> dict | None:
    """Run `script --child ARGS` in a fresh interpreter (so its peak memory is its own); the child
    prints one JSON line last. Prints the child's errors and returns None if it failed."""
    out = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True,
                         cwd=Path(script).resolve().parent.parent)
    if out.returncode:
        print(out.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def benchmark_args(doc: str, runs: int, runs_help: str) -> argparse.Namespace:
    """--runs, --million and the hidden --child (the fresh-process half of a memory measurement)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs, help=runs_help)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()
