"""Capability sets: what a role granted enqueue, worker or admin may do.

The model (see README, "Privileges"): the public functions are SECURITY DEFINER,
owned by the role that ran migrate; PUBLIC may execute none of them and read
nothing. A capability is EXECUTE on a fixed list of functions (plus SELECT on
views for admin) and USAGE on the schema. Each grant is recorded in the
installer's bookkeeping schema and applied again after every migrate or
rollback, so a function re-created by a later migration keeps its grants.

Every entry point takes an Installer, whose trust check has already vouched for
both schemas (see installer.core); nothing here looks a schema up by name again.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from installer.core import META_SCHEMA, SCHEMA, Installer, InstallerError

# Function names per capability; every overload of a name is included.
CAPABILITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "enqueue": {
        "functions": ("add_job", "add_jobs", "remove_job", "schema_version"),
        "views": (),
    },
    "worker": {
        "functions": (
            "fetch_jobs",
            "complete_job",
            "complete_worker_jobs",
            "complete_and_fetch_jobs",
            "fail_job",
            "fail_worker_jobs",
            "release_stale_locks",
            "schema_version",
        ),
        "views": (),
    },
    "admin": {
        "functions": (
            "complete_jobs",
            "permanently_fail_jobs",
            "reschedule_jobs",
            "force_unlock_workers",
            "cleanup",
            "delete_permafailed_jobs_batch",
            "schema_version",
        ),
        "views": ("jobs", "worker_locks"),
    },
}

_GRANTS_TABLE = sql.Identifier(META_SCHEMA, "role_grants")


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " role_name text NOT NULL, capability text NOT NULL,"
            " granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),"
            " PRIMARY KEY (role_name, capability))"
        ).format(_GRANTS_TABLE)
    )


def _check(inst: Installer, capability: str, role: str) -> None:
    if capability not in CAPABILITIES:
        raise InstallerError(f"unknown capability {capability!r}; expected one of {', '.join(CAPABILITIES)}")
    if inst.conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", [role]).fetchone() is None:
        raise InstallerError(f"role {role!r} does not exist")
    if not inst.found.schema:
        raise InstallerError(f'schema "{SCHEMA}" is not installed; run migrate first')


def _functions(conn: psycopg.Connection, names: tuple[str, ...]) -> list[str]:
    """The full signatures (regprocedure text, already quoted) of every overload of names."""
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p"
        " WHERE p.pronamespace = %s::pg_catalog.regnamespace AND p.proname = ANY(%s) ORDER BY 1",
        [SCHEMA, list(names)],
    ).fetchall()
    return [r[0] for r in rows]


def _apply(conn: psycopg.Connection, capability: str, role: str, grant: bool) -> None:
    spec = CAPABILITIES[capability]
    verb, prep = ("GRANT", "TO") if grant else ("REVOKE", "FROM")
    who = sql.Identifier(role)
    for signature in _functions(conn, spec["functions"]):
        # regprocedure's text form is the server's own quoting of the signature.
        conn.execute(
            sql.SQL("{} EXECUTE ON FUNCTION {} {} {}").format(sql.SQL(verb), sql.SQL(signature), sql.SQL(prep), who)
        )
    for view in spec["views"]:
        if conn.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", [f"{SCHEMA}.{view}"]).fetchone()[0]:
            conn.execute(
                sql.SQL("{} SELECT ON {} {} {}").format(sql.SQL(verb), sql.Identifier(SCHEMA, view), sql.SQL(prep), who)
            )


def _set_schema_usage(conn: psycopg.Connection, role: str) -> None:
    """USAGE on the schema while the role holds any capability, none otherwise."""
    holds = conn.execute(sql.SQL("SELECT 1 FROM {} WHERE role_name = %s").format(_GRANTS_TABLE), [role]).fetchone()
    verb = "GRANT USAGE ON SCHEMA {} TO {}" if holds else "REVOKE USAGE ON SCHEMA {} FROM {}"
    conn.execute(sql.SQL(verb).format(sql.Identifier(SCHEMA), sql.Identifier(role)))


def grant(inst: Installer, capability: str, role: str) -> None:
    conn = inst.conn
    with conn.transaction():
        _check(inst, capability, role)
        _ensure_table(conn)
        conn.execute(
            sql.SQL("INSERT INTO {} (role_name, capability) VALUES (%s, %s) ON CONFLICT DO NOTHING").format(
                _GRANTS_TABLE
            ),
            [role, capability],
        )
        _apply(conn, capability, role, grant=True)
        _set_schema_usage(conn, role)


def revoke(inst: Installer, capability: str, role: str) -> None:
    conn = inst.conn
    with conn.transaction():
        _check(inst, capability, role)
        _ensure_table(conn)
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE role_name = %s AND capability = %s").format(_GRANTS_TABLE),
            [role, capability],
        )
        _apply(conn, capability, role, grant=False)
        # Functions shared by several sets (schema_version) must stay granted for the others.
        for (other,) in conn.execute(
            sql.SQL("SELECT capability FROM {} WHERE role_name = %s").format(_GRANTS_TABLE), [role]
        ).fetchall():
            _apply(conn, other, role, grant=True)
        _set_schema_usage(conn, role)


def recorded(inst: Installer) -> list[tuple[str, str]]:
    if "role_grants" not in inst.found.meta_tables:
        return []
    return [
        (r[0], r[1])
        for r in inst.conn.execute(
            sql.SQL("SELECT role_name, capability FROM {} ORDER BY 1, 2").format(_GRANTS_TABLE)
        ).fetchall()
    ]


def reapply(inst: Installer) -> int:
    """Grant every recorded capability again (after migrate or rollback); returns how many.

    A role dropped since its grant is skipped and its record removed."""
    count = 0
    if not inst.found.schema:
        return 0
    conn = inst.conn
    with conn.transaction():
        for role, capability in recorded(inst):
            if conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", [role]).fetchone() is None:
                conn.execute(sql.SQL("DELETE FROM {} WHERE role_name = %s").format(_GRANTS_TABLE), [role])
                continue
            _apply(conn, capability, role, grant=True)
            _set_schema_usage(conn, role)
            count += 1
    return count
