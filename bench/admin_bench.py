"""Benchmarks of administration at scale, and of the hot path with and without the scale indexes (version 4).

    python bench/admin_bench.py --server postgresql://postgres@127.0.0.1:54329/postgres --jobs 1000000

Steps, all in a fresh database gw_bench_<jobs> on the given server (dropped at the end unless --keep):
  1. migrate to the newest schema; load the mix of bench/generate.sql; VACUUM ANALYZE.
  2. every admin call, each run --runs times on the same loaded state: inside a transaction
     that is rolled back, after one unmeasured warm-up run; the table is vacuumed between
     runs of calls that write new row versions, so every run starts from the same state.
     With --baseline, the same again without the version-4 indexes.
  3. the hot path (add_jobs of 100,000 specs, 10,000 single add_job calls, fetch/complete
     by concurrent workers), alternately with and without the version-4 indexes
     (order A B B A A B ...), on the same loaded table; ratio = with / without.
  4. the batched delete of --batched-jobs permanently failed jobs (installer.batched),
     with a concurrent session that measures how long it must wait for a row lock.
Medians are printed as a table and written, with every run, to <build>/bench/admin-<jobs>.json.
--explain also writes EXPLAIN (ANALYZE, BUFFERS) of every statement the calls run
(auto_explain) to <build>/bench/plans-<jobs>.txt.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

from gwtest.db import drop_database, fresh_database
from gwtest.results import bench_parser, out_dir, write_json
from gwtest.timing import drain_with_workers, log, rolled_back_runs
from installer.batched import run_batched_cleanup

GENERATE_SQL = Path(__file__).resolve().parent / "generate.sql"

# The indexes version 4 adds; "without" drops them, "with" recreates them from their saved definitions.
SCALE_INDEXES = ("jobs_task_id_index", "jobs_job_queue_id_index", "jobs_permafailed_index")

# The targets the version-4 indexes were built to meet, in milliseconds, at 1M jobs ("large": at 10M).
TARGETS_MS = {
    "cleanup GC_TASK_IDENTIFIERS": (100, 1000),
    "cleanup GC_JOB_QUEUES": (100, 1000),
    "force_unlock_workers (1 worker, 20 jobs)": (5, 5),
    "complete_jobs (10,000 ids)": (60, 90),
    "permanently_fail_jobs (10,000 ids)": (110, 165),
    "reschedule_jobs (10,000 ids)": (115, 172.5),
}


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.n = args.jobs
        self.dbname = f"gw_bench_{self.n}"
        self.dsn = ""
        self.out_dir = out_dir(args.out)
        self.results: dict = {
            "jobs": self.n,
            "runs": args.runs,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "admin": {},
            "admin_without_scale_indexes": {},
            "hot_path": {},
            "batched": {},
        }
        self.index_defs: dict[str, str] = {}
        self.plans: list[str] = []

    # -- setup --------------------------------------------------------------

    def create_and_load(self) -> None:
        self.dsn = fresh_database(self.args.server, self.dbname, migrated=True)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self.results["machine"]["server"] = conn.execute("SELECT version()").fetchone()[0]
            self.results["schema_version"] = conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0]
            conn.execute("SELECT set_config('bench.jobs', %s, false)", [str(self.n)])
            started = time.perf_counter()
            conn.execute(GENERATE_SQL.read_text())
            generated = time.perf_counter() - started
            conn.execute(
                "VACUUM ANALYZE graphile_worker._private_jobs, graphile_worker._private_tasks,"
                " graphile_worker._private_job_queues"
            )
            total = time.perf_counter() - started
            for name in SCALE_INDEXES:
                self.index_defs[name] = conn.execute(
                    "SELECT pg_get_indexdef(%s::regclass)", [f"graphile_worker.{name}"]
                ).fetchone()[0]
            sizes = conn.execute(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class AS c"
                " WHERE c.relnamespace = 'graphile_worker'::regnamespace AND c.relkind IN ('r', 'i')"
                " ORDER BY 1"
            ).fetchall()
        self.results["generate"] = {
            "insert_seconds": round(generated, 2),
            "with_vacuum_analyze_seconds": round(total, 2),
            "seconds_per_million": round(total / max(self.n, 1) * 1e6, 2),
            "relation_bytes": dict(sizes),
        }
        log(f"loaded {self.n:,} jobs in {total:.1f} s")

    def set_indexes(self, present: bool) -> float:
        """Create or drop the version-4 indexes; returns how long that took (the build time is reported)."""
        started = time.perf_counter()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for name, definition in self.index_defs.items():
                exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"graphile_worker.{name}"]).fetchone()[0]
                if present and not exists:
                    conn.execute(definition)
                elif not present and exists:
                    conn.execute(sql.SQL("DROP INDEX graphile_worker.{}").format(sql.Identifier(name)))
            conn.execute("ANALYZE graphile_worker._private_jobs")
        return time.perf_counter() - started

    # -- admin calls ----------------------------------------------------------

    def admin_calls(self) -> list[tuple[str, str, list, bool]]:
        """(label, statement, parameters, writes new row versions)."""
        step = max(self.n // 10000, 1)
        # id % 100 = 3 at the default sizes: waiting, unlocked jobs spread over the whole table.
        ids = [3 + k * step for k in range(min(10000, self.n))]
        return [
            ("complete_jobs (10,000 ids)", "SELECT count(*) FROM graphile_worker.complete_jobs(%s)", [ids], False),
            (
                "permanently_fail_jobs (10,000 ids)",
                "SELECT count(*) FROM graphile_worker.permanently_fail_jobs(%s, 'bench')",
                [ids],
                True,
            ),
            (
                "reschedule_jobs (10,000 ids)",
                "SELECT count(*) FROM graphile_worker.reschedule_jobs(%s, now() + interval '1 hour', 5)",
                [ids],
                True,
            ),
            (
                "force_unlock_workers (1 worker, 20 jobs)",
                "SELECT graphile_worker.force_unlock_workers(ARRAY['worker_00007'])",
                [],
                True,
            ),
            (
                "cleanup GC_TASK_IDENTIFIERS",
                "SELECT deleted_count FROM graphile_worker.cleanup('{GC_TASK_IDENTIFIERS}')",
                [],
                False,
            ),
            (
                "cleanup GC_JOB_QUEUES",
                "SELECT deleted_count FROM graphile_worker.cleanup('{GC_JOB_QUEUES}')",
                [],
                False,
            ),
            (
                "cleanup DELETE_PERMAFAILED_JOBS",
                "SELECT deleted_count FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS}')",
                [],
                False,
            ),
            (
                "delete_permafailed_jobs_batch(10000)",
                "SELECT graphile_worker.delete_permafailed_jobs_batch(10000)",
                [],
                False,
            ),
        ]

    def run_admin(self, key: str, explain: bool) -> None:
        out = self.results[key]
        with psycopg.connect(self.dsn) as conn, psycopg.connect(self.dsn, autocommit=True) as maint:

            def vacuum() -> None:
                maint.execute("VACUUM graphile_worker._private_jobs, graphile_worker._private_job_queues")

            for label, stmt, params, dirty in self.admin_calls():
                times, cpu, rows = rolled_back_runs(conn, stmt, params, self.args.runs, vacuum if dirty else None)
                cpu = [c for c in cpu if c is not None]
                median = statistics.median(times)
                out[label] = {"median_ms": round(median, 2), "runs_ms": [round(t, 2) for t in times], "rows": rows}
                if cpu:
                    out[label]["server_cpu_median_ms"] = round(statistics.median(cpu), 2)
                if label.startswith("cleanup DELETE_PERMAFAILED") and rows:
                    out[label]["us_per_deleted_row"] = round(median * 1000 / rows, 2)
                cpu_text = f", server CPU {statistics.median(cpu):.1f} ms" if cpu else ""
                log(f"  {label}: median {median:.1f} ms{cpu_text} ({rows} rows)")
                if explain:
                    self.explain(conn, label, stmt, params)

    def explain(self, conn: psycopg.Connection, label: str, stmt: str, params: list) -> None:
        notices: list[str] = []

        def handler(diag: psycopg.errors.Diagnostic) -> None:
            notices.append(diag.message_primary or "")

        conn.add_notice_handler(handler)
        try:
            conn.execute("LOAD 'auto_explain'")
            for setting, value in (
                ("auto_explain.log_level", "notice"),
                ("auto_explain.log_min_duration", "0"),
                ("auto_explain.log_nested_statements", "on"),
                ("auto_explain.log_analyze", "on"),
                ("auto_explain.log_buffers", "on"),
                ("auto_explain.log_timing", "on"),
                ("auto_explain.log_wal", "on"),
            ):
                conn.execute("SELECT set_config(%s, %s, true)", [setting, value])
            conn.execute(stmt, params)
        finally:
            conn.rollback()
            conn.remove_notice_handler(handler)
        plans = [n for n in notices if "set_config(" not in n]
        self.plans.append(f"=== {label} ({self.n:,} jobs, {self.current_variant})\n" + "\n".join(plans))

    # -- hot path -------------------------------------------------------------

    ADD_JOBS_SQL = (
        "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY("
        " SELECT ROW('hot_task', json_build_object('g', g),"
        "  CASE WHEN g %% 10 = 0 THEN 'hot_q_' || (g %% 1000) END,"
        "  NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec"
        " FROM generate_series(1, %s) AS g))"
    )

    def drop_in_transaction(self, conn: psycopg.Connection) -> None:
        """Drop the version-4 indexes inside the open transaction (rolled back with it)."""
        for name in SCALE_INDEXES:
            conn.execute(sql.SQL("DROP INDEX graphile_worker.{}").format(sql.Identifier(name)))

    def enqueue_sample(self, variant: str, what: str) -> float:
        """One enqueue measurement in a rolled-back transaction; jobs per second.

        The variant without the version-4 indexes drops them inside the same
        transaction, so both variants run on the same table, alternately, seconds apart.
        """
        with psycopg.connect(self.dsn, autocommit=True) as maint:
            maint.execute("VACUUM graphile_worker._private_jobs, graphile_worker._private_job_queues")
        with psycopg.connect(self.dsn) as conn:
            if variant == "without":
                self.drop_in_transaction(conn)
            started = time.perf_counter()
            if what == "add_jobs":
                count = 100_000
                conn.execute(self.ADD_JOBS_SQL, [count])
            else:
                count = self.args.single_adds
                for g in range(count):
                    conn.execute("SELECT graphile_worker.add_job('hot_task', json_build_object('s', %s))", [g])
            elapsed = time.perf_counter() - started
            conn.rollback()
        return count / elapsed

    def cycle_sample(self) -> float:
        """Enqueue (committed, not timed) and run every job with concurrent workers; jobs per second."""
        total, workers, fetch_size = self.args.cycle_jobs, self.args.workers, self.args.fetch_size
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("VACUUM graphile_worker._private_jobs, graphile_worker._private_job_queues")
            conn.execute(self.ADD_JOBS_SQL, [total])
            # Statistics that know the new jobs, as autovacuum's ANALYZE would soon give them: both
            # variants then plan fetch_jobs from the same, current picture.
            conn.execute("ANALYZE graphile_worker._private_jobs")
        return drain_with_workers(self.dsn, total, workers, fetch_size)

    def run_hot_path(self) -> None:
        """Each metric: rounds x (with, without) in the order A B B A A B ...; ratio = median with / median without."""
        rounds = self.args.hot_rounds
        order: list[str] = []
        for r in range(rounds):
            order += ["with", "without"] if r % 2 == 0 else ["without", "with"]
        samples: dict[str, dict[str, list[float]]] = {}
        for metric, what in (("add_jobs_100k_jobs_per_s", "add_jobs"), ("add_job_single_calls_per_s", "add_job")):
            samples[metric] = {"with": [], "without": []}
            for variant in order:
                samples[metric][variant].append(self.enqueue_sample(variant, what))
            log(f"  {metric}: {samples[metric]}")
        # The worker cycle commits, so the variants switch by dropping and re-creating the indexes.
        metric = "fetch_complete_jobs_per_s"
        samples[metric] = {"with": [], "without": []}
        switch_seconds = []
        for variant in order:
            switch_seconds.append(self.set_indexes(variant == "with"))
            samples[metric][variant].append(self.cycle_sample())
        self.set_indexes(True)
        log(f"  {metric}: {samples[metric]}")
        summary = {}
        for metric, per in samples.items():
            w, wo = statistics.median(per["with"]), statistics.median(per["without"])
            summary[metric] = {"with": round(w), "without": round(wo), "ratio": round(w / wo, 3)}
        self.results["hot_path"] = {
            "order": order,
            "samples": {m: {v: [round(x) for x in xs] for v, xs in per.items()} for m, per in samples.items()},
            "index_rebuild_seconds": [round(x, 2) for x in switch_seconds],
            "median": summary,
        }

    # -- batched delete -------------------------------------------------------

    def run_batched(self) -> None:
        target = self.args.batched_jobs
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            have = conn.execute(
                "SELECT count(*) FROM graphile_worker._private_jobs WHERE attempts >= max_attempts"
            ).fetchone()[0]
            started = time.perf_counter()
            conn.execute(
                "UPDATE graphile_worker._private_jobs SET attempts = max_attempts, last_error = 'bench'"
                " WHERE id IN (SELECT id FROM graphile_worker._private_jobs"
                "  WHERE locked_at IS NULL AND attempts < max_attempts ORDER BY id LIMIT %s)",
                [max(target - have, 0)],
            )
            conn.execute("VACUUM ANALYZE graphile_worker._private_jobs")
            prepared = conn.execute(
                "SELECT count(*) FROM graphile_worker._private_jobs WHERE attempts >= max_attempts"
            ).fetchone()[0]
            probe_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM graphile_worker._private_jobs WHERE attempts >= max_attempts"
                    " AND locked_at IS NULL ORDER BY id"
                )
            ]
        log(f"  {prepared:,} permanently failed jobs ready in {time.perf_counter() - started:.1f} s")

        # A concurrent session that keeps asking for a row lock on a permanently failed job, as an
        # enqueuer replacing a keyed job would, and records how long it had to wait.
        stop = threading.Event()
        waits: list[float] = []

        def prober() -> None:
            rng = random.Random(5)
            with psycopg.connect(self.dsn) as c:
                c.execute("SET lock_timeout = '30s'")
                c.commit()
                while not stop.is_set():
                    job_id = rng.choice(probe_ids)
                    t0 = time.perf_counter()
                    c.execute("SELECT 1 FROM graphile_worker._private_jobs WHERE id = %s FOR UPDATE", [job_id])
                    waits.append(time.perf_counter() - t0)
                    c.rollback()
                    time.sleep(0.002)

        batches: list[dict] = []

        def progress(total: int, batch: int, seconds: float) -> None:
            batches.append({"deleted": batch, "seconds": seconds})
            if len(batches) % 10 == 0 or batch < self.args.batch_size:
                log(f"  batched delete: {total:,} deleted, last batch {batch:,} in {seconds * 1000:.0f} ms")

        thread = threading.Thread(target=prober)
        thread.start()
        started = time.perf_counter()
        try:
            summary = run_batched_cleanup(self.dsn, self.args.batch_size, progress)
        finally:
            stop.set()
            thread.join()
        elapsed = time.perf_counter() - started
        secs = [b["seconds"] for b in batches]
        self.results["batched"] = {
            "permafailed_jobs": prepared,
            "batch_size": self.args.batch_size,
            "deleted": summary.deleted,
            "batches": summary.batches,
            "total_seconds": round(elapsed, 2),
            "max_batch_ms": round(max(secs) * 1000, 1) if secs else 0,
            "median_batch_ms": round(statistics.median(secs) * 1000, 1) if secs else 0,
            "probe_lock_waits": len(waits),
            "probe_max_wait_ms": round(max(waits) * 1000, 1) if waits else 0,
        }

    # -- report ---------------------------------------------------------------

    def report(self) -> None:
        large = self.n >= 5_000_000
        lines = [
            f"Scale benchmark, {self.n:,} jobs, median of {self.args.runs} runs (ms; cpu = server CPU time of the"
            " call; target = what the scale indexes were built to meet, on wall-clock time)",
            "",
        ]
        has_base = bool(self.results["admin_without_scale_indexes"])
        head = f"{'call':44} {'median':>9} {'cpu':>8} {'target':>8} {'met':>4}" + (
            f" {'no v4 idx':>10}" if has_base else ""
        )
        lines += [head, "-" * len(head)]
        for label, r in self.results["admin"].items():
            target = TARGETS_MS.get(label, (None, None))[1 if large else 0]
            met = "" if target is None else ("yes" if r["median_ms"] < target else "NO")
            cpu = r.get("server_cpu_median_ms", "")
            row = f"{label:44} {r['median_ms']:9.1f} {cpu:>8} {target if target is not None else '':>8} {met:>4}"
            if has_base:
                row += f" {self.results['admin_without_scale_indexes'].get(label, {}).get('median_ms', ''):>10}"
            lines.append(row)
            if "us_per_deleted_row" in r:
                lines.append(f"{'  (per deleted row, us)':44} {r['us_per_deleted_row']:9.2f}")
        hot = self.results["hot_path"].get("median")
        if hot:
            lines += ["", f"{'hot path (median)':30} {'with':>10} {'without':>10} {'ratio':>7}"]
            for metric, v in hot.items():
                lines.append(f"{metric:30} {v['with']:>10} {v['without']:>10} {v['ratio']:>7}")
        b = self.results["batched"]
        if b:
            lines += [
                "",
                f"batched delete of {b['permafailed_jobs']:,} permanently failed jobs, batches of {b['batch_size']:,}:"
                f" {b['batches']} batches in {b['total_seconds']} s; longest batch (lock hold) {b['max_batch_ms']} ms,"
                f" median {b['median_batch_ms']} ms; a concurrent session waited at most {b['probe_max_wait_ms']} ms"
                f" for a row lock ({b['probe_lock_waits']} tries)",
            ]
        text = "\n".join(lines)
        print(text)
        path = write_json(f"admin-{self.n}.json", self.results, self.out_dir)
        (self.out_dir / f"admin-{self.n}.txt").write_text(text + "\n")
        if self.plans:
            (self.out_dir / f"plans-{self.n}.txt").write_text("\n\n".join(self.plans) + "\n")
        log(f"written {path}")

    def run(self) -> None:
        self.create_and_load()
        try:
            self.current_variant = "with scale indexes"
            log("admin calls, with the version-4 indexes")
            self.run_admin("admin", self.args.explain)
            if self.args.baseline:
                log("admin calls, without the version-4 indexes")
                self.current_variant = "without scale indexes"
                self.set_indexes(False)
                self.run_admin("admin_without_scale_indexes", self.args.explain)
                self.set_indexes(True)
            if self.args.hot_rounds:
                log("hot path")
                self.run_hot_path()
            if self.args.batched_jobs:
                log("batched delete")
                self.run_batched()
            self.report()
        finally:
            if not self.args.keep:
                drop_database(self.args.server, self.dbname)


def build_parser() -> argparse.ArgumentParser:
    p = bench_parser(__doc__, keep="keep the benchmark database", option=True)
    p.add_argument("--jobs", type=int, default=1_000_000, help="jobs to generate (default 1,000,000)")
    p.add_argument("--runs", type=int, default=5, help="measured runs per admin call (default 5, at least 3)")
    p.add_argument("--baseline", action="store_true", help="also run the admin calls without the version-4 indexes")
    p.add_argument("--explain", action="store_true", help="write auto_explain plans of every admin call")
    p.add_argument("--hot-rounds", type=int, default=3, help="hot-path rounds per variant (0: skip)")
    p.add_argument("--single-adds", type=int, default=10_000, help="single add_job calls per hot-path round")
    p.add_argument("--cycle-jobs", type=int, default=30_000, help="jobs run by the workers per hot-path round")
    p.add_argument("--workers", type=int, default=4, help="concurrent workers in the fetch/complete cycle")
    p.add_argument("--fetch-size", type=int, default=10, help="fetch_jobs batch_size of each worker")
    p.add_argument(
        "--batched-jobs", type=int, default=1_000_000, help="permanently failed jobs to batch-delete (0: skip)"
    )
    p.add_argument("--batch-size", type=int, default=10_000, help="batch size of the batched delete")
    p.add_argument("--out", help="output directory (default $GW_BUILD/bench or build/bench)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs < 3:
        raise SystemExit("--runs must be at least 3 (medians of at least 3 runs)")
    Bench(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
