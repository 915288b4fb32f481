-- Rollback of schema version 4: back to version 3 (drops the scale indexes and the batched delete; restores version 2's cleanup and force_unlock_workers).
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.cleanup(
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
    -- Skip rows another transaction is changing; if a worker or enqueuer is
    -- about to lock or revive such a job, it is not ours to delete.
    DELETE FROM graphile_worker._private_jobs AS jobs
    WHERE jobs.id IN (
      SELECT j.id
      FROM graphile_worker._private_jobs AS j
      WHERE j.attempts >= j.max_attempts
        AND graphile_worker._private_is_unlocked(j.locked_at)
      FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    task := 'DELETE_PERMAFAILED_JOBS';
    RETURN NEXT;
  END IF;

  IF 'GC_TASK_IDENTIFIERS' = ANY (tasks) THEN
    -- Step 1 (see above): hold the unused task rows nobody else holds.
    SELECT coalesce(array_agg(candidates.id), '{}') INTO v_ids
    FROM (
      SELECT t.id
      FROM graphile_worker._private_tasks AS t
      WHERE NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.task_id = t.id)
        -- array_position, unlike <> ALL, is not fooled by a NULL in the list.
        AND array_position(task_identifiers_to_keep, t.identifier) IS NULL
      FOR UPDATE OF t SKIP LOCKED
    ) AS candidates;
    -- Step 2: a fresh snapshot; delete only what is still unused.
    DELETE FROM graphile_worker._private_tasks AS t
    WHERE t.id = ANY (v_ids)
      AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.task_id = t.id);
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
        AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.job_queue_id = jq.id)
      FOR UPDATE OF jq SKIP LOCKED
    ) AS candidates;
    -- Step 2: a fresh snapshot; delete only what is still unused. No need to
    -- look at locked_at again: step 1 checked the newest version of each row
    -- as it locked it, and nobody can change a row while we hold it.
    DELETE FROM graphile_worker._private_job_queues AS jq
    WHERE jq.id = ANY (v_ids)
      AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.job_queue_id = jq.id);
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    task := 'GC_JOB_QUEUES';
    RETURN NEXT;
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker.force_unlock_workers(worker_ids text[]) RETURNS void
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  -- No lock check here on purpose: releasing these locks is the whole point.
  UPDATE graphile_worker._private_jobs AS jobs
  SET locked_at = NULL,
      locked_by = NULL
  WHERE jobs.locked_by = ANY (force_unlock_workers.worker_ids);
  UPDATE graphile_worker._private_job_queues AS job_queues
  SET locked_at = NULL,
      locked_by = NULL
  WHERE job_queues.locked_by = ANY (force_unlock_workers.worker_ids);
$$;

-- Dropping what version 4 added is the point of a rollback; CONCURRENTLY cannot
-- run inside the transaction yoyo wraps this file in, and these indexes drop fast.
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.delete_permafailed_jobs_batch(integer);
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker._private_delete_permafailed_jobs(bigint);
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX graphile_worker.jobs_permafailed_index;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX graphile_worker.jobs_job_queue_id_index;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX graphile_worker.jobs_task_id_index;

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 3;
