"""Property-based tests (hypothesis): every public function under hostile and broken input.

Each example builds a random queue state straight into the private tables (jobs waiting,
due, running, stale, permanently failed; locked and unlocked queues; keys, flags), then
calls one function with random and extreme arguments: NULLs inside arrays, ids that do not
exist, negative and overflowing numbers, +-infinity timestamps, empty, 10,000-character,
unicode, quoted, backslashed and control-character strings. A small Python model of the
queue predicts the outcome from the state read before the call:

* success: the returned rows and the new content of the three private tables must equal
  the model's prediction (timestamps set by now() are checked against the database clock
  read just before and after the call);
* error: the SQLSTATE must be one the model predicts for these arguments, it must be one
  of the documented codes, and the three private tables must be exactly as before.

A few examples per function use 100,000-element arrays. The number of examples run per
function is printed by the last test of this file (run pytest with -s to see it).

The CLI gets the same treatment: random argv and random or garbled DSNs (with passwords)
through installer.cli.main, in process.
"""

from __future__ import annotations

import json
import math
import os
import string
from collections import Counter, defaultdict

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from installer import cli

COUNTS: Counter[str] = Counter()
ERRORS: Counter[str] = Counter()
CODES: defaultdict[str, Counter[str]] = defaultdict(Counter)

# SQLSTATEs the schema documents (RAISE ... ERRCODE in extension/migrations) and the natural
# ones bad arguments produce: invalid text representation (22P02), check violation (23514),
# numeric out of range (22003), null value not allowed (22004), invalid parameter (22023),
# datetime out of range (22008), bad job_key_mode (GWBKM), invalid transaction state (25000).
DOCUMENTED = {"22P02", "23514", "22003", "22004", "22023", "22007", "22008", "GWBKM", "25000"}

SMALLINT = (-32768, 32767)
INT = (-(2**31), 2**31 - 1)
BIGINT = (-(2**63), 2**63 - 1)
FOUR_HOURS = 4 * 3600.0
BIG = 100_000

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    # CI replays the same examples every run; a developer's run explores new ones.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
BIG_SETTINGS = settings(SETTINGS, max_examples=2)

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
NASTY = [
    "",
    "'",
    '"',
    "\\",
    "''",
    "\\'",
    "'; DROP TABLE graphile_worker._private_jobs; --",
    "%s %I %L",
    "\t\n\r\x01\x07\x1b\x1f\x7f",
    "é",
    "日本語キュー",
    "🙂👍🏽",
    "\u202e\u200b",
    "{a,b}",
    "NULL",
    "a" * 128,
    "b" * 129,
    "c" * 512,
    "d" * 513,
    "w" * 256,
    "w" * 257,
    "x" * 10_000,
]
hostile_text = st.one_of(st.text(_chars, max_size=12), st.sampled_from(NASTY))
maybe_text = st.one_of(hostile_text, st.none())


def ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Integers around and far beyond a range: the edges, just outside, and beyond bigint."""
    valid = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]))
    return st.one_of(
        valid,
        valid,
        valid,
        valid,
        valid,
        st.sampled_from([lo - 1, hi + 1, 0, -1, 1]),
        st.sampled_from([*SMALLINT, *INT, *BIGINT, INT[0] - 1, INT[1] + 1, BIGINT[0] - 1, BIGINT[1] + 1, 10**30]),
        st.integers(-(2**70), 2**70),
    )


maybe_int = lambda lo, hi: st.one_of(ints(lo, hi), st.none())  # noqa: E731
TIMESTAMPS = ["infinity", "-infinity", "2000-01-01 00:00:00+00", "now", "epoch"]
OUT_OF_RANGE_TS = ["4715-01-01 BC", "294277-01-01"]
GARBAGE_TS = ["", "not a time", "2024-13-45", "yesterday'", "9999999-01-01"]
maybe_ts = st.one_of(
    st.none(),
    st.sampled_from(TIMESTAMPS),
    st.sampled_from(TIMESTAMPS),
    st.sampled_from(TIMESTAMPS),
    st.sampled_from(OUT_OF_RANGE_TS + GARBAGE_TS),
)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(_chars, max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(_chars, max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
payloads = st.one_of(
    st.none(),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.lists(json_values, max_size=3).map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.sampled_from(["", "{", "not json", "{'a': 1}", "[1,]"]),
)

# Offsets (seconds from now) for timestamps in the initial state; far from the 4-hour edge.
STATE_TIMES = {"past": -3600.0, "future": 3600.0, "old": -5 * 3600.0, "inf": math.inf, "-inf": -math.inf}


def _ts_sql(name: str) -> str:
    if name == "inf":
        return "'infinity'::timestamptz"
    if name == "-inf":
        return "'-infinity'::timestamptz"
    return f"now() + interval '{STATE_TIMES[name]} seconds'"


@st.composite
def states(draw):
    tasks = draw(st.lists(hostile_text.filter(lambda s: len(s) <= 128), min_size=1, max_size=4, unique=True))
    queues = draw(st.lists(hostile_text.filter(lambda s: len(s) <= 128), max_size=3, unique=True))
    workers = draw(st.lists(hostile_text.filter(bool), min_size=1, max_size=3, unique=True))
    lock_ages = st.sampled_from(["past", "old", "inf", "-inf"])
    queue_locks = [
        draw(st.one_of(st.none(), st.tuples(st.sampled_from(workers), lock_ages, st.booleans()))) for _ in queues
    ]
    jobs = []
    keys_used = set()
    for _ in range(draw(st.integers(0, 8))):
        max_attempts = draw(st.sampled_from([1, 2, 25, 32767]))
        key = draw(st.one_of(st.none(), hostile_text.filter(lambda s: 0 < len(s) <= 512)))
        if key in keys_used:
            key = None
        keys_used.add(key)
        jobs.append(
            {
                "task": draw(st.integers(0, len(tasks) - 1)),
                "queue": draw(st.one_of(st.none(), st.integers(0, len(queues) - 1))) if queues else None,
                "priority": draw(st.sampled_from([0, 0, 1, -5, *SMALLINT])),
                "run_at": draw(st.sampled_from(["past", "past", "future", "inf", "-inf"])),
                "attempts": draw(st.sampled_from([0, 0, 1, max_attempts - 1, max_attempts])),
                "max_attempts": max_attempts,
                "key": key,
                "flags": draw(st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "'q", "é"]), max_size=2))),
                "lock": draw(st.one_of(st.none(), st.none(), st.tuples(st.sampled_from(workers), lock_ages))),
                "payload": draw(json_values.map(lambda v: json.dumps(v, ensure_ascii=False))),
                "last_error": draw(maybe_text),
            }
        )
    return {"tasks": tasks, "queues": queues, "queue_locks": queue_locks, "workers": workers, "jobs": jobs}


# ---------------------------------------------------------------------------
# Database helpers
# ---------------------------------------------------------------------------

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


class Now:
    """A timestamp set by now() during the call: between the clock read before and after it."""

    def __init__(self, offset: float = 0.0, base: float | None = None):
        self.offset, self.base = offset, base

    def check(self, value: float, t0: float, t1: float) -> bool:
        lo = max(t0, self.base) if self.base is not None else t0
        hi = max(t1, self.base) if self.base is not None else t1
        if math.isinf(lo):
            return value == lo
        return lo + self.offset - 0.01 <= value <= hi + self.offset + 0.01


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


class Fail(Exception):
    """The model's prediction that the call raises one of these SQLSTATEs."""

    def __init__(self, *codes: str):
        super().__init__(codes)
        self.codes = set(codes)


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


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


def copy_state(s: dict) -> dict:
    return {
        "jobs": {k: dict(v) for k, v in s["jobs"].items()},
        "tasks": dict(s["tasks"]),
        "queues": {k: dict(v) for k, v in s["queues"].items()},
    }


def now_estimate() -> float:
    import time

    return time.time()


def is_unlocked(locked_at, now: float) -> bool:
    """THE lock rule: never locked, or locked more than 4 hours ago."""
    return locked_at is None or locked_at < now - FOUR_HOURS


def available(job) -> bool:
    return job["locked_at"] is None and job["attempts"] < job["max_attempts"]


def in_range(v, lo, hi) -> bool:
    return v is None or lo <= v <= hi


def check_ids(ids, lo=BIGINT[0], hi=BIGINT[1]) -> None:
    if ids is not None and any(i is not None and not lo <= i <= hi for i in ids):
        raise Fail("22003")


def check_param(v, lo, hi) -> None:
    if v is not None and not lo <= v <= hi:
        raise Fail("22003")


def check_worker(worker) -> None:
    if worker is None:
        raise Fail("22004")
    if not 1 <= len(worker) <= 256:
        raise Fail("22023")


def wanted(ids) -> set:
    return {i for i in ids or [] if i is not None}


def ts_codes(value) -> set:
    """SQLSTATEs of casting this text to timestamptz."""
    if value in OUT_OF_RANGE_TS:
        return {"22008"}
    if value in GARBAGE_TS:
        return {"22007", "22008"}
    return set()


def ts_value(value, now: float):
    if value is None:
        return None
    return {
        "infinity": math.inf,
        "-infinity": -math.inf,
        "2000-01-01 00:00:00+00": 946684800.0,
        "epoch": 0.0,
        "now": Now(),
    }[value]


def payload_value(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise Fail("22P02") from None


# ---------------------------------------------------------------------------
# Enqueue: add_job, add_jobs, remove_job
# ---------------------------------------------------------------------------


def spec_errors(spec) -> set:
    codes = set()
    ident, queue, max_attempts, key, priority = (
        spec["identifier"],
        spec["queue_name"],
        spec["max_attempts"],
        spec["job_key"],
        spec["priority"],
    )
    if ident is None:
        codes.add("22004")
    elif not 1 <= len(ident) <= 128:
        codes.add("22023")
    if queue is not None and not 1 <= len(queue) <= 128:
        codes.add("22023")
    if key is not None and not 1 <= len(key) <= 512:
        codes.add("22023")
    if max_attempts is not None and not 1 <= max_attempts <= 32767:
        codes.add("22003")
    if priority is not None and not SMALLINT[0] <= priority <= SMALLINT[1]:
        codes.add("22003")
    if spec.get("payload_text") is not None and len(spec["payload_text"].encode()) > 1048576:
        codes.add("22023")
    flags = spec["flags"]
    if flags is not None:
        if len(flags) > 64 or any(f is not None and not 1 <= len(f) <= 128 for f in flags):
            codes.add("22023")
        if None in flags:
            codes.add("22004")
    return codes


def model_add(s: dict, specs: list, preserve: bool, now: float) -> tuple[list, dict]:
    """add_jobs on the state s (already validated)."""
    e = copy_state(s)
    for spec in specs:
        if spec["identifier"] not in e["tasks"].values():
            e["tasks"][("new", spec["identifier"])] = spec["identifier"]
        if spec["queue_name"] is not None and spec["queue_name"] not in [q["name"] for q in e["queues"].values()]:
            e["queues"][("new", spec["queue_name"])] = {
                "name": spec["queue_name"],
                "locked_at": None,
                "locked_by": None,
            }
    by_key = {j["key"]: j for j in e["jobs"].values() if j["key"] is not None}
    for spec in specs:
        old = by_key.get(spec["job_key"])
        if old is not None and not available(old):
            old["key"] = None
            old["attempts"] = old["max_attempts"]
            del by_key[spec["job_key"]]
    rows = []
    for spec in specs:
        fields = {
            "task_identifier": spec["identifier"],
            "queue_name": spec["queue_name"],
            # JSON null is a payload like any other; only SQL NULL takes the default {}.
            "payload": {} if spec["payload_text"] is None else spec["payload"],
            "run_at": Now() if spec["run_at"] is None else spec["run_at"],
            "max_attempts": 25 if spec["max_attempts"] is None else spec["max_attempts"],
            "priority": 0 if spec["priority"] is None else spec["priority"],
            "flags": None if not spec["flags"] else dict.fromkeys(spec["flags"], True),
        }
        old = by_key.get(spec["job_key"])
        if old is not None:
            if isinstance(old["payload"], list) and isinstance(fields["payload"], list):
                fields["payload"] = old["payload"] + fields["payload"]
            if preserve and old["attempts"] == 0:
                fields["run_at"] = old["run_at"]
            old.update(fields, revision=old["revision"] + 1, attempts=0, last_error=None)
            rows.append(old)
        else:
            job = dict(fields, id=("new", len(rows)), key=spec["job_key"], attempts=0, last_error=None, locked_at=None)
            job.update(locked_by=None, revision=0, created_at=Now())
            rows.append(job)
    return rows, e


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
        prediction = model_add(before, specs, preserve, t0)
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


def spec_strategy():
    return st.fixed_dictionaries(
        {
            "identifier": st.one_of(hostile_text, hostile_text, hostile_text, st.none()),
            "payload_text": payloads,
            "queue_name": st.one_of(st.none(), hostile_text),
            "run_at_text": maybe_ts,
            "max_attempts": st.one_of(st.none(), st.none(), ints(*SMALLINT)),
            "job_key": st.one_of(st.none(), hostile_text),
            "priority": st.one_of(st.none(), st.none(), ints(*SMALLINT)),
            "flags": st.one_of(st.none(), st.lists(st.one_of(st.none(), hostile_text), max_size=3)),
        }
    )


def spec_with_existing(data, state, spec):
    """Often reuse a name or key of the state, so that replacing and sharing are exercised."""
    if state["tasks"] and data.draw(st.booleans()):
        spec["identifier"] = data.draw(st.sampled_from(sorted(state["tasks"].values())))
    if state["queues"] and data.draw(st.booleans()):
        spec["queue_name"] = data.draw(st.sampled_from(sorted(q["name"] for q in state["queues"].values())))
    keys = sorted(j["key"] for j in state["jobs"].values() if j["key"] is not None)
    if keys and data.draw(st.booleans()):
        spec["job_key"] = data.draw(st.sampled_from(keys))
    return spec


@pytest.fixture
def conn(installed):
    with psycopg.connect(installed, autocommit=True) as c:
        yield c


@SETTINGS
@given(data=st.data())
def test_add_job(conn, data):
    state = load(conn, data.draw(states()))
    spec = spec_with_existing(data, state, data.draw(spec_strategy()))
    modes = st.sampled_from(["replace", "preserve_run_at", "unsafe_dedupe"])
    mode = data.draw(st.one_of(st.none(), modes, modes, modes, hostile_text))
    params = [
        spec["identifier"],
        spec["payload_text"],
        spec["queue_name"],
        spec["run_at_text"],
        spec["max_attempts"],
        spec["job_key"],
        spec["priority"],
        spec["flags"],
        mode,
    ]
    sql = (
        f"SELECT {JOB_COLS} FROM graphile_worker.add_job(%s::text, %s::json, %s::text, %s::timestamptz,"
        " %s::integer, %s::text, %s::integer, %s::text[], %s::text)"
    )
    unsafe = mode == "unsafe_dedupe" and spec["job_key"] is not None
    run_add(conn, "add_job", sql, params, [spec], mode == "preserve_run_at", unsafe_dedupe=unsafe)


ADD_JOBS_SQL = (
    f"SELECT {JOB_COLS} FROM graphile_worker.add_jobs(ARRAY("
    " SELECT ROW(i, p::json, q, r::timestamptz, m::smallint, k, pr::smallint,"
    "   CASE WHEN f IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(f::jsonb)) END"
    " )::graphile_worker.job_spec"
    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::numeric[], %s::text[], %s::numeric[], %s::text[])"
    "   WITH ORDINALITY AS u(i, p, q, r, m, k, pr, f, n) ORDER BY n), %s::boolean)"
)


def add_jobs_params(specs, preserve):
    return [
        [s["identifier"] for s in specs],
        [s["payload_text"] for s in specs],
        [s["queue_name"] for s in specs],
        [s["run_at_text"] for s in specs],
        [s["max_attempts"] for s in specs],
        [s["job_key"] for s in specs],
        [s["priority"] for s in specs],
        [None if s["flags"] is None else json.dumps(s["flags"]) for s in specs],
        preserve,
    ]


@SETTINGS
@given(data=st.data())
def test_add_jobs(conn, data):
    state = load(conn, data.draw(states()))
    specs = [spec_with_existing(data, state, s) for s in data.draw(st.lists(spec_strategy(), max_size=4))]
    preserve = data.draw(st.booleans())
    if not specs and data.draw(st.booleans()):
        # NULL specs: no rows, nothing changed.
        run(
            conn,
            "add_jobs",
            f"SELECT {JOB_COLS} FROM graphile_worker.add_jobs(NULL, %s)",
            [preserve],
            lambda s: ([], s),
        )
        return
    run_add(conn, "add_jobs", ADD_JOBS_SQL, add_jobs_params(specs, preserve), specs, preserve)


@SETTINGS
@given(data=st.data())
def test_remove_job(conn, data):
    state = load(conn, data.draw(states()))
    keys = sorted(j["key"] for j in state["jobs"].values() if j["key"] is not None)
    key = data.draw(st.one_of(maybe_text, st.sampled_from(keys) if keys else st.none()))
    now = now_estimate()

    def model(s):
        e = copy_state(s)
        job = next((j for j in e["jobs"].values() if key is not None and j["key"] == key), None)
        if job is None:
            return None, e
        if is_unlocked(job["locked_at"], now):
            del e["jobs"][job["id"]]
            return job, e
        job.update(key=None, attempts=job["max_attempts"])
        return job, e

    run(
        conn,
        "remove_job",
        f"SELECT {JOB_COLS} FROM graphile_worker.remove_job(%s::text)",
        [key],
        model,
        returns="one_job",
    )


# ---------------------------------------------------------------------------
# Administration
# ---------------------------------------------------------------------------


def id_arrays(data, state, big: bool = False):
    existing = sorted(state["jobs"])
    one = st.one_of(
        st.sampled_from(existing) if existing else st.none(),
        st.none(),
        ints(*BIGINT),
        st.sampled_from([0, -1, BIGINT[1], BIGINT[0]]),
    )
    if big:
        kind = data.draw(st.sampled_from(["range", "nulls", "overflow"]))
        base = list(range(-BIG // 2, BIG // 2))
        if kind == "nulls":
            base[::7] = [None] * len(base[::7])
        if kind == "overflow":
            base[-1] = BIGINT[1] + 1
        return base + existing
    return data.draw(st.one_of(st.none(), st.lists(one, max_size=6)))


def admin_ids_test(conn, data, big):
    state = load(conn, data.draw(states()))
    ids = id_arrays(data, state, big)
    now = now_estimate()
    which = data.draw(st.sampled_from(["complete_jobs", "permanently_fail_jobs", "reschedule_jobs"]))
    if which == "complete_jobs":

        def model(s):
            check_ids(ids)
            e = copy_state(s)
            hit = [j for j in e["jobs"].values() if j["id"] in wanted(ids) and is_unlocked(j["locked_at"], now)]
            for j in hit:
                del e["jobs"][j["id"]]
            return hit, e

        run(conn, which, f"SELECT {JOB_COLS} FROM graphile_worker.complete_jobs(%s::bigint[])", [ids], model)
    elif which == "permanently_fail_jobs":
        message = data.draw(maybe_text)

        def model(s):
            check_ids(ids)
            e = copy_state(s)
            hit = [j for j in e["jobs"].values() if j["id"] in wanted(ids) and is_unlocked(j["locked_at"], now)]
            for j in hit:
                j.update(
                    attempts=j["max_attempts"], last_error="Manually marked as failed" if message is None else message
                )
            return hit, e

        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.permanently_fail_jobs(%s::bigint[], %s::text)",
            [ids, message],
            model,
        )
    else:
        # Text that does not cast to timestamptz is covered by add_jobs; here the model could not
        # tell which argument's error PostgreSQL reports first, so reschedule gets castable times.
        run_at = data.draw(st.one_of(st.none(), st.sampled_from(TIMESTAMPS)))
        priority = data.draw(maybe_int(*SMALLINT))
        attempts = data.draw(maybe_int(0, 32767))
        max_attempts = data.draw(maybe_int(1, 32767))

        def model(s):
            # Casting the arguments fails first, in no order we rely on.
            codes = ts_codes(run_at)
            for v in (priority, attempts, max_attempts):
                if v is not None and not INT[0] <= v <= INT[1]:
                    codes.add("22003")
            try:
                check_ids(ids)
            except Fail as exc:
                codes |= exc.codes
            if codes:
                raise Fail(*codes)
            if priority is not None and not SMALLINT[0] <= priority <= SMALLINT[1]:
                raise Fail("22003")
            if attempts is not None and attempts < 0:
                raise Fail("22023")
            if attempts is not None and attempts > 32767:
                raise Fail("22003")
            if max_attempts is not None and max_attempts < 1:
                raise Fail("22003")
            if max_attempts is not None and max_attempts > 32767:
                raise Fail("22003")
            e = copy_state(s)
            hit = [j for j in e["jobs"].values() if j["id"] in wanted(ids) and is_unlocked(j["locked_at"], now)]
            new_run_at = ts_value(run_at, now)
            for j in hit:
                for f, v in (
                    ("run_at", new_run_at),
                    ("priority", priority),
                    ("attempts", attempts),
                    ("max_attempts", max_attempts),
                ):
                    if v is not None:
                        j[f] = v
            return hit, e

        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.reschedule_jobs(%s::bigint[], %s::timestamptz,"
            " %s::integer, %s::integer, %s::integer)",
            [ids, run_at, priority, attempts, max_attempts],
            model,
        )


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_complete_fail_reschedule_jobs(conn, data):
    admin_ids_test(conn, data, big=False)


def worker_arrays(data, state, big: bool = False):
    if big:
        return [f"w{i}" if i % 5 else None for i in range(BIG)] + list(state_workers(state))
    one = st.one_of(st.none(), hostile_text, st.sampled_from(sorted(state_workers(state)) or [""]))
    return data.draw(st.one_of(st.none(), st.lists(one, max_size=5)))


def state_workers(state) -> set:
    return {j["locked_by"] for j in state["jobs"].values() if j["locked_by"]} | {
        q["locked_by"] for q in state["queues"].values() if q["locked_by"]
    }


def force_unlock_test(conn, data, big):
    state = load(conn, data.draw(states()))
    workers = worker_arrays(data, state, big)

    def model(s):
        e = copy_state(s)
        w = wanted(workers)
        for j in e["jobs"].values():
            if j["locked_by"] in w and j["locked_at"] is not None:
                j.update(locked_at=None, locked_by=None)
        for q in e["queues"].values():
            if q["locked_by"] in w:
                q.update(locked_at=None, locked_by=None)
        return [(None,)], e

    run(
        conn,
        "force_unlock_workers",
        "SELECT graphile_worker.force_unlock_workers(%s::text[])",
        [workers],
        model,
        returns="rows",
    )


@SETTINGS
@given(data=st.data())
def test_force_unlock_workers(conn, data):
    force_unlock_test(conn, data, big=False)


CLEANUP_NAMES = ["GC_JOB_QUEUES", "GC_TASK_IDENTIFIERS", "DELETE_PERMAFAILED_JOBS"]


def model_cleanup(s, tasks, keep, now):
    if tasks is None or len(tasks) == 0:
        return [], copy_state(s)
    if any(t is not None and t not in CLEANUP_NAMES for t in tasks):
        raise Fail("22P02")
    if None in tasks:
        raise Fail("22004")
    e = copy_state(s)
    out = []
    if "DELETE_PERMAFAILED_JOBS" in tasks:
        gone = [
            j for j in e["jobs"].values() if j["attempts"] >= j["max_attempts"] and is_unlocked(j["locked_at"], now)
        ]
        for j in gone:
            del e["jobs"][j["id"]]
        out.append(("DELETE_PERMAFAILED_JOBS", len(gone)))
    if "GC_TASK_IDENTIFIERS" in tasks:
        used = {j["task_id"] for j in e["jobs"].values()}
        keep_set = wanted(keep)
        gone = [t for t, ident in e["tasks"].items() if t not in used and ident not in keep_set]
        for t in gone:
            del e["tasks"][t]
        out.append(("GC_TASK_IDENTIFIERS", len(gone)))
    if "GC_JOB_QUEUES" in tasks:
        used = {j["job_queue_id"] for j in e["jobs"].values()}
        gone = [q for q, v in e["queues"].items() if q not in used and is_unlocked(v["locked_at"], now)]
        for q in gone:
            del e["queues"][q]
        out.append(("GC_JOB_QUEUES", len(gone)))
    return out, e


def cleanup_test(conn, data, big):
    state = load(conn, data.draw(states()))
    tasks = data.draw(
        st.one_of(st.none(), st.lists(st.one_of(st.sampled_from(CLEANUP_NAMES), st.none(), hostile_text), max_size=4))
    )
    if big:
        keep = [f"t{i}" if i % 3 else None for i in range(BIG)] + sorted(state["tasks"].values())[:1]
        tasks = data.draw(st.lists(st.sampled_from(CLEANUP_NAMES), min_size=1, max_size=3))
    else:
        keep = data.draw(
            st.one_of(
                st.none(),
                st.lists(
                    st.one_of(st.none(), hostile_text, st.sampled_from(sorted(state["tasks"].values()))), max_size=4
                ),
            )
        )
    now = now_estimate()
    run(
        conn,
        "cleanup",
        "SELECT task::text, deleted_count"
        " FROM graphile_worker.cleanup(%s::text[]::graphile_worker.cleanup_task[], %s::text[])",
        [tasks, keep],
        lambda s: model_cleanup(s, tasks, keep, now),
        returns="rows",
    )


@SETTINGS
@given(data=st.data())
def test_cleanup(conn, data):
    cleanup_test(conn, data, big=False)


@SETTINGS
@given(data=st.data())
def test_delete_permafailed_jobs_batch(conn, data):
    load(conn, data.draw(states()))
    size = data.draw(st.one_of(ints(1, 10), st.none()))
    now = now_estimate()

    def model(s):
        check_param(size, *INT)
        if size is None:
            raise Fail("22004")
        if size < 1:
            raise Fail("22023")
        e = copy_state(s)
        gone = sorted(
            j["id"]
            for j in e["jobs"].values()
            if j["attempts"] >= j["max_attempts"] and is_unlocked(j["locked_at"], now)
        )[:size]
        for j in gone:
            del e["jobs"][j]
        return [(len(gone),)], e

    run(
        conn,
        "delete_permafailed_jobs_batch",
        "SELECT graphile_worker.delete_permafailed_jobs_batch(%s::integer)",
        [size],
        model,
        returns="rows",
    )


# ---------------------------------------------------------------------------
# Worker API
# ---------------------------------------------------------------------------


def model_fetch(s, worker, task_identifiers, batch_size, forbidden, now):
    check_param(batch_size, *INT)
    check_worker(worker)
    if batch_size is None:
        raise Fail("22004")
    if not 1 <= batch_size <= 10000:
        raise Fail("22023")
    e = copy_state(s)
    task_ids = None
    if task_identifiers is not None:
        task_ids = {t for t, ident in e["tasks"].items() if ident in wanted(task_identifiers)}
        if not task_ids:
            return [], e
    bad = wanted(forbidden)
    cands = [
        j
        for j in e["jobs"].values()
        if available(j)
        and j["run_at"] <= now
        and (task_ids is None or j["task_id"] in task_ids)
        and (j["job_queue_id"] is None or e["queues"][j["job_queue_id"]]["locked_at"] is None)
        and (forbidden is None or j["flags"] is None or not (set(j["flags"]) & bad))
    ]
    cands.sort(key=lambda j: (j["priority"], j["run_at"], j["id"]))
    cands = cands[: batch_size * 10 + 100]
    taken, seen_queues = [], set()
    for j in cands:
        if j["job_queue_id"] is not None:
            if j["job_queue_id"] in seen_queues:
                continue
            seen_queues.add(j["job_queue_id"])
            e["queues"][j["job_queue_id"]].update(locked_at=Now(), locked_by=worker)
        taken.append(j)
        if len(taken) >= batch_size:
            break
    out = []
    for j in taken:
        j.update(attempts=j["attempts"] + 1, locked_at=Now(), locked_by=worker)
        out.append(
            {
                "id": j["id"],
                "task_identifier": e["tasks"][j["task_id"]],
                "queue_name": None if j["job_queue_id"] is None else e["queues"][j["job_queue_id"]]["name"],
                "payload": j["payload"],
                "priority": j["priority"],
                "run_at": j["run_at"],
                "attempts": j["attempts"],
                "max_attempts": j["max_attempts"],
                "key": j["key"],
                "flags": j["flags"],
                "locked_by": worker,
                "last_error": j["last_error"],
                "revision": j["revision"],
            }
        )
    return out, e


def pick_worker(data, state):
    return data.draw(st.one_of(st.sampled_from(sorted(state_workers(state)) or ["w"]), maybe_text))


def fetch_test(conn, data, big):
    state = load(conn, data.draw(states()))
    worker = pick_worker(data, state)
    names = sorted(state["tasks"].values())
    if big:
        idents = [f"t{i}" if i % 4 else None for i in range(BIG)] + names
        forbidden = [f"f{i}" if i % 3 else None for i in range(BIG)] + ["a"]
        size = data.draw(st.sampled_from([1, 10000]))
        worker = worker or "w"
    else:
        idents = data.draw(
            st.one_of(st.none(), st.lists(st.one_of(st.none(), hostile_text, st.sampled_from(names)), max_size=4))
        )
        forbidden = data.draw(
            st.one_of(
                st.none(),
                st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "'q", "é"]), hostile_text), max_size=3),
            )
        )
        size = data.draw(st.one_of(ints(1, 10000), st.none()))
    now = now_estimate()
    run(
        conn,
        "fetch_jobs",
        f"SELECT {FETCHED_COLS} FROM graphile_worker.fetch_jobs(%s::text, %s::text[], %s::integer, %s::text[])",
        [worker, idents, size, forbidden],
        lambda s: model_fetch(s, worker, idents, size, forbidden, now),
        returns="fetched",
    )


@SETTINGS
@given(data=st.data())
def test_fetch_jobs(conn, data):
    fetch_test(conn, data, big=False)


def model_release_queues(e, worker, queue_ids):
    for q in queue_ids:
        if e["queues"][q]["locked_by"] == worker:
            e["queues"][q].update(locked_at=None, locked_by=None)


def model_complete(s, worker, ids, now):
    check_ids(ids)
    check_worker(worker)
    e = copy_state(s)
    if not ids:
        return [], e
    hit = sorted(
        (j for j in e["jobs"].values() if j["id"] in wanted(ids) and j["locked_by"] == worker), key=lambda j: j["id"]
    )
    for j in hit:
        del e["jobs"][j["id"]]
    model_release_queues(e, worker, [j["job_queue_id"] for j in hit if j["job_queue_id"] is not None])
    return hit, e


NO_PAYLOAD = object()  # SQL NULL replacement_payload: the payload is kept


def model_fail(s, worker, ids, message, payload, now):
    check_ids(ids)
    check_worker(worker)
    if message is None:
        raise Fail("22004")
    e = copy_state(s)
    if not ids:
        return [], e
    hit = sorted(
        (j for j in e["jobs"].values() if j["id"] in wanted(ids) and j["locked_by"] == worker), key=lambda j: j["id"]
    )
    for j in hit:
        delay = math.exp(min(j["attempts"], 10))
        j.update(last_error=message, run_at=Now(delay, j["run_at"]), locked_at=None, locked_by=None)
        if payload is not NO_PAYLOAD:
            j["payload"] = payload
    model_release_queues(e, worker, [j["job_queue_id"] for j in hit if j["job_queue_id"] is not None])
    return hit, e


def worker_jobs_test(conn, data, big):
    state = load(conn, data.draw(states()))
    worker = pick_worker(data, state)
    ids = id_arrays(data, state, big)
    if big:
        worker = worker or "w"
    now = now_estimate()
    which = data.draw(
        st.sampled_from(
            ["complete_worker_jobs", "fail_worker_jobs"]
            if big
            else ["complete_job", "complete_worker_jobs", "fail_job", "fail_worker_jobs"]
        )
    )
    if which in ("complete_job", "fail_job") and not big:
        one = data.draw(st.one_of(st.none(), ints(*BIGINT), st.sampled_from(sorted(state["jobs"]) or [0])))
        ids_for_model = [one]
    else:
        one = None
        ids_for_model = ids
    if which == "complete_job":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_job(%s::text, %s::bigint)",
            [worker, one],
            lambda s: (lambda r: (r[0][0] if r[0] else None, r[1]))(model_complete(s, worker, ids_for_model, now)),
            returns="one_job",
        )
    elif which == "complete_worker_jobs":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_worker_jobs(%s::text, %s::bigint[])",
            [worker, ids],
            lambda s: model_complete(s, worker, ids, now),
        )
    else:
        message = data.draw(maybe_text)
        if which == "fail_job":
            payload_text = data.draw(payloads)

            def model(s):
                codes = set()
                for step in (lambda: check_ids(ids_for_model), lambda: payload_value(payload_text)):
                    try:
                        step()
                    except Fail as exc:
                        codes |= exc.codes
                if codes:
                    raise Fail(*codes)
                check_worker(worker)
                payload = NO_PAYLOAD if payload_text is None else payload_value(payload_text)
                rows, e = model_fail(s, worker, ids_for_model, message, payload, now)
                return (rows[0] if rows else None), e

            run(
                conn,
                which,
                f"SELECT {JOB_COLS} FROM graphile_worker.fail_job(%s::text, %s::bigint, %s::text, %s::json)",
                [worker, one, message, payload_text],
                model,
                returns="one_job",
            )
        else:
            run(
                conn,
                which,
                f"SELECT {JOB_COLS} FROM graphile_worker.fail_worker_jobs(%s::text, %s::bigint[], %s::text)",
                [worker, ids, message],
                lambda s: model_fail(s, worker, ids, message, NO_PAYLOAD, now),
            )


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_worker_complete_and_fail(conn, data):
    worker_jobs_test(conn, data, big=False)


@SETTINGS
@given(data=st.data())
def test_release_stale_locks(conn, data):
    load(conn, data.draw(states()))
    now = now_estimate()

    def model(s):
        e = copy_state(s)
        jobs = 0
        for j in e["jobs"].values():
            if j["locked_at"] is not None and is_unlocked(j["locked_at"], now):
                j.update(locked_at=None, locked_by=None)
                jobs += 1
        queues = 0
        for qid, q in e["queues"].items():
            if q["locked_at"] is None:
                continue
            holds = any(
                j["locked_at"] is not None and j["locked_by"] == q["locked_by"] and j["job_queue_id"] == qid
                for j in e["jobs"].values()
            )
            if is_unlocked(q["locked_at"], now) or not holds:
                q.update(locked_at=None, locked_by=None)
                queues += 1
        return [(jobs, queues)], e

    run(conn, "release_stale_locks", "SELECT * FROM graphile_worker.release_stale_locks()", [], model, returns="rows")


# ---------------------------------------------------------------------------
# 100,000-element arrays, a few examples each
# ---------------------------------------------------------------------------


@BIG_SETTINGS
@given(data=st.data())
def test_big_arrays(conn, data):
    admin_ids_test(conn, data, big=True)
    force_unlock_test(conn, data, big=True)
    cleanup_test(conn, data, big=True)
    fetch_test(conn, data, big=True)
    worker_jobs_test(conn, data, big=True)
    state = load(conn, data.draw(states()))
    n = data.draw(st.sampled_from([BIG]))
    COUNTS["add_jobs"] += 1
    before = raw_snapshot(conn)
    assert before is not None
    count = conn.execute(
        "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY("
        " SELECT ROW('big' || (i %% 3), json_build_object('i', i), CASE WHEN i %% 2 = 0 THEN 'q' || (i %% 5) END,"
        "   NULL, NULL, CASE WHEN i %% 10 = 0 THEN 'k' || i END, (i %% 7) - 3, NULL)::graphile_worker.job_spec"
        " FROM generate_series(1, %s) AS i))",
        [n],
    ).fetchone()[0]
    assert count == n
    after = conn.execute(
        "SELECT count(*), count(DISTINCT task_id), count(DISTINCT job_queue_id), count(key)"
        " FROM graphile_worker._private_jobs WHERE payload::text LIKE '{\"i\" : %%'"
    ).fetchone()
    assert after == (n, 3, 5, n // 10)
    assert len(state["jobs"]) + n == conn.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0]
    # The same 100,000 specs again, with one NULL identifier: an error, and nothing changed.
    COUNTS["add_jobs"] += 1
    raw = raw_snapshot(conn)
    with pytest.raises(psycopg.Error) as exc:
        conn.execute(
            "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY("
            " SELECT ROW(CASE WHEN i <> 54321 THEN 'big' END, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            "::graphile_worker.job_spec FROM generate_series(1, %s) AS i))",
            [n],
        )
    assert exc.value.sqlstate == "22004"
    assert raw_snapshot(conn) == raw


# ---------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------

PASSWORD = st.text(string.ascii_letters + string.digits + "._~-", min_size=6, max_size=16).map(lambda s: "Pw" + s)
HOSTS = ["127.0.0.1", "localhost", "/nonexistent-socket-dir"]


@st.composite
def dsns(draw):
    password = draw(PASSWORD)
    port = draw(st.sampled_from(["1", "54336", "99999", "-5", "abc", ""]))
    host = draw(st.sampled_from(HOSTS))
    db = draw(st.sampled_from(["gw_no_such_db", "", "x%20y", "é'\"\\"]))
    user = draw(st.sampled_from(["postgres", "nobody", "u'q", ""]))
    form = draw(st.sampled_from(["uri", "keywords", "garbled", "noise"]))
    if form == "uri":
        dsn = f"postgresql://{user}:{password}@{host if host[0] != '/' else ''}:{port}/{db}"
    else:
        dsn = f"host={host} port={port or 1} dbname='{db}' user=nobody password={password} connect_timeout=2"
    if form == "garbled":
        cut = draw(st.integers(0, len(dsn)))
        dsn = dsn[:cut] + draw(st.text(_chars, max_size=5)) + dsn[cut:]
    if form == "noise":
        dsn = draw(st.text(_chars, max_size=30)) + f" password={password}"
    return dsn, password


COMMANDS = ["migrate", "status", "rollback", "cleanup", "cleanup-batched", "grant", "revoke", "verify", "uninstall"]
OPTIONS = ["--to", "--batch-size", "--tasks", "--enqueue", "--worker", "--admin", "--yes", "--help", "--database", "-h"]
TOKENS = st.one_of(
    st.sampled_from(COMMANDS),
    st.sampled_from(OPTIONS),
    st.sampled_from(["0", "-1", "99999999999999999999", "GC_JOB_QUEUES", "DELETE_PERMAFAILED_JOBS,BOGUS", "role'x"]),
    st.text(_chars, max_size=10),
)


@settings(SETTINGS, max_examples=150)
@given(argv=st.lists(TOKENS, max_size=5), dsn=dsns(), where=st.sampled_from(["arg", "env", "both"]))
def test_cli_random_argv_and_dsn(argv, dsn, where, capsys, monkeypatch):
    dsn, password = dsn
    # Never reach a real database by accident: the libpq defaults point nowhere.
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", "1")
    monkeypatch.setenv("PGDATABASE", "gw_no_such_db")
    monkeypatch.setenv("PGUSER", "nobody")
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "2")
    monkeypatch.setenv("DATABASE_URL", dsn if where != "arg" else "postgresql://nobody:PwEnvSecret1@127.0.0.1:1/x")
    full = ["--database", dsn, *argv] if where != "env" else list(argv)
    # A DSN that reaches the test server must not name a database we could change.
    assume("54336" not in dsn or "gw_no_such_db" in dsn)
    COUNTS["cli"] += 1
    capsys.readouterr()
    try:
        code = cli.main(full)
    except SystemExit as exc:  # pragma: no cover - main must not exit itself
        pytest.fail(f"cli.main raised SystemExit({exc.code}) for {full!r}")
    out, err = capsys.readouterr()
    ERRORS["cli"] += code != 0
    assert code in (0, 1, 2, 3), f"exit code {code} for {full!r}"
    for secret in (password, "PwEnvSecret1"):
        assert secret not in out and secret not in err, f"password printed for {full!r}: {err!r}"
    assert "Traceback" not in out + err
    if code in (1, 3) or (code == 2 and not err.startswith("usage:")):
        assert len(err.strip().splitlines()) <= 1, f"more than one line on stderr for {full!r}: {err!r}"
    if code == 2 and err.startswith("usage:"):
        # argparse: its usage text, then exactly one error line.
        lines = err.strip().splitlines()
        assert sum(line.startswith("python -m installer") and ": error:" in line for line in lines) == 1, err


# ---------------------------------------------------------------------------
# The count of examples, for the closing note
# ---------------------------------------------------------------------------


def test_zz_examples_per_function():
    """Runs last in this file: prints how many examples each function got (and how many raised)."""
    lines = [
        f"  {name:30} {COUNTS[name]:5} examples, {ERRORS[name]:4} raised an error {dict(CODES[name])}"
        for name in sorted(COUNTS)
    ]
    print("\nhypothesis examples per function:\n" + "\n".join(lines))
