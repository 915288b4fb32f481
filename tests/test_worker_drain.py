"""Eight worker processes drain 20,000 jobs while a ninth enqueues more.

Each worker is a separate OS process with its own connection, using only the SQL
worker API: fetch_jobs (committed), record the start of each job, record its end
and complete_worker_jobs in one transaction. The runs table then proves that
every job ran exactly once, that no two jobs of one queue ever overlapped in
time, and that each queue ran its jobs in order; pg_stat_database proves that no
deadlock happened. The enqueuer also calls release_stale_locks after each round:
with every worker alive and no lock old, it must never release anything.
"""

from __future__ import annotations

import time

import psycopg

from gwtest.db import deadlocks, wait_for_backends
from gwtest.procs import SPAWN, Group, drain, reporting

WORKERS = 8
BATCH_SIZES = (1, 5, 20, 50)
QUEUES = 20
INITIAL_JOBS = 20_000
ROUNDS = 40
PER_ROUND_BATCH = 50
PER_ROUND_SINGLE = 10
DEADLINE_S = 100
APP = "gw-drain-test"


def run_worker(dsn: str, worker_id: str, batch_size: int, done, errors) -> None:
    """A worker: fetch, run (record start and end), complete; until all is done."""
    with reporting(errors, worker_id), psycopg.connect(dsn, autocommit=True, application_name=APP) as conn:
        while True:
            jobs = conn.execute(
                "SELECT id, queue_name FROM graphile_worker.fetch_jobs(%s, NULL, %s)", [worker_id, batch_size]
            ).fetchall()
            if not jobs:
                if (
                    done.is_set()
                    and not conn.execute("SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs)").fetchone()[0]
                ):
                    return
                time.sleep(0.005)
                continue
            ids = [j[0] for j in jobs]
            conn.execute(
                "INSERT INTO drain_runs (job_id, queue_name, worker, started) "
                "SELECT j, q, %s, clock_timestamp() FROM unnest(%s::bigint[], %s::text[]) AS u(j, q)",
                [worker_id, ids, [j[1] for j in jobs]],
            )
            with conn.transaction():
                conn.execute(
                    "UPDATE drain_runs SET ended = clock_timestamp() "
                    "WHERE job_id = ANY (%s) AND worker = %s AND ended IS NULL",
                    [ids, worker_id],
                )
                completed = conn.execute(
                    "SELECT count(*) FROM graphile_worker.complete_worker_jobs(%s, %s)", [worker_id, ids]
                ).fetchone()[0]
            if completed != len(ids):
                raise AssertionError(f"{worker_id}: completed {completed} of {len(ids)} jobs it held")


def run_enqueuer(dsn: str, done, errors, released) -> None:
    """Adds jobs in rounds (add_jobs and add_job), recording their ids in the same transaction."""
    try:
        with reporting(errors, "enqueuer"), psycopg.connect(dsn, autocommit=True, application_name=APP) as conn:
            for r in range(ROUNDS):
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO drain_enqueued (job_id) "
                        "SELECT id FROM graphile_worker.add_jobs(ARRAY("
                        "  SELECT ROW('drain', json_build_object('r', %s, 'i', i),"
                        "    CASE WHEN i %% 2 = 0 THEN 'q' || ((i / 2) %% %s) END,"
                        "    NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec"
                        "  FROM generate_series(1, %s) AS i))",
                        [r, QUEUES, PER_ROUND_BATCH],
                    )
                for i in range(PER_ROUND_SINGLE):
                    queue = f"q{(r + i) % QUEUES}" if i % 2 else None
                    with conn.transaction():
                        conn.execute(
                            "INSERT INTO drain_enqueued (job_id) "
                            "SELECT id FROM graphile_worker.add_job('drain', '{}', queue_name => %s)",
                            [queue],
                        )
                released.put(conn.execute("SELECT * FROM graphile_worker.release_stale_locks()").fetchone())
                time.sleep(0.02)
    finally:
        done.set()


def test_eight_workers_drain_jobs_while_a_ninth_enqueues(db, installed):
    db.execute(
        "CREATE TABLE drain_runs (job_id bigint NOT NULL, queue_name text, worker text NOT NULL,"
        " started timestamptz NOT NULL, ended timestamptz)"
    )
    db.execute("CREATE TABLE drain_enqueued (job_id bigint PRIMARY KEY)")
    # Half the jobs in 20 named queues, half plain, interleaved.
    db.execute(
        "INSERT INTO drain_enqueued (job_id) "
        "SELECT id FROM graphile_worker.add_jobs(ARRAY("
        "  SELECT ROW('drain', json_build_object('i', i), CASE WHEN i %% 2 = 0 THEN 'q' || ((i / 2) %% %s) END,"
        "    NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec"
        "  FROM generate_series(1, %s) AS i))",
        [QUEUES, INITIAL_JOBS],
    )
    deadlocks_before = deadlocks(db)

    done, errors, released = SPAWN.Event(), SPAWN.Queue(), SPAWN.Queue()
    with Group() as group:
        for n in range(WORKERS):
            group.start(run_worker, installed, f"drain-{n}", BATCH_SIZES[n % len(BATCH_SIZES)], done, errors)
        group.start(run_enqueuer, installed, done, errors, released)
        stuck = group.join(DEADLINE_S)
        assert not stuck, f"still running after {DEADLINE_S} s: {stuck}"

    failures = drain(errors)
    assert not failures, "\n".join(failures)
    assert group.exitcodes() == [0] * (WORKERS + 1)

    release_results = [released.get(timeout=5) for _ in range(ROUNDS)]
    assert set(release_results) == {(0, 0)}, "release_stale_locks released a lock a live worker held"

    expected = INITIAL_JOBS + ROUNDS * (PER_ROUND_BATCH + PER_ROUND_SINGLE)
    assert db.execute("SELECT count(*) FROM drain_enqueued").fetchone()[0] == expected
    assert db.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0] == 0
    assert (
        db.execute("SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_at IS NOT NULL").fetchone()[0]
        == 0
    )

    # Every enqueued job ran exactly once, and nothing else ran.
    wrong = db.execute(
        "SELECT coalesce(e.job_id, r.job_id), coalesce(r.runs, 0) FROM drain_enqueued AS e "
        "FULL JOIN (SELECT job_id, count(*) AS runs FROM drain_runs GROUP BY job_id) AS r USING (job_id) "
        "WHERE r.runs IS DISTINCT FROM 1 LIMIT 10"
    ).fetchall()
    assert wrong == [], f"jobs not run exactly once (id, runs): {wrong}"
    assert db.execute("SELECT count(*) FROM drain_runs WHERE ended IS NULL OR ended < started").fetchone()[0] == 0

    # No two jobs of one queue overlapped in time, and each queue ran in order.
    overlaps = db.execute(
        "SELECT queue_name, job_id, started, prev_job, prev_ended FROM ("
        "  SELECT queue_name, job_id, started,"
        "    lag(job_id) OVER w AS prev_job, lag(ended) OVER w AS prev_ended"
        "  FROM drain_runs WHERE queue_name IS NOT NULL"
        "  WINDOW w AS (PARTITION BY queue_name ORDER BY started, job_id)"
        ") AS x WHERE started < prev_ended LIMIT 10"
    ).fetchall()
    assert overlaps == [], f"jobs of one queue overlapped: {overlaps}"
    out_of_order = db.execute(
        "SELECT queue_name, job_id, prev_job FROM ("
        "  SELECT queue_name, job_id, lag(job_id) OVER (PARTITION BY queue_name ORDER BY started, job_id) AS prev_job"
        "  FROM drain_runs WHERE queue_name IS NOT NULL"
        ") AS x WHERE job_id < prev_job LIMIT 10"
    ).fetchall()
    assert out_of_order == [], f"a queue ran a later job before an earlier one: {out_of_order}"
    assert db.execute("SELECT count(DISTINCT queue_name) FROM drain_runs").fetchone()[0] == QUEUES

    assert wait_for_backends(db, APP, timeout=10), "worker backends did not exit"
    assert deadlocks(db) == deadlocks_before, "PostgreSQL reported a deadlock"
