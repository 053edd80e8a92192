"""What every experiment is told: what to run (`Job`), where its files go (`Output`), and how runs
are executed (`Execution`, which never changes the results)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from model.negotiation.engines import DEFAULT_ENGINE
from model.scenario.schema import Scenario


@dataclass(frozen=True)
class Job:
    """A validated scenario under a root seed, and where both came from (for the manifest)."""

    scenario: Scenario
    seed: int
    seed_source: str = "scenario"  # scenario / --seed / entropy
    scenario_file: str = ""
    command: tuple[str, ...] = ()  # the command line that asked for it (for the manifest)


@dataclass(frozen=True)
class Output:
    """The output folder; `fresh` clears what earlier runs wrote there, `quiet` hides progress."""

    root: Path
    fresh: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class Execution:
    """Where and how runs execute: none of it changes the numbers (tests/test_model.py)."""

    workers: int = 1
    engine: str = DEFAULT_ENGINE
    scheduler: str | None = None  # a Dask scheduler's address, or None for the local process pool
    chunk_size: int | None = None  # runs per chunk; None: sized from a short timed pilot
    # keep the local worker processes for the next job (validate runs one per case); else they exit
    # once the job's runs are done, so their memory is free for its tables and figures
    keep_workers: bool = False


def default_workers() -> int:
    return os.cpu_count() or 1
