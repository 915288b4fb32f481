"""A Python model of the queue: from the state before a call and its arguments, what the call returns and
leaves in the three private tables, or which SQLSTATEs it raises (Fail).

A state is what gwtest.runner.read_state returns: {"jobs": {id: job}, "tasks": {id: identifier},
"queues": {id: {"name", "locked_at", "locked_by"}}}, timestamps as epoch seconds (+-inf allowed). A
model never changes the state it is given; it returns (expected rows, expected state) or raises Fail.
Timestamps that now() sets during the call are Now(), checked against the clock read around it.
"""

from __future__ import annotations

import json
import math
import time

# SQLSTATEs the schema documents (RAISE ... ERRCODE in extension/migrations) and the natural
# ones bad arguments produce: invalid text representation (22P02), check violation (23514),
# numeric out of range (22003), null value not allowed (22004), invalid parameter (22023),
# datetime out of range (22008), bad job_key_mode (GWBKM), invalid transaction state (25000).
DOCUMENTED = {"22P02", "23514", "22003", "22004", "22023", "22007", "22008", "GWBKM", "25000"}


SMALLINT = (-32768, 32767)
INT = (-(2**31), 2**31 - 1)
BIGINT = (-(2**63), 2**63 - 1)
FOUR_HOURS = 4 * 3600.0


TIMESTAMPS = ["infinity", "-infinity", "2000-01-01 00:00:00+00", "now", "epoch"]
OUT_OF_RANGE_TS = ["4715-01-01 BC", "294277-01-01"]
# Text no supported major reads as a timestamp. ("yesterday'" was here, but PostgreSQL 14, 15 and
# 18 all read it as yesterday: the stray quote is ignored.)
GARBAGE_TS = ["", "not a time", "2024-13-45", "9999999-01-01"]


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


class Fail(Exception):
    """The model's prediction that the call raises one of these SQLSTATEs."""

    def __init__(self, *codes: str):
        super().__init__(codes)
        self.codes = set(codes)


def copy_state(s: dict) -> dict:
    return {
        "jobs": {k: dict(v) for k, v in s["jobs"].items()},
        "tasks": dict(s["tasks"]),
        "queues": {k: dict(v) for k, v in s["queues"].items()},
    }


def now_estimate() -> float:
    """This machine's clock, for rules far from their edges (the 4-hour lock rule, say)."""
    return time.time()


def is_unlocked(locked_at, now: float) -> bool:
    """THE lock rule: never locked, or locked more than 4 hours ago."""
    return locked_at is None or locked_at < now - FOUR_HOURS


def available(job) -> bool:
    return job["locked_at"] is None and job["attempts"] < job["max_attempts"]


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


# -- enqueue: add_job, add_jobs, remove_job --


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


def add_jobs(s: dict, specs: list, preserve: bool, now: float) -> tuple[list, dict]:
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


def remove_job(s: dict, key, now: float):
    e = copy_state(s)
    job = next((j for j in e["jobs"].values() if key is not None and j["key"] == key), None)
    if job is None:
        return None, e
    if is_unlocked(job["locked_at"], now):
        del e["jobs"][job["id"]]
        return job, e
    job.update(key=None, attempts=job["max_attempts"])
    return job, e


# -- administration --


def unlocked_hits(e: dict, ids, now: float) -> list:
    """The jobs of e among ids that an admin call may change: unlocked, or locked more than 4 hours ago."""
    return [j for j in e["jobs"].values() if j["id"] in wanted(ids) and is_unlocked(j["locked_at"], now)]


def complete_jobs(s: dict, ids, now: float):
    check_ids(ids)
    e = copy_state(s)
    hit = unlocked_hits(e, ids, now)
    for j in hit:
        del e["jobs"][j["id"]]
    return hit, e


def permanently_fail_jobs(s: dict, ids, message, now: float):
    check_ids(ids)
    e = copy_state(s)
    hit = unlocked_hits(e, ids, now)
    for j in hit:
        j.update(attempts=j["max_attempts"], last_error="Manually marked as failed" if message is None else message)
    return hit, e


def reschedule_jobs(s: dict, ids, run_at, priority, attempts, max_attempts, now: float):
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
    # A negative attempts is a number out of its range too (22023 before version 11).
    if attempts is not None and not 0 <= attempts <= 32767:
        raise Fail("22003")
    if max_attempts is not None and max_attempts < 1:
        raise Fail("22003")
    if max_attempts is not None and max_attempts > 32767:
        raise Fail("22003")
    e = copy_state(s)
    hit = unlocked_hits(e, ids, now)
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


def force_unlock_workers(s: dict, workers):
    e = copy_state(s)
    w = wanted(workers)
    for j in e["jobs"].values():
        if j["locked_by"] in w and j["locked_at"] is not None:
            j.update(locked_at=None, locked_by=None)
    for q in e["queues"].values():
        if q["locked_by"] in w:
            q.update(locked_at=None, locked_by=None)
    # It returns void as a SQL function does: NULL (graphile-worker's own function returns the same).
    return [(None,)], e


CLEANUP_NAMES = ["GC_JOB_QUEUES", "GC_TASK_IDENTIFIERS", "DELETE_PERMAFAILED_JOBS"]


def cleanup(s, tasks, keep, now):
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


def delete_permafailed_jobs_batch(s: dict, size, now: float):
    check_param(size, *INT)
    if size is None:
        raise Fail("22004")
    if size < 1:
        raise Fail("22003")  # a number out of its range (22023 before version 11)
    e = copy_state(s)
    gone = sorted(
        j["id"] for j in e["jobs"].values() if j["attempts"] >= j["max_attempts"] and is_unlocked(j["locked_at"], now)
    )[:size]
    for j in gone:
        del e["jobs"][j]
    return [(len(gone),)], e


# -- worker API --


def fetch_jobs(s, worker, task_identifiers, batch_size, forbidden, now):
    check_param(batch_size, *INT)
    check_worker(worker)
    if batch_size is None:
        raise Fail("22004")
    if not 1 <= batch_size <= 10000:
        raise Fail("22003")  # a number out of its range (22023 before version 11)
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


def release_queues(e, worker, queue_ids):
    """Unlock those of the queues that worker holds."""
    for q in queue_ids:
        if e["queues"][q]["locked_by"] == worker:
            e["queues"][q].update(locked_at=None, locked_by=None)


def held_hits(e: dict, worker, ids) -> list:
    """The jobs of e among ids that worker holds, by id: the ones a worker call may complete or fail."""
    return sorted(
        (j for j in e["jobs"].values() if j["id"] in wanted(ids) and j["locked_by"] == worker), key=lambda j: j["id"]
    )


def complete_worker_jobs(s, worker, ids, now):
    check_ids(ids)
    check_worker(worker)
    e = copy_state(s)
    hit = held_hits(e, worker, ids)
    for j in hit:
        del e["jobs"][j["id"]]
    release_queues(e, worker, [j["job_queue_id"] for j in hit if j["job_queue_id"] is not None])
    return hit, e


def complete_job(s: dict, worker, job_id, now: float):
    rows, e = complete_worker_jobs(s, worker, [job_id], now)
    return (rows[0] if rows else None), e


NO_PAYLOAD = object()  # SQL NULL replacement_payload: the payload is kept


def fail_worker_jobs(s, worker, ids, message, payload, now):
    check_ids(ids)
    check_worker(worker)
    if message is None:
        raise Fail("22004")
    e = copy_state(s)
    hit = held_hits(e, worker, ids)
    for j in hit:
        delay = math.exp(min(j["attempts"], 10))
        j.update(last_error=message, run_at=Now(delay, j["run_at"]), locked_at=None, locked_by=None)
        if payload is not NO_PAYLOAD:
            j["payload"] = payload
    release_queues(e, worker, [j["job_queue_id"] for j in hit if j["job_queue_id"] is not None])
    return hit, e


def fail_job(s: dict, worker, job_id, message, payload_text, now: float):
    codes = set()
    for step in (lambda: check_ids([job_id]), lambda: payload_value(payload_text)):
        try:
            step()
        except Fail as exc:
            codes |= exc.codes
    if codes:
        raise Fail(*codes)
    check_worker(worker)
    payload = NO_PAYLOAD if payload_text is None else payload_value(payload_text)
    rows, e = fail_worker_jobs(s, worker, [job_id], message, payload, now)
    return (rows[0] if rows else None), e


def release_stale_locks(s: dict, now: float):
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
