"""Pausing and the audit log with real sessions and real workers (schema version 10).

A paused queue must hold off both our SQL workers and graphile-worker's own Node worker (which
honours only queue locks), keep its jobs in place, and run them when resumed. A paused task holds
off our SQL workers. The audit log row of an administrative call exists exactly when the call
committed, as other sessions see it."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from gwtest import node

# graphile-worker's run() for RUN_MS milliseconds; every job of the task ui_task is recorded in ui_runs.
NODE_WORKER_JS = """
const runner = await gw.run({
  connectionString: process.env.DATABASE_URL,
  concurrency: 4,
  pollInterval: 100,
  noHandleSignals: true,
  logger: new gw.Logger(() => () => {}),
  taskList: {
    ui_task: async (payload, helpers) => {
      await helpers.query("INSERT INTO ui_runs (job_id, worker) VALUES ($1, 'node')", [helpers.job.id]);
    },
  },
});
await new Promise((resolve) => setTimeout(resolve, Number(process.env.RUN_MS)));
await runner.stop();
"""


def run_node_worker(dsn: str, run_ms: int) -> None:
    done = node.run_module(NODE_WORKER_JS, {"DATABASE_URL": dsn, "RUN_MS": str(run_ms)})
    assert done.returncode == 0, done.stderr


def run_sql_worker(dsn: str, seconds: float, task_identifiers: list[str] | None = None) -> None:
    """Our worker API in a loop: fetch a batch, record each job, complete them."""
    worker_id = f"sql-{uuid.uuid4()}"
    deadline = time.monotonic() + seconds
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            with conn.transaction():
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM graphile_worker.fetch_jobs(%s, %s, 10)", [worker_id, task_identifiers]
                    ).fetchall()
                ]
            if not ids:
                time.sleep(0.02)
                continue
            with conn.transaction():
                conn.execute("INSERT INTO ui_runs (job_id, worker) SELECT unnest(%s::bigint[]), 'sql'", [ids])
                conn.execute("SELECT graphile_worker.complete_worker_jobs(%s, %s)", [worker_id, ids])


@pytest.fixture
def ui(db):
    db.execute("CREATE TABLE ui_runs (job_id bigint NOT NULL, worker text NOT NULL, at timestamptz DEFAULT now())")
    return db


def add_jobs(db, count: int, task: str = "ui_task", queue: str | None = None) -> list[int]:
    return [
        r[0]
        for r in db.execute(
            "SELECT (graphile_worker.add_job(%s, queue_name => %s)).id FROM generate_series(1, %s)",
            [task, queue, count],
        ).fetchall()
    ]


def ran(db, ids: list[int]) -> set[int]:
    return {r[0] for r in db.execute("SELECT job_id FROM ui_runs WHERE job_id = ANY (%s)", [ids]).fetchall()}


def waiting(db, ids: list[int]) -> list[tuple[int, int]]:
    return db.execute(
        "SELECT id, attempts FROM graphile_worker._private_jobs WHERE id = ANY (%s) ORDER BY id", [ids]
    ).fetchall()


def test_a_paused_queue_is_run_by_neither_worker_until_resumed(ui, installed):
    paused = add_jobs(ui, 6, queue="ui_paused_q")
    free = add_jobs(ui, 6, queue="ui_free_q") + add_jobs(ui, 6)
    assert ui.execute("SELECT graphile_worker.pause_queue('ui_paused_q', 'test')").fetchone()[0] is True

    # Both kinds of worker at once, for a while: every free job runs, no paused one does.
    sql_worker = threading.Thread(target=run_sql_worker, args=(installed, 3.0))
    sql_worker.start()
    run_node_worker(installed, 3000)
    sql_worker.join()
    assert ran(ui, free) == set(free)
    assert ran(ui, paused) == set()
    assert waiting(ui, paused) == [(i, 0) for i in paused], "paused jobs keep their place, never attempted"
    assert ui.execute(
        "SELECT count(*) FROM graphile_worker.jobs AS j WHERE graphile_worker.job_state(j) = 'paused'"
    ).fetchone()[0] == len(paused)

    # Neither the Node worker's stale-lock sweep nor cleanup nor force_unlock_workers ends the pause.
    ui.execute("SELECT graphile_worker.cleanup('{GC_JOB_QUEUES}')")
    ui.execute("SELECT graphile_worker.force_unlock_workers(ARRAY['graphile_worker.pause_queue'])")
    run_node_worker(installed, 1000)
    assert ran(ui, paused) == set()

    assert ui.execute("SELECT graphile_worker.resume_queue('ui_paused_q')").fetchone()[0] is True
    run_node_worker(installed, 2500)
    assert ran(ui, paused) == set(paused)
    assert waiting(ui, paused) == []
    # One at a time, in order, as a queue runs.
    order = [r[0] for r in ui.execute("SELECT job_id FROM ui_runs WHERE job_id = ANY (%s) ORDER BY at", [paused])]
    assert order == sorted(paused)


def test_a_paused_task_is_not_run_by_our_workers_until_resumed(ui, installed):
    paused = add_jobs(ui, 5, task="ui_paused_task")
    free = add_jobs(ui, 5)
    ui.execute("SELECT graphile_worker.pause_task('ui_paused_task')")
    for tasks in (None, ["ui_paused_task", "ui_task"]):
        run_sql_worker(installed, 1.0, tasks)
    assert ran(ui, free) == set(free)
    assert ran(ui, paused) == set()
    assert waiting(ui, paused) == [(i, 0) for i in paused]
    ui.execute("SELECT graphile_worker.resume_task('ui_paused_task')")
    run_sql_worker(installed, 1.0, ["ui_paused_task"])
    assert ran(ui, paused) == set(paused)


def log_rows(conn, function: str) -> int:
    return conn.execute("SELECT count(*) FROM graphile_worker.admin_log WHERE function = %s", [function]).fetchone()[0]


def test_an_admin_call_is_logged_exactly_when_it_commits(ui, installed):
    ids = add_jobs(ui, 3)
    with psycopg.connect(installed) as admin, psycopg.connect(installed, autocommit=True) as observer:
        admin.execute("SELECT graphile_worker.complete_jobs(%s)", [ids[:1]])
        admin.execute("SELECT graphile_worker.pause_queue('ui_log_q')")
        # Not committed yet: nobody else sees the rows; then rolled back: nobody ever will.
        assert log_rows(observer, "complete_jobs") == 0 and log_rows(observer, "pause_queue") == 0
        admin.rollback()
        assert log_rows(observer, "complete_jobs") == 0 and log_rows(observer, "pause_queue") == 0
        assert len(waiting(observer, ids)) == 3

        admin.execute("SELECT graphile_worker.complete_jobs(%s)", [ids[:2]])
        admin.execute("SELECT graphile_worker.permanently_fail_jobs(%s, 'no')", [ids[2:]])
        admin.commit()
        assert observer.execute(
            "SELECT function, asked, changed, reason, job_ids FROM graphile_worker.admin_log ORDER BY id"
        ).fetchall() == [("complete_jobs", 2, 2, None, ids[:2]), ("permanently_fail_jobs", 1, 1, "no", ids[2:])]
        # A call that fails rolls its row back with it.
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            admin.execute("SELECT graphile_worker.pause_queue('')")
        admin.rollback()
        assert log_rows(observer, "pause_queue") == 0


def test_the_log_names_the_session_role(ui, installed):
    role = f"gw_ui_{uuid.uuid4().hex[:8]}"
    ui.execute(f"CREATE ROLE {role} LOGIN")
    try:
        from installer.cli import main

        assert main(["--database", installed, "grant", "--admin", role]) == 0
        with psycopg.connect(installed.replace("postgres@", f"{role}@"), autocommit=True) as conn:
            conn.execute("SELECT graphile_worker.pause_task('ui_role_task', 'because')")
            assert conn.execute(
                "SELECT session_role, reason FROM graphile_worker.admin_log WHERE function = 'pause_task'"
            ).fetchone() == (role, "because")
            assert conn.execute("SELECT name, paused_by FROM graphile_worker.pauses").fetchall() == [
                ("ui_role_task", role)
            ]
            # The admin set reads the log and the pauses through the views, not the tables.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM graphile_worker._private_admin_log")
    finally:
        ui.execute(f"DROP OWNED BY {role}")
        ui.execute(f"DROP ROLE {role}")
