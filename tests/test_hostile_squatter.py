"""A role allowed to create things plants objects in the installer's bookkeeping schema.

Each setup below would, if the installer used what it found, run the squatter's
trigger with the installer's rights (here a superuser, so the trigger makes the
squatter SUPERUSER) or hand the squatter capability sets it was never granted.
The installer must refuse in one line naming the object and its owner, and change
nothing.
"""

from __future__ import annotations

import psycopg
import pytest

from gwtest.db import dsn_for, role
from gwtest.procs import run_cli

SQUATTER = "gw_squat"
PROMOTE = f"""
CREATE FUNCTION {{schema}}.promote() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE {SQUATTER} SUPERUSER;
    RETURN NEW;
END $$
"""
LOCK_TABLE = (
    "CREATE TABLE graphile_worker_migrations.yoyo_lock"
    " (locked int DEFAULT 1, ctime timestamp, pid int NOT NULL, PRIMARY KEY (locked))"
)
GRANTS_TABLE = (
    "CREATE TABLE graphile_worker_migrations.role_grants (role_name text NOT NULL, capability text NOT NULL,"
    " granted_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (role_name, capability))"
)
ALL_SETS = "INSERT INTO graphile_worker_migrations.role_grants VALUES " + ", ".join(
    f"('{SQUATTER}', '{capability}')" for capability in ("enqueue", "worker", "admin")
)


@pytest.fixture
def squatter(dsn):
    """(admin connection, squatter connection); the squatter may create schemas."""
    with psycopg.connect(dsn, autocommit=True) as admin, role(admin, SQUATTER):
        admin.execute(f'GRANT CREATE ON DATABASE "{admin.info.dbname}" TO {SQUATTER}')
        with psycopg.connect(dsn_for(admin.info.dbname, SQUATTER), autocommit=True) as squat:
            yield admin, squat


def squat_whole_schema(dsn, admin, squat):
    """Before the first install: the schema, yoyo's lock table with a trigger, grant records."""
    squat.execute("CREATE SCHEMA graphile_worker_migrations")
    squat.execute(LOCK_TABLE)
    squat.execute(PROMOTE.format(schema="graphile_worker_migrations"))
    squat.execute(
        "CREATE TRIGGER promote BEFORE INSERT ON graphile_worker_migrations.yoyo_lock"
        " FOR EACH ROW EXECUTE FUNCTION graphile_worker_migrations.promote()"
    )
    squat.execute(GRANTS_TABLE)
    squat.execute(ALL_SETS)
    return 'schema "graphile_worker_migrations"'


def squat_one_table(dsn, admin, squat):
    """A real install whose bookkeeping schema was opened to the squatter, which adds role_grants."""
    assert run_cli("--database", dsn, "migrate").returncode == 0
    admin.execute(f"GRANT USAGE, CREATE ON SCHEMA graphile_worker_migrations TO {SQUATTER}")
    squat.execute(GRANTS_TABLE)
    squat.execute(ALL_SETS)
    return "graphile_worker_migrations.role_grants"


def trigger_on_our_table(dsn, admin, squat):
    """A real install; the squatter was granted TRIGGER on yoyo's lock table and uses it."""
    assert run_cli("--database", dsn, "migrate").returncode == 0
    admin.execute(f"GRANT USAGE ON SCHEMA graphile_worker_migrations TO {SQUATTER}")
    admin.execute(f"GRANT TRIGGER ON graphile_worker_migrations.yoyo_lock TO {SQUATTER}")
    squat.execute(f"CREATE SCHEMA {SQUATTER}")
    squat.execute(PROMOTE.format(schema=SQUATTER))
    squat.execute(
        "CREATE TRIGGER promote BEFORE INSERT ON graphile_worker_migrations.yoyo_lock"
        f" FOR EACH ROW EXECUTE FUNCTION {SQUATTER}.promote()"
    )
    return 'trigger "promote"'


def snapshot(admin) -> tuple:
    q = admin.execute
    return (
        q("SELECT to_regnamespace('graphile_worker') IS NOT NULL").fetchone()[0],
        q("SELECT count(*) FROM graphile_worker_migrations.yoyo_lock").fetchone()[0],
        q("SELECT to_regclass('graphile_worker_migrations.role_grants') IS NOT NULL").fetchone()[0]
        and q("SELECT count(*) FROM graphile_worker_migrations.role_grants").fetchone()[0],
    )


@pytest.mark.parametrize("setup", [squat_whole_schema, squat_one_table, trigger_on_our_table])
def test_migrate_refuses_squatted_bookkeeping(dsn, squatter, setup):
    admin, squat = squatter
    named = setup(dsn, admin, squat)
    before = snapshot(admin)
    for command in (["migrate"], ["grant", "--enqueue", SQUATTER], ["rollback", "--to", "0"]):
        result = run_cli("--database", dsn, *command)
        assert not admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [SQUATTER]).fetchone()[0], (
            f"{command}: the squatter's trigger ran as the installer"
        )
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert named in lines[0] and SQUATTER in lines[0], lines[0]
    assert snapshot(admin) == before
    if admin.execute("SELECT to_regnamespace('graphile_worker') IS NOT NULL").fetchone()[0]:
        assert not admin.execute("SELECT has_schema_privilege(%s, 'graphile_worker', 'USAGE')", [SQUATTER]).fetchone()[
            0
        ]
