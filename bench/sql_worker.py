"""A graphile_worker worker in Python, using only the SQL worker API (and a benchmark driver for it).

    python bench/sql_worker.py DSN --concurrency 4 --batch 10 --mode combined

runs 4 workers until Ctrl-C, each with its own worker id and connection
(autocommit, prepared statements), on no-op tasks. Completion modes:

  one       fetch_jobs(batch), then complete_job for each job as it finishes
  batch     fetch_jobs(batch), then one complete_worker_jobs for the whole batch
  combined  complete_and_fetch_jobs: report the finished batch and take the next in one call

An idle worker waits for NOTIFY "jobs:insert" (at most --idle-timeout seconds,
for jobs that become due later). --until-empty stops each worker at its first
empty fetch instead. Workers are spread over --processes OS processes, each
running its share as threads (default: two processes per CPU core, at most one
per worker; on 2 cores 24 workers ran a little faster as 4 processes of 6
threads than as 24 processes).

--control is for bench/compare.py: the process prints "ready" once every
worker is connected, starts on a "go" line on stdin, prints "done <jobs>" when
every worker has stopped (with --until-empty), and disconnects on an "exit"
line (or end of input), printing one JSON line with what it measured.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import psycopg

FETCH = "SELECT id, task_identifier, payload FROM graphile_worker.fetch_jobs(%s, %s, %s)"
COMPLETE_AND_FETCH = "SELECT id, task_identifier, payload FROM graphile_worker.complete_and_fetch_jobs(%s, %s, %s, %s)"
COMPLETE_ONE = "SELECT FROM graphile_worker.complete_job(%s, %s)"
COMPLETE_MANY = "SELECT FROM graphile_worker.complete_worker_jobs(%s, %s)"
FAIL = "SELECT FROM graphile_worker.fail_job(%s, %s, %s)"


def work(
    conn: psycopg.Connection,
    worker_id: str,
    run: Callable[[str, object], None],
    *,
    batch_size: int = 10,
    mode: str = "one",
    tasks: list[str] | None = None,
    until_empty: bool = False,
    idle_timeout: float = 10.0,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """The worker loop: take jobs, run them, report each outcome. Returns how many jobs it completed."""

    def q(query, params):
        return conn.execute(query, params, prepare=True)

    completed = 0
    finished: list[int] = []  # done, not yet reported (batch and combined modes)
    if not until_empty:
        conn.execute('LISTEN "jobs:insert"')
    while not stop():
        if mode == "combined":
            jobs = q(COMPLETE_AND_FETCH, [worker_id, finished, tasks, batch_size]).fetchall()
            finished = []
        else:
            jobs = q(FETCH, [worker_id, tasks, batch_size]).fetchall()
        if not jobs:
            if until_empty:
                break
            for _ in conn.notifies(timeout=idle_timeout, stop_after=1):
                pass
            continue
        for job_id, task, payload in jobs:
            try:
                run(task, payload)
            except Exception as e:
                q(FAIL, [worker_id, job_id, repr(e)])
                continue
            completed += 1
            if mode == "one":
                q(COMPLETE_ONE, [worker_id, job_id])
            else:
                finished.append(job_id)
        if mode == "batch" and finished:
            q(COMPLETE_MANY, [worker_id, finished])
            finished = []
    if finished:  # combined mode, stopped by stop(): report the last batch
        q(COMPLETE_MANY, [worker_id, finished])
    return completed


# -- driver: processes, threads, and the control protocol --------------------------------------


def process_main(dsn: str, ids: list[str], opts: dict, ready, go, release, stopping, results) -> None:
    """One OS process running len(ids) workers as threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    starts: dict[int, int] = {}
    counts: list[int] = []

    def run(task: str, payload: object) -> None:
        if opts["record_starts"]:
            starts[payload["id"]] = time.monotonic_ns()

    def one(worker_id: str, conn: psycopg.Connection) -> None:
        counts.append(
            work(
                conn,
                worker_id,
                run,
                batch_size=opts["batch"],
                mode=opts["mode"],
                tasks=opts["tasks"],
                until_empty=opts["until_empty"],
                idle_timeout=opts["idle_timeout"],
                stop=stopping.is_set,
            )
        )

    conns = [psycopg.connect(dsn, autocommit=True, application_name=wid) for wid in ids]
    ready.release()
    go.wait()
    threads = [threading.Thread(target=one, args=(wid, c)) for wid, c in zip(ids, conns, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put({"completed": sum(counts), "workers": len(ids), "starts": starts})
    release.wait()  # stay connected until the benchmark has read the server's CPU time
    for c in conns:
        c.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dsn", help="libpq connection string of the database with the graphile_worker schema")
    p.add_argument("--concurrency", type=int, default=4, help="workers (connections), default 4")
    p.add_argument("--processes", type=int, default=0, help="OS processes to spread them over (default: 2 per core)")
    p.add_argument("--batch", type=int, default=10, help="fetch batch size, default 10")
    p.add_argument("--mode", choices=("one", "batch", "combined"), default="one")
    p.add_argument("--tasks", help="comma-separated task identifiers to run (default: all)")
    p.add_argument("--until-empty", action="store_true", help="each worker stops at its first empty fetch")
    p.add_argument("--idle-timeout", type=float, default=10.0, help="longest wait for a notification, seconds")
    p.add_argument("--control", action="store_true", help="the stdin/stdout protocol of bench/compare.py")
    p.add_argument("--record-starts", action="store_true", help="record when each job (payload id) started")
    args = p.parse_args(argv)

    procs_n = min(args.processes or 2 * (os.cpu_count() or 1), args.concurrency)
    ids = [f"py-worker-{os.getpid()}-{i}" for i in range(args.concurrency)]
    shares = [ids[i::procs_n] for i in range(procs_n)]
    opts = {
        "batch": args.batch,
        "mode": args.mode,
        "tasks": args.tasks.split(",") if args.tasks else None,
        "until_empty": args.until_empty,
        "idle_timeout": args.idle_timeout,
        "record_starts": args.record_starts,
    }
    ctx = multiprocessing.get_context("fork")
    ready, go, release, stopping, results = ctx.Semaphore(0), ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=process_main, args=(args.dsn, share, opts, ready, go, release, stopping, results))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        if args.control:
            say("ready")
            if sys.stdin.readline().strip() != "go":
                stopping.set()
            go.set()
            if not args.until_empty:
                sys.stdin.readline()  # "exit": stop the waiting workers
                stopping.set()
            gathered = [results.get() for _ in procs]
            say(f"done {sum(g['completed'] for g in gathered)}")
            if args.until_empty:
                sys.stdin.readline()
        else:
            started = time.monotonic()
            go.set()
            try:
                while any(proc.is_alive() for proc in procs) and results.qsize() < len(procs):
                    time.sleep(0.2)
            except KeyboardInterrupt:
                stopping.set()
            gathered = [results.get() for _ in procs]
            done = sum(g["completed"] for g in gathered)
            elapsed = time.monotonic() - started
            rate = done / elapsed
            say(f"{done} jobs completed by {args.concurrency} workers in {elapsed:.2f} s ({rate:,.0f} jobs/s)")
    finally:
        stopping.set()
        go.set()
        release.set()
        for proc in procs:
            proc.join()
    if args.control:
        starts = {k: v for g in gathered for k, v in g["starts"].items()}
        say(json.dumps({"completed": sum(g["completed"] for g in gathered), "starts": starts}))
    return 0 if all(proc.exitcode == 0 for proc in procs) else 1


if __name__ == "__main__":
    sys.exit(main())
