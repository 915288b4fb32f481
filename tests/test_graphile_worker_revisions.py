"""graphile_worker.migrations and the graphile-worker set, seen from the installer.

The rows of graphile_worker.migrations tell graphile-worker's Node worker which of its own schema
revisions are present. A row this installer did not write means a newer graphile-worker applied its
migration over this schema: status and verify must say so. A role holding the graphile-worker set
must not be able to do that at all. The Node side runs graphile-worker 0.18.0 from build/node
(make node installs it)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from gwtest import node
from installer.cli import main
from tests.conftest import PGHOST, PGPORT

# WorkerUtils' migrate: what run(), the CLI and makeWorkerUtils() all do at start-up.
MIGRATE_JS = """
try {
  const utils = await gw.makeWorkerUtils({ connectionString: process.env.DATABASE_URL });
  await utils.migrate();
  await utils.release();
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.code ?? null, message: String(e.message) }));
  process.exitCode = 1;
}
"""


def node_migrate(dsn: str) -> dict:
    done = node.run_module(MIGRATE_JS, {"DATABASE_URL": dsn})
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def gw_role(db):
    """A login role holding the graphile-worker set."""
    name = f"gw_node_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    db.execute(f"DROP OWNED BY {name}")
    db.execute(f"DROP ROLE {name}")


def function_definitions(db) -> dict[str, str]:
    return dict(
        db.execute(
            "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc AS p"
            " WHERE p.pronamespace = 'graphile_worker'::regnamespace"
        ).fetchall()
    )


def test_fresh_install_records_the_revisions_of_0_18(db, installed, capsys):
    rows = db.execute("SELECT id, breaking FROM graphile_worker.migrations ORDER BY id").fetchall()
    assert rows == [(i, i in (1, 3, 11, 13, 14, 16, 19)) for i in range(1, 21)]
    assert main(["--database", installed, "status"]) == 0
    assert main(["--database", installed, "verify"]) == 0, capsys.readouterr().out


def test_a_revision_we_did_not_write_is_reported_by_status_and_verify(db, installed, capsys):
    db.execute("INSERT INTO graphile_worker.migrations (id, breaking) VALUES (21, true)")
    capsys.readouterr()
    assert main(["--database", installed, "status"]) == 4
    out = capsys.readouterr().out
    assert "extra    migrations row 21 (breaking): not written by this installer" in out, out
    assert main(["--database", installed, "verify"]) == 1
    out = capsys.readouterr().out
    assert "extra    migrations row 21 (breaking)" in out and "1 objects differ" in out, out


def test_a_missing_or_changed_revision_is_reported(db, installed, capsys):
    db.execute("DELETE FROM graphile_worker.migrations WHERE id = 20")
    db.execute("UPDATE graphile_worker.migrations SET breaking = false WHERE id = 19")
    capsys.readouterr()
    assert main(["--database", installed, "verify"]) == 1
    out = capsys.readouterr().out
    assert "missing  migrations row 20" in out and "VALUES (20, false)" in out, out
    assert "changed  migrations row 19: breaking False -> True expected" in out, out


def test_a_newer_worker_run_as_owner_migrates_over_us_and_verify_sees_it(db, installed, capsys):
    # Recording only 1 to 19 makes graphile-worker 0.18 behave as a newer worker would: it applies
    # its 000020 (it replaces add_job and add_jobs) and records the row itself.
    db.execute("DELETE FROM graphile_worker.migrations WHERE id = 20")
    before = function_definitions(db)
    assert node_migrate(installed) == {"ok": True}
    after = function_definitions(db)
    changed = sorted(name for name in before if before[name] != after.get(name))
    assert changed and all(name.startswith("graphile_worker.add_job") for name in changed), changed
    capsys.readouterr()
    assert main(["--database", installed, "verify"]) == 1
    out = capsys.readouterr().out
    assert "changed  function graphile_worker.add_job(" in out, out


def test_the_graphile_worker_set_cannot_migrate_over_us(db, installed, gw_role, capsys):
    assert main(["--database", installed, "grant", "--graphile-worker", gw_role]) == 0
    db.execute("DELETE FROM graphile_worker.migrations WHERE id = 20")
    before = function_definitions(db)
    dbname = db.info.dbname
    result = node_migrate(f"postgresql://{gw_role}@{PGHOST}:{PGPORT}/{dbname}")
    assert result["ok"] is False and result["code"] == "42501", result
    assert function_definitions(db) == before
    assert db.execute("SELECT max(id) FROM graphile_worker.migrations").fetchone()[0] == 19


def test_the_current_worker_as_the_set_starts_and_changes_nothing(db, installed, gw_role, capsys):
    assert main(["--database", installed, "grant", "--graphile-worker", gw_role]) == 0
    before = function_definitions(db)
    result = node_migrate(f"postgresql://{gw_role}@{PGHOST}:{PGPORT}/{db.info.dbname}")
    assert result == {"ok": True}
    assert function_definitions(db) == before
    capsys.readouterr()
    assert main(["--database", installed, "verify"]) == 0, capsys.readouterr().out


def test_a_role_without_the_set_fails_at_start_up(db, installed):
    name = f"gw_none_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {name} LOGIN")
    try:
        result = node_migrate(f"postgresql://{name}@{PGHOST}:{PGPORT}/{db.info.dbname}")
        assert result["ok"] is False and result["code"] == "42501", result
    finally:
        db.execute(f"DROP OWNED BY {name}")
        db.execute(f"DROP ROLE {name}")


def policy_roles(db) -> dict[str, list[str]]:
    return {
        table: sorted(roles)
        for table, roles in db.execute(
            "SELECT c.relname::text, ARRAY(SELECT pg_get_userbyid(r) FROM unnest(p.polroles) AS r)"
            " FROM pg_policy AS p JOIN pg_class AS c ON c.oid = p.polrelid"
            " WHERE p.polname = 'graphile_worker_processes'"
        ).fetchall()
    }


def test_grant_and_revoke_keep_one_policy_naming_the_holders(db, installed, capsys):
    a, b = (f"gw_pol_{uuid.uuid4().hex[:8]}" for _ in range(2))
    for role in (a, b):
        db.execute(f"CREATE ROLE {role} LOGIN")
    tables = {"_private_jobs", "_private_job_queues", "_private_tasks", "_private_known_crontabs"}
    try:
        assert main(["--database", installed, "grant", "--graphile-worker", a, "--graphile-worker", b]) == 0
        assert policy_roles(db) == {t: sorted([a, b]) for t in tables}
        assert main(["--database", installed, "verify"]) == 0, capsys.readouterr().out
        # The policy and the table privileges let the role see the rows; a role without them sees none.
        db.execute("SELECT graphile_worker.add_job('seen')")
        with psycopg.connect(f"postgresql://{a}@{PGHOST}:{PGPORT}/{db.info.dbname}") as conn:
            assert conn.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0] == 1
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO graphile_worker._private_jobs (task_id) VALUES (1)")
        assert main(["--database", installed, "revoke", "--graphile-worker", a]) == 0
        assert policy_roles(db) == {t: [b] for t in tables}
        assert not db.execute(
            "SELECT has_table_privilege(%s, 'graphile_worker._private_jobs', 'SELECT')", [a]
        ).fetchone()[0]
        assert main(["--database", installed, "verify"]) == 0, capsys.readouterr().out
        # A policy widened by hand is drift.
        db.execute(f"ALTER POLICY graphile_worker_processes ON graphile_worker._private_jobs TO {a}, {b}")
        capsys.readouterr()
        assert main(["--database", installed, "verify"]) == 1
        assert "changed  policy _private_jobs.graphile_worker_processes" in capsys.readouterr().out
        assert main(["--database", installed, "revoke", "--graphile-worker", b]) == 0
        assert policy_roles(db) == {}
        assert main(["--database", installed, "verify"]) == 0, capsys.readouterr().out
    finally:
        for role in (a, b):
            db.execute(f"DROP OWNED BY {role}")
            db.execute(f"DROP ROLE {role}")


def test_rollback_drops_version_9_and_migrate_restores_the_set(db, installed, gw_role, capsys):
    assert main(["--database", installed, "grant", "--graphile-worker", gw_role]) == 0
    assert main(["--database", installed, "rollback", "--to", "8"]) == 0
    for table in ("migrations", "_private_known_crontabs", "_private_retired_tasks"):
        assert db.execute("SELECT to_regclass(%s)", [f"graphile_worker.{table}"]).fetchone()[0] is None
    assert not db.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_private\\_%%'").fetchone()[0]
    # At version 8 the set still holds what exists there.
    assert db.execute(
        "SELECT has_table_privilege(%s, 'graphile_worker._private_jobs', 'DELETE')", [gw_role]
    ).fetchone()[0]
    assert main(["--database", installed, "migrate"]) == 0
    assert db.execute(
        "SELECT has_table_privilege(%s, 'graphile_worker._private_known_crontabs', 'SELECT')", [gw_role]
    ).fetchone()[0]
    capsys.readouterr()
    assert main(["--database", installed, "verify"]) == 0, capsys.readouterr().out
