"""Databases: connection strings, fresh databases, throwaway roles, migrating, and the server's statistics.

The server is the throwaway one tools/pgserver.sh runs (make test, make bench): PGPORT, 127.0.0.1,
user postgres, unless GW_TEST_HOST and GW_TEST_USER say otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("GW_BUILD", ROOT / "build"))
PGHOST = os.environ.get("GW_TEST_HOST", "127.0.0.1")
PGPORT = int(os.environ.get("PGPORT", "54329"))
PGUSER = os.environ.get("GW_TEST_USER", "postgres")


def dsn_for(dbname: str, user: str = PGUSER) -> str:
    """A database on the test server, as user."""
    return f"postgresql://{user}@{PGHOST}:{PGPORT}/{dbname}"


def default_server_dsn() -> str:
    """The test server's postgres database: where the benchmarks create theirs, by default."""
    return dsn_for("postgres")


def with_dbname(dsn: str, dbname: str) -> str:
    """The same connection string, pointing at another database."""
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


def as_url(dsn: str) -> str:
    """A postgresql:// URL for the same connection (node-postgres takes URLs only)."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    user, password = params.pop("user", ""), params.pop("password", None)
    host, port, dbname = params.pop("host", ""), params.pop("port", ""), params.pop("dbname", "")
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc = (auth + "@" if auth else "") + (host if host and not host.startswith("/") else "localhost")
    if host.startswith("/"):
        params["host"] = host
    url = f"postgresql://{netloc}{':' + str(port) if port else ''}/{quote(dbname, safe='')}"
    return url + ("?" + urlencode(params) if params else "")


def migrate(dsn: str) -> None:
    """Migrate the database to this checkout's newest schema version."""
    from installer.core import Installer

    inst = Installer(dsn)
    try:
        inst.migrate()
    finally:
        inst.close()


def drop_database(server_dsn: str, dbname: str) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def fresh_database(server_dsn: str, dbname: str, *, template: str | None = None, migrated: bool = False) -> str:
    """Drop dbname if it exists, create it empty (or as a copy of template), migrate it if asked; returns its DSN."""
    drop_database(server_dsn, dbname)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(stmt)
    dsn = with_dbname(server_dsn, dbname)
    if migrated:
        migrate(dsn)
    return dsn


@contextmanager
def role(admin: psycopg.Connection, name: str, options: str = "LOGIN") -> Iterator[str]:
    """A role made for the test (dropped first if an earlier run left it); what it owns in admin's database
    and the role itself are dropped afterwards. Yields the name. admin must be in autocommit mode."""
    admin.execute(f"DROP ROLE IF EXISTS {name}")
    admin.execute(f"CREATE ROLE {name} {options}")
    try:
        yield name
    finally:
        admin.execute(f"DROP OWNED BY {name} CASCADE")
        admin.execute(f"DROP ROLE {name}")


def deadlocks(conn: psycopg.Connection) -> int:
    """Deadlocks PostgreSQL has counted in this database (pg_stat_database), read afresh."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def wait_for_backends(conn: psycopg.Connection, application_name: str, timeout: float) -> bool:
    """Wait until no other backend of this database has an application_name LIKE the pattern; False on timeout.

    Backends flush their statistics (deadlocks among them) when they exit: wait for them before reading.
    """
    from .timing import wait_until

    return wait_until(
        lambda: conn.execute(
            "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name LIKE %s AND pid <> pg_backend_pid())",
            [application_name],
        ).fetchone()[0],
        timeout,
    )


def managed_data_dir() -> Path | None:
    """The data directory of the server tools/pgserver.sh runs, when that server is the one on PGPORT."""
    link = BUILD / "pgdata"
    if not link.exists():
        return None
    path = link.resolve()
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    # postmaster.pid: pid, data directory, start time, port, ...
    if len(lines) < 4 or lines[3].strip() != str(PGPORT):
        return None
    return path
