"""Processes: children that report their failures, groups of them stopped together, and the installer CLI.

A child started with multiprocessing's spawn context gets a fresh interpreter (no connection or lock
inherited from the parent); whatever it raises is put, with its traceback, on an errors queue that
the parent reads once the group has stopped.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .db import ROOT

SPAWN = multiprocessing.get_context("spawn")
PGSERVER = ROOT / "tools" / "pgserver.sh"


@contextmanager
def reporting(errors, name: str) -> Iterator[None]:
    """In a child process: anything raised inside goes on the errors queue as 'name: traceback', then on up."""
    try:
        yield
    except BaseException:
        errors.put(f"{name}: {traceback.format_exc()}")
        raise


def drain(q) -> list:
    """Everything a multiprocessing queue holds now, without waiting for more."""
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


class Group:
    """Child processes started together and stopped together: joined with one deadline, the rest killed.

    Use it as a context manager: leaving the block kills and reaps whatever is still running.
    """

    def __init__(self, ctx=SPAWN):
        self.ctx = ctx
        self.procs: list = []

    def start(self, target: Callable, *args, name: str | None = None):
        proc = self.ctx.Process(target=target, args=args, name=name)
        proc.start()
        self.procs.append(proc)
        return proc

    def join(self, timeout: float | None = None, procs: list | None = None) -> list[str]:
        """Wait for procs (default: all of them), at most timeout seconds in all (None: as long as they run);
        returns the names of those still running."""
        procs = self.procs if procs is None else procs
        deadline = None if timeout is None else time.monotonic() + timeout
        for proc in procs:
            proc.join(None if deadline is None else max(0.1, deadline - time.monotonic()))
        return [proc.name for proc in procs if proc.is_alive()]

    def kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join()

    def exitcodes(self) -> list[int | None]:
        return [proc.exitcode for proc in self.procs]

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def installer_command(*args: str, env: dict | None = None) -> tuple[list[str], dict]:
    """argv and environment of python -m installer with this checkout's package first on the path."""
    return [sys.executable, "-m", "installer", *args], {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}


def run_cli(*args: str, env: dict | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run python -m installer in a child process, as a deploy pipeline would."""
    argv, full_env = installer_command(*args, env=env)
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=120)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """python -m installer started in the background, its output captured as text.

    SIGINT is reset to its default in the child, as a terminal leaves it: a run started in the
    background (nohup, or `&` in a script) ignores SIGINT, the child would inherit that, and a test
    sending it Ctrl-C would see nothing happen."""
    argv, full_env = installer_command(*args, env=env)
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=ROOT,
        preexec_fn=_default_sigint,
    )


def as_owner(cmd: list[str], path: str | Path) -> list[str]:
    """cmd, run as the owner of path when we are root and it is not (PostgreSQL's tools refuse to run as root)."""
    owner = Path(path).owner()
    return ["runuser", "-u", owner, "--", *cmd] if os.geteuid() == 0 and owner != "root" else cmd


def pgserver(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """tools/pgserver.sh start|stop|status|bindir|major, its output captured."""
    return subprocess.run([str(PGSERVER), *args], capture_output=True, text=True, check=check, timeout=120)
