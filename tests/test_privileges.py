"""Privileges: PUBLIC may do nothing; each capability set grants exactly its functions."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from gwtest.db import dsn_for
from installer.cli import main
from installer.core import shipped_migrations

# One representative call per capability, run as the role under test.
CALLS = {
    "enqueue": [
        "SELECT graphile_worker.add_job('priv_task')",
        "SELECT graphile_worker.add_jobs(ARRAY[ROW('priv_task',NULL,NULL,NULL,NULL,NULL,NULL,NULL)]"
        "::graphile_worker.job_spec[])",
        "SELECT graphile_worker.remove_job('no-such-key')",
    ],
    "worker": [
        "SELECT * FROM graphile_worker.fetch_jobs('priv-worker', NULL, 1)",
        "SELECT graphile_worker.complete_job('priv-worker', -1)",
        "SELECT * FROM graphile_worker.complete_worker_jobs('priv-worker', ARRAY[-1]::bigint[])",
        "SELECT graphile_worker.fail_job('priv-worker', -1, 'x')",
        "SELECT * FROM graphile_worker.fail_worker_jobs('priv-worker', ARRAY[-1]::bigint[], 'x')",
        "SELECT * FROM graphile_worker.release_stale_locks()",
    ],
    "admin": [
        "SELECT * FROM graphile_worker.complete_jobs(ARRAY[-1]::bigint[])",
        "SELECT * FROM graphile_worker.permanently_fail_jobs(ARRAY[-1]::bigint[])",
        "SELECT * FROM graphile_worker.reschedule_jobs(ARRAY[-1]::bigint[])",
        "SELECT graphile_worker.force_unlock_workers(ARRAY['nobody'])",
        "SELECT * FROM graphile_worker.cleanup()",
        "SELECT count(*) FROM graphile_worker.jobs",
        "SELECT count(*) FROM graphile_worker.worker_locks",
    ],
}
PRIVATE = [
    "SELECT count(*) FROM graphile_worker._private_jobs",
    "SELECT count(*) FROM graphile_worker._private_tasks",
    "SELECT count(*) FROM graphile_worker._private_job_queues",
    "INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('sneaky')",
    "UPDATE graphile_worker._private_jobs SET locked_at = NULL",
    "DELETE FROM graphile_worker._private_jobs",
    "SELECT graphile_worker._private_notify_insert(1)",
]


@pytest.fixture
def roles(installed):
    names = ["gw_enq", "gw_wrk", "gw_adm", "gw_nobody"]
    with psycopg.connect(installed, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP ROLE IF EXISTS {name}")
            conn.execute(f"CREATE ROLE {name} LOGIN")
    yield names
    with psycopg.connect(installed, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


def allowed(dsn: str, role: str, statement: str) -> bool:
    """Run statement as role in a rolled-back transaction; False on permission denied."""
    dbname = dsn.rsplit("/", 1)[1]
    with psycopg.connect(dsn_for(dbname, user=role)) as conn:
        try:
            conn.execute(statement)
            return True
        except errors.InsufficientPrivilege:
            return False
        finally:
            conn.rollback()


def test_public_can_do_nothing(installed, roles):
    for statement in [s for calls in CALLS.values() for s in calls] + PRIVATE:
        assert not allowed(installed, "gw_nobody", statement), statement


@pytest.mark.parametrize("capability,role", [("enqueue", "gw_enq"), ("worker", "gw_wrk"), ("admin", "gw_adm")])
def test_each_capability_grants_exactly_its_set(installed, roles, capability, role):
    assert main(["--database", installed, "grant", f"--{capability}", role]) == 0
    assert main(["--database", installed, "grant", f"--{capability}", role]) == 0, "grant is idempotent"
    for cap, statements in CALLS.items():
        for statement in statements:
            assert allowed(installed, role, statement) == (cap == capability), (role, statement)
    for statement in PRIVATE:
        assert not allowed(installed, role, statement), statement


def test_enqueue_role_really_enqueues(installed, roles):
    assert main(["--database", installed, "grant", "--enqueue", "gw_enq", "--worker", "gw_wrk"]) == 0
    dbname = installed.rsplit("/", 1)[1]
    with psycopg.connect(dsn_for(dbname, user="gw_enq"), autocommit=True) as conn:
        job_id = conn.execute("SELECT (graphile_worker.add_job('real_task', '{\"n\": 1}')).id").fetchone()[0]
    with psycopg.connect(dsn_for(dbname, user="gw_wrk"), autocommit=True) as conn:
        fetched = conn.execute("SELECT id FROM graphile_worker.fetch_jobs('w-1', ARRAY['real_task'], 5)").fetchall()
        assert [r[0] for r in fetched] == [job_id]
        assert conn.execute("SELECT (graphile_worker.complete_job('w-1', %s)).id", [job_id]).fetchone()[0] == job_id
    with psycopg.connect(installed) as conn:
        assert conn.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0] == 0


def test_revoke_takes_the_set_back_and_leaves_others(installed, roles):
    assert main(["--database", installed, "grant", "--admin", "gw_adm", "--enqueue", "gw_adm"]) == 0
    assert main(["--database", installed, "revoke", "--admin", "gw_adm"]) == 0
    assert main(["--database", installed, "revoke", "--admin", "gw_adm"]) == 0, "revoke is idempotent"
    for statement in CALLS["admin"]:
        assert not allowed(installed, "gw_adm", statement), statement
    for statement in CALLS["enqueue"]:
        assert allowed(installed, "gw_adm", statement), statement


def test_grants_survive_later_migrations(installed, roles):
    assert main(["--database", installed, "grant", "--worker", "gw_wrk", "--admin", "gw_adm"]) == 0
    versions = [m.version for m in shipped_migrations()]
    # Going back to the first version drops every later function; migrating again re-creates them.
    assert main(["--database", installed, "rollback", "--to", str(versions[0])]) == 0
    assert main(["--database", installed, "migrate"]) == 0
    for statement in CALLS["worker"]:
        assert allowed(installed, "gw_wrk", statement), statement
    for statement in CALLS["admin"]:
        assert allowed(installed, "gw_adm", statement), statement
    assert not allowed(installed, "gw_wrk", CALLS["admin"][0])


def test_grant_errors_are_one_line(installed, roles, capsys):
    assert main(["--database", installed, "grant", "--worker", "no_such_role"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_role" in err[0]
    assert main(["--database", installed, "grant"]) == 2
