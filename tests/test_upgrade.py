"""Upgrades: from every released schema version, migrating to the newest is a fresh install, data and grants kept."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import psycopg
import pytest
from yoyo import read_migrations

from installer.cli import main
from installer.core import Installer, shipped_migrations
from tools.schema_tools import dump, normalise

from .test_released import ROOT, release

VERSIONS = [m.version for m in shipped_migrations()]
# Every released version older than the newest shipped one is a starting point.
RELEASED_VERSIONS = sorted({v for v, _, _ in release.recorded() if v < VERSIONS[-1]})

LOAD = """
SELECT graphile_worker.add_job('up_plain', '{"n": 1}');
SELECT graphile_worker.add_job('up_keyed', '[1]', job_key => 'up-key', priority => 4, flags => ARRAY['f']);
SELECT graphile_worker.add_job('up_queued', queue_name => 'up-q', run_at => '2040-01-01 00:00+00');
SELECT graphile_worker.add_job('up_locked', queue_name => 'up-q2');
UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'up-worker'
  WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'up_locked');
UPDATE graphile_worker._private_job_queues SET locked_at = now(), locked_by = 'up-worker' WHERE queue_name = 'up-q2';
SELECT graphile_worker.add_job('up_failed', max_attempts => 1);
UPDATE graphile_worker._private_jobs SET attempts = 1, last_error = 'gave up'
  WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'up_failed');
"""

SNAPSHOT = """
SELECT j.id, t.identifier, q.queue_name, j.payload::text, j.priority, j.run_at, j.attempts, j.max_attempts,
       j.last_error, j.key, j.locked_at, j.locked_by, j.revision, j.flags, jq.locked_by AS queue_locked_by
FROM graphile_worker._private_jobs j
JOIN graphile_worker._private_tasks t ON t.id = j.task_id
LEFT JOIN graphile_worker._private_job_queues q ON q.id = j.job_queue_id
LEFT JOIN graphile_worker._private_job_queues jq ON jq.id = j.job_queue_id
ORDER BY j.id
"""


def full_dump(dsn: str) -> str:
    return normalise(dump(dsn, privileges=True))


@pytest.fixture
def grantee(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS gw_up_worker")
        conn.execute("CREATE ROLE gw_up_worker")
    yield "gw_up_worker"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP OWNED BY gw_up_worker")
        conn.execute("DROP ROLE gw_up_worker")


def install_released(dsn: str, version: int, into: Path) -> None:
    """Install version `version` from the files as extension/RELEASED records them.

    Not a rollback of today's files: each file is checked against its recorded
    digest and copied aside, and only those copies are applied, so the starting
    point is what was released, whatever happens to the working tree.
    """
    rows = [(v, sha, path) for v, sha, path in release.recorded() if v <= version]
    assert {v for v, _, _ in rows} == set(range(1, version + 1)), f"version {version} is not fully recorded"
    into.mkdir()
    for _, sha, path in rows:
        source = ROOT / path
        assert hashlib.sha256(source.read_bytes()).hexdigest() == sha, f"{path} differs from its release"
        shutil.copy(source, into / source.name)
    inst = Installer(dsn)
    try:
        inst.migrations = read_migrations(str(into))
        inst.migrate()
    finally:
        inst.close()


@pytest.mark.parametrize("start", RELEASED_VERSIONS)
def test_upgrade_from_each_released_version_equals_fresh_install(dsn, grantee, start, tmp_path):
    install_released(dsn, start, tmp_path / "released")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == start
        conn.execute(LOAD)
        before = conn.execute(SNAPSHOT).fetchall()
    assert main(["--database", dsn, "grant", "--worker", grantee, "--admin", grantee]) == 0

    assert main(["--database", dsn, "migrate"]) == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute(SNAPSHOT).fetchall() == before, "jobs, queues and locks survive the upgrade"
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] == VERSIONS[-1]
    upgraded = full_dump(dsn)

    # A fresh install with the same grants, in a database of its own.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS gw_fresh")
        conn.execute("CREATE DATABASE gw_fresh")
    fresh_dsn = dsn.rsplit("/", 1)[0] + "/gw_fresh"
    try:
        assert main(["--database", fresh_dsn, "migrate"]) == 0
        assert main(["--database", fresh_dsn, "grant", "--worker", grantee, "--admin", grantee]) == 0
        assert upgraded == full_dump(fresh_dsn)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE gw_fresh WITH (FORCE)")
