"""The plans list_jobs' pages really get (schema version 14), read with auto_explain from inside the
function, on tables large enough for the planner to choose: one queue's page is read from
jobs_job_queue_id_index in id order, with no sort; in a database whose collation is C, a key prefix
is a range of the key constraint's index. The pages also equal what the columns say they should."""

from __future__ import annotations

import psycopg
import pytest

from gwtest.db import migrate, with_dbname

# 20,000 jobs: half in 2 queues (5,000 jobs each), and a key on every one ("k" and a five-digit number).
FILL = """
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('pl_task', '{}'::json, CASE WHEN g % 2 = 0 THEN 'plq_' || (g % 4) END,
             now() + g * interval '1 second', NULL, 'k' || lpad(g::text, 5, '0'), NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 20000) AS g));
"""


def page_plan_of(conn: psycopg.Connection, sql: str, params: list) -> tuple[list, str]:
    """Runs sql with auto_explain logging every nested statement as a NOTICE; returns its rows and the
    plan of list_jobs' page query (the statement that reads _private_jobs AS j)."""
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting, value in (
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_nested_statements", "on"),
        ("auto_explain.log_level", "notice"),
        ("client_min_messages", "notice"),
    ):
        conn.execute("SELECT set_config(%s, %s, false)", [setting, value])
    rows = conn.execute(sql, params).fetchall()
    conn.execute("SELECT set_config('auto_explain.log_min_duration', '-1', false)")
    return rows, next(p for p in "\n".join(notices).split("Query Text:") if "_private_jobs AS j" in p)


def filled(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(FILL)
        conn.execute("ANALYZE graphile_worker._private_jobs")


@pytest.mark.parametrize("descending", [False, True])
def test_one_queue_page_is_read_in_order_from_the_queue_index(installed: str, descending: bool) -> None:
    # A page of 10: the planner keeps no statistics for a partial index's expression and guesses
    # 0.5% of the table per queue (100 jobs here), so a page of 10 stands to that guess as a page of
    # 100 stands to it at ten million jobs, where bench/ui_bench.py measures the same plan.
    filled(installed)
    with psycopg.connect(installed, autocommit=True) as conn:
        rows, page_plan = page_plan_of(
            conn,
            "SELECT id FROM graphile_worker.list_jobs(queue_names => ARRAY['plq_2'], descending => %s,"
            " page_size => 10)",
            [descending],
        )
        expected = conn.execute(
            f"SELECT id FROM graphile_worker.jobs WHERE queue_name = 'plq_2' ORDER BY id {'DESC' if descending else ''}"
            " LIMIT 10"
        ).fetchall()
    assert rows == expected and len(rows) == 10
    assert "using jobs_job_queue_id_index" in page_plan, page_plan
    assert "Sort" not in page_plan, page_plan


def test_key_prefix_uses_the_key_index_in_a_c_collation_database(dsn: str) -> None:
    c_dsn = with_dbname(dsn, "gw_c_collation")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS gw_c_collation")
        conn.execute("CREATE DATABASE gw_c_collation TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        migrate(c_dsn)
        filled(c_dsn)
        with psycopg.connect(c_dsn, autocommit=True) as conn:
            # A key with LIKE's wildcards in it, and one that only a wildcard would match.
            conn.execute("SELECT graphile_worker.add_job('pl_task', job_key => 'k0012_%x')")
            conn.execute("SELECT graphile_worker.add_job('pl_task', job_key => 'k0012a')")
            rows, page_plan = page_plan_of(
                conn, "SELECT key FROM graphile_worker.list_jobs(key_prefix => %s, page_size => 1000)", ["k0012_"]
            )
        assert [r[0] for r in rows] == ["k0012_%x"]
        assert "_private_jobs_key_key" in page_plan and "Index Cond" in page_plan, page_plan
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS gw_c_collation WITH (FORCE)")
