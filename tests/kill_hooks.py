"""Deterministic kills for tests/test_resume.py: the command line, SIGKILLed as a whole process group
at an exact point of its output (test code only; nothing under model/ reads or imports this).

    python -m tests.kill_hooks --after-part K -- CLI ARGS          # right after the K-th part file
    python -m tests.kill_hooks --before-rename NAME -- CLI ARGS    # NAME's temp file written, not renamed

Start it with `start_new_session=True` (its own process group): the hook then kills the main
process and every worker of its pool at once, with no cleanup, no `finally`, no atexit, as a
machine going down would. No timers, no polling: the kill happens inside the process, at the call.

* `--after-part K` wraps `model.experiments.store.OutputFolder.write_part`: after the K-th call
  made by this process returns (the part file is renamed into place), the group is killed.
* `--before-rename NAME` wraps `atomic_write` (in `model.outputs.files` and in every module that
  imported it by name): when the target's file name is NAME (e.g. replications.parquet,
  points.parquet), the temp file is written completely and then the group is killed, before the
  rename that would publish it.

`Zygote` saves the start-up of a fresh interpreter per kill (seconds here: the model's imports):
`python -m tests.kill_hooks --serve` imports the command line once, then for each request forks a
child that calls `os.setsid()` (a new session and process group, exactly what
`start_new_session=True` gives a subprocess), installs the hook and runs `main(args)` as
`python run.py` would. The zygote is not in the child's group, so it survives the kill and
reports the child's exit status (-9 after the hook fired). Worker pools are spawned by the child
as usual (fresh interpreters, in the child's group), so the kill takes them down too; the zygote
is their subreaper (prctl PR_SET_CHILD_SUBREAPER) and collects them, so no zombies are left.
`survivors(group)` lists what still lives in a group after a kill (a test asserts: nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

KILLED = -signal.SIGKILL  # a subprocess's returncode after the hook fired


def kill_group() -> None:
    """SIGKILL this process's whole process group (this process included)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)  # not reached: the group included this process


def install(after_part: int | None = None, before_rename: str | None = None) -> None:
    """Patch the production functions (from outside) so that this process kills its group at the point.

    Refused unless this process leads its own process group: the kill must never reach the test
    runner (or a shell) that started it."""
    if os.getpgid(0) != os.getpid():
        raise SystemExit("tests.kill_hooks: start this in a process group of its own "
                         "(subprocess.run(..., start_new_session=True), or setsid)")
    # modules the CLI imports lazily, imported now so that every `atomic_write` name is patched below
    import model.experiments.runner
    import model.experiments.sweep
    import model.outputs.plots  # noqa: F401
    from model.experiments import store
    from model.outputs import files

    if after_part is not None:
        original_part = store.OutputFolder.write_part
        written = [0]

        def write_part(self, key, table):
            original_part(self, key, table)
            written[0] += 1
            if written[0] == after_part:
                kill_group()

        store.OutputFolder.write_part = write_part

    if before_rename is not None:
        original_write = files.atomic_write

        def atomic_write(path, write):
            if os.path.basename(str(path)) != before_rename:
                return original_write(path, write)

            def write_then_die(tmp):
                write(tmp)
                kill_group()

            return original_write(path, write_then_die)

        for module in list(sys.modules.values()):
            if module is not None and getattr(module, "__name__", "").startswith("model.") \
                    and getattr(module, "atomic_write", None) is original_write:
                module.atomic_write = atomic_write


@dataclass
class Done:
    """A finished (or killed) command: its exit status (-9: killed by the hook) and output."""

    returncode: int
    stdout: str
    stderr: str
    group: int | None = None  # the process group it ran as (its own pid)


PF_EXITING = 0x4  # /proc/<pid>/stat flags: the process is exiting
SIGKILL_BIT = 1 << (signal.SIGKILL - 1)  # in the SigPnd / ShdPnd masks of /proc/<pid>/status


def survivors(group: int) -> list[str]:
    """Processes of process group `group` that live on, as "pid state command": neither a zombie,
    nor exiting, nor with a SIGKILL pending (a killed process is dying, not surviving; this tells
    the two apart at once, with no waiting)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ... flags
            if int(fields[2]) != group or fields[0] in ("Z", "X") or int(fields[6]) & PF_EXITING:
                continue
            status = dict(line.split(":", 1) for line in (stat.parent / "status").read_text().splitlines() if ":" in line)
            if any(int(status.get(mask, "0").strip(), 16) & SIGKILL_BIT for mask in ("SigPnd", "ShdPnd")):
                continue
            alive.append(f"{stat.parent.name} {fields[0]} {text[text.index('(') + 1:text.rindex(')')]}")
    return alive


def serve() -> None:
    """The zygote's loop: one JSON request per line on stdin -> fork a child that runs it in a
    process group of its own; answer {"pid": ...} at once and {"returncode": ...} when it ends."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning)
    # everything the CLI imports (some of it lazily), once, before any fork
    import model.experiments.runner
    import model.experiments.sweep
    import model.interfaces.cli
    import model.outputs.plots
    import model.outputs.sweep_plots  # noqa: F401

    with contextlib.suppress(Exception):  # orphaned pool workers of killed children become ours to reap
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        reap()
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                os.setsid()
                for fd, name, mode in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                       (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                    opened = os.open(name, mode, 0o644)
                    os.dup2(opened, fd)
                    os.close(opened)
                os.chdir(request["cwd"])
                sys.argv = ["run.py", *request["args"]]  # what `python run.py ARGS` would see
                install(request.get("after_part"), request.get("before_rename"))
                from model.interfaces.cli import main as cli

                code = cli(request["args"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001  (the child must end here, never back in the zygote's loop)
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
    reap()


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def reap() -> None:
    """Collect every child that has exited (the killed children's orphaned workers), without waiting."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Zygote:
    """`python -m tests.kill_hooks --serve`, driven from a test: `run(args, after_part=K)` runs
    `python run.py ARGS` in a forked child (its own process group) with the hook installed."""

    def __init__(self, cwd: Path, scratch: Path):
        self.cwd, self.scratch, self.count, self._buffer = Path(cwd), Path(scratch), 0, b""
        self.log = (self.scratch / "zygote.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.kill_hooks", "--serve"], cwd=self.cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self._answer(300)  # ready

    def _answer(self, timeout: float, child: int | None = None) -> dict:
        """The zygote's next line, read from the pipe's file descriptor (no buffering to outwit select)."""
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                if child is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child, signal.SIGKILL)  # the child we started, by its group id
                raise TimeoutError(f"tests.kill_hooks zygote: no answer within {timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"tests.kill_hooks zygote exited ({self.proc.poll()}); see {self.log.name}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, args: list[str], after_part: int | None = None, before_rename: str | None = None,
            timeout: float = 300) -> Done:
        self.count += 1
        out, err = self.scratch / f"run{self.count}.out", self.scratch / f"run{self.count}.err"
        request = {"args": [str(a) for a in args], "after_part": after_part, "before_rename": before_rename,
                   "stdout": str(out), "stderr": str(err), "cwd": str(self.cwd)}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        child = self._answer(60)["pid"]
        returncode = self._answer(timeout, child)["returncode"]
        return Done(returncode, out.read_text(), err.read_text(), child)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def killed_process(args: list[str], cwd: Path, after_part: int | None = None, before_rename: str | None = None,
                   timeout: float = 300) -> Done:
    """`python -m tests.kill_hooks ... -- ARGS` as a fresh process of its own group
    (`start_new_session=True`), the way a user's `python run.py` starts."""
    hook = [*(("--after-part", str(after_part)) if after_part is not None else ()),
            *(("--before-rename", before_rename) if before_rename is not None else ())]
    proc = subprocess.Popen([sys.executable, "-m", "tests.kill_hooks", *hook, "--", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own group: the process we started and its workers
        stdout, stderr = proc.communicate()
        stderr += f"\n(tests.kill_hooks: timed out after {timeout} s; killed)"
    return Done(proc.returncode, stdout, stderr, proc.pid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.kill_hooks", description=__doc__.split("\n\n")[0])
    p.add_argument("--after-part", type=int, metavar="K", help="kill the group right after the K-th part file")
    p.add_argument("--before-rename", metavar="NAME", help="kill the group when NAME's temp file is written")
    p.add_argument("--serve", action="store_true", help="be the zygote (see Zygote)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then the arguments of python run.py")
    options = p.parse_args(argv)
    if options.serve:
        serve()
        return 0
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    install(options.after_part, options.before_rename)
    from model.interfaces.cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
