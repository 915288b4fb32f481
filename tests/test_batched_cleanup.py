"""Batched deletion of permanently failed jobs (installer.batched, schema version 4): real commits
between batches, other sessions working in between, and no locked job ever deleted."""

from __future__ import annotations

import threading

import psycopg
import pytest

from installer.batched import run_batched_cleanup
from installer.core import InstallerError


def _add_permafailed(conn: psycopg.Connection, count: int, task: str = "batched") -> list[int]:
    """Enqueue count jobs and fail them for good; returns their ids in order."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM graphile_worker.add_jobs(ARRAY(SELECT ROW(%s, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            "::graphile_worker.job_spec FROM generate_series(1, %s))) ORDER BY id",
            [task, count],
        )
    ]
    conn.execute("SELECT count(*) FROM graphile_worker.permanently_fail_jobs(%s, 'for good')", [ids])
    return ids


def _remaining(conn: psycopg.Connection, ids: list[int]) -> set[int]:
    return {r[0] for r in conn.execute("SELECT id FROM graphile_worker._private_jobs WHERE id = ANY (%s)", [ids])}


def test_each_batch_is_committed_before_the_next(db, installed):
    ids = _add_permafailed(db, 25)
    seen_by_other_session: list[int] = []

    def progress(total: int, batch: int, seconds: float) -> None:
        # Another session sees each batch's deletions at once: they were committed.
        with psycopg.connect(installed, autocommit=True) as other:
            seen_by_other_session.append(len(_remaining(other, ids)))
        assert seconds >= 0

    result = run_batched_cleanup(installed, 10, progress)
    assert seen_by_other_session == [15, 5, 0]
    assert (result.deleted, result.batches) == (25, 3)
    assert result.longest_batch_seconds > 0
    assert _remaining(db, ids) == set()


def test_sessions_can_lock_and_insert_between_batches_and_locked_jobs_survive(db, installed):
    ids = _add_permafailed(db, 30)
    added_later: list[int] = []
    calls: list[tuple[int, int]] = []

    def progress(total: int, batch: int, seconds: float) -> None:
        calls.append((total, batch))
        if len(calls) == 1:
            with psycopg.connect(installed, autocommit=True) as other:
                # A worker took the last remaining job on its final attempt: locked, so never deleted.
                other.execute(
                    "UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'worker-live'"
                    " WHERE id = %s",
                    [ids[-1]],
                )
                # A worker lock older than 4 hours belongs to a dead worker: deletable.
                other.execute(
                    "UPDATE graphile_worker._private_jobs SET locked_at = now() - interval '5 hours',"
                    " locked_by = 'worker-dead' WHERE id = %s",
                    [ids[-2]],
                )
                # More jobs fail for good while the cleanup runs: later batches take them.
                added_later.extend(_add_permafailed(other, 5, task="batched_late"))

    result = run_batched_cleanup(installed, 10, progress)
    assert calls[0] == (10, 10)
    assert _remaining(db, ids + added_later) == {ids[-1]}, "only the job locked by a live worker is left"
    assert result.deleted == len(ids) - 1 + len(added_later)
    # Batches of 10 until a short one: 34 deletable jobs -> 10, 10, 10, 4.
    assert [b for _, b in calls] == [10, 10, 10, 4]


def test_a_row_held_by_another_transaction_is_skipped_not_waited_for(db, installed):
    ids = _add_permafailed(db, 12)
    with psycopg.connect(installed) as holder:
        # Held as an enqueuer replacing a keyed job would hold it, until we let go.
        holder.execute("SELECT 1 FROM graphile_worker._private_jobs WHERE id = %s FOR UPDATE", [ids[3]])
        finished = threading.Event()
        outcome: list = []

        def run() -> None:
            try:
                outcome.append(run_batched_cleanup(installed, 5, None))
            except BaseException as exc:  # reported below
                outcome.append(exc)
            finished.set()

        thread = threading.Thread(target=run)
        thread.start()
        # The cleanup must finish while the row is still held: it never waits for it.
        assert finished.wait(30), "the batched cleanup waited for a row another transaction holds"
        thread.join()
        assert not isinstance(outcome[0], BaseException), outcome[0]
        assert outcome[0].deleted == 11
        assert _remaining(db, ids) == {ids[3]}
        holder.rollback()
    # Once released, the next run takes it.
    assert run_batched_cleanup(installed, 5, None).deleted == 1
    assert _remaining(db, ids) == set()


def test_nothing_to_delete_is_one_empty_batch(db, installed):
    db.execute("SELECT graphile_worker.add_job('waiting')")
    calls: list[tuple[int, int, float]] = []
    result = run_batched_cleanup(installed, 100, lambda *a: calls.append(a))
    assert (result.deleted, result.batches) == (0, 1)
    assert [c[:2] for c in calls] == [(0, 0)]
    assert db.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0] == 1


@pytest.mark.parametrize("bad", [0, -1, None, 2.5, True])
def test_bad_batch_size_is_refused_before_connecting(bad):
    with pytest.raises(InstallerError, match="batch size"):
        run_batched_cleanup("host=/nonexistent dbname=none connect_timeout=1", bad, None)


def test_missing_schema_is_a_clear_error(dsn):
    with pytest.raises(InstallerError, match="schema version 4 or newer .installed: none.; run migrate first"):
        run_batched_cleanup(dsn, 10, None)


def test_sql_errors_name_the_argument(db):
    with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="batch_size is 0"):
        db.execute("SELECT graphile_worker.delete_permafailed_jobs_batch(0)")
