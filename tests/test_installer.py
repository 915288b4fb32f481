"""The installer CLI: install, idempotence, status codes, rollback, refusal and errors."""

from __future__ import annotations

import psycopg
import pytest

from gwtest.db import PGHOST, PGPORT, dsn_for
from gwtest.procs import run_cli, start_cli
from gwtest.timing import wait_until
from installer.cli import main
from installer.core import ADVISORY_LOCK_KEY, META_SCHEMA, shipped_migrations


def latest_version() -> int:
    return shipped_migrations()[-1].version


def schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'")}


def test_fresh_install_creates_schema_and_reports_version(dsn, capsys):
    assert main(["--database", dsn, "migrate"]) == 0
    out = capsys.readouterr().out
    assert "applied 0001.schema-v1" in out
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == latest_version()
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'graphile_worker' ORDER BY 1")
        }
    assert {"_private_jobs", "_private_tasks", "_private_job_queues"} <= tables


def test_bookkeeping_stays_out_of_public(dsn):
    assert main(["--database", dsn, "migrate"]) == 0
    with psycopg.connect(dsn) as conn:
        in_public = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        yoyo = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE '%%yoyo%%'", [META_SCHEMA]
        ).fetchone()[0]
    assert in_public == 0
    assert yoyo >= 2


def test_second_migrate_is_a_no_op(dsn, capsys):
    assert main(["--database", dsn, "migrate"]) == 0
    capsys.readouterr()
    with psycopg.connect(dsn) as conn:
        before = conn.execute("SELECT count(*) FROM graphile_worker_migrations._yoyo_log").fetchone()[0]
    assert main(["--database", dsn, "migrate"]) == 0
    assert "nothing to apply" in capsys.readouterr().out
    with psycopg.connect(dsn) as conn:
        after = conn.execute("SELECT count(*) FROM graphile_worker_migrations._yoyo_log").fetchone()[0]
    assert after == before


def test_status_exit_codes(dsn, capsys):
    assert main(["--database", dsn, "status"]) == 3
    out = capsys.readouterr().out
    assert "installed version: none" in out and "pending" in out
    assert main(["--database", dsn, "migrate"]) == 0
    capsys.readouterr()
    assert main(["--database", dsn, "status"]) == 0
    out = capsys.readouterr().out
    assert f"installed version: {latest_version()}" in out and "up to date" in out


def test_database_url_and_libpq_defaults(dsn):
    dbname = dsn.rsplit("/", 1)[1]
    by_url = run_cli("status", env={"DATABASE_URL": dsn})
    assert by_url.returncode == 3, by_url.stderr
    by_libpq = run_cli(
        "migrate",
        env={"DATABASE_URL": "", "PGHOST": PGHOST, "PGPORT": str(PGPORT), "PGUSER": "postgres", "PGDATABASE": dbname},
    )
    assert by_libpq.returncode == 0, by_libpq.stderr
    assert "applied 0001.schema-v1" in by_libpq.stdout


def test_rollback_then_migrate_again(dsn, capsys):
    assert main(["--database", dsn, "migrate"]) == 0
    assert main(["--database", dsn, "rollback", "--to", "0"]) == 0
    assert "rolled back 0001.schema-v1" in capsys.readouterr().out
    assert "graphile_worker" not in schemas(dsn)
    assert main(["--database", dsn, "status"]) == 3
    assert main(["--database", dsn, "migrate"]) == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == latest_version()


def test_rollback_to_each_version_then_back(dsn):
    versions = [m.version for m in shipped_migrations()]
    assert main(["--database", dsn, "migrate"]) == 0
    for v in reversed(versions[:-1]):
        assert main(["--database", dsn, "rollback", "--to", str(v)]) == 0
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == v
    assert main(["--database", dsn, "migrate"]) == 0


def test_uninstall_drops_only_what_it_created(dsn, capsys):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.app_table (id int)")
    assert main(["--database", dsn, "uninstall", "--yes"]) == 0
    assert "nothing to uninstall" in capsys.readouterr().out
    assert main(["--database", dsn, "migrate"]) == 0
    assert main(["--database", dsn, "uninstall"]) == 1  # no --yes: refused
    assert "graphile_worker" in schemas(dsn)
    assert main(["--database", dsn, "uninstall", "--yes"]) == 0
    left = schemas(dsn)
    assert "graphile_worker" not in left and META_SCHEMA not in left
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.app_table') IS NOT NULL").fetchone()[0]


def test_concurrent_migrate_one_applies_other_waits(dsn):
    """Two migrate processes released at the same instant: one applies, one finds nothing."""
    with psycopg.connect(dsn, autocommit=True) as holder:
        # Hold the installer's lock so that both processes are queued before either can start.
        holder.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        procs = [start_cli("--database", dsn, "migrate") for _ in range(2)]
        both_waiting = wait_until(
            lambda: holder.execute(
                "SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()[0],
            30,
        )
        assert both_waiting, "both migrate processes should be waiting on the installer lock"
        holder.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    results = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0, 0], results
    outs = [r[0] for r in results]
    assert sum("applied 0001.schema-v1" in o for o in outs) == 1
    assert sum("nothing to apply" in o for o in outs) == 1
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM graphile_worker_migrations._yoyo_migration").fetchone()[0] == len(
            shipped_migrations()
        )


def test_foreign_schema_is_refused_and_untouched(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA graphile_worker")
        conn.execute("CREATE TABLE graphile_worker.migrations (id int primary key)")
        conn.execute("INSERT INTO graphile_worker.migrations VALUES (1), (2)")
    for command in (["migrate"], ["uninstall", "--yes"], ["rollback", "--to", "0"]):
        result = run_cli("--database", dsn, *command)
        assert result.returncode == 1
        assert "not installed by this installer" in result.stderr
        assert "Traceback" not in result.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM graphile_worker.migrations").fetchone()[0] == 2
    assert META_SCHEMA not in schemas(dsn)


@pytest.mark.parametrize(
    "bad_dsn",
    [
        f"postgresql://nobody:hunter2secret@{PGHOST}:{PGPORT}/nowhere",
        "postgresql://nobody:hunter2secret@127.0.0.1:1/nowhere",
        f"host={PGHOST} port={PGPORT} user=nobody password=hunter2secret dbname=nowhere",
    ],
)
def test_bad_dsn_one_line_without_password(bad_dsn):
    result = run_cli("--database", bad_dsn, "migrate")
    assert result.returncode == 1
    assert "hunter2secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect")


def test_missing_privileges_one_line(postgresql, dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS gw_weak")
        conn.execute("CREATE ROLE gw_weak LOGIN")
        conn.execute("REVOKE CREATE ON DATABASE " + postgresql.info.dbname + " FROM PUBLIC")
    try:
        result = run_cli("--database", dsn_for(postgresql.info.dbname, user="gw_weak"), "migrate")
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "permission denied" in lines[0], result.stderr
        assert "graphile_worker" not in schemas(dsn)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP OWNED BY gw_weak")
            conn.execute("DROP ROLE gw_weak")


def test_usage_errors_exit_2():
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("rollback").returncode == 2
