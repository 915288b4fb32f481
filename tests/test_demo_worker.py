"""The psql worker of make demo (tests/demo-worker.sql): it runs the due jobs, and the worker id it
locks them under cannot be guessed from what other roles can read."""

from __future__ import annotations

import re

import psycopg

from gwtest.db import ROOT

# The DO block, which is the worker; the queries after it only show what is left.
DEMO = re.search(
    r"^DO \$demo\$.*?^END\s*\$demo\$;", (ROOT / "tests" / "demo-worker.sql").read_text(), re.S | re.M
).group(0)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def run_demo(dsn: str) -> tuple[str, int]:
    """Run the demo worker once; return the worker id it announced and its backend pid."""
    notices: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        pid = conn.info.backend_pid
        # One statement in the simple query protocol, as psql sends it: under the extended one the
        # DO block would run in an implicit transaction and could not COMMIT.
        result = conn.pgconn.exec_(DEMO.encode())
        assert result.status == psycopg.pq.ExecStatus.COMMAND_OK, result.error_message
    ids = {m.group(0) for n in notices for m in re.finditer(r"demo-worker-\S+?(?=:|\s|$)", n)}
    assert len(ids) == 1, notices
    return ids.pop(), pid


def test_demo_worker_runs_the_jobs_under_an_unguessable_id(db, installed):
    db.execute("SELECT graphile_worker.add_job('demo', json_build_object('n', i)) FROM generate_series(1, 25) AS i")
    first, pid = run_demo(installed)
    assert re.fullmatch(rf"demo-worker-{UUID}", first), first
    assert str(pid) not in first.removeprefix("demo-worker-").replace("-", ""), first
    assert db.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0] == 0
    second, _ = run_demo(installed)
    assert second != first
