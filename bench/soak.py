"""Bounded soak: enqueuers, workers, admin calls and cleanup at once, to show none of them loses a job.

    python bench/soak.py [DSN] [--seconds 180] [--enqueuers 3] [--workers 4]

DSN is a libpq string of any database on a loopback server (default: postgres on
127.0.0.1:$PGPORT); the soak works in a fresh database gw_soak there, dropped at
the end unless --keep. Every process is a separate OS process with its own
connection, using only the SQL API:

  - enqueuers: add_job and add_jobs (1-20 specs); some jobs in named queues, some
    with a job key (replace mode, so a later add can replace a waiting job). Each
    job's payload holds a unique token, recorded in soak_enqueued in the same
    transaction as the add.
  - workers: fetch_jobs (batch 1, 5 or 10), then per job complete_job or fail_job,
    recording the outcome in soak_runs in the same transaction. About 10% of the
    tokens fail on their first attempt (and retry after the backoff), 2% fail on
    every attempt (max_attempts 2: they end permanently failed, for cleanup).
  - admin: complete_jobs, permanently_fail_jobs, reschedule_jobs and
    force_unlock_workers on random ids (mostly existing jobs, some missing), each
    call's latency measured; the jobs complete_jobs deletes are recorded.
  - cleanup: cleanup(GC_JOB_QUEUES, GC_TASK_IDENTIFIERS, DELETE_PERMAFAILED_JOBS) in a loop.

An AFTER DELETE trigger on _private_jobs (in the soak database only) logs every
deleted job's token, its attempts and which process deleted it. At the end each
enqueued token must be exactly one of: completed once by a worker, still in the
jobs table, deleted by complete_jobs (admin), deleted by cleanup while
permanently failed, or replaced through its job key by a later add. Anything else
is lost; a token completed twice is a duplicate; a delete no process meant is
lost too. Deadlocks are the pg_stat_database delta plus any 40P01 a client saw.

A table is printed and the figures written to <build>/bench/soak.json (<build> is
$GW_BUILD, else build/ in the checkout). Exit status 1 when lost, duplicates,
deadlocks or unexpected errors are not all zero.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path

import psycopg
from psycopg import errors

from gwtest.db import deadlocks, drop_database, fresh_database, wait_for_backends
from gwtest.procs import SPAWN, Group
from gwtest.results import bench_parser, environment, write_json
from gwtest.timing import log, percentile

SOAK_DB = "gw_soak"
TASKS = ("soak_a", "soak_b", "soak_c")
QUEUES = 10
KEYS_PER_ENQUEUER = 100
ADMIN_CALLS = ("complete_jobs", "permanently_fail_jobs", "reschedule_jobs", "force_unlock_workers")
CLEANUP_CALL = "cleanup"

SETUP_SQL = """
CREATE TABLE soak_enqueued (
  token text PRIMARY KEY,
  job_id bigint NOT NULL,
  job_key text,
  superseded boolean NOT NULL DEFAULT false
);
CREATE INDEX ON soak_enqueued (job_id);
CREATE TABLE soak_runs (token text NOT NULL, job_id bigint NOT NULL, worker text NOT NULL,
  outcome text NOT NULL, attempts int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE soak_admin (token text, job_id bigint NOT NULL, action text NOT NULL);
CREATE TABLE soak_deleted (token text, job_id bigint NOT NULL, attempts int NOT NULL, max_attempts int NOT NULL,
  actor text NOT NULL);
CREATE FUNCTION soak_log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.soak_deleted (token, job_id, attempts, max_attempts, actor)
  SELECT o.payload->>'t', o.id, o.attempts, o.max_attempts, current_setting('application_name')
  FROM old_rows AS o;
  RETURN NULL;
END;
$$;
CREATE TRIGGER soak_log_delete AFTER DELETE ON graphile_worker._private_jobs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION soak_log_delete();
"""


def check_loopback(dsn: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    hosts = str(info.get("host") or os.environ.get("PGHOST") or "").split(",")
    for host in hosts:
        if host and not host.startswith("/") and host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"soak: refusing non-loopback host {host!r}; the soak runs against a local server only")


def outcome_of(token: str) -> str:
    """What a worker does with this token: 'ok', 'fail_once' or 'fail_always'."""
    h = zlib.crc32(token.encode()) % 100
    if h < 10:
        return "fail_once"
    if h < 12:
        return "fail_always"
    return "ok"


class Proc:
    """What one soak process counts and measures; sent back to the parent at the end."""

    def __init__(self, name: str):
        self.name = name
        self.counts: Counter = Counter()
        self.latencies: dict[str, list[float]] = {}
        self.messages: list[str] = []

    def error(self, exc: BaseException) -> None:
        if isinstance(exc, errors.DeadlockDetected):
            self.counts["deadlocks_seen"] += 1
        else:
            self.counts["errors"] += 1
        if len(self.messages) < 10:
            self.messages.append(f"{self.name}: {type(exc).__name__}: {str(exc).strip()[:300]}")

    def timed(self, name: str, start: float) -> None:
        self.latencies.setdefault(name, []).append(time.perf_counter() - start)

    def result(self) -> dict:
        return {"name": self.name, "counts": dict(self.counts), "latencies": self.latencies, "messages": self.messages}


def run_process(role: str, n: int, dsn: str, go, stop, results, opts: dict) -> None:
    proc = Proc(f"{role}-{n}")
    try:
        with psycopg.connect(dsn, autocommit=True, application_name=f"soak-{role}") as conn:
            rng = random.Random(f"{role}-{n}-{os.getpid()}")
            go.wait()
            body = {"enqueuer": enqueuer, "worker": worker, "admin": admin, "cleanup": cleanup}[role]
            body(conn, n, rng, stop, proc, opts)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the soak
        proc.counts["errors"] += 1
        proc.messages.append(f"{proc.name} crashed: {traceback.format_exc()[-1500:]}")
        if not isinstance(exc, Exception):
            raise
    finally:
        results.put(proc.result())


def enqueuer(conn: psycopg.Connection, n: int, rng: random.Random, stop, proc: Proc, opts: dict) -> None:
    seq = 0
    add_jobs = (
        "SELECT id, payload->>'t' FROM graphile_worker.add_jobs(ARRAY("
        "  SELECT ROW(i, p::json, q, NULL, m, k, pr, NULL)::graphile_worker.job_spec"
        "  FROM unnest(%s::text[], %s::text[], %s::text[], %s::smallint[], %s::text[], %s::smallint[])"
        "    AS u(i, p, q, m, k, pr)))"
    )
    add_job = (
        "SELECT id, payload->>'t' FROM graphile_worker.add_job(%s, %s::json, queue_name => %s,"
        " max_attempts => %s, job_key => %s, priority => %s)"
    )
    record = (
        "INSERT INTO soak_enqueued (token, job_id, job_key) SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[])"
    )
    # A job key replaced a waiting job: that job's earlier token will never run.
    supersede = (
        "UPDATE soak_enqueued AS e SET superseded = true FROM unnest(%s::bigint[], %s::text[]) AS r(id, t)"
        " WHERE e.job_id = r.id AND e.token <> r.t AND NOT e.superseded"
    )
    rounds = 0
    while not stop.is_set():
        rounds += 1
        if rounds % 20 == 0:
            backlog = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM graphile_worker._private_jobs LIMIT %s) AS j",
                [opts["max_backlog"] + 1],
            ).fetchone()[0]
            if backlog > opts["max_backlog"]:
                proc.counts["throttled"] += 1
                time.sleep(0.2)
                continue
        size = 1 if rng.random() < 0.6 else rng.randint(2, 20)
        specs, keys = [], set()
        for _ in range(size):
            seq += 1
            token = f"e{n}-{seq}"
            kind = outcome_of(token)
            key = f"k{n}-{rng.randrange(KEYS_PER_ENQUEUER)}" if rng.random() < 0.15 else None
            if key in keys:
                key = None
            keys.add(key)
            queue = f"q{rng.randrange(QUEUES)}" if rng.random() < 0.3 else None
            specs.append(
                (
                    rng.choice(TASKS),
                    json.dumps({"t": token}),
                    queue,
                    2 if kind == "fail_always" else 3,
                    key,
                    rng.choice((0, 0, 0, 1, -1)),
                )
            )
        try:
            with conn.transaction():
                if size == 1:
                    rows = conn.execute(add_job, list(specs[0]), prepare=True).fetchall()
                else:
                    rows = conn.execute(
                        add_jobs, [list(col) for col in zip(*specs, strict=True)], prepare=True
                    ).fetchall()
                ids = [r[0] for r in rows]
                toks = [r[1] for r in rows]
                by_token = {s[1]: s[4] for s in specs}
                key_of = [by_token[json.dumps({"t": t})] for t in toks]
                conn.execute(record, [toks, ids, key_of], prepare=True)
                if any(key_of):
                    superseded = conn.execute(supersede, [ids, toks], prepare=True).rowcount
                    proc.counts["superseded"] += superseded
            proc.counts["enqueued"] += len(rows)
            proc.counts["add_job" if size == 1 else "add_jobs"] += 1
        except psycopg.Error as exc:
            proc.error(exc)
        if opts["enqueue_pause"]:
            time.sleep(opts["enqueue_pause"])


def worker(conn: psycopg.Connection, n: int, rng: random.Random, stop, proc: Proc, opts: dict) -> None:
    wid = f"soak-worker-{n}"
    fetch = "SELECT id, payload->>'t', attempts FROM graphile_worker.fetch_jobs(%s, NULL, %s)"
    complete = "SELECT (graphile_worker.complete_job(%s, %s)).id"
    fail = "SELECT (graphile_worker.fail_job(%s, %s, %s)).id"
    record = "INSERT INTO soak_runs (token, job_id, worker, outcome, attempts) VALUES (%s, %s, %s, %s, %s)"
    while not stop.is_set():
        try:
            jobs = conn.execute(fetch, [wid, rng.choice((1, 5, 10))], prepare=True).fetchall()
        except psycopg.Error as exc:
            proc.error(exc)
            continue
        if not jobs:
            proc.counts["idle"] += 1
            time.sleep(0.01)
            continue
        for job_id, token, attempts in jobs:
            kind = outcome_of(token)
            failing = kind == "fail_always" or (kind == "fail_once" and attempts == 1)
            try:
                with conn.transaction():
                    if failing:
                        done = conn.execute(fail, [wid, job_id, f"soak failure {attempts}"], prepare=True).fetchone()[0]
                    else:
                        done = conn.execute(complete, [wid, job_id], prepare=True).fetchone()[0]
                    if done is not None:
                        outcome = "failed" if failing else "completed"
                        conn.execute(record, [token, job_id, wid, outcome, attempts], prepare=True)
                        proc.counts[outcome] += 1
                    else:
                        # force_unlock_workers took the job away; another fetch runs it again.
                        proc.counts["lock_lost"] += 1
            except psycopg.Error as exc:
                proc.error(exc)


def admin(conn: psycopg.Connection, n: int, rng: random.Random, stop, proc: Proc, opts: dict) -> None:
    candidates: list[int] = []
    top = 0
    calls = 0
    record = "INSERT INTO soak_admin (token, job_id, action) SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[])"
    while not stop.is_set():
        calls += 1
        try:
            if calls % 20 == 1 or not candidates:
                candidates = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM graphile_worker._private_jobs TABLESAMPLE SYSTEM (20) LIMIT 500"
                    )
                ]
                top = conn.execute("SELECT coalesce(max(id), 0) FROM graphile_worker._private_jobs").fetchone()[0]
            ids = rng.sample(candidates, min(len(candidates), 8)) + [rng.randint(1, top + 100) for _ in range(2)]
            call = rng.choices(ADMIN_CALLS, weights=(1, 1, 2, 1))[0]
            with conn.transaction():
                start = time.perf_counter()
                if call == "complete_jobs":
                    rows = conn.execute(
                        "SELECT payload->>'t', id FROM graphile_worker.complete_jobs(%s)", [ids], prepare=True
                    ).fetchall()
                elif call == "permanently_fail_jobs":
                    rows = conn.execute(
                        "SELECT payload->>'t', id FROM graphile_worker.permanently_fail_jobs(%s, 'soak admin')",
                        [ids],
                        prepare=True,
                    ).fetchall()
                elif call == "reschedule_jobs":
                    rows = conn.execute(
                        "SELECT payload->>'t', id FROM graphile_worker.reschedule_jobs(%s,"
                        " run_at => now() + %s * interval '1 second', priority => %s, attempts => %s)",
                        [ids, rng.uniform(0, 2), rng.randint(-3, 3), rng.choice((None, None, 0))],
                        prepare=True,
                    ).fetchall()
                else:
                    victims = [f"soak-worker-{rng.randrange(opts['workers'])}"]
                    conn.execute("SELECT graphile_worker.force_unlock_workers(%s)", [victims], prepare=True)
                    rows = []
                proc.timed(call, start)
                if rows:
                    conn.execute(record, [[r[0] for r in rows], [r[1] for r in rows], [call] * len(rows)])
            proc.counts[call] += 1
            proc.counts[f"{call}_rows"] += len(rows)
        except psycopg.Error as exc:
            proc.error(exc)
        time.sleep(opts["admin_pause"])


def cleanup(conn: psycopg.Connection, n: int, rng: random.Random, stop, proc: Proc, opts: dict) -> None:
    call = (
        "SELECT task::text, deleted_count FROM graphile_worker.cleanup("
        "'{GC_JOB_QUEUES,GC_TASK_IDENTIFIERS,DELETE_PERMAFAILED_JOBS}'::graphile_worker.cleanup_task[])"
    )
    while not stop.is_set():
        try:
            start = time.perf_counter()
            rows = conn.execute(call, prepare=True).fetchall()
            proc.timed(CLEANUP_CALL, start)
            proc.counts["cleanup"] += 1
            for task, deleted in rows:
                proc.counts[task.lower()] += deleted
        except psycopg.Error as exc:
            proc.error(exc)
        time.sleep(opts["cleanup_pause"])


VERIFY_SQL = """
WITH present AS (
  SELECT payload->>'t' AS t, count(*) AS n FROM graphile_worker._private_jobs GROUP BY 1
), completed AS (
  SELECT token AS t, count(*) AS n FROM soak_runs WHERE outcome = 'completed' GROUP BY 1
), deleted AS (
  SELECT token AS t, count(*) AS n,
         bool_or(actor = 'soak-admin') AS by_admin,
         bool_or(actor = 'soak-cleanup') AS by_cleanup
  FROM soak_deleted GROUP BY 1
)
SELECT
  count(*) AS enqueued,
  count(*) FILTER (WHERE c.n = 1 AND p.t IS NULL) AS completed_once,
  count(*) FILTER (WHERE c.n > 1) AS completed_twice,
  count(*) FILTER (WHERE c.t IS NULL AND p.n = 1) AS still_queued,
  count(*) FILTER (WHERE p.n > 1) AS queued_twice,
  count(*) FILTER (WHERE c.t IS NOT NULL AND p.t IS NOT NULL) AS completed_but_queued,
  count(*) FILTER (WHERE c.t IS NULL AND p.t IS NULL AND d.by_admin) AS admin_completed,
  count(*) FILTER (WHERE c.t IS NULL AND p.t IS NULL AND d.by_cleanup) AS cleanup_deleted,
  count(*) FILTER (WHERE c.t IS NULL AND p.t IS NULL AND d.t IS NULL AND e.superseded) AS replaced_by_key,
  count(*) FILTER (WHERE p.t IS NULL AND d.t IS NULL AND NOT e.superseded) AS lost,
  count(*) FILTER (WHERE d.n > 1) AS deleted_twice
FROM soak_enqueued AS e
LEFT JOIN present AS p ON p.t = e.token
LEFT JOIN completed AS c ON c.t = e.token
LEFT JOIN deleted AS d ON d.t = e.token
"""

# A delete no process meant: by a worker without a completion recorded with it, by
# the admin process without complete_jobs returning it, by cleanup while the job
# was not permanently failed, or by anyone else.
UNEXPLAINED_DELETES_SQL = """
SELECT count(*) FROM soak_deleted AS d
WHERE NOT CASE d.actor
  WHEN 'soak-worker' THEN EXISTS (SELECT 1 FROM soak_runs AS r
                                  WHERE r.token = d.token AND r.job_id = d.job_id AND r.outcome = 'completed')
  WHEN 'soak-admin' THEN EXISTS (SELECT 1 FROM soak_admin AS a
                                 WHERE a.job_id = d.job_id AND a.action = 'complete_jobs')
  WHEN 'soak-cleanup' THEN d.attempts >= d.max_attempts
  ELSE false
END
"""

# Jobs in the table or deleted whose add never committed (the client saw it fail).
PHANTOMS_SQL = """
SELECT (SELECT count(*) FROM graphile_worker._private_jobs AS j
        WHERE NOT EXISTS (SELECT 1 FROM soak_enqueued AS e WHERE e.token = j.payload->>'t'))
     + (SELECT count(*) FROM soak_deleted AS d
        WHERE NOT EXISTS (SELECT 1 FROM soak_enqueued AS e WHERE e.token = d.token))
"""


class Soak:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.server_dsn = args.dsn
        self.dsn = ""

    def setup(self) -> None:
        self.dsn = fresh_database(self.server_dsn, SOAK_DB, migrated=True)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(SETUP_SQL)

    def teardown(self) -> None:
        if not self.args.keep:
            drop_database(self.server_dsn, SOAK_DB)

    def run(self) -> dict:
        a = self.args
        opts = {
            "workers": a.workers,
            "max_backlog": a.max_backlog,
            "enqueue_pause": a.enqueue_pause,
            "admin_pause": a.admin_pause,
            "cleanup_pause": a.cleanup_pause,
        }
        go, stop, results = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
        roles = (
            [("enqueuer", i) for i in range(a.enqueuers)]
            + [("worker", i) for i in range(a.workers)]
            + [("admin", 0), ("cleanup", 0)]
        )
        with psycopg.connect(self.dsn, autocommit=True) as conn, Group() as group:
            for r, i in roles:
                group.start(run_process, r, i, self.dsn, go, stop, results, opts)
            procs = group.procs
            time.sleep(2.0)  # let the processes import and connect
            deadlocks_before = deadlocks(conn)
            log(f"soak: {a.seconds} s, {a.enqueuers} enqueuers, {a.workers} workers, 1 admin, 1 cleanup")
            started = time.monotonic()
            go.set()
            next_note = started + 30
            while time.monotonic() - started < a.seconds:
                time.sleep(min(1.0, max(0.0, a.seconds - (time.monotonic() - started))))
                if time.monotonic() >= next_note:
                    next_note += 30
                    done = conn.execute("SELECT count(*) FROM soak_runs WHERE outcome = 'completed'").fetchone()[0]
                    log(f"  {time.monotonic() - started:5.0f} s: {done:,} jobs completed")
            stop.set()
            elapsed = time.monotonic() - started
            gathered = []
            for _ in procs:
                try:
                    gathered.append(results.get(timeout=120))
                except Exception:  # noqa: BLE001 - a process that never reported is an error below
                    break
            group.join(timeout=30)
            group.kill()
            wait_for_backends(conn, "soak-%", timeout=30)
            time.sleep(1.0)
            deadlocks_server = deadlocks(conn) - deadlocks_before
            verify = dict(zip(VERIFY_COLUMNS, conn.execute(VERIFY_SQL).fetchone(), strict=True))
            unexplained = conn.execute(UNEXPLAINED_DELETES_SQL).fetchone()[0]
            phantoms = conn.execute(PHANTOMS_SQL).fetchone()[0]
            env = environment(conn)
        counts: Counter = Counter()
        latencies: dict[str, list[float]] = {}
        messages: list[str] = []
        for r in gathered:
            counts.update(r["counts"])
            for k, v in r["latencies"].items():
                latencies.setdefault(k, []).extend(v)
            messages.extend(r["messages"])
        missing = len(procs) - len(gathered)
        if missing:
            counts["errors"] += missing
            messages.append(f"{missing} soak processes never reported")
        deadlocks_seen = counts.get("deadlocks_seen", 0)
        lost = verify["lost"] + unexplained
        duplicates = verify["completed_twice"] + verify["queued_twice"] + verify["completed_but_queued"]
        summary = {
            "seconds": round(elapsed, 1),
            "jobs_completed": counts.get("completed", 0),
            "jobs_per_s": round(counts.get("completed", 0) / elapsed, 1),
            "enqueued_per_s": round(counts.get("enqueued", 0) / elapsed, 1),
            "deadlocks_server": deadlocks_server,
            "deadlocks_seen_by_clients": deadlocks_seen,
            "lost": lost,
            "duplicates": duplicates,
            "phantoms": phantoms,
            "unexpected_errors": counts.get("errors", 0),
        }
        calls = {}
        for name in (*ADMIN_CALLS, CLEANUP_CALL):
            v = latencies.get(name, [])
            calls[name] = {
                "calls": len(v),
                "p50_ms": round(percentile(v, 50, interpolate=True) * 1000, 2) if v else None,
                "p99_ms": round(percentile(v, 99, interpolate=True) * 1000, 2) if v else None,
                "max_ms": round(max(v) * 1000, 2) if v else None,
            }
        return {
            "environment": env,
            "options": {k: v for k, v in vars(a).items() if k != "dsn"},
            "summary": summary,
            "calls": calls,
            "accounting": {**verify, "unexplained_deletes": unexplained},
            "counts": dict(sorted(counts.items())),
            "messages": messages[:30],
        }


VERIFY_COLUMNS = (
    "enqueued",
    "completed_once",
    "completed_twice",
    "still_queued",
    "queued_twice",
    "completed_but_queued",
    "admin_completed",
    "cleanup_deleted",
    "replaced_by_key",
    "lost",
    "deleted_twice",
)


def report(result: dict) -> Path:
    s, env = result["summary"], result["environment"]
    print(
        f"\nsoak: {s['seconds']} s under load (PostgreSQL {env['postgres']}, schema v{env['schema_version']},"
        f" {env['cpus']} CPUs)"
    )
    print(f"  jobs completed            {s['jobs_completed']:>10,}  ({s['jobs_per_s']:,.1f} jobs/s)")
    print(f"  jobs enqueued per second  {s['enqueued_per_s']:>10,.1f}")
    print(f"\n  {'call under load':<24} {'calls':>7} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, c in result["calls"].items():
        if c["calls"]:
            print(f"  {name:<24} {c['calls']:>7,} {c['p50_ms']:>9.2f} {c['p99_ms']:>9.2f} {c['max_ms']:>9.2f}")
        else:
            print(f"  {name:<24} {0:>7}")
    print("\n  accounting of every enqueued token")
    for k, v in result["accounting"].items():
        print(f"    {k:<26} {v:>10,}")
    print()
    for k in ("deadlocks_server", "deadlocks_seen_by_clients", "lost", "duplicates", "phantoms", "unexpected_errors"):
        print(f"  {k:<28} {s[k]:>6}")
    for m in result["messages"]:
        print(f"  ! {m}")
    path = write_json("soak.json", result)
    print(f"\nwritten to {path}")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = bench_parser(__doc__, keep=f"keep the {SOAK_DB} database", dest="dsn")
    p.add_argument("--seconds", type=float, default=180, help="how long the load runs (default 180)")
    p.add_argument("--enqueuers", type=int, default=3, help="enqueuer processes (default 3)")
    p.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    p.add_argument("--max-backlog", type=int, default=5_000, help="enqueuers pause while more jobs wait (default 5000)")
    p.add_argument("--enqueue-pause", type=float, default=0.0, help="seconds each enqueuer sleeps between adds")
    p.add_argument("--admin-pause", type=float, default=0.02, help="seconds the admin sleeps between calls")
    p.add_argument("--cleanup-pause", type=float, default=0.25, help="seconds between cleanup calls")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_loopback(args.dsn)
    soak = Soak(args)
    soak.setup()
    try:
        result = soak.run()
        report(result)
    finally:
        soak.teardown()
    s = result["summary"]
    bad = (
        s["lost"]
        + s["duplicates"]
        + s["phantoms"]
        + s["deadlocks_server"]
        + s["deadlocks_seen_by_clients"]
        + s["unexpected_errors"]
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
