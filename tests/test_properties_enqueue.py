"""Property-based tests of enqueueing (hypothesis): add_job, add_jobs and remove_job under hostile input.

Each example writes a random queue state, makes one call with random and extreme arguments, and checks
the outcome against the queue model (how: gwtest.runner; the model: gwtest.model).
"""

from __future__ import annotations

import json

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gwtest import model
from gwtest import strategies as gen
from gwtest.runner import COUNTS, JOB_COLS, load, raw_snapshot, run, run_add


@gen.SETTINGS
@given(data=st.data())
def test_add_job(db, data):
    state = load(db, data.draw(gen.states()))
    spec = gen.spec_with_existing(data, state, data.draw(gen.spec_strategy()))
    modes = st.sampled_from(["replace", "preserve_run_at", "unsafe_dedupe"])
    mode = data.draw(st.one_of(st.none(), modes, modes, modes, gen.hostile_text))
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
    run_add(db, "add_job", sql, params, [spec], mode == "preserve_run_at", unsafe_dedupe=unsafe)


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


@gen.SETTINGS
@given(data=st.data())
def test_add_jobs(db, data):
    state = load(db, data.draw(gen.states()))
    specs = [gen.spec_with_existing(data, state, s) for s in data.draw(st.lists(gen.spec_strategy(), max_size=4))]
    preserve = data.draw(st.booleans())
    if not specs and data.draw(st.booleans()):
        # NULL specs: no rows, nothing changed.
        run(
            db,
            "add_jobs",
            f"SELECT {JOB_COLS} FROM graphile_worker.add_jobs(NULL, %s)",
            [preserve],
            lambda s: ([], s),
        )
        return
    run_add(db, "add_jobs", ADD_JOBS_SQL, add_jobs_params(specs, preserve), specs, preserve)


@gen.SETTINGS
@given(data=st.data())
def test_remove_job(db, data):
    state = load(db, data.draw(gen.states()))
    keys = sorted(j["key"] for j in state["jobs"].values() if j["key"] is not None)
    key = data.draw(st.one_of(gen.maybe_text, st.sampled_from(keys) if keys else st.none()))
    now = model.now_estimate()
    run(
        db,
        "remove_job",
        f"SELECT {JOB_COLS} FROM graphile_worker.remove_job(%s::text)",
        [key],
        lambda s: model.remove_job(s, key, now),
        returns="one_job",
    )


@gen.BIG_SETTINGS
@given(data=st.data())
def test_add_jobs_big_arrays(db, data):
    """100,000 specs in one call; then the same with one NULL identifier: an error, and nothing changed."""
    state = load(db, data.draw(gen.states()))
    n = gen.BIG
    COUNTS["add_jobs"] += 1
    count = db.execute(
        "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY("
        " SELECT ROW('big' || (i %% 3), json_build_object('i', i), CASE WHEN i %% 2 = 0 THEN 'q' || (i %% 5) END,"
        "   NULL, NULL, CASE WHEN i %% 10 = 0 THEN 'k' || i END, (i %% 7) - 3, NULL)::graphile_worker.job_spec"
        " FROM generate_series(1, %s) AS i))",
        [n],
    ).fetchone()[0]
    assert count == n
    after = db.execute(
        "SELECT count(*), count(DISTINCT task_id), count(DISTINCT job_queue_id), count(key)"
        " FROM graphile_worker._private_jobs WHERE payload::text LIKE '{\"i\" : %%'"
    ).fetchone()
    assert after == (n, 3, 5, n // 10)
    assert len(state["jobs"]) + n == db.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0]
    COUNTS["add_jobs"] += 1
    raw = raw_snapshot(db)
    with pytest.raises(psycopg.Error) as exc:
        db.execute(
            "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY("
            " SELECT ROW(CASE WHEN i <> 54321 THEN 'big' END, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            "::graphile_worker.job_spec FROM generate_series(1, %s) AS i))",
            [n],
        )
    assert exc.value.sqlstate == "22004"
    assert raw_snapshot(db) == raw
