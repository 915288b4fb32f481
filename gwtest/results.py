"""Where benchmark results go (<build>/bench, <build> being $GW_BUILD, else build/), and what they ran on."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import psycopg

from .db import BUILD, default_server_dsn


def bench_parser(doc: str, keep: str, *, dest: str = "server", option: bool = False) -> argparse.ArgumentParser:
    """The parser a benchmark starts from: its docstring as the help, the server to work on (a libpq string of
    any database there; an optional first argument defaulting to the test server, or with option=True a
    required --server) and --keep, whose help is keep."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if option:
        p.add_argument("--server", dest=dest, required=True, help="libpq string of any database on the server")
    else:
        default = default_server_dsn()
        p.add_argument(dest, nargs="?", default=default, help=f"any database on the server (default {default})")
    p.add_argument("--keep", action="store_true", help=keep)
    return p


def out_dir(path: str | Path | None = None) -> Path:
    """The directory every benchmark writes to (path, else <build>/bench), made if missing."""
    out = Path(path) if path else BUILD / "bench"
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(name: str, data: dict, directory: Path | None = None) -> Path:
    """Write data as indented JSON to name in the output directory; returns the path."""
    path = (directory or out_dir()) / name
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def environment(conn: psycopg.Connection) -> dict:
    """The server's version and schema version, this machine's CPU count and Python."""
    return {
        "postgres": conn.execute("SHOW server_version").fetchone()[0],
        "schema_version": conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
