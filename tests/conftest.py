"""Shared fixtures: the tiny test summit, and a factory for hand-built scenarios."""

from __future__ import annotations

import contextlib
import copy
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from model.interfaces.cli import main

from model.scenario.files import load_scenario, validate
from model.scenario.schema import Scenario

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny.yaml"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny() -> Scenario:
    return load_scenario(TINY)


@dataclass
class Ran:
    """What a command printed and returned."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, cwd=REPO) -> Ran:
    """`python run.py ARGS` run in this process (the CLI's `main(argv)`), output captured: ~20x
    cheaper than a subprocess. `cli_process` runs the real thing, for signals and end-to-end checks."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # --help
            code = exc.code
    return Ran(code, out.getvalue(), err.getvalue())


def cli_process(*args: str, cwd=REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python run.py ARGS` as a user would run it, in a process of its own; output captured."""
    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=env)


def make_scenario(ideals: dict[str, dict[str, float]], *, status_quo: dict[str, float] | float = 50.0,
                  salience: float | dict[str, dict[str, float]] = 1.0, capability=None, protocol: dict | None = None,
                  defaults: dict | None = None, members: dict | None = None, issues: dict | None = None,
                  replications: int = 50, seed: int = 11) -> Scenario:
    """A scenario from fixed ideal points {member: {issue: x}}; every member in one bloc unless set.

    Noise and the preparatory failure cost are off, and the summit has one drafting session, unless
    `protocol` / `defaults` turn them on, so the rules can be checked against closed forms."""
    names = sorted({k for row in ideals.values() for k in row})
    quo = status_quo if isinstance(status_quo, dict) else dict.fromkeys(names, status_quo)
    raw = {
        "schema_version": 2,
        "name": "handmade",
        "issues": {k: {"label": k, "anchors": {0: "low", 100: "high"}, "status_quo": quo[k]}
                   | (issues or {}).get(k, {}) for k in names},
        "blocs": {"A": {"label": "A"}, "B": {"label": "B"}},
        "member_defaults": {"anchoring": 0.5, "failure_cost": 0.0} | (defaults or {}),
        "members": {},
        "protocol": {"rounds": 6, "summit_sessions": 1, "acceptance_noise": 0.0, "preparatory_cost_share": 0.0,
                     "fallback": "no_declaration"} | (protocol or {}),
        "run": {"replications": replications, "seed": seed},
    }
    for code, row in ideals.items():
        own = salience.get(code, {}) if isinstance(salience, dict) else {}
        raw["members"][code] = {
            "name": code, "bloc": "A",
            "capability": (capability or {}).get(code, 1.0),
            "ideal": dict(row),
            "salience": {k: own.get(k, 1.0) if isinstance(salience, dict) else salience for k in names},
        } | copy.deepcopy((members or {}).get(code, {}))
    return validate(raw, "<test>")


def assert_text_fits(fig, context: str = "") -> None:
    """Every drawn text lies inside the figure and overlaps no other text (what a reader sees)."""
    import itertools
    from unittest import mock

    from matplotlib.text import Text

    seen, draw = [], Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            seen.append(self)
        return draw(self, renderer)

    with mock.patch.object(Text, "draw", record):
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in seen]
    for text, box in boxes:
        assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, (context, text)
        assert fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1, (context, text)
    for (t1, b1), (t2, b2) in itertools.combinations(boxes, 2):
        assert not b1.shrunk(0.98, 0.9).overlaps(b2.shrunk(0.98, 0.9)), (context, t1, t2)
