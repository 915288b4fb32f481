"""Benchmark of the worker API (schema version 3): fetch/complete throughput and enqueue rate.

    python bench/worker_bench.py [DSN] [--jobs 100000] [--runs 3]

DSN is a libpq string of any database on the server (default: postgres on
127.0.0.1:$PGPORT, as the tests use); the benchmark works in a fresh database
gw_worker_bench there, dropped at the end unless --keep.

Measured, each --runs times (median reported):
  - fetch/complete cycle: --jobs no-op jobs (plain, one task) are enqueued and
    vacuumed; then 1 and 8 client processes, each with its own connection,
    loop fetch_jobs(batch_size) -> complete_worker_jobs until nothing is left.
    Clock from the moment all clients are connected until the last finishes;
    jobs/s = jobs / seconds. Batch sizes 1 and 50.
  - add_jobs with --jobs specs in one call (jobs/s).
  - --single-adds single add_job calls from one client, autocommit (jobs/s).
A table is printed and every run is written to <build>/bench/worker.json
(<build> is $GW_BUILD, else build/ in the checkout).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import psycopg

from gwtest.db import drop_database, fresh_database
from gwtest.procs import SPAWN, Group
from gwtest.results import bench_parser, environment, write_json
from gwtest.timing import log

BENCH_DB = "gw_worker_bench"


def cycle_client(dsn: str, worker_id: str, batch_size: int, ready, go, counts) -> None:
    """One worker: fetch a batch, complete it, until fetch returns nothing."""
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        fetch = "SELECT id FROM graphile_worker.fetch_jobs(%s, NULL, %s)"
        complete = "SELECT count(*) FROM graphile_worker.complete_worker_jobs(%s, %s)"
        ready.release()
        go.wait()
        while True:
            ids = [r[0] for r in conn.execute(fetch, [worker_id, batch_size], prepare=True)]
            if not ids:
                break
            done += conn.execute(complete, [worker_id, ids], prepare=True).fetchone()[0]
    counts.put(done)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.server_dsn = args.dsn
        self.dsn = ""
        self.results: dict = {"runs": {}, "medians": {}}

    def setup(self) -> None:
        self.dsn = fresh_database(self.server_dsn, BENCH_DB, migrated=True)
        with psycopg.connect(self.dsn) as conn:
            self.results["environment"] = environment(conn) | {
                "jobs": self.args.jobs,
                "single_adds": self.args.single_adds,
                "runs": self.args.runs,
            }

    def teardown(self) -> None:
        if not self.args.keep:
            drop_database(self.server_dsn, BENCH_DB)

    def reset(self, conn: psycopg.Connection) -> None:
        conn.execute(
            "TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues,"
            " graphile_worker._private_tasks RESTART IDENTITY"
        )

    def enqueue(self, conn: psycopg.Connection, n: int) -> float:
        """add_jobs with n specs in one call; returns seconds."""
        t0 = time.perf_counter()
        got = conn.execute(
            "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY("
            " SELECT ROW('noop', json_build_object('i', i), NULL, NULL, NULL, NULL, NULL, NULL)"
            "::graphile_worker.job_spec"
            " FROM generate_series(1, %s) AS i))",
            [n],
        ).fetchone()[0]
        elapsed = time.perf_counter() - t0
        assert got == n, f"add_jobs returned {got} jobs, expected {n}"
        return elapsed

    def record(self, name: str, rate: float) -> None:
        self.results["runs"].setdefault(name, []).append(round(rate, 1))
        log(f"  {name}: {rate:,.0f} jobs/s")

    def bench_add_jobs(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for _ in range(self.args.runs):
                self.reset(conn)
                conn.execute("VACUUM ANALYZE graphile_worker._private_jobs")
                self.record(
                    f"add_jobs ({self.args.jobs:,} specs, one call)",
                    self.args.jobs / self.enqueue(conn, self.args.jobs),
                )

    def bench_add_job(self) -> None:
        n = self.args.single_adds
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for _ in range(self.args.runs):
                self.reset(conn)
                conn.execute("VACUUM ANALYZE graphile_worker._private_jobs")
                t0 = time.perf_counter()
                for i in range(n):
                    conn.execute("SELECT graphile_worker.add_job('noop', %s::json)", [f'{{"i": {i}}}'], prepare=True)
                self.record(f"add_job ({n:,} single calls)", n / (time.perf_counter() - t0))

    def bench_cycle(self, clients: int, batch_size: int) -> None:
        name = f"fetch/complete, {clients} client{'s' if clients > 1 else ''}, batch {batch_size}"
        for _ in range(self.args.runs):
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                self.reset(conn)
                self.enqueue(conn, self.args.jobs)
                conn.execute("VACUUM ANALYZE graphile_worker._private_jobs")
            ready, go, counts = SPAWN.Semaphore(0), SPAWN.Event(), SPAWN.Queue()
            with Group() as group:
                for c in range(clients):
                    group.start(cycle_client, self.dsn, f"bench-{c}", batch_size, ready, go, counts)
                for _ in range(clients):
                    ready.acquire()
                t0 = time.perf_counter()
                go.set()
                group.join()
                elapsed = time.perf_counter() - t0
            if any(code != 0 for code in group.exitcodes()):
                raise SystemExit(f"{name}: a client failed")
            done = sum(counts.get() for _ in range(clients))
            if done != self.args.jobs:
                raise SystemExit(f"{name}: {done} jobs completed, expected {self.args.jobs}")
            self.record(name, done / elapsed)

    def report(self) -> None:
        for name, rates in self.results["runs"].items():
            self.results["medians"][name] = round(statistics.median(rates), 1)
        width = max(len(n) for n in self.results["medians"])
        print(
            f"\nworker API, {self.args.jobs:,} jobs, median of {self.args.runs} runs "
            f"(PostgreSQL {self.results['environment']['postgres']}, {os.cpu_count()} CPUs)"
        )
        print(f"{'measure'.ljust(width)}  {'jobs/s':>10}  runs")
        for name, median in self.results["medians"].items():
            runs = ", ".join(f"{r:,.0f}" for r in self.results["runs"][name])
            print(f"{name.ljust(width)}  {median:>10,.0f}  {runs}")
        path = write_json("worker.json", self.results)
        print(f"\nwritten to {path}")


def build_parser() -> argparse.ArgumentParser:
    p = bench_parser(__doc__, keep=f"keep the {BENCH_DB} database", dest="dsn")
    p.add_argument("--jobs", type=int, default=100_000, help="jobs per fetch/complete run and per add_jobs call")
    p.add_argument("--single-adds", type=int, default=10_000, help="single add_job calls per run")
    p.add_argument("--runs", type=int, default=3, help="runs per measure (the median is reported)")
    p.add_argument("--clients", default="1,8", help="comma-separated client counts (default 1,8)")
    p.add_argument("--batch-sizes", default="1,50", help="comma-separated fetch batch sizes (default 1,50)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bench = Bench(args)
    bench.setup()
    try:
        log("enqueue: add_jobs")
        bench.bench_add_jobs()
        log("enqueue: add_job")
        bench.bench_add_job()
        for clients in (int(c) for c in args.clients.split(",")):
            for batch_size in (int(b) for b in args.batch_sizes.split(",")):
                log(f"fetch/complete: {clients} clients, batch {batch_size}")
                bench.bench_cycle(clients, batch_size)
        bench.report()
    finally:
        bench.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
