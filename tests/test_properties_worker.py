"""Property-based tests of the worker API (hypothesis): fetch_jobs, complete_job, complete_worker_jobs,
fail_job, fail_worker_jobs and release_stale_locks under hostile input, and with 100,000-element arrays
a few times each.

Each example writes a random queue state, makes one call with random and extreme arguments, and checks
the outcome against the queue model (how: gwtest.runner; the model: gwtest.model).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gwtest.model import (
    BIGINT,
    NO_PAYLOAD,
    model_complete_job,
    model_complete_worker_jobs,
    model_fail_job,
    model_fail_worker_jobs,
    model_fetch_jobs,
    model_release_stale_locks,
    now_estimate,
)
from gwtest.runner import FETCHED_COLS, JOB_COLS, load, run
from gwtest.strategies import (
    BIG,
    BIG_SETTINGS,
    SETTINGS,
    hostile_text,
    id_arrays,
    ints,
    maybe_text,
    payloads,
    pick_worker,
    states,
)


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
        lambda s: model_fetch_jobs(s, worker, idents, size, forbidden, now),
        returns="fetched",
    )


@SETTINGS
@given(data=st.data())
def test_fetch_jobs(db, data):
    fetch_test(db, data, big=False)


@BIG_SETTINGS
@given(data=st.data())
def test_fetch_jobs_big_arrays(db, data):
    fetch_test(db, data, big=True)


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
    one = None
    if which in ("complete_job", "fail_job"):
        one = data.draw(st.one_of(st.none(), ints(*BIGINT), st.sampled_from(sorted(state["jobs"]) or [0])))
    if which == "complete_job":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_job(%s::text, %s::bigint)",
            [worker, one],
            lambda s: model_complete_job(s, worker, one, now),
            returns="one_job",
        )
    elif which == "complete_worker_jobs":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_worker_jobs(%s::text, %s::bigint[])",
            [worker, ids],
            lambda s: model_complete_worker_jobs(s, worker, ids, now),
        )
    elif which == "fail_job":
        message = data.draw(maybe_text)
        payload_text = data.draw(payloads)
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.fail_job(%s::text, %s::bigint, %s::text, %s::json)",
            [worker, one, message, payload_text],
            lambda s: model_fail_job(s, worker, one, message, payload_text, now),
            returns="one_job",
        )
    else:
        message = data.draw(maybe_text)
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.fail_worker_jobs(%s::text, %s::bigint[], %s::text)",
            [worker, ids, message],
            lambda s: model_fail_worker_jobs(s, worker, ids, message, NO_PAYLOAD, now),
        )


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_worker_complete_and_fail(db, data):
    worker_jobs_test(db, data, big=False)


@BIG_SETTINGS
@given(data=st.data())
def test_worker_complete_and_fail_big_arrays(db, data):
    worker_jobs_test(db, data, big=True)


@SETTINGS
@given(data=st.data())
def test_release_stale_locks(db, data):
    load(db, data.draw(states()))
    now = now_estimate()
    run(
        db,
        "release_stale_locks",
        "SELECT * FROM graphile_worker.release_stale_locks()",
        [],
        lambda s: model_release_stale_locks(s, now),
        returns="rows",
    )
