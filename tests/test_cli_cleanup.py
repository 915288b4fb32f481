"""python -m installer cleanup: one line per task, --keep-task, and clean refusals."""

from __future__ import annotations

import psycopg
import pytest

from gwtest.procs import run_cli
from installer.cli import main
from installer.core import CLEANUP_TASKS

ALL = "DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES"


def seed(dsn: str) -> None:
    """A live job, a permanently failed one (sole user of its task and queue), unused tasks and a queue."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT graphile_worker.add_job('live-task', queue_name => 'live-queue')")
        conn.execute(
            "SELECT graphile_worker.permanently_fail_jobs(ARRAY["
            "(SELECT id FROM graphile_worker.add_job('perma-task', queue_name => 'perma-queue'))])"
        )
        for identifier in ("unused-a", "unused-b", "unused-c"):
            conn.execute(
                "SELECT graphile_worker.complete_jobs(ARRAY["
                "(SELECT id FROM graphile_worker.add_job(%s, queue_name => 'unused-queue'))])",
                [identifier],
            )


def state(dsn: str) -> tuple[set[str], set[str], set[str]]:
    with psycopg.connect(dsn) as conn:
        tasks = {r[0] for r in conn.execute("SELECT identifier FROM graphile_worker._private_tasks")}
        queues = {r[0] for r in conn.execute("SELECT queue_name FROM graphile_worker._private_job_queues")}
        jobs = {r[0] for r in conn.execute("SELECT task_identifier FROM graphile_worker.jobs")}
    return tasks, queues, jobs


def test_cleanup_prints_one_line_per_task_in_execution_order(installed, capsys):
    seed(installed)
    # Asked in another order, with a duplicate: run and reported in execution order, once each.
    code = main(
        [
            "--database",
            installed,
            "cleanup",
            "GC_JOB_QUEUES, GC_TASK_IDENTIFIERS,DELETE_PERMAFAILED_JOBS,GC_JOB_QUEUES",
            "--keep-task",
            "unused-a",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == [
        "DELETE_PERMAFAILED_JOBS: 1 deleted",
        "GC_TASK_IDENTIFIERS: 3 deleted",
        "GC_JOB_QUEUES: 2 deleted",
    ]
    assert state(installed) == ({"live-task", "unused-a"}, {"live-queue"}, {"live-task"})


def test_keep_task_takes_several_identifiers_and_can_be_repeated(installed, capsys):
    seed(installed)
    code = main(
        ["--database", installed, "cleanup", "GC_TASK_IDENTIFIERS", "--keep-task", "unused-a", "unused-b"]
        + ["--keep-task", "unused-c"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == ["GC_TASK_IDENTIFIERS: 0 deleted"]
    assert {"unused-a", "unused-b", "unused-c"} <= state(installed)[0]


def test_cleanup_from_a_child_process_as_a_pipeline_runs_it(installed):
    seed(installed)
    result = run_cli("--database", installed, "cleanup", ALL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "DELETE_PERMAFAILED_JOBS: 1 deleted",
        "GC_TASK_IDENTIFIERS: 4 deleted",
        "GC_JOB_QUEUES: 2 deleted",
    ]
    assert result.stderr == ""


@pytest.mark.parametrize(
    "tasks", ["GC_JOB_QUEUES,NOT_A_TASK", "gc_job_queues", "DELETE_PERMAFAILED_JOBS;GC_JOB_QUEUES"]
)
def test_unknown_task_lists_the_valid_ones_and_changes_nothing(installed, tasks):
    seed(installed)
    before = state(installed)
    result = run_cli("--database", installed, "cleanup", tasks)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "unknown cleanup task" in result.stderr
    for name in CLEANUP_TASKS:
        assert name in result.stderr
    assert state(installed) == before


@pytest.mark.parametrize("tasks", ["", ",", " , "])
def test_no_task_is_an_error(installed, capsys, tasks):
    assert main(["--database", installed, "cleanup", tasks]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "no cleanup task given" in err and "GC_JOB_QUEUES" in err


def test_missing_task_argument_is_bad_usage(installed, capsys):
    assert main(["--database", installed, "cleanup"]) == 2
    assert "required" in capsys.readouterr().err


def test_cleanup_needs_the_schema(dsn, capsys):
    assert main(["--database", dsn, "cleanup", ALL]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "run migrate first" in err


def test_cleanup_runs_at_read_committed_whatever_the_database_default(installed, capsys):
    seed(installed)
    dbname = installed.rsplit("/", 1)[1]
    with psycopg.connect(installed, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {dbname} SET default_transaction_isolation = 'repeatable read'")
    # The SQL function itself refuses such a default, so the CLI must ask for READ COMMITTED.
    with psycopg.connect(installed, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as failure:
            conn.execute("SELECT * FROM graphile_worker.cleanup()")
        assert failure.value.sqlstate == "25000"

    assert main(["--database", installed, "cleanup", "GC_TASK_IDENTIFIERS,GC_JOB_QUEUES"]) == 0
    assert capsys.readouterr().out.splitlines() == ["GC_TASK_IDENTIFIERS: 3 deleted", "GC_JOB_QUEUES: 1 deleted"]


def test_a_database_error_is_one_line_without_the_password(capsys):
    code = main(["--database", "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere", "cleanup", ALL])
    out, err = capsys.readouterr()
    assert code == 1
    assert "s3cret-pw" not in out + err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
