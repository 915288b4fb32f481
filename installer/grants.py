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
            "job_state",
            "job_detail",
            "job_overview",
            "job_overview_snapshot",
            "refresh_job_overview",
            "list_jobs",
            "pause_queue",
            "resume_queue",
            "pause_task",
            "resume_task",
            "prune_admin_log",
            "schema_version",
        ),
        "views": ("jobs", "worker_locks", "pauses", "admin_log"),
    },
    # graphile-worker's own Node processes (run(), the CLI, WorkerUtils' migrate and cleanup) run
    # their SQL on the tables themselves; see TABLE_PRIVILEGES and POLICY_TABLES below.
    "graphile-worker": {
        "functions": ("add_job", "add_jobs", "schema_version"),
        "views": (),
    },
}

# Table privileges per capability: (privilege, table, columns or None for the whole table). Exactly
# what graphile-worker 0.18's SQL runs: it reads migrations at start-up; fetches by UPDATE of
# attempts and the lock columns; completes by DELETE; fails by UPDATE of last_error, run_at,
# payload and the lock columns; locks and unlocks queues; inserts missing task identifiers; keeps
# its cron state; and WorkerUtils' cleanup deletes unused tasks and queues (made safe by the
# version 9 triggers) and permanently failed jobs. No INSERT on jobs: enqueueing goes through
# add_job and add_jobs.
TABLE_PRIVILEGES: dict[str, tuple[tuple[str, str, tuple[str, ...] | None], ...]] = {
    "graphile-worker": (
        ("SELECT", "migrations", None),
        ("SELECT", "_private_jobs", None),
        ("UPDATE", "_private_jobs", ("attempts", "last_error", "locked_at", "locked_by", "payload", "run_at")),
        ("DELETE", "_private_jobs", None),
        ("SELECT", "_private_job_queues", None),
        ("UPDATE", "_private_job_queues", ("locked_at", "locked_by")),
        ("DELETE", "_private_job_queues", None),
        ("SELECT", "_private_tasks", None),
        ("INSERT", "_private_tasks", ("identifier",)),
        ("DELETE", "_private_tasks", None),
        ("SELECT", "_private_known_crontabs", None),
        ("INSERT", "_private_known_crontabs", ("identifier", "known_since", "last_execution")),
        ("UPDATE", "_private_known_crontabs", ("last_execution",)),
    ),
}

# The private tables have row level security with no policy, so a table privilege alone shows no
# row. Each of these gets one policy, POLICY, letting exactly the roles that hold the
# graphile-worker set see and change every row; it is dropped when no role holds the set.
POLICY = "graphile_worker_processes"
POLICY_CAPABILITY = "graphile-worker"
POLICY_TABLES = ("_private_jobs", "_private_job_queues", "_private_tasks", "_private_known_crontabs")


def policy_definition(roles: list[str]) -> str:
    """The text verify digests for POLICY held by roles (see verify's policy aspect)."""
    return f"* true {','.join(sorted(roles))} true true"


_GRANTS_TABLE = sql.Identifier(META_SCHEMA, "role_grants")


def _ensure_table(conn: psycopg.Connection) -> None:
    # role_oid tells a role from a later one of the same name; NULL in rows made
    # before the column existed (filled in on their next use, see _holders).
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " role_name text NOT NULL, capability text NOT NULL,"
            " granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),"
            " role_oid pg_catalog.oid,"
            " PRIMARY KEY (role_name, capability))"
        ).format(_GRANTS_TABLE)
    )
    conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS role_oid pg_catalog.oid").format(_GRANTS_TABLE))


def _role_oid(conn: psycopg.Connection, role: str) -> int | None:
    row = conn.execute("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s", [role]).fetchone()
    return row[0] if row else None


def _holders(conn: psycopg.Connection, warn=None) -> list[tuple[str, str]]:
    """The recorded (role, capability) pairs whose role is the one that was granted.

    A row whose role is gone, or was dropped and re-created under the same name
    (another oid), is deleted: the new role gets nothing it was not granted
    itself. A row without an oid (recorded before the column existed) adopts
    the current role's."""
    kept = []
    for role, capability, oid in conn.execute(
        sql.SQL("SELECT role_name, capability, role_oid FROM {} ORDER BY 1, 2").format(_GRANTS_TABLE)
    ).fetchall():
        current = _role_oid(conn, role)
        if current is not None and oid is None:
            conn.execute(
                sql.SQL("UPDATE {} SET role_oid = %s WHERE role_name = %s AND capability = %s").format(_GRANTS_TABLE),
                [current, role, capability],
            )
            oid = current
        if current is None or current != oid:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE role_name = %s AND capability = %s").format(_GRANTS_TABLE),
                [role, capability],
            )
            if current is not None and warn is not None:
                warn(
                    f"role {role} was dropped and re-created since it was granted {capability} "
                    f"(oid {oid}, now {current}); not granting it to the new role (run grant to do so)"
                )
            continue
        kept.append((role, capability))
    return kept


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
        if _relation_exists(conn, view):
            conn.execute(
                sql.SQL("{} SELECT ON {} {} {}").format(sql.SQL(verb), sql.Identifier(SCHEMA, view), sql.SQL(prep), who)
            )


def _relation_exists(conn: psycopg.Connection, name: str) -> bool:
    # A rollback to an older version can leave a set naming a view or table that is not there (yet).
    return conn.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", [f"{SCHEMA}.{name}"]).fetchone()[0]


def _apply_tables(conn: psycopg.Connection, capability: str, role: str, grant: bool) -> None:
    verb, prep = ("GRANT", "TO") if grant else ("REVOKE", "FROM")
    for privilege, table, columns in TABLE_PRIVILEGES.get(capability, ()):
        # A rollback to a version before the table existed leaves nothing to grant on.
        if not _relation_exists(conn, table):
            continue
        cols = sql.SQL("")
        if columns:
            cols = sql.SQL(" ({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        conn.execute(
            sql.SQL("{} {}{} ON {} {} {}").format(
                sql.SQL(verb),
                sql.SQL(privilege),
                cols,
                sql.Identifier(SCHEMA, table),
                sql.SQL(prep),
                sql.Identifier(role),
            )
        )


def policy_roles(conn: psycopg.Connection) -> list[str]:
    """The roles recorded for the graphile-worker set that exist, sorted (the policy's role list)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT g.role_name FROM {} AS g JOIN pg_catalog.pg_roles AS r ON r.rolname = g.role_name"
            " WHERE g.capability = %s AND (g.role_oid IS NULL OR g.role_oid = r.oid) ORDER BY 1"
        ).format(_GRANTS_TABLE),
        [POLICY_CAPABILITY],
    ).fetchall()
    return [r[0] for r in rows]


def _sync_policies(conn: psycopg.Connection) -> None:
    """Make POLICY on each of POLICY_TABLES name exactly the roles holding the set, or drop it."""
    roles = policy_roles(conn)
    for table in POLICY_TABLES:
        if not _relation_exists(conn, table):
            continue
        target = sql.Identifier(SCHEMA, table)
        exists = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = %s::pg_catalog.regclass AND polname = %s",
            [f"{SCHEMA}.{table}", POLICY],
        ).fetchone()
        if not roles:
            if exists:
                conn.execute(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(POLICY), target))
            continue
        to = sql.SQL(", ").join(sql.Identifier(r) for r in roles)
        if exists:
            conn.execute(sql.SQL("ALTER POLICY {} ON {} TO {}").format(sql.Identifier(POLICY), target, to))
        else:
            conn.execute(
                sql.SQL("CREATE POLICY {} ON {} FOR ALL TO {} USING (true) WITH CHECK (true)").format(
                    sql.Identifier(POLICY), target, to
                )
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
            sql.SQL(
                "INSERT INTO {} (role_name, capability, role_oid) VALUES (%s, %s, %s)"
                " ON CONFLICT (role_name, capability) DO UPDATE SET role_oid = EXCLUDED.role_oid"
            ).format(_GRANTS_TABLE),
            [role, capability, _role_oid(conn, role)],
        )
        # Rows of this name recorded for an earlier role of the same name are not the new role's.
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE role_name = %s AND role_oid IS DISTINCT FROM %s").format(_GRANTS_TABLE),
            [role, _role_oid(conn, role)],
        )
        _apply(conn, capability, role, grant=True)
        _apply_tables(conn, capability, role, grant=True)
        _sync_policies(conn)
        _set_schema_usage(conn, role)


def revoke(inst: Installer, capability: str, role: str) -> None:
    conn = inst.conn
    with conn.transaction():
        _check(inst, capability, role)
        owner = conn.execute(
            "SELECT pg_catalog.pg_get_userbyid(n.nspowner) FROM pg_catalog.pg_namespace AS n"
            " WHERE n.nspname = %s AND n.nspowner = (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = %s)",
            [SCHEMA, role],
        ).fetchone()
        if owner:
            raise InstallerError(
                f'role {role} owns schema "{SCHEMA}" and its functions, and an owner always keeps its rights; '
                f"revoking {capability} from it is meaningless and would only lock it out of its own functions; "
                "nothing revoked"
            )
        _ensure_table(conn)
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE role_name = %s AND capability = %s").format(_GRANTS_TABLE),
            [role, capability],
        )
        _apply(conn, capability, role, grant=False)
        _apply_tables(conn, capability, role, grant=False)
        _sync_policies(conn)
        # Functions shared by several sets (schema_version) must stay granted for the others.
        for holder, other in _holders(conn):
            if holder == role:
                _apply(conn, other, role, grant=True)
                _apply_tables(conn, other, role, grant=True)
        _set_schema_usage(conn, role)


# The rows of role_grants with the oid of the role that now has that name (NULL: no such role).
_RECORDED = """
SELECT g.role_name, g.capability, g.role_oid, r.oid
FROM {} AS g
LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = g.role_name
ORDER BY 1, 2
"""


def _recreated(role_oid, current) -> bool:
    # A row without an oid was recorded before the column existed; the next reapply adopts the role's.
    return current is not None and role_oid is not None and role_oid != current


def recorded(inst: Installer) -> list[tuple[str, str]]:
    """The (role, capability) rows of role_grants, but for those whose role was dropped and
    re-created under the same name since (stale() reports those)."""
    if "role_grants" not in inst.found.meta_tables:
        return []
    rows = inst.conn.execute(sql.SQL(_RECORDED).format(_GRANTS_TABLE)).fetchall()
    return [(role, capability) for role, capability, oid, current in rows if not _recreated(oid, current)]


def stale(inst: Installer) -> list[str]:
    """One verify line per role_grants row whose role was dropped and re-created under the same
    name (another oid) since the grant. The next migrate or rollback deletes such rows. (A row
    whose role is gone altogether is reported by verify.privilege_drift.)"""
    if "role_grants" not in inst.found.meta_tables:
        return []
    return [
        f"extra    role_grants row {role}/{capability}: the role was dropped and re-created since the grant "
        f"(oid {oid}, now {current}) and holds nothing of the set (migrate deletes the row; grant again "
        "to give the set to the new role)"
        for role, capability, oid, current in inst.conn.execute(sql.SQL(_RECORDED).format(_GRANTS_TABLE)).fetchall()
        if _recreated(oid, current)
    ]


def reapply(inst: Installer, warn=None) -> int:
    """Grant every recorded capability again (after migrate or rollback); returns how many.

    A role dropped since its grant is skipped and its record removed; so is one
    dropped and re-created under the same name, with a warning (warn(message))."""
    count = 0
    if not inst.found.schema:
        return 0
    if "role_grants" not in inst.found.meta_tables:
        return 0
    conn = inst.conn
    with conn.transaction():
        _ensure_table(conn)
        holders = _holders(conn, warn)
        for role, capability in holders:
            _apply(conn, capability, role, grant=True)
            _apply_tables(conn, capability, role, grant=True)
            count += 1
        _sync_policies(conn)
        for role in sorted({role for role, _ in holders}):
            _set_schema_usage(conn, role)
    return count
