-- Schema version 2: the administrative functions (complete, permanently fail, reschedule, force unlock, cleanup).
-- depends: 0001.schema-v1
--
-- Every function here leaves locked jobs alone; "locked" is decided by
-- graphile_worker._private_is_unlocked (schema version 1) and nowhere else.
-- The job functions use plain UPDATE/DELETE, never SKIP LOCKED: when a worker
-- is in the middle of taking a job (its row is locked by an open transaction),
-- the call waits for that transaction and then re-checks the committed row, so
-- it acts on the worker's decision instead of racing it.

-- Fail fast rather than queue behind a long transaction (yoyo wraps the file in one transaction).
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 2;

-- summary: mark jobs as done, which deletes them; locked jobs are skipped.
CREATE FUNCTION graphile_worker.complete_jobs(job_ids bigint[])
RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  DELETE FROM graphile_worker._private_jobs AS jobs
  WHERE jobs.id = ANY (complete_jobs.job_ids)
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING *;
$$;
COMMENT ON FUNCTION graphile_worker.complete_jobs(bigint[]) IS
  'Deletes the given jobs as if they had run successfully, unless they are locked (running). Returns the deleted rows, which may be fewer than the ids given; NULL or an empty array does nothing.';

-- summary: stop jobs from ever being retried; locked jobs are skipped.
CREATE FUNCTION graphile_worker.permanently_fail_jobs(job_ids bigint[], error_message text DEFAULT NULL)
RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE graphile_worker._private_jobs AS jobs
  SET attempts = jobs.max_attempts,
      last_error = coalesce(permanently_fail_jobs.error_message, 'Manually marked as failed'),
      updated_at = now()
  WHERE jobs.id = ANY (permanently_fail_jobs.job_ids)
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING *;
$$;
COMMENT ON FUNCTION graphile_worker.permanently_fail_jobs(bigint[], text) IS
  'Sets attempts = max_attempts on the given unlocked jobs, so they are never run again, with last_error = error_message (default ''Manually marked as failed''). Returns the updated rows; locked jobs are left out.';

-- summary: change when and how often jobs run; NULL keeps a field as it is.
CREATE FUNCTION graphile_worker.reschedule_jobs(
  job_ids bigint[],
  run_at timestamptz DEFAULT NULL,
  priority integer DEFAULT NULL,
  attempts integer DEFAULT NULL,
  max_attempts integer DEFAULT NULL
) RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- The columns are smallint with a CHECK on max_attempts; checking here first
  -- names the argument, where a failed cast or the table's CHECK would not.
  IF priority < -32768 OR priority > 32767 THEN
    RAISE EXCEPTION 'priority is %; it must be between -32768 and 32767', priority
      USING ERRCODE = '22003', HINT = 'Lower numbers run first; pass NULL to keep each job''s priority.';
  END IF;
  IF attempts < 0 THEN
    RAISE EXCEPTION 'attempts is %; it must not be negative', attempts
      USING ERRCODE = '22023', HINT = 'Pass 0 to let the jobs start their attempts afresh, or NULL to keep them.';
  END IF;
  IF attempts > 32767 THEN
    RAISE EXCEPTION 'attempts is %; it must be at most 32767', attempts
      USING ERRCODE = '22003', HINT = 'Pass NULL to keep each job''s attempts.';
  END IF;
  IF max_attempts < 1 THEN
    RAISE EXCEPTION 'max_attempts is %; it must be at least 1', max_attempts
      USING ERRCODE = '23514', HINT = 'A job runs at most max_attempts times; pass NULL to keep each job''s value.';
  END IF;
  IF max_attempts > 32767 THEN
    RAISE EXCEPTION 'max_attempts is %; it must be at most 32767', max_attempts
      USING ERRCODE = '22003', HINT = 'Pass NULL to keep each job''s max_attempts.';
  END IF;

  RETURN QUERY
  UPDATE graphile_worker._private_jobs AS jobs
  SET run_at = coalesce(reschedule_jobs.run_at, jobs.run_at),
      priority = coalesce(reschedule_jobs.priority::smallint, jobs.priority),
      attempts = coalesce(reschedule_jobs.attempts::smallint, jobs.attempts),
      max_attempts = coalesce(reschedule_jobs.max_attempts::smallint, jobs.max_attempts),
      updated_at = now()
  WHERE jobs.id = ANY (reschedule_jobs.job_ids)
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING *;
END;
$$;
COMMENT ON FUNCTION graphile_worker.reschedule_jobs(bigint[], timestamptz, integer, integer, integer) IS
  'Sets run_at, priority, attempts and max_attempts of the given unlocked jobs; a NULL argument keeps that field. Returns the updated rows. Raises 22003 (out of smallint range), 22023 (attempts < 0) or 23514 (max_attempts < 1) before changing anything.';

-- summary: release the jobs and queues of workers that are known to be dead.
-- "locked_at IS NOT NULL" adds nothing to the result (locked_at and locked_by
-- are always set and cleared together) but lets the planner use the partial
-- jobs_locked_index of version 3: 2 ms instead of a 0.2 s scan at 1M jobs.
CREATE FUNCTION graphile_worker.force_unlock_workers(worker_ids text[]) RETURNS void
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  -- No lock check here on purpose: releasing these locks is the whole point.
  UPDATE graphile_worker._private_jobs AS jobs
  SET locked_at = NULL,
      locked_by = NULL
  WHERE jobs.locked_by = ANY (force_unlock_workers.worker_ids)
    AND jobs.locked_at IS NOT NULL;
  UPDATE graphile_worker._private_job_queues AS job_queues
  SET locked_at = NULL,
      locked_by = NULL
  WHERE job_queues.locked_by = ANY (force_unlock_workers.worker_ids);
$$;
COMMENT ON FUNCTION graphile_worker.force_unlock_workers(text[]) IS
  'Clears locked_at and locked_by on every job and queue locked by one of these worker ids, so their jobs can run again at once instead of after 4 hours. Only for workers that have died: never pass a live worker''s id.';

-- summary: what cleanup can do.
CREATE TYPE graphile_worker.cleanup_task AS ENUM (
  'GC_JOB_QUEUES',
  'GC_TASK_IDENTIFIERS',
  'DELETE_PERMAFAILED_JOBS'
);
COMMENT ON TYPE graphile_worker.cleanup_task IS
  'A cleanup operation: GC_JOB_QUEUES (queues without jobs), GC_TASK_IDENTIFIERS (task identifiers without jobs), DELETE_PERMAFAILED_JOBS (unlocked jobs with attempts >= max_attempts).';

-- summary: delete up to max_rows unlocked, permanently failed jobs.
--
-- The one place that decides which jobs DELETE_PERMAFAILED_JOBS may delete.
-- Shape: the ids are collected first (ARRAY(...)), then deleted by primary
-- key. "DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)" is
-- planned as a hash semi-join over a sequential scan of every job, because
-- the planner cannot estimate attempts >= max_attempts (it guesses a third of
-- the table); an id array is always an index scan. Rows another transaction
-- holds are skipped, never waited for: a worker or enqueuer about to change
-- such a job decides its fate. FOR UPDATE re-checks the newest version of each
-- row as it locks it, and we hold the lock until commit, so the DELETE acts on
-- exactly the rows checked. NULL max_rows means no limit.
CREATE FUNCTION graphile_worker._private_delete_permafailed_jobs(max_rows bigint) RETURNS bigint
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_deleted bigint;
BEGIN
  DELETE FROM graphile_worker._private_jobs AS jobs
  WHERE jobs.id = ANY (ARRAY(
      SELECT j.id
      FROM graphile_worker._private_jobs AS j
      WHERE j.attempts >= j.max_attempts
        AND graphile_worker._private_is_unlocked(j.locked_at)
      ORDER BY j.id
      LIMIT _private_delete_permafailed_jobs.max_rows
      FOR UPDATE SKIP LOCKED
    ))
    AND jobs.attempts >= jobs.max_attempts
    AND graphile_worker._private_is_unlocked(jobs.locked_at);
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END;
$$;
COMMENT ON FUNCTION graphile_worker._private_delete_permafailed_jobs(bigint) IS
  'Private: deletes up to max_rows (NULL: all) unlocked jobs with attempts >= max_attempts, lowest ids first, skipping rows other transactions hold; returns how many.';

-- summary: delete permanently failed jobs and unused task and queue rows,
-- safely while enqueuers and workers keep running.
--
-- The anti-joins compare task_id::bigint and job_queue_id::bigint: those are
-- the keys of the expression indexes of version 4, which make each check one
-- index probe (see 0004 for why the indexes are on expressions).
--
-- Concurrency design. The danger is deleting a task or queue row that a job is
-- about to refer to: the job would then vanish from the jobs view (inner join
-- on the task) or lose its queue (job_queue_id pointing at nothing). Enqueuers
-- (add_job, add_jobs, through _private_hold_tasks_and_queues) lock every task
-- and queue row they use FOR KEY SHARE until they commit. So GC works in two
-- statements:
--   1. Lock the candidates (no job refers to them) FOR UPDATE SKIP LOCKED.
--      Rows an enqueuer or worker holds are skipped, never waited for; once we
--      hold a row, no enqueuer can take it until we commit, and an enqueuer
--      that was waiting finds it gone and re-creates it (it retries).
--   2. Delete the rows we hold, re-checking that no job refers to them. This is
--      a new statement, so under READ COMMITTED it has a new snapshot that sees
--      every job committed by an enqueuer that held the row before we locked
--      it. One DELETE ... WHERE NOT EXISTS would not do: when it meets a row
--      that changed, PostgreSQL re-checks only that row, not the subquery, with
--      the statement's old snapshot, and could miss such a job.
-- Under REPEATABLE READ or SERIALIZABLE the snapshot never advances, so step 2
-- could miss a job committed meanwhile; the GC tasks refuse to run there
-- (SQLSTATE 25000) rather than risk it. DELETE_PERMAFAILED_JOBS is safe at any
-- level and runs first, so the same call also collects the rows it freed.
CREATE FUNCTION graphile_worker.cleanup(
  tasks graphile_worker.cleanup_task[] DEFAULT '{GC_JOB_QUEUES,GC_TASK_IDENTIFIERS}',
  task_identifiers_to_keep text[] DEFAULT '{}'
) RETURNS TABLE (task graphile_worker.cleanup_task, deleted_count bigint)
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids integer[];
  v_isolation text := current_setting('transaction_isolation');
BEGIN
  IF tasks IS NULL OR cardinality(tasks) = 0 THEN
    RETURN;
  END IF;
  IF array_position(tasks, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'tasks must not contain NULL'
      USING ERRCODE = '22004',
            HINT = 'Pass any of GC_JOB_QUEUES, GC_TASK_IDENTIFIERS, DELETE_PERMAFAILED_JOBS.';
  END IF;
  IF v_isolation <> 'read committed'
     AND ('GC_TASK_IDENTIFIERS' = ANY (tasks) OR 'GC_JOB_QUEUES' = ANY (tasks)) THEN
    RAISE EXCEPTION 'cleanup of task identifiers or job queues needs READ COMMITTED; this transaction is %', v_isolation
      USING ERRCODE = '25000',
            HINT = 'Call cleanup outside an explicit transaction, or in one started at READ COMMITTED: a fixed snapshot could delete a row a new job needs.';
  END IF;

  IF 'DELETE_PERMAFAILED_JOBS' = ANY (tasks) THEN
    -- Version 4: one statement shape for this and the batched delete, which
    -- reads jobs_permafailed_index instead of every job (see that function).
    deleted_count := graphile_worker._private_delete_permafailed_jobs(NULL);
    task := 'DELETE_PERMAFAILED_JOBS';
    RETURN NEXT;
  END IF;

  IF 'GC_TASK_IDENTIFIERS' = ANY (tasks) THEN
    -- Step 1 (see above): hold the unused task rows nobody else holds.
    SELECT coalesce(array_agg(candidates.id), '{}') INTO v_ids
    FROM (
      SELECT t.id
      FROM graphile_worker._private_tasks AS t
      WHERE NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.task_id::bigint = t.id::bigint)
        -- array_position, unlike <> ALL, is not fooled by a NULL in the list.
        AND array_position(task_identifiers_to_keep, t.identifier) IS NULL
      FOR UPDATE OF t SKIP LOCKED
    ) AS candidates;
    -- Step 2: a fresh snapshot; delete only what is still unused.
    DELETE FROM graphile_worker._private_tasks AS t
    WHERE t.id = ANY (v_ids)
      AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.task_id::bigint = t.id::bigint);
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    task := 'GC_TASK_IDENTIFIERS';
    RETURN NEXT;
  END IF;

  IF 'GC_JOB_QUEUES' = ANY (tasks) THEN
    -- Step 1: hold the unused, unlocked queue rows nobody else holds. A queue
    -- locked by a live worker is kept even when its job is already gone.
    SELECT coalesce(array_agg(candidates.id), '{}') INTO v_ids
    FROM (
      SELECT jq.id
      FROM graphile_worker._private_job_queues AS jq
      WHERE graphile_worker._private_is_unlocked(jq.locked_at)
        AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j
                        WHERE j.job_queue_id IS NOT NULL AND j.job_queue_id::bigint = jq.id::bigint)
      FOR UPDATE OF jq SKIP LOCKED
    ) AS candidates;
    -- Step 2: a fresh snapshot; delete only what is still unused. No need to
    -- look at locked_at again: step 1 checked the newest version of each row
    -- as it locked it, and nobody can change a row while we hold it.
    DELETE FROM graphile_worker._private_job_queues AS jq
    WHERE jq.id = ANY (v_ids)
      AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j
                      WHERE j.job_queue_id IS NOT NULL AND j.job_queue_id::bigint = jq.id::bigint);
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    task := 'GC_JOB_QUEUES';
    RETURN NEXT;
  END IF;
END;
$$;
COMMENT ON FUNCTION graphile_worker.cleanup(graphile_worker.cleanup_task[], text[]) IS
  'Runs the asked cleanup tasks in the order DELETE_PERMAFAILED_JOBS, GC_TASK_IDENTIFIERS, GC_JOB_QUEUES and returns one row per task with the number of rows deleted. Locked jobs and queues, rows held by running transactions and task_identifiers_to_keep are never deleted; safe while workers and enqueuers run. The GC tasks need READ COMMITTED (25000 otherwise).';
