"""Cleanup while the system runs: several processes enqueue, one loops every cleanup task.

Each adder process enqueues jobs with fresh task identifiers and queue names (through
add_job, add_jobs, and add_job twice in one explicit transaction), and also completes
some of its jobs and then enqueues again with the same, now unused, names: exactly the
rows cleanup is trying to delete at that moment. It records every job it added and
what it did with it. Meanwhile another process calls
cleanup('{DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES}') in a loop.
Afterwards every job that was neither completed nor permanently failed must be
there, with its task row and, if it asked for one, its queue row with the right name.

GW_STRESS_SECONDS (default 15) and GW_STRESS_PROCESSES (default 4) size the run.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import psycopg

SECONDS = float(os.environ.get("GW_STRESS_SECONDS", "15"))
PROCESSES = int(os.environ.get("GW_STRESS_PROCESSES", "4"))
ALL_TASKS = "{DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES}"

# One record per job added: (job id, task identifier, queue name or None, what became of it).
LIVE, COMPLETED, PERMAFAILED = "live", "completed", "permafailed"


def adder(dsn: str, number: int, until: float, seed: int) -> list[tuple[int, str, str | None, str]]:
    rng = random.Random(seed)
    records: list[list] = []
    in_use: Counter[str] = Counter()  # jobs not completed, per task identifier and per queue name
    reusable: list[tuple[str, str | None]] = []  # names whose jobs were all completed: unused rows
    fresh = 0

    def names() -> tuple[str, str | None]:
        nonlocal fresh
        if reusable and rng.random() < 0.4:
            return reusable.pop(rng.randrange(len(reusable)))
        fresh += 1
        return f"p{number}-task-{fresh}", (f"p{number}-queue-{fresh}" if rng.random() < 0.7 else None)

    def keys(identifier: str, queue: str | None) -> list[str]:
        return [f"t:{identifier}"] + ([f"q:{queue}"] if queue else [])

    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < until:
            shape = rng.random()
            if shape < 0.4:
                identifier, queue = names()
                job = conn.execute(
                    "SELECT id FROM graphile_worker.add_job(%s, queue_name => %s)", [identifier, queue]
                ).fetchone()[0]
                added = [[job, identifier, queue, LIVE]]
            elif shape < 0.7:
                specs = [names() for _ in range(rng.randint(2, 4))]
                # Each spec carries its position in its payload, to pair it with the job made from it.
                rows = conn.execute(
                    "SELECT id, (payload ->> 'spec')::int FROM graphile_worker.add_jobs(ARRAY("
                    "  SELECT ROW(i, json_build_object('spec', o), q, NULL, NULL, NULL, NULL, NULL)"
                    "    ::graphile_worker.job_spec"
                    "  FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS u (i, q, o)))",
                    [[i for i, _ in specs], [q for _, q in specs]],
                ).fetchall()
                assert sorted(o for _, o in rows) == list(range(1, len(specs) + 1)), "add_jobs lost a spec"
                added = [[job, *specs[o - 1], LIVE] for job, o in rows]
            else:
                # Two jobs in one transaction: the rows stay held across statements.
                added = []
                with conn.transaction():
                    for _ in range(2):
                        identifier, queue = names()
                        job = conn.execute(
                            "SELECT id FROM graphile_worker.add_job(%s, queue_name => %s)", [identifier, queue]
                        ).fetchone()[0]
                        added.append([job, identifier, queue, LIVE])
            records.extend(added)
            for _, identifier, queue, _ in added:
                in_use.update(keys(identifier, queue))

            # Finish some jobs now, so that their task and queue rows become garbage that
            # cleanup goes after while this process may ask for the same names again.
            for record in added:
                fate = rng.random()
                if fate < 0.35:
                    done = conn.execute(
                        "SELECT id FROM graphile_worker.complete_jobs(ARRAY[%s]::bigint[])", [record[0]]
                    )
                    assert done.fetchone() is not None, "a just-added unlocked job could not be completed"
                    record[3] = COMPLETED
                    in_use.subtract(keys(record[1], record[2]))
                    if all(in_use[k] == 0 for k in keys(record[1], record[2])):
                        reusable.append((record[1], record[2]))
                elif fate < 0.45:
                    failed = conn.execute(
                        "SELECT id FROM graphile_worker.permanently_fail_jobs(ARRAY[%s]::bigint[])", [record[0]]
                    )
                    assert failed.fetchone() is not None, "a just-added unlocked job could not be failed"
                    record[3] = PERMAFAILED
    return [tuple(r) for r in records]


def cleaner(dsn: str, until: float) -> tuple[int, dict[str, int]]:
    rounds = 0
    deleted: Counter[str] = Counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < until:
            for task, count in conn.execute(
                "SELECT task::text, deleted_count FROM graphile_worker.cleanup(%s)", [ALL_TASKS]
            ):
                deleted[task] += count
            rounds += 1
    return rounds, dict(deleted)


def test_cleanup_loses_no_job_while_enqueuers_run(installed, capsys):
    started = time.monotonic()
    until = started + SECONDS
    # fork: the children need nothing from the parent but its arguments, and open their own connections.
    with ProcessPoolExecutor(max_workers=PROCESSES + 1, mp_context=multiprocessing.get_context("fork")) as pool:
        adders = [pool.submit(adder, installed, n, until, 1000 + n) for n in range(PROCESSES)]
        cleaning = pool.submit(cleaner, installed, until)
        records = [record for future in adders for record in future.result()]
        rounds, deleted = cleaning.result()
    elapsed = time.monotonic() - started

    with psycopg.connect(installed, autocommit=True) as conn:
        # One last cleanup now that nothing else runs: it must not find anything it should not delete.
        final = dict(conn.execute("SELECT task::text, deleted_count FROM graphile_worker.cleanup(%s)", [ALL_TASKS]))
        present = {
            job: (identifier, queue)
            for job, identifier, queue in conn.execute(
                "SELECT id, task_identifier, queue_name FROM graphile_worker.jobs"
            )
        }
        orphans = conn.execute(
            "SELECT count(*) FROM graphile_worker._private_jobs AS j"
            " WHERE NOT EXISTS (SELECT 1 FROM graphile_worker._private_tasks AS t WHERE t.id = j.task_id)"
            "    OR (j.job_queue_id IS NOT NULL AND NOT EXISTS"
            "        (SELECT 1 FROM graphile_worker._private_job_queues AS q WHERE q.id = j.job_queue_id))"
        ).fetchone()[0]

    live = [r for r in records if r[3] == LIVE]
    lost = [r for r in live if r[0] not in present]
    wrong = [r for r in live if r[0] in present and present[r[0]] != (r[1], r[2])]
    resurrected = [r for r in records if r[3] != LIVE and r[0] in present]
    fates = Counter(r[3] for r in records)

    with capsys.disabled():
        print(
            f"\ncleanup stress: processes={PROCESSES} adders + 1 cleaner, seconds={elapsed:.1f},"
            f" jobs added={len(records)} (live {fates[LIVE]}, completed {fates[COMPLETED]},"
            f" permanently failed {fates[PERMAFAILED]}), cleanup rounds={rounds},"
            f" deleted during the run: permafailed jobs={deleted.get('DELETE_PERMAFAILED_JOBS', 0)},"
            f" task identifiers={deleted.get('GC_TASK_IDENTIFIERS', 0)},"
            f" job queues={deleted.get('GC_JOB_QUEUES', 0)}; jobs lost={len(lost)},"
            f" wrong task/queue={len(wrong)}, orphans={orphans}"
        )

    assert lost == [], f"{len(lost)} jobs vanished, e.g. {lost[:5]}"
    assert wrong == [], f"{len(wrong)} jobs lost their task or queue, e.g. {wrong[:5]}"
    assert orphans == 0
    assert resurrected == []
    assert fates[LIVE] > 0 and fates[COMPLETED] > 0
    # The run must have raced for real: cleanup deleted rows while the adders were adding.
    assert rounds > 1
    assert deleted.get("GC_TASK_IDENTIFIERS", 0) > 0 and deleted.get("GC_JOB_QUEUES", 0) > 0
    # Permanently failed jobs are deleted (during the run or by the final call), never others.
    assert final["DELETE_PERMAFAILED_JOBS"] + deleted.get("DELETE_PERMAFAILED_JOBS", 0) == fates[PERMAFAILED]
