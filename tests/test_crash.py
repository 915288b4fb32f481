"""Crashes: a backend terminated in the middle of an admin call, cleanup or migrate leaves nothing half done.

Each test makes the call stop half way deterministically: another session holds a
lock the call needs after it has already changed some rows. Once the call's backend
is seen waiting on that lock, it is terminated (and for migrate, its process killed).
"""

from __future__ import annotations

import signal
import threading

import psycopg
import pytest

from gwtest.procs import start_cli
from gwtest.timing import wait_until
from installer.cli import main
from installer.core import shipped_migrations

SNAPSHOT = (
    "SELECT id, attempts, max_attempts, priority, run_at, locked_by, last_error"
    " FROM graphile_worker._private_jobs ORDER BY id"
)


def wait_for_lock_wait(observer: psycopg.Connection, pid: int, timeout: float = 20.0) -> None:
    waiting = wait_until(
        lambda: observer.execute(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock')", [pid]
        ).fetchone()[0],
        timeout,
        interval=0.02,
    )
    assert waiting, f"backend {pid} never waited on a lock"


def seed(conn: psycopg.Connection) -> list[int]:
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT (graphile_worker.add_job('crash_task', json_build_object('n', n), max_attempts => 3)).id"
            " FROM generate_series(1, 6) AS n"
        )
    ]
    # Two permanently failed jobs and one locked by a dead worker, for cleanup and force unlock.
    conn.execute("UPDATE graphile_worker._private_jobs SET attempts = max_attempts WHERE id = ANY(%s)", [ids[:2]])
    conn.execute(
        "UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'dead-worker' WHERE id = %s", [ids[2]]
    )
    return ids


CALLS = {
    # call, how the holder blocks it half way
    "complete_jobs": ("SELECT count(*) FROM graphile_worker.complete_jobs(%(ids)s)", "row"),
    "permanently_fail_jobs": ("SELECT count(*) FROM graphile_worker.permanently_fail_jobs(%(ids)s, 'x')", "row"),
    "reschedule_jobs": ("SELECT count(*) FROM graphile_worker.reschedule_jobs(%(ids)s, priority => 9)", "row"),
    "force_unlock_workers": ("SELECT graphile_worker.force_unlock_workers(ARRAY['dead-worker'])", "queues"),
    "cleanup": (
        "SELECT count(*) FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES}')",
        "queues",
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_terminated_admin_call_changes_nothing(installed, name):
    statement, block = CALLS[name]
    with psycopg.connect(installed, autocommit=True) as setup:
        ids = seed(setup)
        before = setup.execute(SNAPSHOT).fetchall()
    with psycopg.connect(installed) as holder, psycopg.connect(installed, autocommit=True) as observer:
        if block == "row":
            # The call works through the ids in order and stops at the last, which the holder has locked.
            holder.execute("SELECT 1 FROM graphile_worker._private_jobs WHERE id = %s FOR UPDATE", [max(ids)])
        else:
            # The call's last step touches the queues table, which the holder has locked.
            holder.execute("LOCK TABLE graphile_worker._private_job_queues IN ACCESS EXCLUSIVE MODE")
        victim = psycopg.connect(installed, autocommit=True)
        pid = victim.info.backend_pid
        outcome: dict = {}

        def call():
            try:
                victim.execute(statement, {"ids": [i for i in ids if i != ids[2]] if block == "row" else ids})
                outcome["result"] = "finished"
            except psycopg.OperationalError as exc:
                outcome["result"] = type(exc).__name__

        thread = threading.Thread(target=call)
        thread.start()
        wait_for_lock_wait(observer, pid)
        assert observer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        thread.join(30)
        holder.rollback()
        victim.close()
    assert outcome.get("result") not in (None, "finished"), outcome
    with psycopg.connect(installed) as conn:
        assert conn.execute(SNAPSHOT).fetchall() == before, f"{name} was half applied"


def test_killed_migrate_is_finished_by_the_next_run(dsn):
    versions = [m.version for m in shipped_migrations()]
    first = versions[0]
    assert main(["--database", dsn, "migrate"]) == 0
    assert main(["--database", dsn, "rollback", "--to", str(first)]) == 0
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as observer:
        # Version 2's functions read the jobs table when they are created: holding it stops migrate there.
        holder.execute("LOCK TABLE graphile_worker._private_jobs IN ACCESS EXCLUSIVE MODE")
        proc = start_cli("--database", dsn, "migrate", env={"PGAPPNAME": "gw-crash-migrate"})
        pids = wait_until(
            lambda: [
                r[0]
                for r in observer.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    " AND pid <> pg_backend_pid()"
                )
            ],
            30,
            interval=0.02,
        )
        assert pids, "migrate never reached the locked table"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for pid in pids:
            observer.execute("SELECT pg_terminate_backend(%s)", [pid])
        holder.rollback()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == first, "half-applied migration"
        assert conn.execute("SELECT to_regprocedure('graphile_worker.complete_jobs(bigint[])') IS NULL").fetchone()[0]
        stale = conn.execute("SELECT count(*) FROM graphile_worker_migrations.yoyo_lock").fetchone()[0]
    assert stale == 1, "the killed run left yoyo's lock row behind (the case the installer must recover from)"
    again = start_cli("--database", dsn, "migrate", env={"PGAPPNAME": "gw-crash-migrate"})
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == versions[-1]
        assert conn.execute("SELECT count(*) FROM graphile_worker_migrations.yoyo_lock").fetchone()[0] == 0
