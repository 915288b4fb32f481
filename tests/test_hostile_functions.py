"""A graphile_worker schema owned by another role: no command may call its functions.

The squatter's schema_version() makes the squatter SUPERUSER when a superuser calls
it. Every command must check ownership before its first call into the schema, and
refuse in one line naming the schema and its owner.
"""

from __future__ import annotations

import psycopg
import pytest

from gwtest.db import dsn_for, role
from gwtest.procs import run_cli

SQUATTER = "gw_squat"
TROJAN = f"""
CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE {SQUATTER} SUPERUSER;
    RETURN 6;
END $$
"""
COMMANDS = [
    ["status"],
    ["cleanup", "GC_JOB_QUEUES"],
    ["cleanup-batched"],
    ["verify"],
    ["grant", "--admin", SQUATTER],
    ["revoke", "--admin", SQUATTER],
    ["migrate"],
    ["rollback", "--to", "0"],
    ["uninstall", "--yes"],
]


@pytest.fixture
def squatter(dsn):
    with psycopg.connect(dsn, autocommit=True) as admin, role(admin, SQUATTER):
        admin.execute(f'GRANT CREATE ON DATABASE "{admin.info.dbname}" TO {SQUATTER}')
        yield admin, dsn_for(admin.info.dbname, SQUATTER)


def bare_schema(squat_dsn):
    """The squatter made the schema by hand, with nothing but the function."""
    with psycopg.connect(squat_dsn, autocommit=True) as squat:
        squat.execute("CREATE SCHEMA graphile_worker")
        squat.execute(TROJAN)


def own_install(squat_dsn):
    """The squatter ran a real install as itself (so it owns both schemas), then changed the function."""
    assert run_cli("--database", squat_dsn, "migrate").returncode == 0
    with psycopg.connect(squat_dsn, autocommit=True) as squat:
        squat.execute(TROJAN)


@pytest.mark.parametrize("setup", [bare_schema, own_install])
def test_no_command_calls_a_foreign_schema_version(squatter, dsn, setup):
    admin, squat_dsn = squatter
    setup(squat_dsn)
    for command in COMMANDS:
        result = run_cli("--database", dsn, *command)
        promoted = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [SQUATTER]).fetchone()[0]
        assert not promoted, f"{command[0]} ran the squatter's schema_version() as the installer"
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert 'schema "graphile_worker' in lines[0] and SQUATTER in lines[0], lines[0]
    assert admin.execute("SELECT to_regprocedure('graphile_worker.schema_version()') IS NOT NULL").fetchone()[0]
