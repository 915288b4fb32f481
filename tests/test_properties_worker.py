"""Property-based tests of the worker API (hypothesis): fetch_jobs, complete_job, complete_worker_jobs,
fail_job, fail_worker_jobs and release_stale_locks under hostile input, and with 100,000-element arrays
a few times each.

Each example writes a random queue state, makes one call with random and extreme arguments, and checks
the outcome against the queue model (how: gwtest.runner; the model: gwtest.model).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gwtest import model
from gwtest import strategies as gen
from gwtest.runner import FETCHED_COLS, JOB_COLS, load, run


def check_fetch_jobs(conn, data, big):
    state = load(conn, data.draw(gen.states()))
    worker = gen.pick_worker(data, state)
    names = sorted(state["tasks"].values())
    if big:
        idents = [f"t{i}" if i % 4 else None for i in range(gen.BIG)] + names
        forbidden = [f"f{i}" if i % 3 else None for i in range(gen.BIG)] + ["a"]
        size = data.draw(st.sampled_from([1, 10000]))
        worker = worker or "w"
    else:
        idents = data.draw(
            st.one_of(st.none(), st.lists(st.one_of(st.none(), gen.hostile_text, st.sampled_from(names)), max_size=4))
        )
        forbidden = data.draw(
            st.one_of(
                st.none(),
                st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "'q", "é"]), gen.hostile_text), max_size=3),
            )
        )
        size = data.draw(st.one_of(gen.ints(1, 10000), st.none()))
    now = model.now_estimate()
    run(
        conn,
        "fetch_jobs",
        f"SELECT {FETCHED_COLS} FROM graphile_worker.fetch_jobs(%s::text, %s::text[], %s::integer, %s::text[])",
        [worker, idents, size, forbidden],
        lambda s: model.fetch_jobs(s, worker, idents, size, forbidden, now),
        returns="fetched",
    )


test_fetch_jobs, test_fetch_jobs_big_arrays = gen.both_sizes(check_fetch_jobs)


def check_worker_complete_and_fail(conn, data, big):
    state = load(conn, data.draw(gen.states()))
    worker = gen.pick_worker(data, state)
    ids = gen.id_arrays(data, state, big)
    if big:
        worker = worker or "w"
    now = model.now_estimate()
    which = data.draw(
        st.sampled_from(
            ["complete_worker_jobs", "fail_worker_jobs"]
            if big
            else ["complete_job", "complete_worker_jobs", "fail_job", "fail_worker_jobs"]
        )
    )
    one = None
    if which in ("complete_job", "fail_job"):
        one = data.draw(st.one_of(st.none(), gen.ints(*model.BIGINT), st.sampled_from(sorted(state["jobs"]) or [0])))
    if which == "complete_job":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_job(%s::text, %s::bigint)",
            [worker, one],
            lambda s: model.complete_job(s, worker, one, now),
            returns="one_job",
        )
    elif which == "complete_worker_jobs":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_worker_jobs(%s::text, %s::bigint[])",
            [worker, ids],
            lambda s: model.complete_worker_jobs(s, worker, ids, now),
        )
    elif which == "fail_job":
        message = data.draw(gen.maybe_text)
        payload_text = data.draw(gen.payloads)
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.fail_job(%s::text, %s::bigint, %s::text, %s::json)",
            [worker, one, message, payload_text],
            lambda s: model.fail_job(s, worker, one, message, payload_text, now),
            returns="one_job",
        )
    else:
        message = data.draw(gen.maybe_text)
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.fail_worker_jobs(%s::text, %s::bigint[], %s::text)",
            [worker, ids, message],
            lambda s: model.fail_worker_jobs(s, worker, ids, message, model.NO_PAYLOAD, now),
        )


test_worker_complete_and_fail, test_worker_complete_and_fail_big_arrays = gen.both_sizes(
    check_worker_complete_and_fail, max_examples=150
)


@gen.SETTINGS
@given(data=st.data())
def test_release_stale_locks(db, data):
    load(db, data.draw(gen.states()))
    now = model.now_estimate()
    run(
        db,
        "release_stale_locks",
        "SELECT * FROM graphile_worker.release_stale_locks()",
        [],
        lambda s: model.release_stale_locks(s, now),
        returns="rows",
    )
