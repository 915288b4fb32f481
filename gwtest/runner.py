"""Checking one call of an SQL function against the queue model (gwtest.model), on a real database.

load() writes a drawn state (gwtest.strategies.states) straight into the private tables: jobs waiting,
due, running, stale, permanently failed; locked and unlocked queues; keys, flags. run() then reads the
state back, asks the model for its prediction, makes the call, and checks:

* success: the returned rows and the new content of the three private tables must equal the model's
  prediction (timestamps set by now() are checked against the database clock read just before and
  after the call);
* error: the SQLSTATE must be one the model predicts for these arguments, it must be one of the
  documented codes, and the three private tables must be exactly as before.

run_add() does the same for add_job and add_jobs, whose new rows get ids nobody can know beforehand.
COUNTS, ERRORS and CODES count the examples per function; summary_lines() reports them.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

import psycopg

from .model import (
    DOCUMENTED,
    INT,
    SMALLINT,
    Fail,
    Now,
    add_jobs,
    copy_state,
    payload_value,
    spec_errors,
    ts_codes,
    ts_value,
)

COUNTS: Counter[str] = Counter()
ERRORS: Counter[str] = Counter()
CODES: defaultdict[str, Counter[str]] = defaultdict(Counter)


# -- writing and reading the private tables --


# Offsets (seconds from now) for timestamps in the initial state; far from the 4-hour edge.
STATE_TIMES = {"past": -3600.0, "future": 3600.0, "old": -5 * 3600.0, "inf": math.inf, "-inf": -math.inf}


def _ts_sql(name: str) -> str:
    if name == "inf":
        return "'infinity'::timestamptz"
    if name == "-inf":
        return "'-infinity'::timestamptz"
    return f"now() + interval '{STATE_TIMES[name]} seconds'"


JOB_COLS = (
    "id, job_queue_id, task_id, payload::text, priority, extract(epoch from run_at)::float8, attempts,"
    " max_attempts, last_error, key, extract(epoch from locked_at)::float8, locked_by, revision, flags::text,"
    " extract(epoch from created_at)::float8"
)
JOB_FIELDS = [
    "id",
    "job_queue_id",
    "task_id",
    "payload",
    "priority",
    "run_at",
    "attempts",
    "max_attempts",
    "last_error",
    "key",
    "locked_at",
    "locked_by",
    "revision",
    "flags",
    "created_at",
]
FETCHED_COLS = (
    "id, task_identifier, queue_name, payload::text, priority, extract(epoch from run_at)::float8, attempts,"
    " max_attempts, key, flags::text, extract(epoch from locked_at)::float8, locked_by, last_error, revision"
)
FETCHED_FIELDS = [
    "id",
    "task_identifier",
    "queue_name",
    "payload",
    "priority",
    "run_at",
    "attempts",
    "max_attempts",
    "key",
    "flags",
    "locked_at",
    "locked_by",
    "last_error",
    "revision",
]


def job_row(row) -> dict:
    job = dict(zip(JOB_FIELDS, row, strict=True))
    job["payload"] = json.loads(job["payload"])
    job["flags"] = None if job["flags"] is None else json.loads(job["flags"])
    return job


def clock(conn) -> float:
    return conn.execute("SELECT extract(epoch from clock_timestamp())::float8").fetchone()[0]


def raw_snapshot(conn) -> tuple:
    """Every column of the three private tables, as text, for the nothing-changed check."""
    return tuple(
        conn.execute(f"SELECT row_to_json(t)::text FROM graphile_worker.{table} AS t ORDER BY id").fetchall()
        for table in ("_private_jobs", "_private_tasks", "_private_job_queues")
    )


def read_state(conn) -> dict:
    jobs = {r[0]: job_row(r) for r in conn.execute(f"SELECT {JOB_COLS} FROM graphile_worker._private_jobs")}
    tasks = dict(conn.execute("SELECT id, identifier FROM graphile_worker._private_tasks").fetchall())
    queues = {
        r[0]: {"name": r[1], "locked_at": r[2], "locked_by": r[3]}
        for r in conn.execute(
            "SELECT id, queue_name, extract(epoch from locked_at)::float8, locked_by"
            " FROM graphile_worker._private_job_queues"
        )
    }
    return {"jobs": jobs, "tasks": tasks, "queues": queues}


def reset(conn) -> None:
    conn.execute(
        "DELETE FROM graphile_worker._private_jobs;"
        " DELETE FROM graphile_worker._private_job_queues;"
        " DELETE FROM graphile_worker._private_tasks"
    )


def load(conn, state: dict) -> dict:
    """Reset the tables, write the drawn state, return it as the model reads it."""
    reset(conn)
    task_ids = [
        conn.execute(
            "INSERT INTO graphile_worker._private_tasks (identifier) VALUES (%s) RETURNING id", [t]
        ).fetchone()[0]
        for t in state["tasks"]
    ]
    queue_ids = []
    for name, lock in zip(state["queues"], state["queue_locks"], strict=True):
        if lock is None:
            q = conn.execute(
                "INSERT INTO graphile_worker._private_job_queues (queue_name) VALUES (%s) RETURNING id", [name]
            )
        else:
            q = conn.execute(
                "INSERT INTO graphile_worker._private_job_queues (queue_name, locked_at, locked_by)"
                f" VALUES (%s, {_ts_sql(lock[1])}, %s) RETURNING id",
                [name, lock[0]],
            )
        queue_ids.append(q.fetchone()[0])
    for job in state["jobs"]:
        lock = job["lock"]
        conn.execute(
            "INSERT INTO graphile_worker._private_jobs (job_queue_id, task_id, payload, priority, run_at, attempts,"
            " max_attempts, key, flags, locked_at, locked_by, last_error) VALUES"
            f" (%s, %s, %s::json, %s, {_ts_sql(job['run_at'])}, %s, %s, %s,"
            " (SELECT jsonb_object_agg(f, true) FROM unnest(%s::text[]) AS f),"
            f" {_ts_sql(lock[1]) if lock else 'NULL'}, %s, %s)",
            [
                None if job["queue"] is None else queue_ids[job["queue"]],
                task_ids[job["task"]],
                job["payload"],
                job["priority"],
                job["attempts"],
                job["max_attempts"],
                job["key"],
                job["flags"],
                lock[0] if lock else None,
                job["last_error"],
            ],
        )
    return read_state(conn)


# -- comparing with the model --


def same(expected, actual, t0, t1) -> bool:
    if isinstance(expected, Now):
        return actual is not None and expected.check(actual, t0, t1)
    return expected == actual


def check_jobs(expected: dict, actual: dict, t0: float, t1: float, what: str) -> None:
    assert set(expected) == set(actual), f"{what}: job ids {sorted(expected)} expected, {sorted(actual)} found"
    for jid, exp in expected.items():
        act = actual[jid]
        for field, value in exp.items():
            if field in ("created_at",) and value is None:
                continue
            assert same(value, act[field], t0, t1), f"{what}: job {jid} {field}: expected {value!r}, got {act[field]!r}"


def check_state(expected: dict, after: dict, t0: float, t1: float) -> None:
    check_jobs(expected["jobs"], after["jobs"], t0, t1, "table")
    assert expected["tasks"] == after["tasks"], f"tasks: expected {expected['tasks']}, got {after['tasks']}"
    for qid in set(expected["queues"]) | set(after["queues"]):
        assert qid in expected["queues"] and qid in after["queues"], f"queue {qid} added or removed unexpectedly"
        for f in ("name", "locked_at", "locked_by"):
            assert same(expected["queues"][qid][f], after["queues"][qid][f], t0, t1), (
                f"queue {qid} {f}: expected {expected['queues'][qid][f]!r}, got {after['queues'][qid][f]!r}"
            )


def run(conn, name: str, sql: str, params, model, *, returns: str = "jobs") -> None:
    """Call the function, then check the outcome against model(state) -> (expected rows, expected state)."""
    COUNTS[name] += 1
    before = read_state(conn)
    raw = raw_snapshot(conn)
    try:
        prediction = model(before)
    except Fail as exc:
        prediction = exc
    t0 = clock(conn)
    try:
        rows = conn.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        ERRORS[name] += 1
        code = exc.sqlstate
        CODES[name][code] += 1
        assert code in DOCUMENTED, f"{name}: undocumented SQLSTATE {code}: {exc}"
        assert isinstance(prediction, Fail), f"{name}: model predicted success, got {code}: {exc}"
        assert code in prediction.codes, f"{name}: expected one of {prediction.codes}, got {code}: {exc}"
        assert raw_snapshot(conn) == raw, f"{name}: the tables changed although the call failed ({code})"
        return
    t1 = clock(conn)
    assert not isinstance(prediction, Fail), f"{name}: expected SQLSTATE {prediction.codes}, the call succeeded"
    expected_rows, expected_state = prediction
    after = read_state(conn)
    check_state(expected_state, after, t0, t1)
    if returns == "jobs":
        got = [job_row(r) for r in rows]
        assert [r["id"] for r in got] == [r["id"] for r in expected_rows] or sorted(r["id"] for r in got) == sorted(
            r["id"] for r in expected_rows
        ), f"{name}: returned ids {[r['id'] for r in got]}, expected {[r['id'] for r in expected_rows]}"
        check_jobs({r["id"]: r for r in expected_rows}, {r["id"]: r for r in got}, t0, t1, "returned")
    elif returns == "one_job":
        assert len(rows) == 1
        got = job_row(rows[0]) if rows[0][0] is not None else None
        if expected_rows is None:
            assert got is None, f"{name}: expected NULL, got {got}"
        else:
            assert got is not None, f"{name}: expected job {expected_rows['id']}, got NULL"
            check_jobs({got["id"]: expected_rows}, {got["id"]: got}, t0, t1, "returned")
    elif returns == "fetched":
        got = [dict(zip(FETCHED_FIELDS, r, strict=True)) for r in rows]
        assert [r["id"] for r in got] == [r["id"] for r in expected_rows], (
            f"{name}: fetched {[r['id'] for r in got]}, expected {[r['id'] for r in expected_rows]}"
        )
        for g, e in zip(got, expected_rows, strict=True):
            g["payload"] = json.loads(g["payload"])
            g["flags"] = None if g["flags"] is None else json.loads(g["flags"])
            for f, v in e.items():
                assert same(v, g[f], t0, t1), f"{name}: fetched job {e['id']} {f}: expected {v!r}, got {g[f]!r}"
    else:
        assert [tuple(r) for r in rows] == expected_rows, f"{name}: returned {rows}, expected {expected_rows}"


def run_add(conn, name: str, sql: str, params, specs: list, preserve: bool, unsafe_dedupe: bool = False):
    """Like run(), for add_job/add_jobs, whose new rows get ids and task/queue ids we cannot know beforehand."""
    COUNTS[name] += 1
    before = read_state(conn)
    raw = raw_snapshot(conn)
    prediction = None
    codes: set = set()
    try:
        for spec in specs:
            spec["payload"] = payload_value(spec["payload_text"])
    except Fail as exc:
        codes |= exc.codes
    for spec in specs:
        codes |= spec_errors(spec)
        codes |= ts_codes(spec["run_at_text"])
        for f in ("max_attempts", "priority"):
            v = spec[f]
            if v is not None and not (SMALLINT[0] <= v <= SMALLINT[1] if name == "add_jobs" else INT[0] <= v <= INT[1]):
                codes.add("22003")
    keys = [s["job_key"] for s in specs if s["job_key"] is not None]
    if len(keys) != len(set(keys)):
        codes.add("22023")
    if (
        name == "add_job"
        and params[-1] is not None
        and params[-1] not in ("replace", "preserve_run_at", "unsafe_dedupe")
    ):
        codes.add("GWBKM")
    t0 = clock(conn)
    try:
        rows = conn.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        ERRORS[name] += 1
        CODES[name][exc.sqlstate] += 1
        assert exc.sqlstate in DOCUMENTED | {"22007"}, f"{name}: undocumented SQLSTATE {exc.sqlstate}: {exc}"
        assert codes, f"{name}: model predicted success, got {exc.sqlstate}: {exc}"
        assert exc.sqlstate in codes, f"{name}: expected one of {codes}, got {exc.sqlstate}: {exc}"
        assert raw_snapshot(conn) == raw, f"{name}: the tables changed although the call failed"
        return
    t1 = clock(conn)
    assert not codes, f"{name}: expected SQLSTATE {codes}, the call succeeded with {len(rows)} rows"
    for spec in specs:
        spec["run_at"] = ts_value(spec["run_at_text"], t0)
    if unsafe_dedupe and any(j["key"] == specs[0]["job_key"] for j in before["jobs"].values()):
        old = next(j for j in before["jobs"].values() if j["key"] == specs[0]["job_key"])
        exp_rows = [dict(old, revision=old["revision"] + 1)]
        exp = copy_state(before)
        exp["jobs"][old["id"]] = exp_rows[0]
        new_tasks = {specs[0]["identifier"]} - set(before["tasks"].values())
        new_queues = {specs[0]["queue_name"]} - {q["name"] for q in before["queues"].values()} - {None}
        for t in new_tasks:
            exp["tasks"][("new", t)] = t
        for q in new_queues:
            exp["queues"][("new", q)] = {"name": q, "locked_at": None, "locked_by": None}
        prediction = (exp_rows, exp)
    else:
        prediction = add_jobs(before, specs, preserve, t0)
    exp_rows, exp = prediction
    after = read_state(conn)
    # Match new tasks and queues by name, new jobs by returned order.
    tasks_by_name = {v: k for k, v in after["tasks"].items()}
    assert sorted(exp["tasks"].values()) == sorted(after["tasks"].values()), (
        f"{name}: tasks {sorted(after['tasks'].values())}, expected {sorted(exp['tasks'].values())}"
    )
    queues_by_name = {v["name"]: k for k, v in after["queues"].items()}
    assert sorted(q["name"] for q in exp["queues"].values()) == sorted(queues_by_name), f"{name}: queues differ"
    for qid, q in exp["queues"].items():
        real = queues_by_name[q["name"]]
        assert isinstance(qid, tuple) or qid == real
        assert (after["queues"][real]["locked_at"], after["queues"][real]["locked_by"]) == (
            q["locked_at"],
            q["locked_by"],
        )
    got = [job_row(r) for r in rows]
    assert len(got) == len(exp_rows), f"{name}: returned {len(got)} rows, expected {len(exp_rows)}"
    new_jobs = {}
    for g, e in zip(got, exp_rows, strict=True):
        if isinstance(e["id"], tuple):
            assert g["id"] not in before["jobs"], f"{name}: expected a new job, got existing job {g['id']}"
            e = dict(e, id=g["id"])
        else:
            assert g["id"] == e["id"], f"{name}: expected job {e['id']} to be replaced, got job {g['id']}"
        e = dict(e)
        ident, qname = e.pop("task_identifier", None), e.pop("queue_name", None)
        if ident is not None:
            e["task_id"] = tasks_by_name[ident]
            e["job_queue_id"] = None if qname is None else queues_by_name[qname]
        new_jobs[e["id"]] = e
    check_jobs(new_jobs, {g["id"]: g for g in got}, t0, t1, f"{name} returned")
    expected_jobs = {k: v for k, v in exp["jobs"].items()}
    expected_jobs.update(new_jobs)
    check_jobs(expected_jobs, after["jobs"], t0, t1, f"{name} table")


def summary_lines() -> list[str]:
    """How many examples each function got, and how many of them raised which SQLSTATE."""
    return [
        f"  {name:30} {COUNTS[name]:5} examples, {ERRORS[name]:4} raised an error {dict(CODES[name])}"
        for name in sorted(COUNTS)
    ]
