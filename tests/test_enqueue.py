"""Enqueue behaviour that needs real commits: the jobs:insert notification."""

from __future__ import annotations

import json

import psycopg


def _notifications(conn: psycopg.Connection) -> list[dict]:
    return [json.loads(n.payload) for n in conn.notifies(timeout=1.0, stop_after=10)]


def test_insert_notification_is_sent_on_commit(installed):
    with psycopg.connect(installed, autocommit=True) as listener, psycopg.connect(installed) as writer:
        listener.execute('LISTEN "jobs:insert"')
        writer.execute("SELECT graphile_worker.add_job('notify_me')")
        writer.execute(
            "SELECT graphile_worker.add_jobs(ARRAY[ROW('a',NULL,NULL,NULL,NULL,NULL,NULL,NULL),"
            " ROW('b',NULL,NULL,NULL,NULL,NULL,NULL,NULL)]::graphile_worker.job_spec[])"
        )
        assert list(listener.notifies(timeout=0.3)) == [], "nothing may be delivered before commit"
        writer.commit()
        payloads = _notifications(listener)
    counts = sorted(p["count"] for p in payloads)
    assert counts == [1, 2]
    assert all(isinstance(p["r"], float) for p in payloads)


def test_no_notification_for_a_rolled_back_enqueue(installed):
    with psycopg.connect(installed, autocommit=True) as listener, psycopg.connect(installed) as writer:
        listener.execute('LISTEN "jobs:insert"')
        writer.execute("SELECT graphile_worker.add_job('never')")
        writer.rollback()
        assert list(listener.notifies(timeout=0.5)) == []


def test_remove_job_notifies_minus_one(installed):
    with psycopg.connect(installed, autocommit=True) as listener, psycopg.connect(installed, autocommit=True) as w:
        w.execute("SELECT graphile_worker.add_job('k', job_key => 'gone')")
        listener.execute('LISTEN "jobs:insert"')
        w.execute("SELECT graphile_worker.remove_job('gone')")
        payloads = _notifications(listener)
    assert [p["count"] for p in payloads] == [-1]
