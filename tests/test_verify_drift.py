"""verify reports what a DBA would call drift: privileges, owners, hooks, storage and extra objects.

Each case applies one hand change to a fresh install as the superuser and expects
verify to exit 1 with a line naming the object and what changed.
"""

from __future__ import annotations

import psycopg
import pytest

from gwtest.db import dsn_for
from installer import verify
from installer.cli import main
from installer.core import connect

# Roles the cases use; created per test, dropped afterwards.
SNOOP = "gw_drift_snoop"
BOSS = "gw_drift_boss"
APP = "gw_drift_app"


@pytest.fixture
def roles(installed):
    with psycopg.connect(installed, autocommit=True) as conn:
        for name, options in ((SNOOP, "LOGIN"), (BOSS, "SUPERUSER"), (APP, "LOGIN")):
            conn.execute(f"DROP ROLE IF EXISTS {name}")
            conn.execute(f"CREATE ROLE {name} {options}")
    yield installed
    with psycopg.connect(installed, autocommit=True) as conn:
        for name in (SNOOP, BOSS, APP):
            conn.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


def run_verify(dsn: str, capsys) -> tuple[int, str]:
    code = main(["--database", dsn, "verify"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# (id, statements, lines expected in verify's output)
CASES = [
    (
        "function-execute-to-public",
        ["GRANT EXECUTE ON FUNCTION graphile_worker.complete_jobs(bigint[]) TO PUBLIC"],
        ["extra    privilege EXECUTE on function graphile_worker.complete_jobs(bigint[]) held by PUBLIC"],
    ),
    (
        "schema-usage-to-public",
        ["GRANT USAGE ON SCHEMA graphile_worker TO PUBLIC"],
        ["extra    privilege USAGE on schema graphile_worker held by PUBLIC"],
    ),
    (
        "table-grant-and-open-policy",
        [
            f"GRANT SELECT ON graphile_worker._private_jobs TO {SNOOP}",
            "CREATE POLICY peek ON graphile_worker._private_jobs USING (true)",
        ],
        [
            f"extra    privilege SELECT on table graphile_worker._private_jobs held by role {SNOOP}",
            "extra    policy _private_jobs.peek",
        ],
    ),
    (
        "column-grant",
        [f"GRANT SELECT (payload) ON graphile_worker._private_jobs TO {SNOOP}"],
        [f"extra    privilege SELECT on column graphile_worker._private_jobs.payload held by role {SNOOP}"],
    ),
    (
        "trigger-copying-payloads",
        [
            "CREATE TABLE public.stolen (payload json)",
            "CREATE FUNCTION public.steal() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN INSERT INTO public.stolen VALUES (NEW.payload); RETURN NEW; END$$",
            "CREATE TRIGGER steal AFTER INSERT ON graphile_worker._private_jobs"
            " FOR EACH ROW EXECUTE FUNCTION public.steal()",
        ],
        ["extra    trigger _private_jobs.steal"],
    ),
    (
        "do-instead-nothing-rule",
        ["CREATE RULE keep AS ON DELETE TO graphile_worker._private_jobs DO INSTEAD NOTHING"],
        ["extra    rule _private_jobs.keep"],
    ),
    (
        "table-owner",
        [f"ALTER TABLE graphile_worker._private_tasks OWNER TO {BOSS}"],
        [
            f"changed  table _private_tasks: owner installer -> {BOSS}",
            f"changed  sequence _private_tasks_id_seq: owner installer -> {BOSS}",
        ],
    ),
    (
        "function-owner",
        [f"ALTER FUNCTION graphile_worker.complete_jobs(bigint[]) OWNER TO {BOSS}"],
        [f"changed  function graphile_worker.complete_jobs(bigint[]): owner installer -> {BOSS}"],
    ),
    (
        "force-row-level-security",
        ["ALTER TABLE graphile_worker._private_jobs FORCE ROW LEVEL SECURITY"],
        ["changed  table _private_jobs: force row level security false -> true"],
    ),
    (
        "set-unlogged",
        ["ALTER TABLE graphile_worker._private_jobs SET UNLOGGED"],
        ["changed  table _private_jobs: persistence logged -> unlogged"],
    ),
    (
        "sequence-increment",
        ["ALTER SEQUENCE graphile_worker._private_jobs_id_seq INCREMENT BY 2"],
        ["changed  sequence _private_jobs_id_seq: increment 1 -> 2"],
    ),
    (
        "sequence-cache-and-cycle",
        ["ALTER SEQUENCE graphile_worker._private_jobs_id_seq CACHE 50 CYCLE"],
        ["changed  sequence _private_jobs_id_seq: cache 1 -> 50; cycle false -> true"],
    ),
    (
        "sequence-maximum",
        ["ALTER SEQUENCE graphile_worker._private_tasks_id_seq MAXVALUE 1000"],
        ["changed  sequence _private_tasks_id_seq: maximum"],
    ),
    (
        "view-security-barrier",
        ["ALTER VIEW graphile_worker.jobs SET (security_barrier = true)"],
        ["changed  view jobs: options (none) -> {security_barrier=true}"],
    ),
    (
        "extra-domain",
        ["CREATE DOMAIN graphile_worker.positive AS integer CHECK (VALUE > 0)"],
        ["extra    type positive", "extra    constraint domain positive.positive_check"],
    ),
    (
        "extra-sequence",
        ["CREATE SEQUENCE graphile_worker.spare_seq"],
        ["extra    sequence spare_seq"],
    ),
    (
        "extra-operator",
        ["CREATE OPERATOR graphile_worker.=== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = int4eq)"],
        ["extra    operator graphile_worker.===(integer,integer)"],
    ),
    (
        "invalid-index",
        [
            "UPDATE pg_catalog.pg_index SET indisvalid = false"
            " WHERE indexrelid = 'graphile_worker.jobs_main_index'::regclass"
        ],
        ["changed  index jobs_main_index: valid true -> false"],
    ),
    (
        "default-privileges",
        ["ALTER DEFAULT PRIVILEGES IN SCHEMA graphile_worker GRANT EXECUTE ON FUNCTIONS TO PUBLIC"],
        ["extra    default privileges of installer on functions"],
    ),
    (
        "type-usage-revoked-from-public",
        ["REVOKE USAGE ON TYPE graphile_worker.job_spec FROM PUBLIC"],
        ["missing  privilege USAGE on type graphile_worker.job_spec for PUBLIC"],
    ),
]


@pytest.mark.parametrize(("statements", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_change_is_reported(roles, capsys, statements, expected):
    assert run_verify(roles, capsys)[0] == 0
    with psycopg.connect(roles, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    code, out = run_verify(roles, capsys)
    assert code == 1, out
    for line in expected:
        assert line in out, out


def test_create_on_schema_for_public_is_refused(roles, capsys):
    """CREATE on the schema is refused by the trust check itself, in one line naming it."""
    with psycopg.connect(roles, autocommit=True) as conn:
        conn.execute("GRANT USAGE, CREATE ON SCHEMA graphile_worker TO PUBLIC")
    code, out = run_verify(roles, capsys)
    assert code == 1
    assert 'schema "graphile_worker" grants CREATE to PUBLIC' in out


def test_owner_not_trusted_is_refused(roles, capsys):
    with psycopg.connect(roles, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE graphile_worker._private_tasks OWNER TO {SNOOP}")
    code, out = run_verify(roles, capsys)
    assert code == 1
    assert f"graphile_worker._private_tasks_id_seq is owned by role {SNOOP}" in out


def grant(dsn: str, *args: str) -> None:
    assert main(["--database", dsn, "grant", *args]) == 0


def test_recorded_grants_verify_clean(roles, capsys):
    grant(roles, "--enqueue", APP, "--worker", APP, "--admin", SNOOP)
    capsys.readouterr()
    code, out = run_verify(roles, capsys)
    assert code == 0, out


def test_role_grants_row_without_privileges_is_reported(roles, capsys):
    grant(roles, "--worker", APP)
    with psycopg.connect(roles, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO graphile_worker_migrations.role_grants (role_name, capability) VALUES (%s, 'admin')",
            [SNOOP],
        )
    code, out = run_verify(roles, capsys)
    assert code == 1
    assert f"missing  privilege USAGE on schema graphile_worker for role {SNOOP} (recorded set admin)" in out
    assert f"missing  privilege SELECT on view graphile_worker.jobs for role {SNOOP} (recorded set admin)" in out
    assert (
        f"missing  privilege EXECUTE on function graphile_worker.cleanup(graphile_worker.cleanup_task[],text[])"
        f" for role {SNOOP} (recorded set admin)"
    ) in out


def test_privileges_without_role_grants_row_are_reported(roles, capsys):
    grant(roles, "--enqueue", APP)
    with psycopg.connect(roles, autocommit=True) as conn:
        conn.execute("DELETE FROM graphile_worker_migrations.role_grants WHERE role_name = %s", [APP])
    code, out = run_verify(roles, capsys)
    assert code == 1
    assert f"extra    privilege USAGE on schema graphile_worker held by role {APP} (no recorded set explains it)" in out
    assert "extra    privilege EXECUTE on function graphile_worker.remove_job(" in out


def test_role_grants_row_changed_to_another_set_is_reported(roles, capsys):
    grant(roles, "--enqueue", APP)
    with psycopg.connect(roles, autocommit=True) as conn:
        conn.execute(
            "UPDATE graphile_worker_migrations.role_grants SET capability = 'worker' WHERE role_name = %s", [APP]
        )
    code, out = run_verify(roles, capsys)
    assert code == 1
    assert f"extra    privilege EXECUTE on function graphile_worker.remove_job(text) held by role {APP}" in out
    assert "missing  privilege EXECUTE on function graphile_worker.fetch_jobs(" in out


def test_role_grants_row_for_unknown_role_or_set_is_reported(roles, capsys):
    grant(roles, "--enqueue", APP)
    with psycopg.connect(roles, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO graphile_worker_migrations.role_grants (role_name, capability)"
            " VALUES ('gw_drift_ghost', 'enqueue'), (%s, 'superpowers')",
            [APP],
        )
    code, out = run_verify(roles, capsys)
    assert code == 1
    assert "extra    role_grants row gw_drift_ghost/enqueue: no such role" in out
    assert f"extra    role_grants row {APP}/superpowers: unknown capability set" in out


def test_grant_option_is_reported(roles, capsys):
    grant(roles, "--enqueue", APP)
    with psycopg.connect(roles, autocommit=True) as conn:
        conn.execute(f"GRANT EXECUTE ON FUNCTION graphile_worker.remove_job(text) TO {APP} WITH GRANT OPTION")
    code, out = run_verify(roles, capsys)
    assert code == 1
    assert (
        f"extra    privilege EXECUTE WITH GRANT OPTION on function graphile_worker.remove_job(text) held by role {APP}"
    ) in out


@pytest.fixture
def path_role(dsn):
    """A role whose own default search_path puts graphile_worker on it, allowed to install."""
    name = "gw_drift_pathy"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"ALTER ROLE {name} SET search_path = public, graphile_worker")
        conn.execute(f"GRANT CREATE ON DATABASE {conn.info.dbname} TO {name}")
    yield name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def test_install_by_role_with_its_own_search_path_verifies_clean(dsn, path_role, capsys):
    mine = dsn_for(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"], user=path_role)
    assert main(["--database", mine, "migrate"]) == 0
    code, out = run_verify(mine, capsys)
    assert code == 0, out
    # The fingerprint means the same whatever path the reading connection has.
    with psycopg.connect(mine, autocommit=True) as plain:
        assert plain.execute("SHOW search_path").fetchone()[0] == "public, graphile_worker"
        unpinned = verify.fingerprint(plain)
        assert plain.execute("SHOW search_path").fetchone()[0] == "public, graphile_worker"
    with connect(mine) as pinned:
        assert verify.fingerprint(pinned) == unpinned
    assert unpinned == verify.expected()["objects"]


def test_view_definition_is_normalised_across_majors():
    schemas = {"graphile_worker", "pg_catalog"}
    v15 = "SELECT j.id,\n    j.locked_at\n   FROM graphile_worker._private_jobs j\n  WHERE (j.locked_at IS NOT NULL);"
    v16 = "SELECT id,\n    locked_at\n   FROM graphile_worker._private_jobs j\n  WHERE (locked_at IS NOT NULL);"
    assert verify.normalise_viewdef(v15, schemas) == verify.normalise_viewdef(v16, schemas)
    assert "graphile_worker._private_jobs" in verify.normalise_viewdef(v15, schemas)
    assert '"Odd"' not in verify.normalise_viewdef('SELECT "Odd".x FROM t "Odd"', schemas).split("FROM")[0]
