"""graphile-worker 0.18.0's own Node worker, CLI and WorkerUtils, unmodified, on this schema (version 9).

The Node side is tests/node/: worker.mjs runs run() with tasks that record each run in
public.node_runs, utils.mjs answers WorkerUtils calls one JSON line at a time, and cli/tasks/ is a
task directory for the graphile-worker CLI. Every assertion is on the database: which jobs ran
(node_runs), and what is left in the schema's tables. graphile-worker and pg come from the npm
prefix `make node` fills ($GW_BUILD/node); without them every test fails and says so.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from gwtest.db import BUILD, ROOT, role
from gwtest.timing import wait_until

from .conftest import dsn_for, run_cli

NODE_DIR = ROOT / "tests" / "node"
NODE_PREFIX = BUILD / "node"
GW_PACKAGE = NODE_PREFIX / "node_modules" / "graphile-worker" / "package.json"
GW_CLI = NODE_PREFIX / "node_modules" / ".bin" / "graphile-worker"
NODE = shutil.which("node")
MIGRATIONS = "SELECT id, ts, breaking FROM graphile_worker.migrations ORDER BY id"


@pytest.fixture(autouse=True)
def node_packages():
    """Fail (never skip) when Node or the npm packages are missing."""
    if NODE is None:
        pytest.fail("node is not on PATH; these tests need Node 20 and `make node` (make test runs it)")
    if not GW_PACKAGE.exists() or not (NODE_PREFIX / "node_modules" / "pg" / "package.json").exists():
        pytest.fail(f"graphile-worker or pg is not installed under {NODE_PREFIX}; run `make node` (make test does)")
    version = json.loads(GW_PACKAGE.read_text())["version"]
    assert version == "0.18.0", f"these tests are for graphile-worker 0.18.0, {NODE_PREFIX} has {version}"


@pytest.fixture
def runs_table(db):
    db.execute(
        "CREATE TABLE public.node_runs (job_id bigint, task text, payload json, attempt int,"
        " started_at timestamptz, finished_at timestamptz, worker text)"
    )


class Node:
    """A script of tests/node/ in a child process: JSON lines out, commands in; stderr kept for messages."""

    def __init__(self, script: str, options: dict, *, env: dict | None = None):
        self.proc = subprocess.Popen(
            [NODE, str(NODE_DIR / script), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "GW_NODE_PREFIX": str(NODE_PREFIX), **(env or {})},
        )
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append, False), daemon=True).start()

    @staticmethod
    def _pump(stream, sink, mark_end: bool) -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        if mark_end:
            sink(None)

    def describe(self) -> str:
        return "\n".join(self.stderr[-40:])

    def message(self, timeout: float = 20) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer from the Node process within {timeout} s:\n{self.describe()}") from None
        if line is None:
            rc = self.proc.wait(timeout=5)
            raise AssertionError(f"the Node process exited ({rc}) without answering:\n{self.describe()}")
        return json.loads(line)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def call(self, method: str, *args):
        """One WorkerUtils call through utils.mjs; returns its result, raises on its error."""
        answer = self.call_raw(method, *args)
        assert "result" in answer, f"{method} failed: {answer['error']}\n{self.describe()}"
        return answer["result"]

    def call_raw(self, method: str, *args) -> dict:
        self.send(json.dumps([method, *args]))
        return self.message()

    def close(self, timeout: float = 20) -> int:
        """Close stdin (the scripts stop on it) and wait for the exit code."""
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the Node process did not exit within {timeout} s:\n{self.describe()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def node_worker(dsn: str, tasks: dict[str, str], **options):
    """worker.mjs running run() (started: it printed ready); stopped cleanly when the block ends."""
    worker = Node("worker.mjs", {"connectionString": dsn, "tasks": tasks, **options})
    try:
        assert worker.message() == {"ready": True}, worker.describe()
        yield worker
        worker.send("stop")
        assert worker.message() == {"stopped": True}, worker.describe()
        assert worker.close() == 0, worker.describe()
    finally:
        worker.kill()


@contextmanager
def worker_utils(dsn: str):
    utils = Node("utils.mjs", {"connectionString": dsn})
    try:
        assert utils.message() == {"ready": True}, utils.describe()
        yield utils
        assert utils.close() == 0, utils.describe()
    finally:
        utils.kill()


def rows(db, query: str, params=()) -> list[dict]:
    return db.cursor(row_factory=dict_row).execute(query, params).fetchall()


def scalar(db, query: str, params=()):
    return db.execute(query, params).fetchone()[0]


def node_runs(db, task: str | None = None) -> list[dict]:
    return rows(db, "SELECT * FROM node_runs WHERE %s::text IS NULL OR task = %s ORDER BY started_at", [task, task])


def job(db, job_id: int) -> dict | None:
    found = rows(db, "SELECT * FROM graphile_worker._private_jobs WHERE id = %s", [job_id])
    return found[0] if found else None


def add_job(db, identifier: str, payload: dict | None = None, **named) -> int:
    """graphile_worker.add_job in SQL, named arguments as given; returns the job id."""
    args = "".join(f", {name} => %s" for name in named)
    return scalar(
        db,
        f"SELECT (graphile_worker.add_job(%s, %s::json{args})).id",
        [identifier, None if payload is None else json.dumps(payload), *named.values()],
    )


def job_with_names(db, job_id: int) -> dict | None:
    """A job's task identifier, queue name and payload (the jobs view, like graphile-worker's, shows no payload)."""
    found = rows(
        db,
        "SELECT t.identifier AS task_identifier, q.queue_name, j.payload FROM graphile_worker._private_jobs AS j"
        " JOIN graphile_worker._private_tasks AS t ON t.id = j.task_id"
        " LEFT JOIN graphile_worker._private_job_queues AS q ON q.id = j.job_queue_id WHERE j.id = %s",
        [job_id],
    )
    return found[0] if found else None


def wait_for(db, query: str, params=(), timeout: float = 15, what: str = "") -> None:
    """Until the query's single value is true."""
    assert wait_until(lambda: scalar(db, query, params), timeout), f"timed out after {timeout} s: {what or query}"


def wait_for_runs(db, count: int, timeout: float = 15, task: str | None = None) -> list[dict]:
    assert wait_until(lambda: len(node_runs(db, task)) >= count, timeout), (
        f"{len(node_runs(db, task))} runs of {task or 'any task'} after {timeout} s, expected {count}"
    )
    return node_runs(db, task)


def test_start_up_changes_nothing_and_verify_still_passes(db, installed, runs_table):
    before = db.execute(MIGRATIONS).fetchall()
    assert [r[0] for r in before] == list(range(1, 21))
    with node_worker(installed, {"t": "record"}):
        pass
    assert db.execute(MIGRATIONS).fetchall() == before
    verify = run_cli("--database", installed, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "schema matches the package" in verify.stdout


def test_jobs_added_in_sql_run_once_each_and_are_deleted(db, installed, runs_table):
    ids = [add_job(db, "t", {"n": n}, queue_name="q" if n % 3 == 0 else None) for n in range(20)]
    with node_worker(installed, {"t": "record"}, concurrency=4):
        wait_for_runs(db, 20)
        wait_for(db, "SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs)", what="jobs deleted")
        time.sleep(0.3)  # a second run of any job would show now
    runs = node_runs(db)
    assert sorted(r["job_id"] for r in runs) == ids
    assert {r["job_id"]: r["payload"] for r in runs} == {i: {"n": n} for n, i in enumerate(ids)}
    assert all(r["attempt"] == 1 for r in runs)
    assert scalar(db, "SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_by IS NOT NULL") == 0


def test_a_failing_task_is_retried_with_exponential_backoff(db, installed, runs_table):
    job_id = add_job(db, "boom", {}, max_attempts=5)
    with node_worker(installed, {"boom": "throw"}):
        first = wait_for_runs(db, 1)[0]
        wait_for(db, "SELECT last_error IS NOT NULL FROM graphile_worker._private_jobs WHERE id = %s", [job_id])
        after_first = job(db, job_id)
        second = wait_for_runs(db, 2, timeout=8)[1]
        wait_for(
            db, "SELECT attempts = 2 AND locked_by IS NULL FROM graphile_worker._private_jobs WHERE id = %s", [job_id]
        )
        after_second = job(db, job_id)
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert after_first["attempts"] == 1 and after_first["locked_by"] is None
    assert "boom failed on purpose" in after_first["last_error"]
    # The worker's failure update sets run_at = now() + e^attempts seconds, a few ms after the task started.
    first_delay = (after_first["run_at"] - first["started_at"]).total_seconds()
    assert math.e - 0.05 <= first_delay <= math.e + 1.0, first_delay
    assert second["started_at"] >= after_first["run_at"] - timedelta(milliseconds=50), "retried before its run_at"
    second_delay = (after_second["run_at"] - second["started_at"]).total_seconds()
    assert math.e**2 - 0.05 <= second_delay <= math.e**2 + 1.0, second_delay
    assert after_second["attempts"] == 2 and after_second["last_error"]


def test_a_job_out_of_attempts_stays_failed_and_is_not_run_again(db, installed, runs_table):
    job_id = add_job(db, "boom", {}, max_attempts=1)
    with node_worker(installed, {"boom": "throw"}):
        wait_for_runs(db, 1)
        wait_for(db, "SELECT last_error IS NOT NULL FROM graphile_worker._private_jobs WHERE id = %s", [job_id])
        # Due again at once: only attempts = max_attempts keeps the worker off it.
        db.execute("UPDATE graphile_worker._private_jobs SET run_at = now() WHERE id = %s", [job_id])
        time.sleep(1)
    failed = job(db, job_id)
    assert (failed["attempts"], failed["max_attempts"], failed["locked_by"]) == (1, 1, None)
    assert "boom failed on purpose" in failed["last_error"]
    assert len(node_runs(db)) == 1


def test_a_named_queue_runs_one_job_at_a_time_in_order(db, installed, runs_table):
    serial = [add_job(db, "slow", {"n": n}, queue_name="serial") for n in range(10)]
    free = [add_job(db, "slow", {"n": n}) for n in range(10, 20)]
    with node_worker(installed, {"slow": "slow"}, concurrency=4, sleepMs=50):
        wait_for_runs(db, 20, timeout=20)
    runs = node_runs(db)
    queued = [r for r in runs if r["job_id"] in serial]
    assert [r["job_id"] for r in queued] == serial, "the queue's jobs ran out of order"
    for earlier, later in pairwise(queued):
        assert later["started_at"] >= earlier["finished_at"], (earlier, later)
    unqueued = sorted((r for r in runs if r["job_id"] in free), key=lambda r: r["started_at"])
    assert len(unqueued) == 10
    assert any(b["started_at"] < a["finished_at"] for a, b in pairwise(unqueued)), "no concurrency at all"


def test_job_keys_replace_dedupe_and_preserve_run_at(db, installed, runs_table):
    add_job(db, "keyed", {"v": 1}, job_key="k-replace")
    add_job(db, "keyed", {"v": 2}, job_key="k-replace")
    add_job(db, "keyed", {"v": 3}, job_key="k-dedupe")
    add_job(db, "keyed", {"v": 4}, job_key="k-dedupe", job_key_mode="unsafe_dedupe")
    past, future = datetime.now(timezone.utc) - timedelta(minutes=1), datetime.now(timezone.utc) + timedelta(hours=1)
    add_job(db, "keyed", {"v": 5}, job_key="k-preserve", run_at=past)
    add_job(db, "keyed", {"v": 6}, job_key="k-preserve", run_at=future, job_key_mode="preserve_run_at")
    assert scalar(db, "SELECT count(*) FROM graphile_worker._private_jobs") == 3
    with node_worker(installed, {"keyed": "record"}):
        wait_for_runs(db, 3)
        wait_for(db, "SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs)", what="jobs deleted")
        time.sleep(0.3)
    assert sorted(r["payload"]["v"] for r in node_runs(db)) == [2, 3, 6]


def test_forbidden_flags_keep_a_job_off_the_worker(db, installed, runs_table):
    blocked = add_job(db, "flagged", {"n": 1}, flags=["blocked", "x"])
    other = add_job(db, "flagged", {"n": 2}, flags=["other"])
    plain = add_job(db, "flagged", {"n": 3})
    with node_worker(installed, {"flagged": "record"}, forbiddenFlags=["blocked"]):
        wait_for_runs(db, 2)
        wait_for(db, "SELECT count(*) = 1 FROM graphile_worker._private_jobs", what="the other jobs completed")
        time.sleep(0.5)
    assert sorted(r["job_id"] for r in node_runs(db)) == [other, plain]
    left = job(db, blocked)
    assert (left["attempts"], left["locked_by"]) == (0, None)


def test_cron_backfills_through_add_job_and_advances_last_execution(db, installed, runs_table):
    db.execute(
        "INSERT INTO graphile_worker._private_known_crontabs (identifier, known_since, last_execution)"
        " VALUES ('cron_task', now() - interval '10 minutes', now() - interval '3 minutes')"
    )
    last_before = scalar(db, "SELECT last_execution FROM graphile_worker._private_known_crontabs")
    with node_worker(installed, {"cron_task": "record"}, crontab="* * * * * cron_task ?fill=5m\n"):
        wait_for_runs(db, 3)
        wait_for(db, "SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs)", what="cron jobs deleted")
    runs = node_runs(db)
    backfilled = [r for r in runs if r["payload"]["_cron"]["backfilled"]]
    # Every minute since last_execution: 3, or 4 if the worker started on a minute boundary's far side.
    assert 3 <= len(backfilled) <= 4, runs
    stamps = sorted(datetime.fromisoformat(r["payload"]["_cron"]["ts"].replace("Z", "+00:00")) for r in backfilled)
    assert len(set(stamps)) == len(stamps) and stamps[0] > last_before
    assert all(s.second == 0 and s.microsecond == 0 for s in stamps)
    assert {r["task"] for r in runs} == {"cron_task"}
    last_after = scalar(db, "SELECT last_execution FROM graphile_worker._private_known_crontabs")
    assert last_after >= stamps[-1] > last_before


def test_every_worker_utils_method(db, installed):
    app = f"gw_utils_{uuid.uuid4().hex[:8]}"
    dsn = f"{installed}?application_name={app}"
    migrations = db.execute(MIGRATIONS).fetchall()
    run_at = "2030-01-02T03:04:05.000Z"
    with worker_utils(dsn) as utils:
        added = utils.call(
            "addJob",
            "u_task",
            {"a": 1},
            {"queueName": "uq", "runAt": run_at, "maxAttempts": 5, "jobKey": "uk", "priority": 3, "flags": ["f1"]},
        )
        a = int(added["id"])
        view = rows(db, "SELECT * FROM graphile_worker.jobs WHERE id = %s", [a])[0]
        assert (added["task_identifier"], added["payload"], added["key"]) == ("u_task", {"a": 1}, "uk")
        assert (view["task_identifier"], view["queue_name"], view["priority"], view["max_attempts"]) == (
            "u_task",
            "uq",
            3,
            5,
        )
        assert view["run_at"] == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc) and view["flags"] == {"f1": True}

        batch = utils.call("addJobs", [{"identifier": "u_task", "payload": {"b": 1}}, {"identifier": "u_other"}])
        b, c = (int(j["id"]) for j in batch)
        assert [j["task_identifier"] for j in batch] == ["u_task", "u_other"]
        assert [job_with_names(db, b), job_with_names(db, c)] == [
            {"task_identifier": "u_task", "queue_name": None, "payload": {"b": 1}},
            {"task_identifier": "u_other", "queue_name": None, "payload": {}},
        ]

        assert [int(j["id"]) for j in utils.call("completeJobs", [a])] == [a]
        assert job(db, a) is None

        failed = utils.call("permanentlyFailJobs", [b], "given up")
        assert [(int(j["id"]), j["last_error"]) for j in failed] == [(b, "given up")]
        assert job(db, b)["attempts"] == job(db, b)["max_attempts"] and job(db, b)["last_error"] == "given up"

        options = {"runAt": run_at, "priority": 7, "attempts": 2, "maxAttempts": 9}
        moved = utils.call("rescheduleJobs", [c], options)
        assert [(int(j["id"]), j["priority"], j["attempts"], j["max_attempts"]) for j in moved] == [(c, 7, 2, 9)]
        c_row = job(db, c)
        assert (c_row["priority"], c_row["attempts"], c_row["max_attempts"]) == (7, 2, 9)
        assert c_row["run_at"] == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

        # A job and its queue locked by worker id wk-x through our worker API, then unlocked.
        d = add_job(db, "u_lock", {}, queue_name="lockq")
        assert [r[0] for r in db.execute("SELECT id FROM graphile_worker.fetch_jobs('wk-x', ARRAY['u_lock'])")] == [d]
        assert utils.call("forceUnlockWorkers", ["wk-x"]) is None
        assert job(db, d)["locked_by"] is None
        assert (
            scalar(db, "SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'lockq'") is None
        )

        assert utils.call("cleanup", {"tasks": ["DELETE_PERMAFAILED_JOBS"]}) is None
        assert job(db, b) is None and job(db, c) is not None

        # Queue uq lost its only job (a); lockq still has d.
        assert utils.call("cleanup", {"tasks": ["GC_JOB_QUEUES"]}) is None
        assert [r[0] for r in db.execute("SELECT queue_name FROM graphile_worker._private_job_queues")] == ["lockq"]

        # u_task has no job left (a completed, b deleted); u_other has c, u_lock has d.
        add_job(db, "u_kept", {})
        db.execute(
            "DELETE FROM graphile_worker._private_jobs WHERE task_id = (SELECT id FROM"
            " graphile_worker._private_tasks WHERE identifier = 'u_kept')"
        )
        u_task_id = scalar(db, "SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'u_task'")
        assert utils.call("cleanup", {"tasks": ["GC_TASK_IDENTIFIERS"], "taskIdentifiersToKeep": ["u_kept"]}) is None
        assert [r[0] for r in db.execute("SELECT identifier FROM graphile_worker._private_tasks ORDER BY 1")] == [
            "u_kept",
            "u_lock",
            "u_other",
        ]
        assert db.execute("SELECT identifier, id FROM graphile_worker._private_retired_tasks").fetchall() == [
            ("u_task", u_task_id)
        ]

        assert utils.call("migrate") is None
        assert db.execute(MIGRATIONS).fetchall() == migrations

        assert utils.call(
            "withPgClient", "SELECT current_user AS who, count(*)::int AS n FROM graphile_worker.jobs"
        ) == [{"who": "postgres", "n": 2}]

        quick = utils.call("quickAddJob", "u_task", {"q": 1}, {"queueName": "quickq"})
        assert job_with_names(db, int(quick["id"])) == {
            "task_identifier": "u_task",
            "queue_name": "quickq",
            "payload": {"q": 1},
        }
        # u_task came back with its old id.
        assert scalar(db, "SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'u_task'") == u_task_id

        connections = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        assert scalar(db, connections, [app]) >= 1
        assert utils.call("release") is None
        wait_for(
            db,
            "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = %s",
            [app],
            timeout=5,
            what="release() closed the pool's connections",
        )
        assert "error" in utils.call_raw("withPgClient", "SELECT 1"), "WorkerUtils still usable after release()"


def test_the_cli_runs_jobs_added_in_sql(db, installed, runs_table):
    ids = [add_job(db, "cli_task", {"n": n}) for n in range(3)]
    other = add_job(db, "not_a_cli_task", {})
    done = subprocess.run(
        [NODE, str(GW_CLI), "-c", installed, "--once", "--poll-interval", "100"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=NODE_DIR / "cli",  # the CLI loads ./tasks/
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = node_runs(db)
    assert sorted(r["job_id"] for r in runs) == ids and {r["worker"] for r in runs} == {"cli"}
    assert [r[0] for r in db.execute("SELECT id FROM graphile_worker._private_jobs")] == [other]
    assert job(db, other)["attempts"] == 0


def sql_worker(dsn: str, stop: threading.Event, failures: list) -> None:
    """Our worker API in a loop: complete the last batch and fetch the next in one call, record each run."""
    worker_id = f"sql-{uuid.uuid4()}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            held: list[int] = []
            while True:
                fetched = conn.execute(
                    "SELECT id, task_identifier, payload, attempts"
                    " FROM graphile_worker.complete_and_fetch_jobs(%s, %s, ARRAY['mix'], 5)",
                    [worker_id, held],
                ).fetchall()
                held = [f[0] for f in fetched]
                if fetched:
                    conn.execute(
                        "INSERT INTO node_runs (job_id, task, payload, attempt, started_at, finished_at, worker)"
                        " SELECT id, t, p, a, clock_timestamp(), clock_timestamp(), 'sql'"
                        " FROM unnest(%s::bigint[], %s::text[], %s::json[], %s::int[]) AS u(id, t, p, a)",
                        [held, [f[1] for f in fetched], [json.dumps(f[2]) for f in fetched], [f[3] for f in fetched]],
                    )
                elif stop.is_set():
                    return
                else:
                    time.sleep(0.01)
    except BaseException as e:
        failures.append(e)


def test_a_node_worker_and_a_sql_worker_drain_one_table_together(db, installed, runs_table):
    total = 1500
    ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM graphile_worker.add_jobs(ARRAY(SELECT ROW('mix', json_build_object('i', i),"
            " CASE WHEN i %% 4 = 0 THEN 'mq' || (i %% 10) END, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec"
            " FROM generate_series(1, %s) AS i))",
            [total],
        )
    ]
    stop, failures = threading.Event(), []
    sql = threading.Thread(target=sql_worker, args=(installed, stop, failures))
    with node_worker(installed, {"mix": "record"}, concurrency=8):
        sql.start()
        try:
            wait_for(
                db,
                "SELECT count(*) >= %s AND NOT EXISTS (SELECT FROM graphile_worker._private_jobs) FROM node_runs",
                [total],
                timeout=45,
                what="the two workers drained the jobs",
            )
        finally:
            stop.set()
            sql.join(timeout=15)
    assert not sql.is_alive() and not failures, failures
    runs = node_runs(db)
    assert sorted(r["job_id"] for r in runs) == sorted(ids), "a job ran twice, or never"
    by_worker = {w: sum(1 for r in runs if r["worker"] == w) for w in ("node", "sql")}
    assert by_worker["node"] > 0 and by_worker["sql"] > 0, by_worker
    assert scalar(db, "SELECT count(*) FROM graphile_worker._private_jobs") == 0
    assert scalar(db, "SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_by IS NOT NULL") == 0


@pytest.mark.parametrize("cleanup_by", ["sql", "worker_utils"])
def test_a_running_node_worker_survives_gc_task_identifiers(db, installed, runs_table, cleanup_by):
    with node_worker(installed, {"t_gc": "record"}):
        # The worker registers its task identifiers (and caches their ids) when it starts.
        wait_for(db, "SELECT EXISTS (SELECT FROM graphile_worker._private_tasks WHERE identifier = 't_gc')")
        task_id = scalar(db, "SELECT id FROM graphile_worker._private_tasks WHERE identifier = 't_gc'")
        if cleanup_by == "sql":
            assert db.execute("SELECT * FROM graphile_worker.cleanup('{GC_TASK_IDENTIFIERS}')").fetchall() == [
                ("GC_TASK_IDENTIFIERS", 1)
            ]
        else:
            with worker_utils(installed) as utils:
                assert utils.call("cleanup", {"tasks": ["GC_TASK_IDENTIFIERS"]}) is None
        assert scalar(db, "SELECT count(*) FROM graphile_worker._private_tasks") == 0, "cleanup deleted nothing"
        job_id = add_job(db, "t_gc", {"after": "cleanup"})
        assert job(db, job_id)["task_id"] == task_id, "t_gc got a new id; the worker fetches by the id it cached"
        runs = wait_for_runs(db, 1, timeout=5)
        wait_for(db, "SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs)", what="the job completed")
    assert [(r["job_id"], r["payload"]) for r in runs] == [(job_id, {"after": "cleanup"})]


def test_a_node_worker_as_a_role_with_the_graphile_worker_set(db, installed, runs_table):
    dbname = installed.rsplit("/", 1)[1]
    suffix = uuid.uuid4().hex[:8]
    with role(db, f"gwn_worker_{suffix}") as worker_role, role(db, f"gwn_nothing_{suffix}") as no_set:
        granted = run_cli("--database", installed, "grant", "--graphile-worker", worker_role)
        assert granted.returncode == 0, granted.stdout + granted.stderr
        db.execute(f"GRANT INSERT, SELECT ON public.node_runs TO {worker_role}, {no_set}")

        ok = [add_job(db, "t_role", {"n": n}, queue_name="rq" if n % 2 else None) for n in range(4)]
        bad = add_job(db, "t_role_fail", {}, max_attempts=1)
        tasks = {"t_role": "record", "t_role_fail": "throw"}
        with node_worker(dsn_for(dbname, worker_role), tasks, concurrency=2, crontab="0 0 1 1 * t_role\n"):
            wait_for_runs(db, 5)
            wait_for(
                db,
                "SELECT array_agg(id) = ARRAY[%s]::bigint[] AND bool_and(locked_by IS NULL)"
                " FROM graphile_worker._private_jobs",
                [bad],
                what="t_role jobs completed and t_role_fail failed",
            )
        assert sorted(r["job_id"] for r in node_runs(db, "t_role")) == ok
        failed = job(db, bad)
        assert failed["attempts"] == 1 and "failed on purpose" in failed["last_error"]
        assert scalar(db, "SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_by IS NOT NULL") == 0
        # The cron scheduler registered its item (table privileges on _private_known_crontabs).
        assert scalar(db, "SELECT identifier FROM graphile_worker._private_known_crontabs") == "t_role"

        with psycopg.connect(dsn_for(dbname, worker_role), autocommit=True) as conn:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(
                    "INSERT INTO graphile_worker._private_jobs (task_id, payload)"
                    " SELECT id, '{}' FROM graphile_worker._private_tasks LIMIT 1"
                )
        assert scalar(db, "SELECT count(*) FROM graphile_worker._private_jobs") == 1

        # A role with no set: run() fails at start-up with 42501 instead of running without seeing jobs.
        waiting = add_job(db, "t_role", {"n": 99})
        refused = Node("worker.mjs", {"connectionString": dsn_for(dbname, no_set), "tasks": tasks})
        try:
            answer = refused.message(timeout=20)
            assert answer.get("error", {}).get("code") == "42501", (answer, refused.describe())
            assert refused.proc.wait(timeout=10) == 3
        finally:
            refused.kill()
        assert (job(db, waiting)["attempts"], job(db, waiting)["locked_by"]) == (0, None)
        assert len(node_runs(db)) == 5
