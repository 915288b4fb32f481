"""Helpers shared by the benchmark scripts in bench/ (importable as `benchlib` from there).

Nothing here measures anything by itself: database creation, the output
directory, and two ways of reading a PostgreSQL server's CPU time from /proc
(the server must run on this machine; on anything else they return None).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def with_dbname(dsn: str, dbname: str) -> str:
    """The same connection string, pointing at another database."""
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


def as_url(dsn: str) -> str:
    """A postgresql:// URL for the same connection (node-postgres takes URLs only)."""
    from urllib.parse import quote, urlencode

    params = psycopg.conninfo.conninfo_to_dict(dsn)
    user, password = params.pop("user", ""), params.pop("password", None)
    host, port, dbname = params.pop("host", ""), params.pop("port", ""), params.pop("dbname", "")
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc = (auth + "@" if auth else "") + (host if host and not host.startswith("/") else "localhost")
    if host.startswith("/"):
        params["host"] = host
    url = f"postgresql://{netloc}{':' + str(port) if port else ''}/{quote(dbname, safe='')}"
    return url + ("?" + urlencode(params) if params else "")


def default_server_dsn() -> str:
    return f"postgresql://postgres@127.0.0.1:{os.environ.get('PGPORT', '54329')}/postgres"


def out_dir() -> Path:
    """<build>/bench, where every benchmark writes its JSON (<build> is $GW_BUILD, else build/)."""
    path = Path(os.environ.get("GW_BUILD", ROOT / "build")) / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def drop_database(server_dsn: str, dbname: str) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def fresh_database(server_dsn: str, dbname: str, template: str | None = None) -> str:
    """Drop dbname if it exists, create it empty (or as a copy of template); returns its DSN."""
    drop_database(server_dsn, dbname)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(stmt)
    return with_dbname(server_dsn, dbname)


def install_ours(dsn: str) -> None:
    """Migrate the database to this checkout's newest schema version."""
    sys.path.insert(0, str(ROOT))
    from installer.core import Installer

    inst = Installer(dsn)
    try:
        inst.migrate()
    finally:
        inst.close()


def backend_cpu_ms(pid: int) -> float | None:
    """CPU time (ms, nanosecond precision) one server process has used so far, else None.

    On a machine shared with other work, wall-clock times vary with the load;
    the CPU time of the backend that ran a call hardly does.
    """
    try:
        with open(f"/proc/{pid}/sched") as f:
            for line in f:
                if line.startswith("se.sum_exec_runtime"):
                    return float(line.split(":")[1])
    except (OSError, ValueError):
        return None
    return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces; fields after it are plain.
    return text[text.rindex(")") + 2 :].split()


def postmaster_pid(conn: psycopg.Connection) -> int | None:
    """The server's postmaster: the parent of this connection's backend (None if not on this machine)."""
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with open(f"/proc/{backend}/status") as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class ServerCPU:
    """CPU seconds used by a whole PostgreSQL server: the postmaster and all its processes.

    total() = postmaster's utime + stime + cutime + cstime (the last two hold
    every child that has exited and been reaped) + utime + stime of each live
    child of the postmaster (backends, autovacuum, checkpointer, ...). The
    difference of two totals is the server CPU spent between them, whatever
    the client's language. Resolution is one clock tick (1/CLK_TCK s) per
    process.
    """

    def __init__(self, pid: int | None):
        self.pid = pid

    def total(self) -> float | None:
        if self.pid is None:
            return None
        own = _stat_fields(self.pid)
        if own is None:
            return None
        # After ")": field 3 is index 0, so ppid is [1], utime [11], stime [12], cutime [13], cstime [14].
        ticks = sum(int(own[i]) for i in (11, 12, 13, 14))
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == self.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / CLOCK_TICKS


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
