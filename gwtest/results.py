"""Where benchmark results go (<build>/bench, <build> being $GW_BUILD, else build/), and what they ran on."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import psycopg

from .db import BUILD


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
