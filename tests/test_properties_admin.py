"""Property-based tests of the administrative functions (hypothesis): complete_jobs, permanently_fail_jobs,
reschedule_jobs, force_unlock_workers, cleanup and delete_permafailed_jobs_batch under hostile input, and
with 100,000-element arrays a few times each.

Each example writes a random queue state, makes one call with random and extreme arguments, and checks
the outcome against the queue model (how: gwtest.runner; the model: gwtest.model).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gwtest.model import (
    CLEANUP_NAMES,
    SMALLINT,
    TIMESTAMPS,
    model_cleanup,
    model_complete_jobs,
    model_delete_permafailed_jobs_batch,
    model_force_unlock_workers,
    model_permanently_fail_jobs,
    model_reschedule_jobs,
    now_estimate,
)
from gwtest.runner import JOB_COLS, load, run
from gwtest.strategies import (
    BIG,
    BIG_SETTINGS,
    SETTINGS,
    hostile_text,
    id_arrays,
    ints,
    maybe_int,
    maybe_text,
    states,
    worker_arrays,
)


def admin_ids_test(conn, data, big):
    state = load(conn, data.draw(states()))
    ids = id_arrays(data, state, big)
    now = now_estimate()
    which = data.draw(st.sampled_from(["complete_jobs", "permanently_fail_jobs", "reschedule_jobs"]))
    if which == "complete_jobs":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_jobs(%s::bigint[])",
            [ids],
            lambda s: model_complete_jobs(s, ids, now),
        )
    elif which == "permanently_fail_jobs":
        message = data.draw(maybe_text)
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.permanently_fail_jobs(%s::bigint[], %s::text)",
            [ids, message],
            lambda s: model_permanently_fail_jobs(s, ids, message, now),
        )
    else:
        # Text that does not cast to timestamptz is covered by add_jobs; here the model could not
        # tell which argument's error PostgreSQL reports first, so reschedule gets castable times.
        run_at = data.draw(st.one_of(st.none(), st.sampled_from(TIMESTAMPS)))
        priority = data.draw(maybe_int(*SMALLINT))
        attempts = data.draw(maybe_int(0, 32767))
        max_attempts = data.draw(maybe_int(1, 32767))
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.reschedule_jobs(%s::bigint[], %s::timestamptz,"
            " %s::integer, %s::integer, %s::integer)",
            [ids, run_at, priority, attempts, max_attempts],
            lambda s: model_reschedule_jobs(s, ids, run_at, priority, attempts, max_attempts, now),
        )


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_complete_fail_reschedule_jobs(db, data):
    admin_ids_test(db, data, big=False)


@BIG_SETTINGS
@given(data=st.data())
def test_complete_fail_reschedule_jobs_big_arrays(db, data):
    admin_ids_test(db, data, big=True)


def force_unlock_test(conn, data, big):
    state = load(conn, data.draw(states()))
    workers = worker_arrays(data, state, big)
    run(
        conn,
        "force_unlock_workers",
        "SELECT graphile_worker.force_unlock_workers(%s::text[])",
        [workers],
        lambda s: model_force_unlock_workers(s, workers),
        returns="rows",
    )


@SETTINGS
@given(data=st.data())
def test_force_unlock_workers(db, data):
    force_unlock_test(db, data, big=False)


@BIG_SETTINGS
@given(data=st.data())
def test_force_unlock_workers_big_arrays(db, data):
    force_unlock_test(db, data, big=True)


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
def test_cleanup(db, data):
    cleanup_test(db, data, big=False)


@BIG_SETTINGS
@given(data=st.data())
def test_cleanup_big_arrays(db, data):
    cleanup_test(db, data, big=True)


@SETTINGS
@given(data=st.data())
def test_delete_permafailed_jobs_batch(db, data):
    load(db, data.draw(states()))
    size = data.draw(st.one_of(ints(1, 10), st.none()))
    now = now_estimate()
    run(
        db,
        "delete_permafailed_jobs_batch",
        "SELECT graphile_worker.delete_permafailed_jobs_batch(%s::integer)",
        [size],
        lambda s: model_delete_permafailed_jobs_batch(s, size, now),
        returns="rows",
    )
