"""A worker killed with SIGKILL in the middle of a job leaves it locked; unlocking
its worker id (force_unlock_workers, or release_stale_locks once the lock is over
4 hours old) makes the job run again, exactly once.

Deterministic: the victim process fetches and commits, records that it started,
then tells the test through a pipe and waits; only then does the test kill it.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from gwtest.procs import SPAWN, Group, drain, reporting

VICTIM = "crash-victim"
APP = "gw-crash-test"


def run_victim(dsn: str, pipe) -> None:
    """Fetch one job, record the start, report it, then hang until killed."""
    with psycopg.connect(dsn, autocommit=True, application_name=APP) as conn:
        job_id, attempts = conn.execute(
            "SELECT id, attempts FROM graphile_worker.fetch_jobs(%s, ARRAY['crash'])", [VICTIM]
        ).fetchone()
        conn.execute(
            "INSERT INTO crash_runs (job_id, worker, attempt, phase) VALUES (%s, %s, %s, 'started')",
            [job_id, VICTIM, attempts],
        )
        pipe.send(job_id)
        time.sleep(120)


def run_recovery_worker(dsn: str, worker_id: str, errors) -> None:
    """Run 'crash' jobs until none is left (none due, none locked)."""
    with reporting(errors, worker_id), psycopg.connect(dsn, autocommit=True, application_name=APP) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT id, attempts FROM graphile_worker.fetch_jobs(%s, ARRAY['crash'])", [worker_id]
            ).fetchone()
            if row is None:
                if not conn.execute("SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs)").fetchone()[0]:
                    return
                time.sleep(0.01)
                continue
            with conn.transaction():
                conn.execute(
                    "INSERT INTO crash_runs (job_id, worker, attempt, phase) VALUES (%s, %s, %s, 'completed')",
                    [row[0], worker_id, row[1]],
                )
                done = conn.execute("SELECT (graphile_worker.complete_job(%s, %s)).id IS NOT NULL", [worker_id, row[0]])
                if not done.fetchone()[0]:
                    raise AssertionError(f"{worker_id} could not complete job {row[0]} it held")
        raise AssertionError(f"{worker_id}: jobs left after 30 s")


def has_force_unlock_workers(db) -> bool:
    return db.execute("SELECT to_regprocedure('graphile_worker.force_unlock_workers(text[])') IS NOT NULL").fetchone()[
        0
    ]


@pytest.mark.parametrize("unlock", ["force_unlock_workers", "release_stale_locks"])
def test_killed_worker_job_runs_again_exactly_once(db, installed, unlock):
    if unlock == "force_unlock_workers" and not has_force_unlock_workers(db):
        pytest.fail("graphile_worker.force_unlock_workers(text[]) is missing (schema version 2)")
    db.execute(
        "CREATE TABLE crash_runs (job_id bigint NOT NULL, worker text NOT NULL, attempt int NOT NULL,"
        " phase text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    first = db.execute("SELECT id FROM graphile_worker.add_job('crash', queue_name => 'crash-q')").fetchone()[0]
    second = db.execute("SELECT id FROM graphile_worker.add_job('crash', queue_name => 'crash-q')").fetchone()[0]

    parent_end, child_end = SPAWN.Pipe()
    victim = SPAWN.Process(target=run_victim, args=(installed, child_end))
    victim.start()
    try:
        assert parent_end.poll(30), "the victim never reported its job"
        assert parent_end.recv() == first
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
    assert victim.exitcode == -signal.SIGKILL

    # The dead worker's job and queue stay locked: nobody else runs them.
    assert db.execute("SELECT locked_by, attempts FROM graphile_worker.jobs WHERE id = %s", [first]).fetchone() == (
        VICTIM,
        1,
    )
    assert db.execute(
        "SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'crash-q'"
    ).fetchone() == (VICTIM,)
    assert (
        db.execute("SELECT count(*) FROM graphile_worker.fetch_jobs('bystander', ARRAY['crash'], 10)").fetchone()[0]
        == 0
    ), "a job of the dead worker's queue was handed out"
    assert db.execute(
        "SELECT job_ids, queue_names, is_stale FROM graphile_worker.worker_locks WHERE worker_id = %s", [VICTIM]
    ).fetchone() == ([first], ["crash-q"], False)
    # A fresh lock with its job held is not released by the periodic call.
    assert db.execute("SELECT * FROM graphile_worker.release_stale_locks()").fetchone() == (0, 0)

    if unlock == "force_unlock_workers":
        db.execute("SELECT graphile_worker.force_unlock_workers(ARRAY[%s])", [VICTIM])
    else:
        # Four hours later (simulated), the periodic call releases the lock.
        db.execute(
            "UPDATE graphile_worker._private_jobs SET locked_at = now() - interval '5 hours' WHERE id = %s", [first]
        )
        db.execute(
            "UPDATE graphile_worker._private_job_queues SET locked_at = now() - interval '5 hours'"
            " WHERE locked_by = %s",
            [VICTIM],
        )
        assert db.execute("SELECT * FROM graphile_worker.release_stale_locks()").fetchone() == (1, 1)
    assert (
        db.execute("SELECT count(*) FROM graphile_worker.worker_locks WHERE worker_id = %s", [VICTIM]).fetchone()[0]
        == 0
    )

    # Two workers race for what is left: each job runs once, the crashed one as attempt 2.
    errors = SPAWN.Queue()
    with Group() as workers:
        for n in range(2):
            workers.start(run_recovery_worker, installed, f"rescuer-{n}", errors)
        workers.join(60)
    failures = drain(errors)
    assert not failures, "\n".join(failures)
    assert workers.exitcodes() == [0, 0]

    runs = db.execute("SELECT job_id, attempt, phase FROM crash_runs ORDER BY at").fetchall()
    assert runs == [(first, 1, "started"), (first, 2, "completed"), (second, 1, "completed")]
    assert db.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0] == 0
    assert (
        db.execute("SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_at IS NOT NULL").fetchone()[0]
        == 0
    )
