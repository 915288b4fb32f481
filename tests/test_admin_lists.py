"""The job list with real sessions (schema version 12): pages walked while workers fetch, complete
and fail jobs and an enqueuer adds more never skip a job that stayed in the filter the whole time,
and never return a job twice, except one whose sort column changed between pages."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import psycopg
import pytest


def workers_and_enqueuer(dsn: str, stop: threading.Event, counts: dict) -> list[threading.Thread]:
    """Two workers (our worker API: fetch 10, complete most, fail every seventh) and an enqueuer."""

    def work() -> None:
        worker_id = f"ls-{uuid.uuid4()}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM graphile_worker.fetch_jobs(%s, ARRAY['ls_run'], 10)", [worker_id]
                    ).fetchall()
                ]
                if not ids:
                    time.sleep(0.01)
                    continue
                failed = [i for i in ids if i % 7 == 0]
                done = [i for i in ids if i % 7 != 0]
                conn.execute("SELECT graphile_worker.complete_worker_jobs(%s, %s)", [worker_id, done])
                conn.execute("SELECT graphile_worker.fail_worker_jobs(%s, %s, 'ls: failed')", [worker_id, failed])
                counts["fetched"] += len(ids)

    def enqueue() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(
                    "SELECT graphile_worker.add_jobs(ARRAY(SELECT ROW(t, '{}', NULL, r, NULL, NULL, NULL, NULL)"
                    "::graphile_worker.job_spec FROM (VALUES ('ls_run', now()), ('ls_stay', now() + interval '1 day'))"
                    " AS v (t, r), generate_series(1, 5)))"
                )
                counts["added"] += 10
                time.sleep(0.005)

    threads = [threading.Thread(target=work) for _ in range(2)] + [threading.Thread(target=enqueue)]
    for t in threads:
        t.start()
    return threads


def walk(conn, order_by: str, descending: bool, states: list[str] | None) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        rows = conn.execute(
            "SELECT id, next_cursor FROM graphile_worker.list_jobs(states => %s::graphile_worker.job_state[],"
            " task_identifiers => '{ls_run,ls_stay}', order_by => %s, descending => %s, page_size => 50,"
            " after_cursor => %s)",
            [states, order_by, descending, cursor],
        ).fetchall()
        ids += [r[0] for r in rows]
        if len(rows) < 50:
            return ids
        cursor = rows[-1][1]
        time.sleep(0.01)  # let the workers move between pages


@pytest.mark.parametrize(
    ("order_by", "descending", "states"),
    [
        ("id", False, None),
        ("id", True, None),
        ("run_at", False, None),
        ("updated_at", True, None),
        ("run_at", False, ["scheduled"]),
    ],
)
def test_pages_walked_while_workers_run_repeat_nothing_and_skip_nothing_that_stayed(
    db, installed, order_by, descending, states
):
    # Jobs that stay in the filter: scheduled for later, not fetched; ten share each run_at, so that
    # pages end inside ties. Jobs that move: due, fetched, completed or failed while the walk goes on.
    db.execute(
        "SELECT graphile_worker.add_jobs(ARRAY(SELECT ROW("
        " CASE WHEN n % 2 = 0 THEN 'ls_stay' ELSE 'ls_run' END, '{}', NULL,"
        " CASE WHEN n % 2 = 0 THEN date_trunc('minute', now()) + interval '1 hour' + (n / 20) * interval '1 second'"
        " ELSE now() END, NULL, NULL, NULL, NULL)::graphile_worker.job_spec FROM generate_series(1, 4000) AS n))"
    )
    stayed = {
        r[0] for r in db.execute("SELECT id FROM graphile_worker.jobs WHERE task_identifier = 'ls_stay'").fetchall()
    }
    assert len(stayed) == 2000

    stop = threading.Event()
    counts = {"fetched": 0, "added": 0}
    threads = workers_and_enqueuer(installed, stop, counts)
    try:
        with psycopg.connect(installed, autocommit=True) as reader:
            listed = walk(reader, order_by, descending, states)
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert counts["fetched"] > 0 and counts["added"] > 0, "the workers and the enqueuer ran during the walk"
    twice = {i for i, n in Counter(listed).items() if n > 1}
    if order_by == "id":
        assert twice == set(), "no job is listed twice"
    else:
        # Keyset pagination follows the sort column: a job whose run_at or updated_at moves past the
        # cursor between pages (a failure's backoff) can come again. Only those may; the workers fail
        # exactly the jobs whose id is a multiple of 7.
        assert {i for i in twice if i % 7 != 0} == set(), "only jobs whose sort column changed are listed twice"
    assert stayed <= set(listed), f"{len(stayed - set(listed))} jobs that stayed in the filter were skipped"
