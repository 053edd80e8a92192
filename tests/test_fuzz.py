"""Bad input, by hand and at random: every case exits 2 with ONE `error:` message naming the file
and the key path (or the flag), and never a traceback or an exception escaping `main`.

* `CASES`: hand-made bad files and command lines (encodings, `extends`, YAML syntax, an alias bomb,
  size, duplicate keys, inf/nan, booleans, fractions in whole-number fields, ranges, unknown keys,
  members, issues and blocs, a file's invalid value under an overriding flag, errors in a parent
  file, damaged results folders, flags, sweep ranges, missing subcommands, huge echoed values).
* `test_every_number_field_refuses_...`: every number in tests/data/tiny.yaml (and the optional
  ones it leaves out) set to .inf, -.inf, .nan and true (and whole-number fields to 8.5), in the
  file and with --set; the message names the key path exactly (`path: problem`).
* Hypothesis: random mutations of tiny.yaml's data, duplicated lines, random --set items. Each
  example either runs (exit 0: the mutation happened to be valid) or exits 2 with one message.
* The memory-hungry cases (a 9^9 alias bomb, 50 MB of random bytes, a 6 MB YAML file) run in a
  process of their own under a 1.5 GB address-space limit and a timeout, so a regression fails
  instead of hanging or swapping the suite.

Valid cases run with `--runs 2 --seed 1 --quiet`, and with the figures stubbed out (drawing them
costs seconds and is not what is tested here). The tally of cases (tried / clean) is printed at
the end of the module (`-rA` not needed: it goes to the terminal reporter).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import random
import re
import resource
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import REPO, TINY, Ran, cli

BASELINE = REPO / "scenarios" / "baseline.yaml"
TINY_SWEEP = TINY.parent / "tiny-sweep.yaml"
MAX_LINE = 400  # no message line longer than this, whatever the input's size
JUNK = re.compile(r" at 0x[0-9a-f]+|functools\.|function-(after|before|wrap|plain)\[")  # pydantic internals
RUN_FLAGS = ("--runs", "2", "--seed", "1", "--quiet")

TALLY: Counter = Counter()  # "<group> tried", "<group> clean", "<group> valid"


# ---------------------------------------------------------------- helpers
@pytest.fixture(scope="module", autouse=True)
def no_figures(request):
    """Stub the figures out (seconds each; not what is tested here), and print the tally at the end."""
    from model.experiments import runner, sweep

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "save_figures", lambda *a, **k: [])
        mp.setattr(sweep, "save_sweep_figures", lambda *a, **k: [])
        yield
    groups = sorted({key.rsplit(" ", 1)[0] for key in TALLY})
    lines = [f"  {g}: tried {TALLY[g + ' tried']}, clean {TALLY[g + ' clean']} (exit 2, one error:, no traceback)"
             + (f", valid {TALLY[g + ' valid']} (exit 0)" if TALLY[g + " valid"] else "") for g in groups]
    total = sum(TALLY[g + " tried"] for g in groups), sum(TALLY[g + " clean"] for g in groups)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and TALLY:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"\ntest_fuzz tally: tried {total[0]}, clean {total[1]}")
            for line in lines:
                reporter.write_line(line)


def is_clean(ran) -> bool:
    """Exit 2, exactly one line starting with `error:`, no traceback anywhere."""
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    return ran.returncode == 2 and len(errors) == 1 and "Traceback" not in ran.stderr + ran.stdout


def run_cli(group: str, *args: str) -> Ran:
    """`cli(*args)`, tallied; an exception escaping `main` is tallied as tried-but-not-clean and re-raised."""
    TALLY[group + " tried"] += 1
    ran = cli(*args)
    if ran.returncode == 0:
        TALLY[group + " valid"] += 1
    elif is_clean(ran):
        TALLY[group + " clean"] += 1
    return ran


def assert_one_message(ran, *fragments: str, absent: tuple[str, ...] = (), max_line: int = MAX_LINE) -> None:
    """Exit 2; one `error:` line start (a message may go on over more lines when it lists several
    problems); each fragment named; none of `absent`; no traceback, no pydantic internals, no line
    longer than `max_line`."""
    shown = f"exit {ran.returncode}\nstdout: {ran.stdout[:2000]}\nstderr: {ran.stderr[:3000]}"
    assert ran.returncode == 2, shown
    assert "Traceback" not in ran.stderr + ran.stdout, shown
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, shown
    for fragment in fragments:
        assert fragment in ran.stderr, (fragment, shown)
    for fragment in absent:
        assert fragment not in ran.stderr, (fragment, shown)
    assert not JUNK.search(ran.stderr), ("pydantic internals in the message", shown)
    longest = max((len(line) for line in ran.stderr.splitlines()), default=0)
    assert longest <= max_line, (f"a message line of {longest} characters", shown[:1500])


def bomb_lines(levels: int = 9, indent: str = "") -> list[str]:
    """A 'billion laughs' document: level i holds 9 aliases of level i-1, so level `levels`-1 expands to 9^levels values."""
    lines = [f"{indent}l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return lines


def inline_bomb(levels: int = 9) -> str:
    """The same bomb as one YAML flow mapping (for --set VALUE)."""
    items = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    items += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "{" + ", ".join(items) + "}"


# ---------------------------------------------------------------- the hand-made table
EXT = f"extends: {TINY}\n"  # every small bad file builds on the tiny summit
T = str(TINY)


@dataclass
class Case:
    """A bad input: files written into tmp_path ({tmp} and {T} are filled in), the command line
    (default: the main job on {tmp}/s.yaml), the fragments the message must name (and must not)."""

    id: str
    yaml: str | bytes | None = None  # written as {tmp}/s.yaml
    args: tuple[str, ...] = ("{tmp}/s.yaml",)
    expect: tuple[str, ...] = ()
    files: dict[str, str | bytes] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    flags: bool = True  # append --runs 2 --seed 1 --quiet (and --out {tmp}/out, always, unless given)
    max_line: int = MAX_LINE


def junk_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


NINE = "9" * 5000  # more digits than Python converts to an int by default (4300)
LONG = "Z" * 100_000
CASES = [
    # -- encodings
    Case("latin-1 byte", b"extends: {T}\nname: caf\xe9\n", expect=("{tmp}/s.yaml", "not UTF-8", "0xe9", "UTF-8")),
    Case("utf-16 with BOM", f"{EXT}name: x\n".encode("utf-16"), expect=("{tmp}/s.yaml", "not UTF-8", "0xff")),
    Case("utf-16-be with BOM", ("\ufeff" + f"{EXT}name: x\n").encode("utf-16-be"), expect=("{tmp}/s.yaml", "not UTF-8")),
    Case("utf-32", f"{EXT}name: x\n".encode("utf-32"), expect=("{tmp}/s.yaml", "not UTF-8")),
    Case("binary junk", junk_bytes(4096), expect=("{tmp}/s.yaml", "not UTF-8")),
    Case("binary junk after valid text", EXT.encode() + b"name: tiny\n" + junk_bytes(64, 1), expect=("{tmp}/s.yaml", "not UTF-8")),
    Case("NUL byte", f"{EXT}name: a\x00b\n", expect=("{tmp}/s.yaml", "YAML")),
    Case("control character", f"{EXT}name: a\x07b\n", expect=("{tmp}/s.yaml", "YAML")),
    # -- extends
    Case("extends a latin-1 file", "extends: p.yaml\n", files={"p.yaml": b"name: caf\xe9\n"},
         expect=("p.yaml", "not UTF-8", "0xe9")),
    Case("extends a utf-16 file", "extends: p.yaml\n", files={"p.yaml": f"{EXT}name: x\n".encode("utf-16")},
         expect=("p.yaml", "not UTF-8")),
    Case("extends binary junk", "extends: p.yaml\n", files={"p.yaml": junk_bytes(2048, 2)}, expect=("p.yaml", "not UTF-8")),
    Case("extends /etc/passwd", "extends: /etc/passwd\n", expect=("{tmp}/s.yaml", "extends", "/etc/passwd", ".yaml"),
         absent=("root:", "/bin/", "nologin")),
    Case("extends a .txt file", "extends: p.txt\n", files={"p.txt": f"{EXT}secret: 42\n"},
         expect=("{tmp}/s.yaml", "extends", "p.txt", ".yaml"), absent=("secret",)),
    Case("extends ''", "extends: ''\n", expect=("{tmp}/s.yaml", "extends", "''")),
    Case("extends blank", "extends: '   '\n", expect=("{tmp}/s.yaml", "extends")),
    Case("extends a list", "extends: [a.yaml, b.yaml]\n", expect=("{tmp}/s.yaml", "extends")),
    Case("extends a number", "extends: 3\n", expect=("{tmp}/s.yaml", "extends")),
    Case("extends a missing file", "extends: missing.yaml\n", expect=("{tmp}/s.yaml", "missing.yaml", "no such file")),
    Case("extends itself", "extends: s.yaml\n", expect=("{tmp}/s.yaml", "circular")),
    Case("extends a cycle", "extends: p.yaml\n", files={"p.yaml": "extends: s.yaml\n"}, expect=("circular",)),
    Case("extends a folder named .yaml", "extends: d.yaml\n", files={"d.yaml/": ""}, expect=("{tmp}/s.yaml", "d.yaml")),
    # -- the file itself
    Case("not a .yaml file", args=("{tmp}/s.txt",), files={"s.txt": f"{EXT}"}, expect=("{tmp}/s.txt", ".yaml")),
    Case("missing file", args=("{tmp}/nope.yaml",), expect=("{tmp}/nope.yaml", "not found")),
    Case("empty file", "", expect=("{tmp}/s.yaml", "mapping")),
    Case("a list at the top", "- a\n- b\n", expect=("{tmp}/s.yaml", "mapping")),
    Case("a scalar at the top", "hello\n", expect=("{tmp}/s.yaml", "mapping")),
    Case("over 5 MB", "# " + "x" * 5_200_000 + "\n", expect=("{tmp}/s.yaml", "5,000,000")),
    # -- YAML syntax
    Case("unclosed bracket", f"{EXT}name: [unclosed\n", expect=("{tmp}/s.yaml", "line 3", "YAML syntax error")),
    Case("tab indentation", f"{EXT}protocol:\n\trounds: 3\n", expect=("{tmp}/s.yaml", "line 3", "YAML")),
    Case("bad indentation", f"{EXT}protocol:\n    rounds: 3\n  summit_sessions: 2\n", expect=("{tmp}/s.yaml", "line 4", "YAML")),
    Case("undefined alias", f"{EXT}name: *nowhere\n", expect=("{tmp}/s.yaml", "line 2", "YAML")),
    Case("python tag", f"{EXT}name: !!python/object/apply:os.system [ls]\n", expect=("{tmp}/s.yaml", "line 2", "YAML")),
    Case("unhashable key", f"{EXT}? [a, b]\n: 3\n", expect=("{tmp}/s.yaml", "YAML")),
    Case("alias bomb (in process: 9^7)", EXT + "x-bomb:\n" + "\n".join(bomb_lines(7, "  ")) + "\nname: *l6\n",
         expect=("{tmp}/s.yaml", "expands to more than")),
    Case("nested 100,000 deep", f"{EXT}name: " + "[" * 100_000 + "]" * 100_000 + "\n", expect=("{tmp}/s.yaml", "nest")),
    Case("nested 600 deep in the file", f"{EXT}name: " + "[" * 600 + "]" * 600 + "\n", expect=("{tmp}/s.yaml", "nested")),
    Case("nested 600 deep in --set", args=(T, "--set", "name=" + "[" * 600 + "]" * 600), expect=("--set", "name", "nested")),
    Case("nested 60 deep mappings", f"{EXT}protocol: " + "{a: " * 60 + "1" + "}" * 60 + "\n", expect=("{tmp}/s.yaml", "nested")),
    # -- duplicate keys, at any level
    Case("duplicate top-level key", f"{EXT}name: a\nname: b\n", expect=("{tmp}/s.yaml", "'name'", "lines 2 and 3")),
    Case("duplicate key in a block", f"{EXT}protocol:\n  rounds: 3\n  rounds: 4\n", expect=("'rounds'", "lines 3 and 4")),
    Case("duplicate key in a flow mapping", f"{EXT}protocol: {{rounds: 3, rounds: 4}}\n", expect=("'rounds'", "twice")),
    Case("duplicate member", "members:\n  AAA: {name: a}\n  AAA: {name: b}\n" + EXT,
         expect=("'AAA'", "lines 2 and 3")),
    Case("duplicate key four levels down", f"{EXT}members:\n  AAA:\n    ideal:\n      spending: 3\n      spending: 4\n",
         expect=("'spending'", "lines 5 and 6")),
    Case("duplicate number key", f"{EXT}issues:\n  ukraine:\n    anchors: {{0: a, 0: b, 100: c}}\n", expect=("0", "twice")),
    Case("duplicate key in the parent", "extends: p.yaml\n", files={"p.yaml": f"{EXT}name: a\nname: b\n"},
         expect=("p.yaml", "'name'", "lines 2 and 3")),
    # -- inf, -inf, nan
    Case(".inf", f"{EXT}protocol: {{acceptance_noise: .inf}}\n", expect=("{tmp}/s.yaml", "protocol.acceptance_noise", "finite")),
    Case("-.inf in a scalar ideal", f"{EXT}members: {{AAA: {{ideal: {{spending: -.inf}}}}}}\n",
         expect=("members.AAA.ideal.spending: ",)),
    Case(".nan", f"{EXT}capability: {{exponent: .nan}}\n", expect=("capability.exponent", "finite")),
    Case(".nan in a distribution", f"{EXT}members: {{BBB: {{ideal: {{ukraine: {{dist: pert, low: 50, mode: .nan, high: 75}}}}}}}}\n",
         expect=("members.BBB.ideal.ukraine.mode", "finite")),
    Case(".inf as an anchor level", f"{EXT}issues: {{ukraine: {{anchors: {{0: a, .inf: b, 100: c}}}}}}\n",
         expect=("issues.ukraine.anchors",)),
    Case("--set .inf", args=(T, "--set", "protocol.preparatory_cost_share=.inf"),
         expect=("--set protocol.preparatory_cost_share", "finite")),
    Case("--set -.inf", args=(T, "--set", "member_defaults.failure_cost=-.inf"), expect=("member_defaults.failure_cost",)),
    Case("--set .nan", args=(T, "--set", "members.CCC.price.ukraine=.nan"), expect=("members.CCC.price.ukraine", "finite")),
    Case(".inf failure cost", f"{EXT}members: {{BBB: {{failure_cost: .inf}}}}\n", expect=("members.BBB.failure_cost", "finite")),
    Case(".inf carve-out cost (no exemptions is null)", f"{EXT}issues: {{spending: {{carve_out_cost: .inf}}}}\n",
         expect=("issues.spending.carve_out_cost", "finite")),
    Case("--set .inf seed", args=(T, "--set", "run.seed=.inf"), expect=("run.seed",), flags=False),
    Case("--sweep inf", args=("sweep", T, "--sweep", "protocol.acceptance_noise=0:inf:3"),
         expect=("protocol.acceptance_noise", "finite")),
    Case("--sweep nan", args=("sweep", T, "--sweep", "protocol.acceptance_noise=nan:1:3"),
         expect=("protocol.acceptance_noise", "finite")),
    # -- booleans where numbers are expected
    Case("rounds: true", f"{EXT}protocol: {{rounds: true}}\n", expect=("{tmp}/s.yaml", "protocol.rounds")),
    Case("capability: yes", f"{EXT}members: {{AAA: {{capability: yes}}}}\n", expect=("members.AAA.capability", "true")),
    Case("failure_cost: no", f"{EXT}member_defaults: {{failure_cost: no}}\n", expect=("member_defaults.failure_cost", "false")),
    Case("status_quo: yes", f"{EXT}issues: {{ukraine: {{status_quo: yes}}}}\n", expect=("issues.ukraine.status_quo", "true")),
    Case("replications: on", f"{EXT}run: {{replications: on}}\n", expect=("run.replications",), flags=False),
    Case("scalar ideal: true", f"{EXT}members: {{AAA: {{ideal: {{spending: true}}}}}}\n",
         expect=("members.AAA.ideal.spending: ",)),
    Case("--set rounds=true", args=(T, "--set", "protocol.rounds=true"), expect=("--set protocol.rounds", "protocol.rounds")),
    Case("--set replications=true beside --runs", args=(T, "--set", "run.replications=true", "--runs", "2"),
         expect=("--set run.replications=true", "valid integer"), flags=False),
    Case("--set seed beside --seed", args=(T, "--set", "run.seed=-1", "--seed", "2"),
         expect=("--set run.seed=-1", "greater than or equal to 0"), flags=False),
    # -- whole numbers given fractions
    Case("rounds: 8.5", f"{EXT}protocol: {{rounds: 8.5}}\n", expect=("protocol.rounds", "8.5")),
    Case("replications: 8.5", f"{EXT}run: {{replications: 8.5}}\n", expect=("run.replications", "8.5"), flags=False),
    Case("seed: 1.5", f"{EXT}run: {{seed: 1.5}}\n", expect=("run.seed", "1.5"), flags=False),
    Case("joined: 1999.5", f"{EXT}members: {{AAA: {{joined: 1999.5}}}}\n", expect=("members.AAA.joined",)),
    Case("--set rounds=8.5", args=(T, "--set", "protocol.rounds=8.5"), expect=("protocol.rounds", "8.5")),
    Case("sweep levels: 2.5", f"{EXT}sweep: {{parameters: {{protocol.rounds: {{low: 2, high: 6, levels: 2.5}}}}}}\n",
         args=("sweep", "{tmp}/s.yaml"), expect=("sweep.parameters.protocol.rounds.levels",)),
    # -- out of range
    Case("rounds: 0", f"{EXT}protocol: {{rounds: 0}}\n", expect=("protocol.rounds", "1")),
    Case("rounds: 201", f"{EXT}protocol: {{rounds: 201}}\n", expect=("protocol.rounds", "200")),
    Case("salience 1.5", f"{EXT}members: {{AAA: {{salience: {{ukraine: 1.5}}}}}}\n", expect=("members.AAA.salience.ukraine",)),
    Case("scalar ideal 101", f"{EXT}members: {{AAA: {{ideal: {{spending: 101}}}}}}\n",
         expect=("members.AAA.ideal.spending: ",)),
    Case("uniform low > high", f"{EXT}members: {{AAA: {{ideal: {{ukraine: {{dist: uniform, low: 60, high: 40}}}}}}}}\n",
         expect=("members.AAA.ideal.ukraine", "low")),
    Case("truncnormal sd 0", f"{EXT}members: {{CCC: {{ideal: {{ukraine: {{dist: truncnormal, mean: 80, sd: 0}}}}}}}}\n",
         expect=("members.CCC.ideal.ukraine.sd",)),
    Case("unknown distribution", f"{EXT}members: {{AAA: {{ideal: {{ukraine: {{dist: beta, a: 1}}}}}}}}\n",
         expect=("members.AAA.ideal.ukraine", "uniform")),
    Case("milex 65 %", f"{EXT}members: {{AAA: {{data: {{gdp_usd_bn: 1, milex_pct_gdp: 65}}}}}}\n",
         expect=("members.AAA.data.milex_pct_gdp",)),
    Case("negative gdp weight", f"{EXT}capability: {{gdp_weight: -0.1}}\n", expect=("capability.gdp_weight",)),
    Case("seed 2^64", f"{EXT}run: {{seed: 18446744073709551616}}\n", expect=("run.seed",), flags=False),
    Case("a format-1 key", f"{EXT}member_defaults: {{tolerance: 30, reservation: 20}}\n",
         expect=("member_defaults.tolerance", "removed in scenario format 2", "failure_cost")),
    Case("a format-1 file", f"{EXT}schema_version: 1\n", expect=("schema_version", "format 1 is no longer read")),
    Case("schema_version 3", f"{EXT}schema_version: 3\n", expect=("schema_version",)),
    Case("status quo 120", f"{EXT}issues: {{ukraine: {{status_quo: 120}}}}\n", expect=("issues.ukraine.status_quo", "100")),
    Case("no status quo", args=(T, "--set", "issues.ukraine.status_quo=null"), expect=("issues.ukraine.status_quo",)),
    Case("negative failure cost", f"{EXT}member_defaults: {{failure_cost: -1}}\n", expect=("member_defaults.failure_cost",)),
    Case("negative price", f"{EXT}members: {{CCC: {{price: {{ukraine: -3}}}}}}\n", expect=("members.CCC.price.ukraine",)),
    Case("a price on an unknown issue", f"{EXT}members: {{CCC: {{price: {{ukrane: 3}}}}}}\n",
         expect=("members.CCC.price.ukrane", "unknown issue")),
    Case("summit_sessions 0", f"{EXT}protocol: {{summit_sessions: 0}}\n", expect=("protocol.summit_sessions",)),
    Case("preparatory share 1.5", f"{EXT}protocol: {{preparatory_cost_share: 1.5}}\n",
         expect=("protocol.preparatory_cost_share",)),
    Case("drafting: later", f"{EXT}protocol: {{drafting: later}}\n", expect=("protocol.drafting", "summit")),
    Case("anchors without the scale ends", args=(T, "--set", "issues.ukraine.anchors={50: mid}"),
         expect=("issues.ukraine.anchors", "0 and 100")),
    Case("name with a slash", f"{EXT}name: ../../etc\n", expect=("name",)),
    Case("replications 10^9", args=(T, "--runs", "1000000000"), expect=("run.replications",), flags=False),
    # -- unknown keys and references
    Case("unknown top-level key", f"{EXT}colour: red\n", expect=("{tmp}/s.yaml", "colour", "unknown key")),
    Case("unknown protocol key", f"{EXT}protocol: {{roundz: 3}}\n", expect=("protocol.roundz", "unknown key")),
    Case("unknown member key", f"{EXT}members: {{AAA: {{ideology: left}}}}\n", expect=("members.AAA.ideology", "unknown key")),
    Case("many unknown keys", EXT + "".join(f"k{i}: 1\n" for i in range(50)), expect=("k0", "... and 38 more")),
    Case("unknown bloc reference", f"{EXT}members: {{AAA: {{bloc: Z}}}}\n", expect=("members.AAA.bloc", "'Z'", "A, B")),
    Case("unknown holdout", f"{EXT}observed: {{consensus: true, holdouts: [ZZZ]}}\n", expect=("observed.holdouts", "ZZZ")),
    Case("ideal of an unknown issue", f"{EXT}members: {{AAA: {{ideal: {{nukes: 3}}}}}}\n",
         expect=("members.AAA.ideal.nukes", "unknown issue")),
    Case("--set unknown key", args=(T, "--set", "protocol.foo=1"), expect=("--set protocol.foo", "unknown key")),
    Case("--set unknown member", args=(T, "--set", "members.ZZZ.ideal.ukraine=3"), expect=("'ZZZ'", "AAA, BBB, CCC")),
    Case("--set unknown issue", args=(T, "--set", "members.AAA.ideal.nukes=3"), expect=("members.AAA.ideal.nukes", "unknown issue")),
    Case("--set unknown bloc", args=(T, "--set", "blocs.Q.label=x"), expect=("'Q'", "A, B")),
    Case("--set unknown issue entry", args=(T, "--set", "issues.nukes.label=x"), expect=("'nukes'", "ukraine")),
    Case("--set without =", args=(T, "--set", "protocol.rounds"), expect=("--set", "PATH=VALUE")),
    Case("--set empty key", args=(T, "--set", "protocol..rounds=3"), expect=("protocol..rounds", "empty key")),
    Case("--set into a value", args=(T, "--set", "members.AAA.name.first=x"), expect=("members.AAA.name",)),
    Case("--set a whole collection", args=(T, "--set", "members=1"), expect=("members",)),
    Case("--set bad YAML", args=(T, "--set", "protocol.rounds=[unclosed"), expect=("--set", "YAML")),
    # -- a file's stated value is refused even when a flag overrides it
    Case("replications -5 under --runs 10", f"{EXT}run: {{replications: -5}}\n",
         args=("{tmp}/s.yaml", "--runs", "10", "--seed", "1", "--quiet", "--out", "{tmp}/out"),
         expect=("{tmp}/s.yaml", "run.replications", "-5"), flags=False),
    Case("seed -1 under --seed 3", f"{EXT}run: {{seed: -1}}\n",
         args=("{tmp}/s.yaml", "--seed", "3", "--runs", "2", "--quiet", "--out", "{tmp}/out"),
         expect=("run.seed", "-1"), flags=False),
    Case("rounds 0 under --set rounds=5", f"{EXT}protocol: {{rounds: 0}}\n",
         args=("{tmp}/s.yaml", "--set", "protocol.rounds=5"), expect=("{tmp}/s.yaml", "protocol.rounds")),
    # -- an error inside a parent file is reported against the parent
    Case("parent's bad value", "extends: p.yaml\nname: child\n", files={"p.yaml": f"{EXT}protocol: {{rounds: 0}}\n"},
         expect=("{tmp}/p.yaml: protocol.rounds",), absent=("s.yaml",)),
    Case("parent's unknown key", "extends: p.yaml\nname: child\n", files={"p.yaml": f"{EXT}protocl: {{rounds: 3}}\n"},
         expect=("{tmp}/p.yaml: protocl", "unknown key"), absent=("s.yaml",)),
    Case("grandparent's bad value", "extends: p.yaml\n", files={"p.yaml": "extends: g.yaml\nname: p\n",
                                                               "g.yaml": f"{EXT}capability: {{exponent: 3}}\n"},
         expect=("{tmp}/g.yaml: capability.exponent",), absent=("s.yaml", "p.yaml")),
    Case("child's null is the child's", f"{EXT}members: null\n", expect=("{tmp}/s.yaml", "members")),
    # -- damaged results folders
    Case("manifest.json a JSON list", args=(T, "--out", "{tmp}/res"), files={"res/manifest.json": "[1, 2]"},
         expect=("manifest.json", "--fresh")),
    Case("manifest.json binary", args=(T, "--out", "{tmp}/res"), files={"res/manifest.json": junk_bytes(200, 3)},
         expect=("manifest.json", "--fresh")),
    Case("manifest.json a folder", args=(T, "--out", "{tmp}/res"), files={"res/manifest.json/": ""},
         expect=("manifest.json",)),
    Case("manifest.json empty", args=(T, "--out", "{tmp}/res"), files={"res/manifest.json": ""}, expect=("manifest.json",)),
    Case("manifest.json without spec", args=(T, "--out", "{tmp}/res"), files={"res/manifest.json": '{"a": 1}'},
         expect=("manifest.json",)),
    Case("sweep into a damaged folder", args=("sweep", str(TINY_SWEEP), "--out", "{tmp}/res"),
         files={"res/manifest.json": "[]"}, expect=("manifest.json",)),
    # -- flags
    Case("--out ''", args=(T, "--out", ""), expect=("--out",), flags=False),
    Case("--out blank", args=(T, "--out", "  "), expect=("--out",), flags=False),
    Case("--workers 1000", args=(T, "--workers", "1000"), expect=("--workers 1000", f"at most {4 * (os.cpu_count() or 1)}",
                                                                  "4 per core")),
    # -- the 31 Allies
    Case("baseline: .inf for one Ally", args=(str(BASELINE), "--set", "members.POL.ideal.ukraine=.inf"),
         expect=("--set members.POL.ideal.ukraine", "members.POL.ideal.ukraine: ", "finite")),
    Case("baseline: an unknown Ally", args=(str(BASELINE), "--set", "members.XYZ.failure_cost=0.5"),
         expect=("'XYZ'", "POL", "TUR")),
    Case("baseline: duplicate Ally in a variant", f"extends: {BASELINE}\nmembers:\n  TUR: {{failure_cost: 1}}\n  TUR: {{failure_cost: 2}}\n",
         expect=("{tmp}/s.yaml", "'TUR'", "lines 3 and 4")),
    Case("baseline: a variant's bad bloc", f"extends: {BASELINE}\nmembers: {{HUN: {{bloc: nowhere}}}}\n",
         expect=("{tmp}/s.yaml", "members.HUN.bloc", "'nowhere'")),
    Case("baseline: a default out of range", f"extends: {BASELINE}\nmember_defaults: {{anchoring: 2}}\n",
         expect=("{tmp}/s.yaml", "member_defaults.anchoring")),
    Case("--runs 0", args=(T, "--runs", "0"), expect=("--runs",), flags=False),
    Case("--runs abc", args=(T, "--runs", "abc"), expect=("--runs", "'abc'"), flags=False),
    Case("--seed -1", args=(T, "--seed", "-1"), expect=("--seed",), flags=False),
    Case("--chunk-size 0", args=(T, "--chunk-size", "0"), expect=("--chunk-size",)),
    Case("--engine foo", args=(T, "--engine", "foo"), expect=("--engine",)),
    Case("unknown flag", args=(T, "--colour", "red"), expect=("--colour",)),
    Case("old flag", args=(T, "--replay", "3"), expect=("--replay", "replay")),
    # -- sweep ranges
    Case("--sweep low > high", args=("sweep", T, "--sweep", "protocol.rounds=8:2:3"), expect=("protocol.rounds", "low")),
    Case("--sweep not numbers", args=("sweep", T, "--sweep", "protocol.rounds=a:b"), expect=("--sweep", "numbers")),
    Case("--sweep without =", args=("sweep", T, "--sweep", "protocol.rounds"), expect=("--sweep", "PATH=LOW:HIGH")),
    Case("--sweep four parts", args=("sweep", T, "--sweep", "protocol.rounds=1:2:3:4"), expect=("--sweep",)),
    Case("--sweep one level", args=("sweep", T, "--sweep", "protocol.rounds=1:2:1"), expect=("levels",)),
    Case("--sweep fractional levels", args=("sweep", T, "--sweep", "protocol.rounds=1:2:2.5"), expect=("--sweep", "LEVELS")),
    Case("--sweep unknown path", args=("sweep", T, "--sweep", "protocol.nope=1:2:3"), expect=("protocol.nope",)),
    Case("--sweep unknown member", args=("sweep", T, "--sweep", "members.ZZZ.shift.ukraine=1:2:3"), expect=("'ZZZ'",)),
    Case("--sweep grid without levels", args=("sweep", T, "--sweep", "protocol.rounds=1:4"), expect=("levels",)),
    Case("sobol samples 3", args=("sweep", T, "--sweep", "protocol.rounds=1:2", "--design", "sobol", "--samples", "3"),
         expect=("power of two",)),
    Case("--target-halfwidth 0.6", args=("sweep", str(TINY_SWEEP), "--target-halfwidth", "0.6"), expect=("--target-halfwidth",)),
    Case("--shard 3/2", args=("sweep", str(TINY_SWEEP), "--shard", "3/2"), expect=("--shard", "3/2")),
    Case("--shard x", args=("sweep", str(TINY_SWEEP), "--shard", "x"), expect=("--shard",)),
    Case("--shard with sequential stopping", args=("sweep", str(TINY_SWEEP), "--target-halfwidth", "0.1", "--shard", "0/2"),
         expect=("--shard", "target_halfwidth")),
    Case("sweep without a sweep block", args=("sweep", T), expect=("no sweep",)),
    Case("unknown sweep outcome", f"{EXT}sweep: {{outcome: turnout, parameters: {{protocol.rounds: {{low: 2, high: 4, levels: 2}}}}}}\n",
         args=("sweep", "{tmp}/s.yaml"), expect=("sweep.outcome", "turnout")),
    # -- without a subcommand
    Case("a folder without a subcommand", args=("{tmp}",), expect=("validate",), flags=False),
    Case("a sweep file without a subcommand", args=(str(TINY_SWEEP),), expect=("python run.py sweep",)),
    Case("validate a file", args=("validate", T), expect=("validate", "folder")),
    Case("replay a negative replication", args=("replay", T, "-3"), expect=("replication",), flags=False),
    # -- echoed values are cut
    Case("huge invalid name (cut)", f"{EXT}name: " + "x!" * 50_000 + "\n", expect=("name",)),
    Case("huge duplicate key (cut)", f"{EXT}references: {{{'k' * 1000}: a, {'k' * 1000}: b}}\n", expect=("twice",)),
    Case("huge --set path", args=(T, "--set", "x" * 100_000 + "=1"), expect=("--set",)),
    Case("huge --set member", args=(T, "--set", f"members.{LONG}.name=x"), expect=("unknown member",)),
    Case("huge --set invalid value", args=(T, "--set", "protocol.rounds=" + "x" * 100_000), expect=("protocol.rounds",)),
    Case("huge --set YAML error", args=(T, "--set", "protocol.rounds=[" + "x" * 100_000), expect=("--set",)),
    Case("--set alias bomb (9^5, in process)", args=(T, "--set", "members.AAA.ideal.ukraine=" + inline_bomb(5)),
         expect=("members.AAA.ideal.ukraine",)),
    Case("huge bloc reference", f"{EXT}members: {{AAA: {{bloc: {LONG}}}}}\n", expect=("members.AAA.bloc",)),
    Case("huge holdout", f"{EXT}observed: {{consensus: true, holdouts: [{LONG}]}}\n", expect=("observed.holdouts",)),
    Case("huge issue key", f"{EXT}members: {{AAA: {{ideal: {{{'Z' * 1000}: 3}}}}}}\n", expect=("unknown issue",)),
    Case("huge sweep outcome", f"{EXT}sweep: {{outcome: {LONG}, parameters: {{protocol.rounds: {{low: 2, high: 4, levels: 2}}}}}}\n",
         args=("sweep", "{tmp}/s.yaml"), expect=("sweep.outcome",)),
    Case("huge --sweep path", args=("sweep", T, "--sweep", "x" * 100_000 + "=1:2:3"), expect=("sweep.parameters.xxx",)),
    Case("huge --sweep text", args=("sweep", T, "--sweep", "x" * 100_000), expect=("--sweep",)),
    Case("huge --runs text", args=(T, "--runs", "x" * 100_000), expect=("--runs",), flags=False),
    Case("many long bloc names listed", f"{EXT}members: {{AAA: {{bloc: Z}}}}\nblocs: {{"
         + ", ".join(f"{'b' * 300}{i}: {{label: x}}" for i in range(60)) + "}\n", expect=("members.AAA.bloc",)),
    # -- huge integers
    Case("5000-digit integer in the file", f"{EXT}protocol: {{rounds: {NINE}}}\n", expect=("(line 2)", "digits")),
    Case("5000-digit integer in --set", args=(T, "--set", f"protocol.rounds={NINE}"), expect=("--set", "protocol.rounds")),
    Case("400-digit integer in a float field", f"{EXT}protocol: {{acceptance_noise: {'9' * 400}}}\n",
         expect=("protocol.acceptance_noise",)),
]


def fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{T}", T)


def materialize(case: Case, tmp: Path) -> list[str]:
    """Write the case's files into `tmp`; its command line."""
    if case.yaml is not None:
        data = case.yaml if isinstance(case.yaml, bytes) else case.yaml.encode()
        (tmp / "s.yaml").write_bytes(data.replace(b"{T}", T.encode()))
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    args = [fill(a, tmp) for a in case.args]
    if case.flags:
        args += RUN_FLAGS
    if "--out" not in args:  # so that an input wrongly accepted never writes under results/
        args += ["--out", str(tmp / "out")]
    return args


def _params(cases):
    ids = Counter(c.id for c in cases)
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1]
    return [pytest.param(c, id=c.id)
            for c in cases]


def test_the_table_has_enough_cases():
    assert len(CASES) >= 60, len(CASES)


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input_exits_2_with_one_message(case: Case, tmp_path: Path):
    args = materialize(case, tmp_path)
    ran = run_cli("table", *args)
    assert_one_message(ran, *(fill(f, tmp_path) for f in case.expect), absent=tuple(fill(a, tmp_path) for a in case.absent),
                       max_line=case.max_line)


# ---------------------------------------------------------------- every number field
RAW = yaml.safe_load(TINY.read_text())
OPTIONAL_NUMBERS = ("capability.gdp_weight", "capability.exponent", "protocol.influence.self_weight",
                    "protocol.influence.same_bloc_weight", "members.AAA.capability", "members.AAA.joined",
                    "members.BBB.failure_cost", "members.BBB.price.spending", "members.CCC.anchoring",
                    "members.AAA.shift.ukraine", "blocs.A.shift.spending", "issues.ukraine.carve_out_cost",
                    "members.BBB.data.population_m")
WHOLE = {"protocol.rounds", "run.replications", "run.seed", "members.AAA.joined", "schema_version"}


def leaves(node, prefix=()):
    """(key path, value) of every leaf of plain scenario data."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*prefix, str(key)))
    else:
        yield ".".join(prefix), node


def number_paths() -> list[str]:
    given = [path for path, value in leaves(RAW) if isinstance(value, int | float) and not isinstance(value, bool)
             and ".anchors." not in path]
    return sorted(set(given) | set(OPTIONAL_NUMBERS))


def set_in(raw: dict, dotted: str, value) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def _field_params():
    params = []
    for path, value, where in itertools.product(number_paths(), (".inf", "-.inf", ".nan", "true", "8.5"), ("file", "--set")):
        if value == "8.5" and path not in WHOLE:
            continue  # 8.5 is a fine value for most number fields
        params.append(pytest.param(path, value, where, id=f"{where} {path}={value}"))
    return params


@pytest.mark.parametrize(("path", "value", "where"), _field_params())
def test_every_number_field_refuses_inf_nan_booleans_and_fractions(path, value, where, tmp_path):
    """Each number of the tiny summit (and the optional ones), in the file and with --set."""
    flags = ("--quiet", "--out", str(tmp_path / "out"))  # no --runs / --seed: they would override run.*
    if where == "file":
        raw = copy.deepcopy(RAW)
        set_in(raw, path, yaml.safe_load(value))
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        ran = run_cli("number fields", str(tmp_path / "s.yaml"), *flags)
    else:
        ran = run_cli("number fields", T, "--set", f"{path}={value}", *flags)
    assert_one_message(ran, f"{path}: ", *((f"--set {path}={value}",) if where == "--set" else (str(tmp_path / "s.yaml"),)))


# ---------------------------------------------------------------- hypothesis: random mutations
def key_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from key_paths(value, (*prefix, key))


PATHS = list(key_paths(RAW))


def _get(raw, path):
    node = raw
    for key in path:
        node = node[key]
    return node


MAPPINGS = [()] + [p for p in PATHS if isinstance(_get(RAW, p), dict)]
HUGE = [10**300, -(10**300), 2**63, 2**64, -(2**63) - 1, 10**999, 1e308, -1e308, 5e-324]
bad_values = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "yes", "no", "null", "~", "-", "0x10", "1_000", "1e3", "NaN", "inf", "∞", "AAA", "A"]),
    st.lists(st.one_of(st.integers(-5, 105), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(-5, 105), st.none()), max_size=3),
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("inf"), float("-inf"), float("nan")]),
    st.integers(-1000, -1),
    st.floats(-1e6, -1e-6),
    st.sampled_from([{"dist": "uniform"}, {"dist": "pert", "low": 0, "mode": 200, "high": 100}, {"dist": None},
                     {"dist": "truncnormal", "mean": 50, "sd": -1}, {"low": 1, "high": 2}]),
)
mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(PATHS), bad_values),
    st.tuples(st.just("drop"), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just("add"), st.sampled_from(MAPPINGS), st.tuples(st.text(min_size=1, max_size=12), bad_values)),
)


def mutate(raw: dict, change) -> None:
    kind, path, value = change
    try:
        parent = _get(raw, path[:-1]) if kind != "add" else _get(raw, path)
    except (KeyError, TypeError):
        return  # an earlier change replaced or dropped the way there
    if not isinstance(parent, dict):
        return
    if kind == "set":
        parent[path[-1]] = value
    elif kind == "drop":
        parent.pop(path[-1], None)
    else:
        key, new = value
        parent[key] = new


_example = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def new_dir(scratch: Path) -> Path:
    folder = scratch / f"ex{next(_example):05d}"
    folder.mkdir()
    return folder


def assert_exit_0_or_one_message(ran: Ran) -> None:
    shown = f"exit {ran.returncode}\nstdout: {ran.stdout[:1500]}\nstderr: {ran.stderr[:3000]}"
    assert ran.returncode in (0, 2), shown
    assert "Traceback" not in ran.stderr + ran.stdout, shown
    if ran.returncode == 2:
        assert is_clean(ran), shown


FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(changes=st.lists(mutation, min_size=1, max_size=3))
def test_random_mutations_of_the_file_run_or_exit_2_with_one_message(scratch, changes):
    raw = copy.deepcopy(RAW)
    for change in changes:
        mutate(raw, change)
    folder = new_dir(scratch)
    (folder / "s.yaml").write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    ran = run_cli("hypothesis file mutations", str(folder / "s.yaml"), *RUN_FLAGS, "--out", str(folder / "out"))
    assert_exit_0_or_one_message(ran)


KEY_LINES = [i for i, line in enumerate(TINY.read_text().splitlines()) if re.match(r"\s*[\w.-]+:", line)]
SCALAR_LINES = [i for i, line in enumerate(TINY.read_text().splitlines()) if re.match(r"\s*[\w.-]+: *[^\s{]", line)]


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(choice=st.one_of(st.tuples(st.sampled_from(KEY_LINES), st.just("same")),
                        st.tuples(st.sampled_from(SCALAR_LINES), st.just("other value"))))
def test_a_duplicated_line_is_a_duplicate_key_naming_both_lines(scratch, choice):
    """Any `key:` line of tiny.yaml given twice (at its own level; the copy with the same or
    another value) is refused, naming both lines."""
    line, edit = choice
    lines = TINY.read_text().splitlines()
    copied = lines[line] if edit == "same" else re.sub(r":.*", ": 1", lines[line])
    lines.insert(line + 1, copied)
    folder = new_dir(scratch)
    (folder / "s.yaml").write_text("\n".join(lines) + "\n")
    ran = run_cli("hypothesis duplicated lines", str(folder / "s.yaml"), *RUN_FLAGS, "--out", str(folder / "out"))
    assert_one_message(ran, str(folder / "s.yaml"), "twice", f"lines {line + 1} and {line + 2}")


LEAF_PATHS = [".".join(map(str, p)) for p in PATHS]
set_paths = st.one_of(
    st.sampled_from(LEAF_PATHS),
    st.sampled_from(["members.ZZZ.ideal.ukraine", "members.AAA.ideal.nukes", "blocs.Q.label", "issues.nukes.label",
                     "protocol.nope", "members", "issues", "blocs", "run", "protocol", "sweep.parameters", ".", "a..b",
                     "members.AAA", "members.AAA.name.first", "extends", "members.AAA.ideal"]),
    st.lists(st.sampled_from(["members", "AAA", "ideal", "ukraine", "protocol", "rounds", "x", "", "0"]),
             min_size=1, max_size=5).map(".".join),
    st.text(max_size=15),
)
set_values = st.one_of(
    st.sampled_from([".inf", "-.inf", ".nan", "true", "yes", "no", "null", "~", "", "[]", "{}", "[1, 2]", "{a: 1}",
                     "-5", "0", "8.5", "1e400", "'x'", "[", "]", "{", ":", "- a", "&a [*a]", "*a", "!!binary aGk=",
                     "!!python/object:os.system", "9" * 400, "-" + "9" * 400, "{dist: uniform, low: 9, high: 1}",
                     "{dist: pert}", "2000-01-01", "0x1F", "0o17", "1_000", "1:30", "\t", "'", '"']),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=20),
)


@FUZZ
@given(items=st.lists(st.tuples(set_paths, set_values), min_size=1, max_size=3))
def test_random_set_items_run_or_exit_2_with_one_message(scratch, items):
    folder = new_dir(scratch)
    sets = [arg for path, value in items for arg in ("--set", f"{path}={value}")]
    ran = run_cli("hypothesis --set items", T, *sets, *RUN_FLAGS, "--out", str(folder / "out"))
    assert_exit_0_or_one_message(ran)


# ---------------------------------------------------------------- memory-hungry cases, in a process each
MEMORY_LIMIT = 1_500_000_000  # bytes of address space


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.fixture(scope="module")
def memory_cases(tmp_path_factory):
    """Every memory-hungry case started at once (each a `python run.py` under the limit), then
    awaited: {id: (CompletedProcess-like, file)}. Started together, they cost one start-up's time."""
    tmp = tmp_path_factory.mktemp("memory")
    files = {}
    files["alias bomb in name"] = tmp / "bomb-name.yaml"
    files["alias bomb in name"].write_text(EXT + "x-bomb:\n" + "\n".join(bomb_lines(9, "  ")) + "\nname: *l8\n")
    files["alias bomb in an ideal"] = tmp / "bomb-ideal.yaml"
    files["alias bomb in an ideal"].write_text(
        EXT + "x-bomb:\n" + "\n".join(bomb_lines(9, "  ")) + "\nmembers: {AAA: {ideal: {ukraine: *l8}}}\n")
    files["50 MB of random bytes"] = tmp / "random.yaml"
    files["50 MB of random bytes"].write_bytes(random.Random(4).randbytes(50_000_000))
    files["6 MB valid-looking YAML"] = tmp / "big.yaml"
    with files["6 MB valid-looking YAML"].open("w") as f:
        f.write(EXT + "references:\n")
        i = 0
        while f.tell() < 6_000_000:
            f.write(f"  ref{i}: \"NATO summit declaration, paragraph {i}: a plausible citation line\"\n")
            i += 1
    commands = {name: [str(path)] for name, path in files.items()}
    commands["alias bomb in --set"] = [T, "--set", "members.AAA.ideal.ukraine=" + inline_bomb(9)]
    started = {name: subprocess.Popen([sys.executable, str(REPO / "run.py"), *args, *RUN_FLAGS, "--out", str(tmp / "out")],
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=_limit_memory)  # noqa: PLW1509  (pytest runs no threads that fork)
               for name, args in commands.items()}
    done = {}
    try:
        for name, proc in started.items():
            try:
                stdout, stderr = proc.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                stderr += "\n(timed out after 90 s: killed)"
            done[name] = (Ran(proc.returncode, stdout, stderr), files.get(name))
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


MEMORY_EXPECT = {
    "alias bomb in name": ("expands to more than",),
    "alias bomb in an ideal": ("expands to more than",),
    "50 MB of random bytes": ("50,000,000 bytes", "5,000,000"),
    "6 MB valid-looking YAML": ("bytes", "5,000,000"),
    "alias bomb in --set": ("members.AAA.ideal.ukraine",),
}


@pytest.mark.parametrize("name", list(MEMORY_EXPECT))
def test_memory_hungry_input_exits_2_within_limits(memory_cases, name):
    ran, path = memory_cases[name]
    TALLY["memory (subprocess) tried"] += 1
    TALLY["memory (subprocess) clean"] += is_clean(ran)
    named = (str(path),) if path else ("--set",)
    assert_one_message(ran, *named, *MEMORY_EXPECT[name])
