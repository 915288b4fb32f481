"""Every function behaves the same when the caller's search_path starts with look-alike objects.

A hostile schema shadows pg_catalog (it comes first in search_path) with functions
and operators that lie: now() in 1970, length() = 0, '=' on bigint always true, and so
on. The schema's functions pin their own search_path, so none of this may leak in.
"""

from __future__ import annotations

import psycopg

PLANT = """
CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '1970-01-01'::timestamptz $$;
CREATE FUNCTION evil.length(text) RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
CREATE FUNCTION evil.random() RETURNS double precision LANGUAGE sql AS $$ SELECT 0.5::float8 $$;
CREATE FUNCTION evil.exp(numeric) RETURNS numeric LANGUAGE sql AS $$ SELECT 0::numeric $$;
CREATE FUNCTION evil.exp(double precision) RETURNS double precision LANGUAGE sql AS $$ SELECT 0::float8 $$;
CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION evil.cardinality(anyarray) RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
CREATE FUNCTION evil.json_typeof(json) RETURNS text LANGUAGE sql AS $$ SELECT 'evil'::text $$;
CREATE FUNCTION evil.always_true(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.always_true);
CREATE FUNCTION evil.text_true(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_true);
CREATE FUNCTION evil.ts_lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_lt);
CREATE OPERATOR evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_lt);
"""


BY_ID = " FROM graphile_worker._private_jobs WHERE id OPERATOR(pg_catalog.=) %s"


def scenario(conn: psycopg.Connection) -> dict:
    """A run through every public function; returns what a correct queue must report.

    The caller's own expressions name pg_catalog explicitly: only the functions under
    test are meant to face the look-alikes."""
    out: dict = {}
    q = conn.execute
    a = q("SELECT (graphile_worker.add_job('sp_a', '[1]', job_key => 'sp-k')).id").fetchone()[0]
    q("SELECT graphile_worker.add_job('sp_a', '[2]', job_key => 'sp-k')")
    out["merged_payload"] = q("SELECT payload::text " + BY_ID, [a]).fetchone()[0]
    b = q("SELECT (graphile_worker.add_job('sp_b', queue_name => 'sp-q')).id").fetchone()[0]
    c = q("SELECT (graphile_worker.add_job('sp_c', run_at => pg_catalog.now() + interval '1 day')).id").fetchone()[0]
    out["future_job_due"] = q(
        "SELECT run_at OPERATOR(pg_catalog.<=) pg_catalog.now() " + BY_ID,
        [c],
    ).fetchone()[0]
    out["run_at_default_recent"] = q(
        "SELECT run_at OPERATOR(pg_catalog.>) pg_catalog.now() - interval '1 hour' " + BY_ID,
        [a],
    ).fetchone()[0]
    out["fetched"] = sorted(r[0] for r in q("SELECT id FROM graphile_worker.fetch_jobs('sp-w', NULL, 10)"))
    out["queue_locked_by"] = q(
        "SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name OPERATOR(pg_catalog.=) 'sp-q'"
    ).fetchone()[0]
    out["failed"] = q("SELECT (graphile_worker.fail_job('sp-w', %s, 'boom')).attempts", [b]).fetchone()[0]
    out["retry_after_now"] = q(
        "SELECT run_at OPERATOR(pg_catalog.>) pg_catalog.now() " + BY_ID,
        [b],
    ).fetchone()[0]
    out["completed"] = q(
        "SELECT (graphile_worker.complete_job('sp-w', %s)).id OPERATOR(pg_catalog.=) %s", [a, a]
    ).fetchone()[0]
    out["admin_complete"] = [r[0] for r in q("SELECT id FROM graphile_worker.complete_jobs(ARRAY[%s]::bigint[])", [c])]
    out["left"] = sorted(r[0] for r in q("SELECT id FROM graphile_worker._private_jobs"))
    out["permafail"] = [
        r[0] for r in q("SELECT attempts FROM graphile_worker.permanently_fail_jobs(ARRAY[%s]::bigint[])", [b])
    ]
    out["reschedule"] = [
        r[0] for r in q("SELECT priority FROM graphile_worker.reschedule_jobs(ARRAY[%s]::bigint[], priority => 3)", [b])
    ]
    q("SELECT graphile_worker.force_unlock_workers(ARRAY['nobody'])")
    out["cleanup"] = sorted(
        tuple(r)
        for r in q(
            "SELECT task::text, deleted_count FROM graphile_worker.cleanup("
            "'{DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES}')"
        )
    )
    out["stale"] = q("SELECT count(*) FROM graphile_worker.release_stale_locks()").fetchone()[0]
    out["removed"] = q("SELECT graphile_worker.remove_job('no-such-key') IS NULL").fetchone()[0]
    out["jobs_left"] = q("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0]
    try:
        q("SELECT graphile_worker.add_job('x', job_key => repeat('k', 600))")
        out["long_key"] = "accepted"
    except psycopg.errors.InvalidParameterValue:
        out["long_key"] = "22023"
    return out


def run(dsn: str, search_path: str | None) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if search_path:
            conn.execute(f"SET search_path = {search_path}")
        try:
            return scenario(conn)
        finally:
            conn.execute("RESET search_path")
            conn.execute("DELETE FROM graphile_worker._private_jobs")
            conn.execute("DELETE FROM graphile_worker._private_job_queues")
            conn.execute("DELETE FROM graphile_worker._private_tasks")


def test_lookalike_objects_change_nothing(installed):
    baseline = run(installed, None)
    assert baseline["merged_payload"] == "[1, 2]" and baseline["future_job_due"] is False
    with psycopg.connect(installed, autocommit=True) as conn:
        conn.execute(PLANT)
        # Prove the plants work for an ordinary query: the caller really is exposed.
        conn.execute("SET search_path = evil, pg_catalog, public")
        assert conn.execute("SELECT now() < '1971-01-01'").fetchone()[0] is True
        assert conn.execute("SELECT 1::bigint = 2::bigint").fetchone()[0] is True
    hostile = run(installed, "evil, pg_catalog, public")
    # Ids differ between the two runs; compare everything else, and the id-based results by shape.
    for key in ("fetched", "admin_complete", "left"):
        assert len(hostile[key]) == len(baseline[key]), key
        hostile.pop(key), baseline.pop(key)
    assert hostile == baseline
