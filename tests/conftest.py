"""Fixtures: a fresh database per test on the throwaway server that make test starts.

The server is external to pytest (tools/pgserver.sh, run by make): pytest-postgresql's
own process fixture calls pg_ctl, which refuses to run as root, so we use its
"noproc" fixture and let it create and drop one database per test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories

from installer.core import Installer

ROOT = Path(__file__).resolve().parent.parent
PGHOST = os.environ.get("GW_TEST_HOST", "127.0.0.1")
PGPORT = int(os.environ.get("PGPORT", "54329"))
PGUSER = os.environ.get("GW_TEST_USER", "postgres")

postgresql_server = factories.postgresql_noproc(host=PGHOST, port=PGPORT, user=PGUSER)
postgresql = factories.postgresql("postgresql_server", dbname="gw_test")


def dsn_for(dbname: str, user: str = PGUSER) -> str:
    return f"postgresql://{user}@{PGHOST}:{PGPORT}/{dbname}"


@pytest.fixture
def dsn(postgresql: psycopg.Connection) -> str:
    """Connection string of a fresh, empty database."""
    return dsn_for(postgresql.info.dbname)


@pytest.fixture
def installed(dsn: str) -> str:
    """Connection string of a fresh database with the newest schema installed."""
    inst = Installer(dsn)
    try:
        inst.migrate()
    finally:
        inst.close()
    return dsn


@pytest.fixture
def db(installed: str):
    """An autocommit connection to a database with the newest schema installed."""
    with psycopg.connect(installed, autocommit=True) as conn:
        yield conn


def run_cli(*args: str, env: dict | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run python -m installer in a child process, as a deploy pipeline would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "installer", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=120,
    )
