"""python -m installer verify: drift between the installed schema and the package is reported."""

from __future__ import annotations

import psycopg

from installer.cli import main


def test_fresh_install_has_no_drift(installed, capsys):
    assert main(["--database", installed, "verify"]) == 0
    assert "schema matches the package" in capsys.readouterr().out


def test_function_edited_by_hand_is_reported(installed, capsys):
    with psycopg.connect(installed, autocommit=True) as conn:
        body = conn.execute(
            "SELECT pg_get_functiondef('graphile_worker.complete_jobs(bigint[])'::regprocedure)"
        ).fetchone()[0]
        conn.execute(body.replace("RETURNING *", "AND true RETURNING *"))
    assert main(["--database", installed, "verify"]) == 1
    out = capsys.readouterr().out
    assert "changed  function graphile_worker.complete_jobs(bigint[])" in out
    assert "1 objects differ" in out


def test_missing_index_and_extra_object_are_reported(installed, capsys):
    with psycopg.connect(installed, autocommit=True) as conn:
        conn.execute("DROP INDEX graphile_worker.jobs_no_queue_index")
        conn.execute("CREATE FUNCTION graphile_worker.sneaky() RETURNS int LANGUAGE sql RETURN 1")
    assert main(["--database", installed, "verify"]) == 1
    out = capsys.readouterr().out
    assert "missing  index jobs_no_queue_index" in out
    assert "extra    function graphile_worker.sneaky()" in out


def test_verify_refuses_before_migrate(dsn, capsys):
    assert main(["--database", dsn, "verify"]) == 1
    assert "pending" in capsys.readouterr().err
