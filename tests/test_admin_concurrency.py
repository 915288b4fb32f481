"""Admin calls racing workers and enqueuers, with real concurrent sessions.

Every race here is forced, not hoped for: one session takes its locks in an
open transaction, the other session makes its call, the test waits until
PostgreSQL reports that call as blocked by the first session (pg_blocking_pids),
or as finished, and only then is the first transaction committed or rolled back.
The outcome therefore never depends on timing; the deadline only turns a hang
into a failure.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import pytest

DEADLINE = 30.0  # seconds before a wait is declared hung; never reached when all is well


def blocked_by(observer: psycopg.Connection, pid: int, blocker: int) -> bool:
    return observer.execute("SELECT %s = ANY (pg_catalog.pg_blocking_pids(%s))", [blocker, pid]).fetchone()[0]


def wait_until_blocked(observer: psycopg.Connection, pid: int, blocker: int, call: Future) -> None:
    """Wait until backend pid waits for a lock held by backend blocker."""
    end = time.monotonic() + DEADLINE
    while not blocked_by(observer, pid, blocker):
        if call.done():
            raise AssertionError(f"the call finished without waiting for the lock holder: {call.result()!r}")
        if time.monotonic() > end:
            raise AssertionError("the call never blocked on the lock holder")
        time.sleep(0.01)


def wait_until_done_unblocked(observer: psycopg.Connection, pid: int, blocker: int, call: Future):
    """Wait until the call finishes, failing as soon as it waits for blocker's locks."""
    end = time.monotonic() + DEADLINE
    while not call.done():
        if blocked_by(observer, pid, blocker):
            raise AssertionError("the call waited for a lock held by the other session instead of skipping the row")
        if time.monotonic() > end:
            raise AssertionError("the call never finished")
        time.sleep(0.01)
    return call.result()


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


@pytest.fixture
def sessions(installed, pool):
    """Three connections: a worker or enqueuer (explicit transactions), an admin, an observer.

    Depends on pool so that it is torn down first: closing the holder releases its
    locks, so a call still blocked in the pool (after a failed assertion) can finish
    and the pool can shut down instead of hanging.
    """
    holder = psycopg.connect(installed)
    admin = psycopg.connect(installed, autocommit=True)
    observer = psycopg.connect(installed, autocommit=True)
    try:
        yield holder, admin, observer
    finally:
        for conn in (holder, admin, observer):
            conn.close()


def add_job(conn: psycopg.Connection, identifier: str, queue_name: str | None = None) -> int:
    return conn.execute(
        "SELECT id FROM graphile_worker.add_job(%s, queue_name => %s)", [identifier, queue_name]
    ).fetchone()[0]


def job_row(conn: psycopg.Connection, job_id: int):
    return conn.execute(
        "SELECT attempts, max_attempts, priority, last_error, locked_by"
        " FROM graphile_worker._private_jobs WHERE id = %s",
        [job_id],
    ).fetchone()


# What each admin call does to a job it is allowed to touch, as (attempts, max_attempts, priority, last_error)
# for a fresh job; None: the job is deleted.
ADMIN_CALLS = {
    "complete_jobs": ("SELECT id FROM graphile_worker.complete_jobs(%s)", None),
    "permanently_fail_jobs": (
        "SELECT id FROM graphile_worker.permanently_fail_jobs(%s, 'stop it')",
        (25, 25, 0, "stop it"),
    ),
    "reschedule_jobs": (
        "SELECT id FROM graphile_worker.reschedule_jobs(%s, priority => 9, attempts => 4)",
        (4, 25, 9, None),
    ),
}

WORKER_TAKES_JOB = (
    "UPDATE graphile_worker._private_jobs"
    " SET locked_at = now(), locked_by = 'worker-1', attempts = attempts + 1 WHERE id = %s"
)


@pytest.mark.parametrize("call", sorted(ADMIN_CALLS))
@pytest.mark.parametrize("worker", ["takes_job", "select_for_update_then_takes_job", "rolls_back"])
def test_admin_call_waits_for_a_worker_and_never_touches_the_job_it_took(sessions, pool, call, worker):
    holder, admin, observer = sessions
    held = add_job(admin, "race-task")
    free = add_job(admin, "race-task")
    query, effect = ADMIN_CALLS[call]

    # The worker is in the middle of taking `held`: its row is locked by an open transaction.
    if worker == "select_for_update_then_takes_job":
        holder.execute("SELECT id FROM graphile_worker._private_jobs WHERE id = %s FOR UPDATE", [held])
    else:
        holder.execute(WORKER_TAKES_JOB, [held])

    pending = pool.submit(lambda: {r[0] for r in admin.execute(query, [[held, free]]).fetchall()})
    wait_until_blocked(observer, admin.info.backend_pid, holder.info.backend_pid, pending)

    if worker == "select_for_update_then_takes_job":
        holder.execute(WORKER_TAKES_JOB, [held])
    if worker == "rolls_back":
        holder.rollback()
    else:
        holder.commit()
    returned = pending.result(timeout=DEADLINE)

    if worker == "rolls_back":
        # The worker gave the job up, so it is unlocked again: the call must act on it.
        assert returned == {held, free}
        assert job_row(observer, held) == (None if effect is None else (*effect, None))
    else:
        assert returned == {free}
        # Exactly as the worker left it: locked by worker-1, first attempt, nothing of the admin call.
        assert job_row(observer, held) == (1, 25, 0, None, "worker-1")
    assert job_row(observer, free) == (None if effect is None else (*effect, None))


def test_delete_permafailed_skips_a_job_being_revived_without_waiting(sessions, pool):
    holder, admin, observer = sessions
    revived = add_job(admin, "revive-task")
    dead = add_job(admin, "revive-task")
    admin.execute("SELECT graphile_worker.permanently_fail_jobs(%s)", [[revived, dead]])

    # An operator revives one permanently failed job, in a transaction still open.
    holder.execute("SELECT graphile_worker.reschedule_jobs(%s, attempts => 0)", [[revived]])
    pending = pool.submit(
        lambda: admin.execute("SELECT * FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS}')").fetchall()
    )
    result = wait_until_done_unblocked(observer, admin.info.backend_pid, holder.info.backend_pid, pending)
    assert result == [("DELETE_PERMAFAILED_JOBS", 1)]
    holder.commit()

    assert job_row(observer, dead) is None
    assert job_row(observer, revived) == (0, 25, 0, "Manually marked as failed", None)


def names(conn: psycopg.Connection) -> tuple[set[str], set[str]]:
    tasks = {r[0] for r in conn.execute("SELECT identifier FROM graphile_worker._private_tasks")}
    queues = {r[0] for r in conn.execute("SELECT queue_name FROM graphile_worker._private_job_queues")}
    return tasks, queues


def make_unused(conn: psycopg.Connection, identifier: str, queue_name: str) -> None:
    """Leave a task row and a queue row that no job uses, as completed jobs do."""
    conn.execute("SELECT graphile_worker.complete_jobs(ARRAY[%s]::bigint[])", [add_job(conn, identifier, queue_name)])


def job_in_view(conn: psycopg.Connection, job_id: int):
    return conn.execute(
        "SELECT task_identifier, queue_name FROM graphile_worker.jobs WHERE id = %s", [job_id]
    ).fetchone()


ALL_GC = "SELECT * FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES}')"


def test_cleanup_skips_the_task_and_queue_rows_an_open_enqueuer_holds(sessions, pool):
    holder, admin, observer = sessions
    make_unused(admin, "held-task", "held-queue")
    make_unused(admin, "free-task", "free-queue")

    # An enqueuer has added a job for the unused task and queue but not committed:
    # the job is invisible to everyone else, the rows it needs look unused.
    job = add_job(holder, "held-task", "held-queue")
    pending = pool.submit(lambda: admin.execute(ALL_GC).fetchall())
    result = wait_until_done_unblocked(observer, admin.info.backend_pid, holder.info.backend_pid, pending)

    # The free rows prove cleanup ran; the held ones were skipped.
    assert result == [("DELETE_PERMAFAILED_JOBS", 0), ("GC_TASK_IDENTIFIERS", 1), ("GC_JOB_QUEUES", 1)]
    assert names(observer) == ({"held-task"}, {"held-queue"})
    holder.commit()
    assert job_in_view(observer, job) == ("held-task", "held-queue")


def test_an_enqueuer_waits_for_cleanup_and_recreates_the_rows_it_deleted(sessions, pool):
    holder, admin, observer = sessions
    make_unused(admin, "gc-task", "gc-queue")
    old_ids = observer.execute(
        "SELECT (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'gc-task'),"
        " (SELECT id FROM graphile_worker._private_job_queues WHERE queue_name = 'gc-queue')"
    ).fetchone()

    # Cleanup has deleted both rows but not committed yet.
    result = holder.execute(ALL_GC).fetchall()
    assert result == [("DELETE_PERMAFAILED_JOBS", 0), ("GC_TASK_IDENTIFIERS", 1), ("GC_JOB_QUEUES", 1)]

    pending = pool.submit(add_job, admin, "gc-task", "gc-queue")
    wait_until_blocked(observer, admin.info.backend_pid, holder.info.backend_pid, pending)
    holder.commit()
    job = pending.result(timeout=DEADLINE)

    assert job_in_view(observer, job) == ("gc-task", "gc-queue")
    new_ids = observer.execute(
        "SELECT task_id, job_queue_id FROM graphile_worker._private_jobs WHERE id = %s", [job]
    ).fetchone()
    # New rows: the enqueuer noticed the deletion and made them again. The task row gets its old
    # id back (version 9 remembers it for processes that cached it); the queue row is a new one.
    assert new_ids[0] == old_ids[0] and new_ids[1] != old_ids[1]
    assert (
        observer.execute(
            "SELECT count(*) FROM graphile_worker._private_retired_tasks WHERE identifier = 'gc-task'"
        ).fetchone()[0]
        == 0
    )


def test_an_enqueuer_waits_for_a_cleanup_that_rolls_back_and_keeps_the_rows(sessions, pool):
    holder, admin, observer = sessions
    make_unused(admin, "gc-task", "gc-queue")
    old_ids = observer.execute(
        "SELECT (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'gc-task'),"
        " (SELECT id FROM graphile_worker._private_job_queues WHERE queue_name = 'gc-queue')"
    ).fetchone()

    holder.execute(ALL_GC).fetchall()
    pending = pool.submit(add_job, admin, "gc-task", "gc-queue")
    wait_until_blocked(observer, admin.info.backend_pid, holder.info.backend_pid, pending)
    holder.rollback()
    job = pending.result(timeout=DEADLINE)

    assert job_in_view(observer, job) == ("gc-task", "gc-queue")
    assert (
        observer.execute(
            "SELECT task_id, job_queue_id FROM graphile_worker._private_jobs WHERE id = %s", [job]
        ).fetchone()
        == old_ids
    )


def test_cleanup_keeps_a_queue_a_worker_is_locking(sessions, pool):
    holder, admin, observer = sessions
    make_unused(admin, "t", "busy-queue")
    # A worker (say, finishing its job) is writing the queue row in an open transaction.
    holder.execute(
        "UPDATE graphile_worker._private_job_queues SET locked_at = now(), locked_by = 'worker-1'"
        " WHERE queue_name = 'busy-queue'"
    )
    pending = pool.submit(lambda: admin.execute("SELECT * FROM graphile_worker.cleanup('{GC_JOB_QUEUES}')").fetchall())
    assert wait_until_done_unblocked(observer, admin.info.backend_pid, holder.info.backend_pid, pending) == [
        ("GC_JOB_QUEUES", 0)
    ]
    holder.commit()
    # Now committed and locked a moment ago: still kept.
    assert admin.execute("SELECT * FROM graphile_worker.cleanup('{GC_JOB_QUEUES}')").fetchall() == [
        ("GC_JOB_QUEUES", 0)
    ]
    assert names(observer)[1] == {"busy-queue"}


@pytest.mark.parametrize("level", ["repeatable read", "serializable"])
def test_gc_refuses_a_snapshot_that_cannot_advance(db, level):
    make_unused(db, "unused-task", "unused-queue")
    job = add_job(db, "perma-task")
    db.execute("SELECT graphile_worker.permanently_fail_jobs(ARRAY[%s]::bigint[])", [job])
    before = names(db)

    for tasks in ("{GC_TASK_IDENTIFIERS}", "{GC_JOB_QUEUES}", "{DELETE_PERMAFAILED_JOBS,GC_JOB_QUEUES}"):
        with db.transaction():
            db.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
            with pytest.raises(psycopg.Error) as failure:
                with db.transaction():
                    db.execute("SELECT * FROM graphile_worker.cleanup(%s)", [tasks])
        assert failure.value.sqlstate == "25000"
        assert "READ COMMITTED" in str(failure.value)
    assert names(db) == before
    assert job_row(db, job) is not None

    # Deleting permanently failed jobs does not depend on the snapshot: allowed at any level.
    with db.transaction():
        db.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        assert db.execute("SELECT * FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS}')").fetchall() == [
            ("DELETE_PERMAFAILED_JOBS", 1)
        ]
    assert job_row(db, job) is None
