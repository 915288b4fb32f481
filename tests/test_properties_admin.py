"""Property-based tests of the administrative functions (hypothesis): complete_jobs, permanently_fail_jobs,
reschedule_jobs, force_unlock_workers, cleanup and delete_permafailed_jobs_batch under hostile input, and
with 100,000-element arrays a few times each.

Each example writes a random queue state, makes one call with random and extreme arguments, and checks
the outcome against the queue model (how: gwtest.runner; the model: gwtest.model).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gwtest import model
from gwtest import strategies as gen
from gwtest.runner import JOB_COLS, load, run


def check_complete_fail_reschedule_jobs(conn, data, big):
    state = load(conn, data.draw(gen.states()))
    ids = gen.id_arrays(data, state, big)
    now = model.now_estimate()
    which = data.draw(st.sampled_from(["complete_jobs", "permanently_fail_jobs", "reschedule_jobs"]))
    if which == "complete_jobs":
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.complete_jobs(%s::bigint[])",
            [ids],
            lambda s: model.complete_jobs(s, ids, now),
        )
    elif which == "permanently_fail_jobs":
        message = data.draw(gen.maybe_text)
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.permanently_fail_jobs(%s::bigint[], %s::text)",
            [ids, message],
            lambda s: model.permanently_fail_jobs(s, ids, message, now),
        )
    else:
        # Text that does not cast to timestamptz is covered by add_jobs; here the model could not
        # tell which argument's error PostgreSQL reports first, so reschedule gets castable times.
        run_at = data.draw(st.one_of(st.none(), st.sampled_from(model.TIMESTAMPS)))
        priority = data.draw(gen.maybe_int(*model.SMALLINT))
        attempts = data.draw(gen.maybe_int(0, 32767))
        max_attempts = data.draw(gen.maybe_int(1, 32767))
        run(
            conn,
            which,
            f"SELECT {JOB_COLS} FROM graphile_worker.reschedule_jobs(%s::bigint[], %s::timestamptz,"
            " %s::integer, %s::integer, %s::integer)",
            [ids, run_at, priority, attempts, max_attempts],
            lambda s: model.reschedule_jobs(s, ids, run_at, priority, attempts, max_attempts, now),
        )


test_complete_fail_reschedule_jobs, test_complete_fail_reschedule_jobs_big_arrays = gen.both_sizes(
    check_complete_fail_reschedule_jobs, max_examples=150
)


def check_force_unlock_workers(conn, data, big):
    state = load(conn, data.draw(gen.states()))
    workers = gen.worker_arrays(data, state, big)
    run(
        conn,
        "force_unlock_workers",
        "SELECT graphile_worker.force_unlock_workers(%s::text[])",
        [workers],
        lambda s: model.force_unlock_workers(s, workers),
        returns="rows",
    )


test_force_unlock_workers, test_force_unlock_workers_big_arrays = gen.both_sizes(check_force_unlock_workers)


def check_cleanup(conn, data, big):
    state = load(conn, data.draw(gen.states()))
    tasks = data.draw(
        st.one_of(
            st.none(),
            st.lists(st.one_of(st.sampled_from(model.CLEANUP_NAMES), st.none(), gen.hostile_text), max_size=4),
        )
    )
    if big:
        keep = [f"t{i}" if i % 3 else None for i in range(gen.BIG)] + sorted(state["tasks"].values())[:1]
        tasks = data.draw(st.lists(st.sampled_from(model.CLEANUP_NAMES), min_size=1, max_size=3))
    else:
        keep = data.draw(
            st.one_of(
                st.none(),
                st.lists(
                    st.one_of(st.none(), gen.hostile_text, st.sampled_from(sorted(state["tasks"].values()))), max_size=4
                ),
            )
        )
    now = model.now_estimate()
    run(
        conn,
        "cleanup",
        "SELECT task::text, deleted_count"
        " FROM graphile_worker.cleanup(%s::text[]::graphile_worker.cleanup_task[], %s::text[])",
        [tasks, keep],
        lambda s: model.cleanup(s, tasks, keep, now),
        returns="rows",
    )


test_cleanup, test_cleanup_big_arrays = gen.both_sizes(check_cleanup)


@gen.SETTINGS
@given(data=st.data())
def test_delete_permafailed_jobs_batch(db, data):
    load(db, data.draw(gen.states()))
    size = data.draw(st.one_of(gen.ints(1, 10), st.none()))
    now = model.now_estimate()
    run(
        db,
        "delete_permafailed_jobs_batch",
        "SELECT graphile_worker.delete_permafailed_jobs_batch(%s::integer)",
        [size],
        lambda s: model.delete_permafailed_jobs_batch(s, size, now),
        returns="rows",
    )
