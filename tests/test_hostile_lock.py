"""Any role may take the installer's advisory lock; a changing command must not wait forever."""

from __future__ import annotations

import time

import psycopg
import pytest

from gwtest.db import dsn_for, role
from gwtest.procs import run_cli
from installer.cli import build_parser
from installer.core import ADVISORY_LOCK_KEY

HOLDER = "gw_locker"


@pytest.fixture
def holder(dsn):
    """A session of an unprivileged role holding the installer's advisory lock; yields its pid."""
    with psycopg.connect(dsn, autocommit=True) as admin, role(admin, HOLDER):
        with psycopg.connect(dsn_for(admin.info.dbname, HOLDER), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            yield conn.info.backend_pid


@pytest.mark.parametrize("command", [["migrate"], ["rollback", "--to", "0"], ["uninstall", "--yes"]])
def test_gives_up_and_names_the_holder(dsn, holder, command):
    started = time.monotonic()
    result = run_cli("--database", dsn, *command, "--lock-timeout", "1")
    elapsed = time.monotonic() - started
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(holder) in lines[0] and HOLDER in lines[0], lines[0]
    assert elapsed < 20
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regnamespace('graphile_worker') IS NULL").fetchone()[0]


def test_default_timeout_is_a_minute():
    for command in (["migrate"], ["rollback", "--to", "0"], ["uninstall"]):
        assert build_parser().parse_args(command).lock_timeout == 60
