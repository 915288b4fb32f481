"""The server stopped with pg_ctl -m immediate under load and started again: no job lost or duplicated.

An enqueuer process adds jobs, each with a unique token in its payload, and logs
each token before the add and once its commit returned. Two worker processes fetch
jobs and, in one transaction, complete each and record its token in crash_done;
they log each token once that commit returned. Meanwhile the test holds two open
transactions (jobs added, jobs completed by complete_jobs) that never commit. The
server is then stopped with an immediate shutdown (no checkpoint: crash recovery
from WAL at the next start) and started again with tools/pgserver.sh; clients
reconnect, a worker frees what it held with force_unlock_workers, and the load
goes on until every job is done. Then:

  - every job whose add the client saw commit was completed exactly once;
  - a job whose add failed at the crash exists at most once; none appears from nowhere;
  - every completion the client saw commit is recorded once, its job gone;
  - the uncommitted transactions left nothing: their jobs absent, the jobs they
    completed still there, untouched.

The test only runs against the server tools/pgserver.sh manages (data directory
$GW_BUILD/pgdata, else build/pgdata) and leaves it running.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from gwtest.db import PGHOST, managed_data_dir
from gwtest.procs import SPAWN, Group, as_owner, drain, pgserver, reporting

APP = "gw-server-crash-test"
WORKERS = 2
LOAD_BEFORE_S = 3.0
LOAD_AFTER_S = 3.0
DEADLINE_S = 60.0


def connect(dsn: str, deadline: float) -> psycopg.Connection:
    """Connect, retrying while the server is down or recovering."""
    while True:
        try:
            return psycopg.connect(dsn, autocommit=True, application_name=APP, connect_timeout=3)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def log_line(f, tag: str, token: str) -> None:
    f.write(f"{tag} {token}\n")
    f.flush()


def run_enqueuer(dsn: str, log_path: str, stop, errors) -> None:
    """Add jobs one per transaction: 'A token' before the add, 'C token' once its commit returned."""
    deadline = time.monotonic() + DEADLINE_S
    with reporting(errors, "enqueuer"), open(log_path, "w") as f:
        conn = connect(dsn, deadline)
        n = 0
        while not stop.is_set():
            n += 1
            token = f"t{n}"
            log_line(f, "A", token)
            try:
                with conn.transaction():
                    conn.execute(
                        "SELECT graphile_worker.add_job('crash', json_build_object('t', %s::text),"
                        " queue_name => %s, max_attempts => 5)",
                        [token, f"q{n % 4}" if n % 3 == 0 else None],
                    )
            except psycopg.Error:
                if not conn.broken:
                    raise
                log_line(f, "R", token)
                conn = connect(dsn, deadline)
                continue
            log_line(f, "C", token)
            time.sleep(0.003)
        conn.close()


def run_worker(dsn: str, worker_id: str, log_path: str, enqueue_done, errors) -> None:
    """Fetch and complete 'crash' jobs, recording each in crash_done in the completing transaction.

    'D token' once that commit returned. After a lost connection the worker
    reconnects and frees the jobs it held (force_unlock_workers), as a restarted
    worker would; they run again.
    """
    deadline = time.monotonic() + DEADLINE_S
    with reporting(errors, worker_id), open(log_path, "w") as f:
        conn = connect(dsn, deadline)
        while time.monotonic() < deadline:
            try:
                jobs = conn.execute(
                    "SELECT id, payload->>'t' FROM graphile_worker.fetch_jobs(%s, ARRAY['crash'], 5)", [worker_id]
                ).fetchall()
                if not jobs:
                    if (
                        enqueue_done.is_set()
                        and not conn.execute(
                            "SELECT EXISTS (SELECT 1 FROM graphile_worker.jobs WHERE task_identifier = 'crash')"
                        ).fetchone()[0]
                    ):
                        break
                    time.sleep(0.01)
                    continue
                for job_id, token in jobs:
                    with conn.transaction():
                        done = conn.execute(
                            "SELECT (graphile_worker.complete_job(%s, %s)).id", [worker_id, job_id]
                        ).fetchone()[0]
                        if done is None:
                            raise AssertionError(f"{worker_id} no longer holds job {job_id}")
                        conn.execute(
                            "INSERT INTO crash_done (token, job_id, worker) VALUES (%s, %s, %s)",
                            [token, job_id, worker_id],
                        )
                    log_line(f, "D", token)
            except psycopg.Error:
                if not conn.broken:
                    raise
                log_line(f, "R", worker_id)
                conn = connect(dsn, deadline)
                conn.execute("SELECT graphile_worker.force_unlock_workers(ARRAY[%s])", [worker_id])
        else:
            raise AssertionError(f"{worker_id}: jobs left after {DEADLINE_S} s")
        conn.close()


def read_log(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"A": [], "C": [], "D": [], "R": []}
    if path.exists():
        for line in path.read_text().splitlines():
            tag, _, value = line.partition(" ")
            out[tag].append(value)
    return out


def crash_and_restart(pgdata: Path) -> None:
    bindir = pgserver("bindir").stdout.strip()
    subprocess.run(
        as_owner([f"{bindir}/pg_ctl", "-D", str(pgdata), "-m", "immediate", "-w", "stop"], pgdata),
        cwd="/",
        check=True,
        capture_output=True,
        timeout=60,
    )
    pgserver("start")


def wait_until_accepting(dsn: str, timeout: float = 60.0) -> None:
    conn = connect(dsn, time.monotonic() + timeout)
    conn.close()


def test_immediate_server_stop_under_load_loses_and_duplicates_no_job(installed, tmp_path):
    pgdata = managed_data_dir()
    if PGHOST != "127.0.0.1" or pgdata is None:
        pytest.skip("needs the test server that tools/pgserver.sh runs on PGPORT")
    dsn = installed
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE crash_done (token text NOT NULL, job_id bigint NOT NULL, worker text NOT NULL)")
        held = [
            r[0]
            for r in conn.execute(
                "SELECT (graphile_worker.add_job('crash_held', json_build_object('h', n))).id"
                " FROM generate_series(1, 10) AS n"
            )
        ]
        held_before = conn.execute(
            "SELECT id, attempts, run_at, locked_at FROM graphile_worker._private_jobs WHERE id = ANY(%s) ORDER BY id",
            [held],
        ).fetchall()

    stop, enqueue_done, errors = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    enq_log = tmp_path / "enqueuer.log"
    worker_logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    group = Group()
    enqueuer = group.start(run_enqueuer, dsn, str(enq_log), stop, errors)
    workers = [
        group.start(run_worker, dsn, f"crash-worker-{n}", str(worker_logs[n]), enqueue_done, errors)
        for n in range(WORKERS)
    ]
    try:
        time.sleep(LOAD_BEFORE_S)
        # Two transactions in flight at the crash: jobs added, jobs completed; neither commits.
        adding = psycopg.connect(dsn)
        adding.execute(
            "SELECT graphile_worker.add_jobs(ARRAY(SELECT ROW('crash', json_build_object('t', 'open-' || n),"
            " NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec FROM generate_series(1, 20) AS n))"
        )
        completing = psycopg.connect(dsn)
        assert completing.execute("SELECT count(*) FROM graphile_worker.complete_jobs(%s)", [held]).fetchone()[0] == 10
        committed_before_crash = len(read_log(enq_log)["C"])
        try:
            crash_and_restart(pgdata)
        finally:
            # Whatever happened, leave the server running for the other tests.
            if pgserver("start", check=False).returncode != 0:
                pytest.fail("tools/pgserver.sh start failed after the immediate stop")
            wait_until_accepting(dsn)
        for c in (adding, completing):
            with pytest.raises(psycopg.OperationalError):
                c.execute("COMMIT")
            c.close()
        time.sleep(LOAD_AFTER_S)
    finally:
        stop.set()
        group.join(DEADLINE_S, [enqueuer])
        enqueue_done.set()
        group.join(DEADLINE_S, workers)
        group.kill()
    problems = drain(errors)
    assert not problems, "\n".join(problems)
    assert group.exitcodes() == [0] * (1 + WORKERS)

    enq = read_log(enq_log)
    attempted, committed = set(enq["A"]), set(enq["C"])
    seen_done = Counter(t for path in worker_logs for t in read_log(path)["D"])
    worker_reconnects = sum(len(read_log(path)["R"]) for path in worker_logs)
    assert committed_before_crash > 50, "too little load before the crash"
    assert len(committed) - committed_before_crash > 50, "too little load after the restart"
    assert enq["R"], "the enqueuer never saw the crash"
    assert worker_reconnects >= WORKERS, "the workers never saw the crash"

    with psycopg.connect(dsn, autocommit=True) as conn:
        done = Counter(dict(conn.execute("SELECT token, count(*) FROM crash_done GROUP BY token").fetchall()))
        present = Counter(
            dict(
                conn.execute(
                    "SELECT payload->>'t', count(*) FROM graphile_worker._private_jobs"
                    " WHERE payload->>'t' IS NOT NULL GROUP BY 1"
                ).fetchall()
            )
        )
        held_after = conn.execute(
            "SELECT id, attempts, run_at, locked_at FROM graphile_worker._private_jobs WHERE id = ANY(%s) ORDER BY id",
            [held],
        ).fetchall()
        locked = conn.execute(
            "SELECT count(*) FROM graphile_worker._private_jobs WHERE locked_at IS NOT NULL"
        ).fetchone()[0]
        locked_queues = conn.execute(
            "SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_at IS NOT NULL"
        ).fetchone()[0]

    # The uncommitted transactions left nothing behind.
    assert not [t for t in present if t.startswith("open-")], "jobs of an uncommitted add_jobs survived the crash"
    assert not [t for t in done if t.startswith("open-")]
    assert held_after == held_before, "jobs completed by an uncommitted complete_jobs changed"
    # The load drained: every job ran, nothing stays locked.
    assert not present, f"{len(present)} jobs never ran"
    assert locked == 0 and locked_queues == 0
    # Every committed add ran exactly once; an add whose commit failed ran at most once.
    lost = sorted(t for t in committed if done[t] == 0)
    assert not lost, f"{len(lost)} committed jobs lost, e.g. {lost[:5]}"
    twice = sorted(t for t, n in done.items() if n > 1)
    assert not twice, f"{len(twice)} jobs completed twice, e.g. {twice[:5]}"
    phantoms = sorted(set(done) - attempted)
    assert not phantoms, f"jobs nobody added: {phantoms[:5]}"
    # Every completion the worker saw commit is recorded, once, and its job is gone.
    assert all(done[t] == 1 for t in seen_done), "a completion the worker saw commit is not recorded"
    assert all(n == 1 for n in seen_done.values()), "a worker saw the same job complete twice"
