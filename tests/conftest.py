"""Fixtures: a fresh database per test on the throwaway server that make test starts.

The server is external to pytest (tools/pgserver.sh, run by make): pytest-postgresql's
own process fixture calls pg_ctl, which refuses to run as root, so we use its
"noproc" fixture and let it create and drop one database per test. The helpers the
tests share with the benchmarks are in gwtest/; the names below stay importable from
here for the tests that use them.
"""

from __future__ import annotations

import sys

import psycopg
import pytest
from pytest_postgresql import factories

from gwtest.db import PGHOST, PGPORT, PGUSER, ROOT, dsn_for, migrate
from gwtest.procs import run_cli

__all__ = ["PGHOST", "PGPORT", "PGUSER", "ROOT", "dsn_for", "run_cli"]

postgresql_server = factories.postgresql_noproc(host=PGHOST, port=PGPORT, user=PGUSER)
postgresql = factories.postgresql("postgresql_server", dbname="gw_test")


@pytest.fixture
def dsn(postgresql: psycopg.Connection) -> str:
    """Connection string of a fresh, empty database."""
    return dsn_for(postgresql.info.dbname)


@pytest.fixture
def installed(dsn: str) -> str:
    """Connection string of a fresh database with the newest schema installed."""
    migrate(dsn)
    return dsn


@pytest.fixture
def db(installed: str):
    """An autocommit connection to a database with the newest schema installed."""
    with psycopg.connect(installed, autocommit=True) as conn:
        yield conn


def pytest_terminal_summary(terminalreporter) -> None:
    """After the property-based tests: how many examples each function got (and how many raised)."""
    runner = sys.modules.get("gwtest.runner")
    lines = runner.summary_lines() if runner else []
    if lines:
        terminalreporter.write_sep("-", "hypothesis examples per function")
        for line in lines:
            terminalreporter.write_line(line)
