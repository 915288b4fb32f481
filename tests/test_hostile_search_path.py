"""The database owner puts its own schema first in the database's search_path.

Its look-alikes of the catalog functions the installer calls (to_regclass,
to_regproc, to_regnamespace) make the owner SUPERUSER when a superuser calls them.
The installer pins its own search_path and names pg_catalog, so every command works
as usual and none of them runs the look-alikes.
"""

from __future__ import annotations

import psycopg
import pytest

from gwtest.db import dsn_for, role
from gwtest.procs import run_cli
from installer.core import shipped_migrations

OWNER = "gw_dbo"
LOOK_ALIKE = f"""
CREATE FUNCTION evil.{{name}}(text) RETURNS {{type}} LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE {OWNER} SUPERUSER;
    RETURN pg_catalog.{{name}}($1);
END $$
"""
# yoyo's own bookkeeping query calls max() unqualified: its connection must not see this either.
LOOK_ALIKE_MAX = f"""
CREATE FUNCTION evil.max_step(integer, integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE {OWNER} SUPERUSER;
    RETURN GREATEST($1, $2);
END $$;
CREATE AGGREGATE evil.max(integer) (SFUNC = evil.max_step, STYPE = integer)
"""
COMMANDS = [
    (["migrate"], 0),
    (["status"], 0),
    (["grant", "--admin", OWNER], 0),
    (["revoke", "--admin", OWNER], 0),
    (["grant", "--worker", OWNER], 0),
    (["verify"], 0),
    (["cleanup", "GC_JOB_QUEUES"], 0),
    (["cleanup-batched"], 0),
    (["rollback", "--to", "1"], 0),
    (["migrate"], 0),
    (["uninstall", "--yes"], 0),
    (["status"], 3),
]


@pytest.fixture
def hostile_owner(dsn):
    """The database now belongs to OWNER, whose schema evil comes first in its search_path."""
    with psycopg.connect(dsn, autocommit=True) as admin, role(admin, OWNER):
        dbname = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{dbname}" OWNER TO {OWNER}')
        with psycopg.connect(dsn_for(dbname, OWNER), autocommit=True) as owner:
            owner.execute("CREATE SCHEMA evil")
            for name, type_ in (
                ("to_regclass", "regclass"),
                ("to_regproc", "regproc"),
                ("to_regnamespace", "regnamespace"),
            ):
                owner.execute(LOOK_ALIKE.format(name=name, type=type_))
            owner.execute(LOOK_ALIKE_MAX)
            owner.execute(f'ALTER DATABASE "{dbname}" SET search_path = evil, pg_catalog')
        yield admin
        admin.execute(f'ALTER DATABASE "{dbname}" RESET search_path')
        admin.execute(f'ALTER DATABASE "{dbname}" OWNER TO postgres')


def test_look_alikes_are_armed(dsn, hostile_owner):
    """The attack is real: a superuser session calling to_regclass unqualified promotes the owner."""
    with psycopg.connect(dsn) as conn:
        for probe in ("SELECT to_regclass('pg_class')", "SELECT max(x) FROM (VALUES (1), (2)) AS v (x)"):
            conn.execute(probe)
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [OWNER]).fetchone()[0], probe
            conn.rollback()  # the promotion is undone with the transaction


def test_every_command_ignores_the_owners_search_path(dsn, hostile_owner):
    for command, code in COMMANDS:
        result = run_cli("--database", dsn, *command)
        promoted = hostile_owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [OWNER]).fetchone()[0]
        assert not promoted, f"{command[0]} called the database owner's look-alike as the installer"
        assert result.returncode == code, (command, result.stdout, result.stderr)
        if command == ["migrate"] and "applied" in result.stdout:
            assert f"schema version {shipped_migrations()[-1].version}" in result.stdout
