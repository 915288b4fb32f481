"""Timing: logging, polling with a deadline, medians and percentiles, and a PostgreSQL server's CPU time.

The CPU readers use /proc: the server must run on this machine (on any other they return None).
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

T = TypeVar("T")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    """Progress on stderr, so that stdout keeps only the results."""
    print(msg, file=sys.stderr, flush=True)


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """Call check() every interval seconds until it returns something true or timeout seconds have passed.

    Returns check()'s last result: true when it came in time, false when time ran out.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def median(values: list[float | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values: list[float], q: float, *, interpolate: bool = False) -> float:
    """The q-th percentile (q in [0, 100]) of a non-empty list: nearest rank, or interpolated between the
    two nearest (statistics.quantiles' inclusive method, q a whole number from 1 to 99)."""
    if interpolate:
        return values[0] if len(values) == 1 else statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def backend_cpu_ms(pid: int) -> float | None:
    """CPU time (ms, nanosecond precision) one server process has used so far, else None.

    On a machine shared with other work, wall-clock times vary with the load;
    the CPU time of the backend that ran a call hardly does.
    """
    try:
        with open(f"/proc/{pid}/sched") as f:
            for line in f:
                if line.startswith("se.sum_exec_runtime"):
                    return float(line.split(":")[1])
    except (OSError, ValueError):
        return None
    return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces; fields after it are plain.
    return text[text.rindex(")") + 2 :].split()


def postmaster_pid(conn: psycopg.Connection) -> int | None:
    """The server's postmaster: the parent of this connection's backend (None if not on this machine)."""
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with open(f"/proc/{backend}/status") as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class ServerCPU:
    """CPU seconds used by a whole PostgreSQL server: the postmaster and all its processes.

    total() = postmaster's utime + stime + cutime + cstime (the last two hold
    every child that has exited and been reaped) + utime + stime of each live
    child of the postmaster (backends, autovacuum, checkpointer, ...). The
    difference of two totals is the server CPU spent between them, whatever
    the client's language. Resolution is one clock tick (1/CLK_TCK s) per
    process.
    """

    def __init__(self, pid: int | None):
        self.pid = pid

    def total(self) -> float | None:
        if self.pid is None:
            return None
        own = _stat_fields(self.pid)
        if own is None:
            return None
        # After ")": field 3 is index 0, so ppid is [1], utime [11], stime [12], cutime [13], cstime [14].
        ticks = sum(int(own[i]) for i in (11, 12, 13, 14))
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == self.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / CLOCK_TICKS


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def rolled_back_runs(
    conn: psycopg.Connection, stmt: str, params, runs: int, after_each: Callable[[], object] | None = None
) -> tuple[list[float], list[float | None], object]:
    """Run a statement runs + 1 times, each in a transaction that is rolled back; the first run, which warms
    the caches, is not counted. Returns the wall-clock milliseconds of each counted run, the CPU milliseconds
    its backend used (None where /proc could not tell), and the first column of the last run's first row.
    after_each (a VACUUM, say) runs after every rollback, so that every run starts from the same state."""
    times: list[float] = []
    cpu: list[float | None] = []
    value = None
    pid = conn.info.backend_pid
    for run in range(runs + 1):
        cpu_before = backend_cpu_ms(pid)
        started = time.perf_counter()
        value = conn.execute(stmt, params).fetchone()[0]
        elapsed = (time.perf_counter() - started) * 1000
        cpu_after = backend_cpu_ms(pid)
        conn.rollback()
        if run:
            times.append(elapsed)
            cpu.append(None if cpu_before is None or cpu_after is None else cpu_after - cpu_before)
        if after_each:
            after_each()
    return times, cpu, value


def drain_with_workers(dsn: str, total: int, workers: int, fetch_size: int, prefix: str = "bench-worker") -> float:
    """Run total due jobs of the task hot_task with concurrent workers of our worker API (fetch_jobs of
    fetch_size, then complete_worker_jobs); returns jobs per second. The jobs must be committed already."""
    done = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            wid = f"{prefix}-{n}"
            with psycopg.connect(dsn, autocommit=True) as c:
                while True:
                    with lock:
                        if done[0] >= total:
                            return
                    ids = [
                        r[0]
                        for r in c.execute(
                            "SELECT id FROM graphile_worker.fetch_jobs(%s, '{hot_task}', %s)", [wid, fetch_size]
                        )
                    ]
                    if not ids:
                        time.sleep(0.001)
                        continue
                    c.execute("SELECT count(*) FROM graphile_worker.complete_worker_jobs(%s, %s)", [wid, ids])
                    with lock:
                        done[0] += len(ids)
        except BaseException as exc:  # reported after join
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return total / elapsed
