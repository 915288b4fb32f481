"""Install, upgrade and inspect the graphile_worker schema with yoyo-migrations.

Every command goes through Installer: it connects from one libpq connection
string (a URI or key=value pairs; empty means libpq's defaults: PGHOST, PGUSER,
...), pins the session's search_path, and checks that it may trust both schemas
before it reads or calls anything in them.

Trust: the installer runs no code and reads no rows that a less privileged role
could have planted, since that code would run with the installer's rights. A
schema it uses (graphile_worker, graphile_worker_migrations) and every table,
view, sequence, index, function, type and operator in it must be owned by the
connecting role or by a superuser (a superuser can do anything already, so
trusting one gives nothing away). Owning the other schema earns no trust: a
squatter can create both. The bookkeeping tables may have no trigger, rule or
policy (the installer makes none) and may grant nothing but SELECT to another
role, and neither schema may grant CREATE to another role. Otherwise every command
refuses, in one line naming the object and its owner, before it changes anything.
A schema installed by another role (not a superuser) is therefore refused too:
run the installer as the role that owns it.

search_path: a database or role default (ALTER DATABASE ... SET search_path)
could put look-alikes of catalog functions first. Every connection therefore
sets search_path to pg_catalog, pg_temp before anything else (yoyo's connection
to pg_catalog, graphile_worker_migrations, pg_temp), and every catalog function
the installer calls is named with its schema.

Concurrency: yoyo's own lock is a row in a table, which a killed run leaves
behind. We therefore hold a session-level advisory lock around every command
that changes the schema. A second migrate waits for it (lock_timeout seconds at
most, then it gives up naming the holder, since any role may take the same
lock); a killed migrate's
backend releases it as it dies. Whoever holds the advisory lock is the only
possible owner of yoyo's lock row, so it may clear a row left by a dead run.
"""

from __future__ import annotations

import importlib.resources
import re
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import DatabaseURI

SCHEMA = "graphile_worker"
# yoyo's bookkeeping tables live here, next to (never inside) the product's schema,
# so that the product schema holds only product objects.
META_SCHEMA = "graphile_worker_migrations"
# Arbitrary, fixed advisory lock key: "gw" + "migr" in ASCII, as one bigint.
ADVISORY_LOCK_KEY = 0x67776D696772
# The labels of graphile_worker.cleanup_task, in the order cleanup() runs them.
CLEANUP_TASKS = ("DELETE_PERMAFAILED_JOBS", "GC_TASK_IDENTIFIERS", "GC_JOB_QUEUES")
# The first schema version that has graphile_worker.cleanup().
CLEANUP_SINCE_VERSION = 2
# Seconds to wait for the advisory lock before giving up (0: wait for ever).
DEFAULT_LOCK_TIMEOUT = 60
# The oldest PostgreSQL major the migrations run on: they use SQL-standard
# function bodies (BEGIN ATOMIC / RETURN), which came in 14.
MIN_SERVER_VERSION = 140000
# The session's search_path: pg_catalog first, so that nothing a database or role
# default puts on the path (ALTER DATABASE ... SET search_path) can shadow a catalog
# function; the installer also names pg_catalog in every call it writes.
PINNED_SEARCH_PATH = "pg_catalog, pg_temp"
# yoyo names its tables unqualified in one query (its internal schema version), so
# its connection also has the bookkeeping schema on its path, after pg_catalog.
YOYO_SEARCH_PATH = f"pg_catalog, {META_SCHEMA}, pg_temp"


class InstallerError(Exception):
    """An error to report to the user as one line, without a traceback."""


@dataclass(frozen=True)
class Migration:
    version: int
    id: str


def migrations_dir() -> Path:
    """Where the SQL migrations are: inside the wheel, else the source tree."""
    packaged = importlib.resources.files("installer") / "extension" / "migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parent.parent / "extension" / "migrations"
    if source.is_dir():
        return source
    raise InstallerError("the SQL migrations are missing from this installation")


def version_of(migration_id: str) -> int:
    match = re.match(r"^(\d+)\.", migration_id)
    if not match:
        raise InstallerError(f"migration {migration_id!r} does not start with a version number")
    return int(match.group(1))


def shipped_migrations(migrations=None) -> list[Migration]:
    """The migrations this package ships, in version order."""
    if migrations is None:
        migrations = read_migrations(str(migrations_dir()))
    return sorted((Migration(version_of(m.id), m.id) for m in migrations), key=lambda m: m.version)


def parse_cleanup_tasks(text: str) -> list[str]:
    """Split a comma-separated list of cleanup task names, refusing unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    valid = ", ".join(CLEANUP_TASKS)
    unknown = [name for name in names if name not in CLEANUP_TASKS]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise InstallerError(f"unknown cleanup task {listed}; valid tasks (comma-separated): {valid}")
    if not names:
        raise InstallerError(f"no cleanup task given; valid tasks (comma-separated): {valid}")
    return names


def normalise_conninfo(conninfo: str) -> str:
    """Accept yoyo-style URIs too (postgresql+psycopg://...)."""
    return re.sub(r"^postgres(ql)?\+psycopg\d?://", "postgresql://", conninfo)


def _password_candidates(conninfo: str) -> list[str]:
    """Every string that may be (part of) the password in conninfo, parsed or not."""
    found: list[str] = []
    try:
        password = psycopg.conninfo.conninfo_to_dict(conninfo).get("password")
        if password:
            found.append(str(password))
    except psycopg.Error:
        pass
    # URI: the user information is everything before the last @ of the authority.
    match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#\s]*)@", conninfo)
    if match and ":" in match.group(1):
        raw = match.group(1).split(":", 1)[1]
        found += [raw, urllib.parse.unquote(raw)]
        # libpq splits at the first @: the rest of the password then reads as a host name.
        found += [piece for piece in re.split(r"@|%40", raw) if piece]
    # key=value: a quoted value, else every word up to the next key=.
    for match in re.finditer(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+(?:\s+(?!\S+\s*=)\S+)*)", conninfo):
        value = match.group(1).strip()
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1] if value.endswith("'") and len(value) > 1 else value[1:])
        found += [value, *value.split()]
    return sorted({c for c in found if c}, key=len, reverse=True)


def redact(conninfo: str, text: str) -> str:
    """Remove the password of conninfo from text, whatever its form.

    A short password (fewer than 8 characters) is masked only where it stands
    alone, so that a password such as "x" does not turn "exist" into "e****ist"."""
    for secret in _password_candidates(conninfo):
        if len(secret) >= 8:
            text = text.replace(secret, "****")
        else:
            text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(secret)}(?![A-Za-z0-9_])", "****", text)
    # A password in any URI the text quotes: up to the last @ of its authority.
    return re.sub(r"(://[^:/@\s]*:)[^/\s]*@", r"\1****@", text)


def connect(conninfo: str) -> psycopg.Connection:
    """An autocommit connection whose search_path is PINNED_SEARCH_PATH before any other statement."""
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        raise InstallerError(f"cannot connect to the database: {redact(conninfo, message)}") from None
    conn.execute(f"SET search_path = {PINNED_SEARCH_PATH}")
    return conn


class _Backend(PostgresqlPsycopgBackend):
    """yoyo's psycopg 3 backend, connecting with a libpq string and keeping its
    tables in META_SCHEMA.

    yoyo sets search_path to its schema alone; here pg_catalog stays first
    (YOYO_SEARCH_PATH), so tables are created with their schema named, and the
    test table yoyo would create to probe for transactional DDL is skipped
    (PostgreSQL has it)."""

    def connect(self, dburi):
        return connect(dburi.args["conninfo"])

    def init_connection(self, connection):
        connection.execute(f"SET search_path = {YOYO_SEARCH_PATH}")

    def __getattr__(self, attrname):
        # yoyo writes {backend.lock_table_quoted} and the like for its table names.
        if attrname.endswith("_table_quoted"):
            table = getattr(self, attrname[: -len("_quoted")])
            return f"{self.quote_identifier(META_SCHEMA)}.{self.quote_identifier(table)}"
        return super().__getattr__(attrname)

    def list_tables(self, **kwargs):
        rows = self.execute(
            "SELECT c.relname FROM pg_catalog.pg_class AS c"
            " WHERE c.relnamespace = pg_catalog.to_regnamespace(:schema) AND c.relkind = 'r'",
            {"schema": META_SCHEMA},
        ).fetchall()
        return [r[0] for r in rows]

    def _check_transactional_ddl(self):
        return True


def _backend(conninfo: str) -> _Backend:
    uri = DatabaseURI("postgresql+psycopg", None, None, None, None, None, {"conninfo": conninfo})
    backend = _Backend(uri, "_yoyo_migration")
    backend.init_database()
    return backend


# SQL: whether the role with oid {0} is one whose objects the installer trusts.
_TRUSTED = (
    "({0} = (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user)"
    " OR coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.oid = {0}), false))"
)
# SQL: how a message names the relation c (in a query that has pg_class AS c).
_RELATION = (
    "CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'v' THEN 'view '"
    " WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence ' WHEN 'i' THEN 'index '"
    " WHEN 'I' THEN 'index ' WHEN 'f' THEN 'foreign table ' ELSE 'relation ' END"
    " || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)"
)
# What exists, by name, in the catalog snapshot the checks below look at.
_FOUND = """
SELECT
    EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s),
    EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %(meta)s),
    ARRAY(SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_class AS c
          JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
          WHERE n.nspname = %(meta)s AND c.relkind = 'r'),
    ARRAY(SELECT DISTINCT p.proname::pg_catalog.text FROM pg_catalog.pg_proc AS p
          JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
          WHERE n.nspname = %(schema)s)
"""
# The first object of either schema (the schema itself first) whose owner is not trusted.
_FOREIGN_OWNER = f"""
WITH n AS (SELECT oid, nspname, nspowner FROM pg_catalog.pg_namespace WHERE nspname = ANY(%(schemas)s)),
objects (rank, what, owner) AS (
    SELECT 0, 'schema "' || n.nspname || '"', n.nspowner FROM n
    UNION ALL
    SELECT CASE WHEN c.relkind IN ('i', 'I') THEN 2 ELSE 1 END, {_RELATION}, c.relowner
    FROM pg_catalog.pg_class AS c JOIN n ON c.relnamespace = n.oid
    UNION ALL
    SELECT 1, 'function ' || p.oid::pg_catalog.regprocedure::pg_catalog.text, p.proowner
    FROM pg_catalog.pg_proc AS p JOIN n ON p.pronamespace = n.oid
    UNION ALL
    SELECT 2, 'type ' || pg_catalog.format_type(t.oid, NULL), t.typowner
    FROM pg_catalog.pg_type AS t JOIN n ON t.typnamespace = n.oid
    UNION ALL
    SELECT 1, 'operator ' || o.oid::pg_catalog.regoperator::pg_catalog.text, o.oprowner
    FROM pg_catalog.pg_operator AS o JOIN n ON o.oprnamespace = n.oid
)
SELECT what, pg_catalog.pg_get_userbyid(owner), current_user FROM objects
WHERE NOT {_TRUSTED.format("owner")}
ORDER BY rank, what LIMIT 1
"""
# The first trigger, rule or policy on a bookkeeping relation (the installer makes none).
_FOREIGN_HOOK = f"""
SELECT {_RELATION}, 'a trigger "' || t.tgname || '" calling '
       || t.tgfoid::pg_catalog.regprocedure::pg_catalog.text || ', owned by '
       || pg_catalog.pg_get_userbyid(p.proowner)
FROM pg_catalog.pg_trigger AS t
JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
WHERE n.nspname = %(meta)s AND NOT t.tgisinternal
UNION ALL
SELECT {_RELATION}, 'a rule "' || r.rulename || '"'
FROM pg_catalog.pg_rewrite AS r
JOIN pg_catalog.pg_class AS c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(meta)s
UNION ALL
SELECT {_RELATION}, 'a row level security policy "' || pol.polname || '"'
FROM pg_catalog.pg_policy AS pol
JOIN pg_catalog.pg_class AS c ON c.oid = pol.polrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(meta)s
ORDER BY 1, 2 LIMIT 1
"""
# The first privilege that would let another role add objects to either schema or
# change a bookkeeping relation (SELECT on it is harmless).
_FOREIGN_GRANT = f"""
WITH grants (what, privilege, grantee) AS (
    SELECT 'schema "' || n.nspname || '"', a.privilege_type, a.grantee
    FROM pg_catalog.pg_namespace AS n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) AS a
    WHERE n.nspname = ANY(%(schemas)s) AND a.privilege_type = 'CREATE'
    UNION ALL
    SELECT {_RELATION}, a.privilege_type, a.grantee
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
    WHERE n.nspname = %(meta)s AND a.privilege_type <> 'SELECT'
)
SELECT what, privilege,
       CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(grantee) END
FROM grants WHERE NOT {_TRUSTED.format("grantee")}
ORDER BY 1, 2, 3 LIMIT 1
"""


# Objects outside both schemas that depend on an object inside them (a column of
# one of our types, a view or function using ours, ...), with what they depend on.
# The namespace of a dependent is that of the object itself or of the relation
# it belongs to (a rule, trigger, default, policy); none (a cast) counts as outside.
_OUTSIDE_DEPENDENTS = """
WITH n AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ANY(%(schemas)s)),
ours (classid, objid) AS (
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, oid FROM n
    UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_class AS c
        WHERE c.relnamespace IN (SELECT oid FROM n)
    UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_type AS t
        WHERE t.typnamespace IN (SELECT oid FROM n)
    UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace IN (SELECT oid FROM n)
    UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_operator AS o
        WHERE o.oprnamespace IN (SELECT oid FROM n)
    UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, l.oid FROM pg_catalog.pg_collation AS l
        WHERE l.collnamespace IN (SELECT oid FROM n)
),
deps AS (
    SELECT d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid, d.refobjsubid,
        CASE d.classid
            WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN
                (SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN
                (SELECT typnamespace FROM pg_catalog.pg_type WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
                (SELECT pronamespace FROM pg_catalog.pg_proc WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN
                (SELECT oprnamespace FROM pg_catalog.pg_operator WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_collation'::pg_catalog.regclass THEN
                (SELECT collnamespace FROM pg_catalog.pg_collation WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
                (SELECT connamespace FROM pg_catalog.pg_constraint WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass THEN
                (SELECT stxnamespace FROM pg_catalog.pg_statistic_ext WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_opclass'::pg_catalog.regclass THEN
                (SELECT opcnamespace FROM pg_catalog.pg_opclass WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_opfamily'::pg_catalog.regclass THEN
                (SELECT opfnamespace FROM pg_catalog.pg_opfamily WHERE oid = d.objid)
            WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_rewrite AS r
                 JOIN pg_catalog.pg_class AS c ON c.oid = r.ev_class WHERE r.oid = d.objid)
            WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_trigger AS t
                 JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
            WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_attrdef AS a
                 JOIN pg_catalog.pg_class AS c ON c.oid = a.adrelid WHERE a.oid = d.objid)
            WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_policy AS p
                 JOIN pg_catalog.pg_class AS c ON c.oid = p.polrelid WHERE p.oid = d.objid)
        END AS nsp
    FROM pg_catalog.pg_depend AS d JOIN ours AS o ON o.classid = d.refclassid AND o.objid = d.refobjid
    WHERE d.deptype IN ('n', 'a')
)
SELECT pg_catalog.pg_describe_object(classid, objid, objsubid),
       pg_catalog.pg_describe_object(refclassid, refobjid, refobjsubid),
       classid::pg_catalog.oid, objid, objsubid, refclassid::pg_catalog.oid, refobjid
FROM deps WHERE nsp IS NULL OR nsp NOT IN (SELECT oid FROM n)
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Found:
    """What the trust check found; later steps use this instead of looking names up again."""

    schema: bool
    meta_schema: bool
    meta_tables: frozenset[str]
    functions: frozenset[str]


class Installer:
    def __init__(self, conninfo: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, warn=None):
        self.conninfo = normalise_conninfo(conninfo)
        # warn(message): one line about something skipped; default: "warning: ..." on stderr.
        self.warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr, flush=True))
        self.lock_timeout = lock_timeout
        self.migrations = read_migrations(str(migrations_dir()))
        self.conn = connect(self.conninfo)
        try:
            self.found = self.inspect()
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    # -- trust --------------------------------------------------------------

    def inspect(self) -> Found:
        """Check that both schemas can be trusted (see the module's docstring) and
        return what they hold; raise InstallerError, changing nothing, otherwise.

        One read-only REPEATABLE READ transaction, so that every check sees the
        same catalog. Whatever it found stays trustworthy afterwards: only the
        trusted owner can drop or replace a schema or object it owns, and no other
        role may create objects in either schema. Whatever it did not find is not
        used later in the same run without another inspect()."""
        params = {"schema": SCHEMA, "meta": META_SCHEMA, "schemas": [SCHEMA, META_SCHEMA]}
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            schema, meta_schema, meta_tables, functions = self.conn.execute(_FOUND, params).fetchone()
            row = self.conn.execute(_FOREIGN_OWNER, params).fetchone()
            if row:
                raise InstallerError(
                    f"{row[0]} is owned by role {row[1]}, neither the connecting role ({row[2]}) nor a "
                    "superuser, so the installer cannot trust it; refusing to use it (run as its owner, or remove it)"
                )
            row = self.conn.execute(_FOREIGN_HOOK, params).fetchone()
            if row:
                raise InstallerError(f"{row[0]} has {row[1]}, which the installer did not create; refusing to use it")
            row = self.conn.execute(_FOREIGN_GRANT, params).fetchone()
            if row:
                raise InstallerError(
                    f"{row[0]} grants {row[1]} to {row[2]}, so that role could plant objects the installer "
                    "would use; refusing to use it (revoke the grant)"
                )
            found = Found(schema, meta_schema, frozenset(meta_tables), frozenset(functions))
            if schema and not self._read_applied_ids(found):
                raise InstallerError(
                    f'schema "{SCHEMA}" already exists but was not installed by this installer '
                    "(no migration record); refusing to change it"
                )
        return found

    def _read_applied_ids(self, found: Found) -> list[str]:
        if "_yoyo_migration" not in found.meta_tables:
            return []
        rows = self.conn.execute(
            sql.SQL("SELECT migration_id FROM {} ORDER BY applied_at_utc, migration_id").format(
                sql.Identifier(META_SCHEMA, "_yoyo_migration")
            )
        ).fetchall()
        return [r[0] for r in rows]

    # -- inspection -------------------------------------------------------

    def applied_ids(self) -> list[str]:
        return self._read_applied_ids(self.found)

    def installed_version(self) -> int | None:
        if "schema_version" not in self.found.functions:
            return None
        return self.conn.execute(sql.SQL("SELECT {}()").format(sql.Identifier(SCHEMA, "schema_version"))).fetchone()[0]

    def all_migrations(self) -> list[Migration]:
        return shipped_migrations(self.migrations)

    def pending(self) -> list[Migration]:
        applied = set(self.applied_ids())
        return [m for m in self.all_migrations() if m.id not in applied]

    def check_schema_present(self) -> None:
        """Refuse when the bookkeeping records migrations but the schema is gone (dropped by hand)."""
        applied = self.applied_ids()
        if applied and not self.found.schema:
            version = max(version_of(i) for i in applied)
            raise InstallerError(
                f'schema "{SCHEMA}" is missing although version {version} is recorded as applied '
                f"(dropped by hand?); to recover, run rollback --to 0 (clears the record) or uninstall --yes, "
                "then migrate"
            )

    def outside_dependents(self) -> list[tuple]:
        """Objects outside both schemas that depend on objects in them (see _OUTSIDE_DEPENDENTS)."""
        return self.conn.execute(_OUTSIDE_DEPENDENTS, {"schemas": [SCHEMA, META_SCHEMA]}).fetchall()

    def _refuse_dependents(self, rows: list[tuple], action: str) -> None:
        if rows:
            listed = "".join(f"\n  {what} depends on {on}" for what, on, *_ in rows)
            raise InstallerError(
                f"{action} would drop or break {len(rows)} objects outside the schemas that depend on the "
                f"installer's objects; nothing changed (drop or alter them first):{listed}"
            )

    # -- changes ----------------------------------------------------------

    def _lock(self) -> None:
        """Take the advisory lock, waiting at most lock_timeout seconds (0: no limit)."""
        timeout_ms = max(0, round(self.lock_timeout * 1000))
        try:
            # The lock is session-level: it outlives this transaction, the timeout does not.
            with self.conn.transaction():
                self.conn.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)", [f"{timeout_ms}ms"])
                self.conn.execute("SELECT pg_catalog.pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        except psycopg.errors.LockNotAvailable:
            raise InstallerError(
                f"gave up after {self.lock_timeout:g} s waiting for the installer's advisory lock, held by "
                f"{self._lock_holders()}; try again later, or pass --lock-timeout SECONDS (0: wait for ever)"
            ) from None

    def _lock_holders(self) -> str:
        rows = self.conn.execute(
            "SELECT l.pid, coalesce(a.usename::pg_catalog.text, 'role not visible')"
            " FROM pg_catalog.pg_locks AS l LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())"
            " AND l.classid::pg_catalog.int8 = %s AND l.objid::pg_catalog.int8 = %s ORDER BY 1",
            [ADVISORY_LOCK_KEY >> 32, ADVISORY_LOCK_KEY & 0xFFFFFFFF],
        ).fetchall()
        if not rows:
            return "another session (no longer visible)"
        return ", ".join(f"pid {pid} (role {role})" for pid, role in rows)

    def _unlock(self) -> None:
        self.conn.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])

    def _with_yoyo(self, action):
        """Run action(backend) under our advisory lock and yoyo's lock."""
        self._lock()
        try:
            # Again: another run may have changed both schemas since we connected.
            self.found = self.inspect()
            if not self.found.meta_schema:
                # No IF NOT EXISTS: a schema someone made since inspect() must stop us, not be used.
                self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(META_SCHEMA)))
            backend = _backend(self.conninfo)
            try:
                # We hold the advisory lock, so any lock row is a dead run's.
                backend.break_lock()
                with backend.lock():
                    result = action(backend)
            finally:
                backend.connection.close()
            self.found = self.inspect()
            # Functions re-created by the migrations lose their grants; give them back.
            from installer.grants import reapply

            reapply(self, self.warn)
            return result
        finally:
            self._unlock()

    def server_version(self) -> int:
        """The server's version as server_version_num gives it, e.g. 150004."""
        return self.conn.info.server_version

    def check_server_version(self) -> None:
        """Refuse, before anything is changed, a server older than MIN_SERVER_VERSION."""
        version = self.server_version()
        if version < MIN_SERVER_VERSION:
            raise InstallerError(
                f"needs PostgreSQL {MIN_SERVER_VERSION // 10000} or newer; this server is "
                f"{version // 10000}.{version % 10000}"
            )

    def migrate(self) -> list[Migration]:
        self.check_server_version()

        def apply(backend):
            todo = backend.to_apply(self.migrations)
            backend.apply_migrations(todo)
            return [Migration(version_of(m.id), m.id) for m in todo]

        return self._with_yoyo(apply)

    def rollback(self, to_version: int) -> list[Migration]:
        def undo(backend):
            todo = [m for m in backend.to_rollback(self.migrations) if version_of(m.id) > to_version]
            if todo and not self.found.schema and to_version == 0:
                # The schema was dropped by hand: nothing to undo but the record.
                backend.unmark_migrations(todo)
                return [Migration(version_of(m.id), m.id) for m in todo]
            if todo:
                self._check_rollback_dependents(backend, todo)
            backend.rollback_migrations(todo)
            return [Migration(version_of(m.id), m.id) for m in todo]

        return self._with_yoyo(undo)

    def _check_rollback_dependents(self, backend, todo) -> None:
        """Refuse, changing nothing, if rolling back todo would drop or fail on an outside dependent.

        The rollback steps run once in a transaction that is always rolled back:
        an outside dependent is hit if a step fails on it (DROP without CASCADE)
        or if its dependency is gone afterwards (DROP ... CASCADE)."""
        before = self.outside_dependents()
        if not before:
            return
        hit = []
        backend.begin()
        try:
            try:
                for m in todo:
                    m.process_steps(backend, "rollback")
            except psycopg.errors.DependentObjectsStillExist:
                hit = before
            else:
                exists = (
                    "SELECT EXISTS (SELECT FROM pg_catalog.pg_depend WHERE classid = %s AND objid = %s"
                    " AND objsubid = %s AND refclassid = %s AND refobjid = %s)"
                )
                hit = [row for row in before if not backend.connection.execute(exists, list(row[2:])).fetchone()[0]]
        finally:
            backend.rollback()
        self._refuse_dependents(hit, "rollback")

    def uninstall(self) -> bool:
        """Drop the product schema and the bookkeeping schema; False if nothing was installed."""
        self._lock()
        try:
            self.found = self.inspect()
            if not self.found.meta_schema and not self.found.schema:
                return False
            with self.conn.transaction():
                self._refuse_dependents(self.outside_dependents(), "uninstall")
                self.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
                self.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(META_SCHEMA)))
            self.found = Found(False, False, frozenset(), frozenset())
            return True
        finally:
            self._unlock()

    # -- administration ---------------------------------------------------

    def cleanup(self, tasks: list[str], keep_tasks: list[str]) -> list[tuple[str, int]]:
        """Run graphile_worker.cleanup; one (task, deleted count) per task, in execution order."""
        version = self.installed_version()
        if version is None or version < CLEANUP_SINCE_VERSION:
            raise InstallerError(
                f"cleanup needs schema version {CLEANUP_SINCE_VERSION} or newer "
                f"(installed: {version if version is not None else 'none'}); run migrate first"
            )
        # The SQL function refuses a snapshot that cannot advance (its GC tasks
        # re-check in a second statement), so do not inherit a database or role
        # default of REPEATABLE READ.
        self.conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        with self.conn.transaction():
            rows = self.conn.execute(
                sql.SQL(
                    "SELECT task::text, deleted_count FROM {schema}.cleanup(%s::{schema}.cleanup_task[], %s)"
                ).format(schema=sql.Identifier(SCHEMA)),
                [tasks, keep_tasks],
            ).fetchall()
        return [(task, count) for task, count in rows]
