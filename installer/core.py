"""Install, upgrade and inspect the graphile_worker schema with yoyo-migrations.

Every command opens its own connections from one libpq connection string
(a URI or key=value pairs; empty means libpq's defaults: PGHOST, PGUSER, ...).

Concurrency: yoyo's own lock is a row in a table, which a killed run leaves
behind. We therefore hold a session-level advisory lock around every command
that changes the schema. A second migrate waits for it; a killed migrate's
backend releases it as it dies. Whoever holds the advisory lock is the only
possible owner of yoyo's lock row, so it may clear a row left by a dead run.
"""

from __future__ import annotations

import importlib.resources
import re
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


def redact(conninfo: str, text: str) -> str:
    """Remove the password of conninfo from text, whatever its form."""
    password = None
    try:
        password = psycopg.conninfo.conninfo_to_dict(conninfo).get("password")
    except psycopg.Error:
        match = re.search(r"://[^:/@]*:([^@/]*)@", conninfo)
        password = match.group(1) if match else None
    if password:
        text = text.replace(str(password), "****")
    # A password in a URI that could not be parsed above.
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1****@", text)


def connect(conninfo: str) -> psycopg.Connection:
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        raise InstallerError(f"cannot connect to the database: {redact(conninfo, message)}") from None


class _Backend(PostgresqlPsycopgBackend):
    """yoyo's psycopg 3 backend, connecting with a libpq string and keeping
    its tables in META_SCHEMA (search_path is set to it on connect)."""

    def connect(self, dburi):
        self.schema = META_SCHEMA
        return connect(dburi.args["conninfo"])


def _backend(conninfo: str) -> _Backend:
    uri = DatabaseURI("postgresql+psycopg", None, None, None, None, None, {"conninfo": conninfo})
    backend = _Backend(uri, "_yoyo_migration")
    backend.init_database()
    return backend


class Installer:
    def __init__(self, conninfo: str):
        self.conninfo = normalise_conninfo(conninfo)
        self.migrations = read_migrations(str(migrations_dir()))
        self.conn = connect(self.conninfo)

    def close(self) -> None:
        self.conn.close()

    # -- inspection -------------------------------------------------------

    def _schema_exists(self, name: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [name]).fetchone()
        return row is not None

    def applied_ids(self) -> list[str]:
        if not self._schema_exists(META_SCHEMA):
            return []
        exists = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{META_SCHEMA}._yoyo_migration"]).fetchone()[
            0
        ]
        if not exists:
            return []
        rows = self.conn.execute(
            sql.SQL("SELECT migration_id FROM {}._yoyo_migration ORDER BY applied_at_utc, migration_id").format(
                sql.Identifier(META_SCHEMA)
            )
        ).fetchall()
        return [r[0] for r in rows]

    def installed_version(self) -> int | None:
        if self.conn.execute("SELECT to_regproc(%s) IS NULL", [f"{SCHEMA}.schema_version"]).fetchone()[0]:
            return None
        return self.conn.execute(sql.SQL("SELECT {}.schema_version()").format(sql.Identifier(SCHEMA))).fetchone()[0]

    def all_migrations(self) -> list[Migration]:
        return shipped_migrations(self.migrations)

    def pending(self) -> list[Migration]:
        applied = set(self.applied_ids())
        return [m for m in self.all_migrations() if m.id not in applied]

    def check_ownership(self) -> None:
        """Refuse to touch a graphile_worker schema this installer did not create."""
        if self._schema_exists(SCHEMA) and not self.applied_ids():
            raise InstallerError(
                f'schema "{SCHEMA}" already exists but was not installed by this installer '
                "(no migration record); refusing to change it"
            )

    # -- changes ----------------------------------------------------------

    def _lock(self) -> None:
        self.conn.execute("SELECT pg_catalog.pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])

    def _unlock(self) -> None:
        self.conn.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])

    def _with_yoyo(self, action):
        """Run action(backend) under our advisory lock and yoyo's lock."""
        self._lock()
        try:
            self.check_ownership()
            self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(META_SCHEMA)))
            backend = _backend(self.conninfo)
            try:
                # We hold the advisory lock, so any lock row is a dead run's.
                backend.break_lock()
                with backend.lock():
                    result = action(backend)
            finally:
                backend.connection.close()
            # Functions re-created by the migrations lose their grants; give them back.
            from installer.grants import reapply

            reapply(self.conn)
            return result
        finally:
            self._unlock()

    def migrate(self) -> list[Migration]:
        def apply(backend):
            todo = backend.to_apply(self.migrations)
            backend.apply_migrations(todo)
            return [Migration(version_of(m.id), m.id) for m in todo]

        return self._with_yoyo(apply)

    def rollback(self, to_version: int) -> list[Migration]:
        def undo(backend):
            todo = [m for m in backend.to_rollback(self.migrations) if version_of(m.id) > to_version]
            backend.rollback_migrations(todo)
            return [Migration(version_of(m.id), m.id) for m in todo]

        return self._with_yoyo(undo)

    def uninstall(self) -> bool:
        """Drop the product schema and the bookkeeping schema; False if nothing was installed."""
        self._lock()
        try:
            self.check_ownership()
            if not self._schema_exists(META_SCHEMA) and not self._schema_exists(SCHEMA):
                return False
            with self.conn.transaction():
                self.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
                self.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(META_SCHEMA)))
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
