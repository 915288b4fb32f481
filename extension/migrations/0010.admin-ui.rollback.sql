-- Rollback of schema version 10: version 9's bodies of the functions it changed (as installed, from its
-- schema.sql), then the objects it added are dropped. The audit log and the pauses go with it; a queue
-- paused at the time is unlocked first, so that it runs again rather than stay locked for ever.
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 9;

UPDATE graphile_worker._private_job_queues
SET locked_at = NULL, locked_by = NULL
WHERE locked_by = 'graphile_worker.pause_queue' COLLATE "default";

CREATE OR REPLACE FUNCTION graphile_worker.complete_jobs(job_ids bigint[]) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  DELETE FROM graphile_worker._private_jobs AS jobs
  WHERE jobs.id = ANY (complete_jobs.job_ids)
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING *;
$$;

COMMENT ON FUNCTION graphile_worker.complete_jobs(job_ids bigint[]) IS 'Deletes the given jobs as if they had run successfully, unless they are locked (running). Returns the deleted rows, which may be fewer than the ids given; NULL or an empty array does nothing.';

CREATE OR REPLACE FUNCTION graphile_worker.permanently_fail_jobs(job_ids bigint[], error_message text DEFAULT NULL::text) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  UPDATE graphile_worker._private_jobs AS jobs
  SET attempts = jobs.max_attempts,
      last_error = coalesce(permanently_fail_jobs.error_message, 'Manually marked as failed'),
      updated_at = now()
  WHERE jobs.id = ANY (permanently_fail_jobs.job_ids)
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING *;
$$;

COMMENT ON FUNCTION graphile_worker.permanently_fail_jobs(job_ids bigint[], error_message text) IS 'Sets attempts = max_attempts on the given unlocked jobs, so they are never run again, with last_error = error_message (default ''Manually marked as failed''). Returns the updated rows; locked jobs are left out.';

CREATE OR REPLACE FUNCTION graphile_worker.reschedule_jobs(job_ids bigint[], run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, priority integer DEFAULT NULL::integer, attempts integer DEFAULT NULL::integer, max_attempts integer DEFAULT NULL::integer) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
  IF max_attempts < 1 THEN  -- 22003, as add_job raises for the same argument
    RAISE EXCEPTION 'max_attempts is %; it must be at least 1', max_attempts
      USING ERRCODE = '22003', HINT = 'A job runs at most max_attempts times; pass NULL to keep each job''s value.';
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

COMMENT ON FUNCTION graphile_worker.reschedule_jobs(job_ids bigint[], run_at timestamp with time zone, priority integer, attempts integer, max_attempts integer) IS 'Sets run_at, priority, attempts and max_attempts of the given unlocked jobs; a NULL argument keeps that field. Returns the updated rows. Raises 22003 (out of smallint range, or max_attempts < 1) or 22023 (attempts < 0) before changing anything.';

CREATE OR REPLACE FUNCTION graphile_worker.force_unlock_workers(worker_ids text[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  -- No lock check here on purpose: releasing these locks is the whole point.
  UPDATE graphile_worker._private_jobs AS jobs
  SET locked_at = NULL,
      locked_by = NULL
  WHERE jobs.locked_by = ANY (force_unlock_workers.worker_ids COLLATE "default")
    AND jobs.locked_at IS NOT NULL;
  UPDATE graphile_worker._private_job_queues AS job_queues
  SET locked_at = NULL,
      locked_by = NULL
  WHERE job_queues.locked_by = ANY (force_unlock_workers.worker_ids COLLATE "default");
$$;

COMMENT ON FUNCTION graphile_worker.force_unlock_workers(worker_ids text[]) IS 'Clears locked_at and locked_by on every job and queue locked by one of these worker ids, so their jobs can run again at once instead of after 4 hours. Only for workers that have died: never pass a live worker''s id.';

CREATE OR REPLACE FUNCTION graphile_worker.cleanup(tasks graphile_worker.cleanup_task[] DEFAULT '{GC_JOB_QUEUES,GC_TASK_IDENTIFIERS}'::graphile_worker.cleanup_task[], task_identifiers_to_keep text[] DEFAULT '{}'::text[]) RETURNS TABLE(task graphile_worker.cleanup_task, deleted_count bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
        AND array_position(task_identifiers_to_keep COLLATE "default", t.identifier) IS NULL
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

COMMENT ON FUNCTION graphile_worker.cleanup(tasks graphile_worker.cleanup_task[], task_identifiers_to_keep text[]) IS 'Runs the asked cleanup tasks in the order DELETE_PERMAFAILED_JOBS, GC_TASK_IDENTIFIERS, GC_JOB_QUEUES and returns one row per task with the number of rows deleted. Locked jobs and queues, rows held by running transactions and task_identifiers_to_keep are never deleted; safe while workers and enqueuers run. The GC tasks need READ COMMITTED (25000 otherwise).';

CREATE OR REPLACE FUNCTION graphile_worker.delete_permafailed_jobs_batch(batch_size integer DEFAULT 10000) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF batch_size IS NULL THEN
    RAISE EXCEPTION 'batch_size must not be null'
      USING ERRCODE = '22004', HINT = 'Pass how many jobs to delete per call, e.g. 10000.';
  END IF;
  IF batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size is %; it must be at least 1', batch_size
      USING ERRCODE = '22023', HINT = 'Pass how many jobs to delete per call, e.g. 10000.';
  END IF;
  RETURN graphile_worker._private_delete_permafailed_jobs(batch_size);
END;
$$;

COMMENT ON FUNCTION graphile_worker.delete_permafailed_jobs_batch(batch_size integer) IS 'Deletes at most batch_size (default 10000) unlocked, permanently failed jobs (attempts >= max_attempts), lowest ids first, skipping rows other transactions hold, and returns how many. Call it, one transaction per call, until it returns less than batch_size (python -m installer does; from psql, a DO block that COMMITs after each call). Raises 22004/22023 for a NULL or non-positive batch_size.';

CREATE OR REPLACE FUNCTION graphile_worker.fetch_jobs(worker_id text, task_identifiers text[] DEFAULT NULL::text[], batch_size integer DEFAULT 1, forbidden_flags text[] DEFAULT NULL::text[]) RETURNS SETOF graphile_worker.fetched_job
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  v_task_ids integer[];
  v_job_ids bigint[];
  v_queued boolean;
  v_queue_ids integer[] := '{}';
  -- Queues taken in this batch or held by someone else: skip their other jobs.
  v_skip_queues integer[] := '{}';
  v_cand record;
  v_queue_id integer;
  c_candidates CURSOR (p_task_ids integer[]) FOR
    SELECT j.id, j.job_queue_id
    FROM graphile_worker._private_jobs AS j
    WHERE j.is_available
      AND j.run_at <= now()
      AND (p_task_ids IS NULL OR j.task_id = ANY (p_task_ids))
      AND (j.job_queue_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM graphile_worker._private_job_queues AS q
        WHERE q.id = j.job_queue_id AND NOT q.is_available
      ))
      AND (forbidden_flags IS NULL OR j.flags IS NULL OR NOT (j.flags ?| forbidden_flags))
    ORDER BY j.priority, j.run_at, j.id;
BEGIN
  IF worker_id IS NULL OR length(worker_id) NOT BETWEEN 1 AND 256 THEN  -- the check raises; calling it only then saves a call per job
    PERFORM graphile_worker._private_check_worker_id(worker_id);
  END IF;
  IF batch_size IS NULL THEN
    RAISE EXCEPTION 'batch_size must not be null'
      USING ERRCODE = '22004', HINT = 'Pass how many jobs to fetch at most, 1 to 10000.';
  END IF;
  IF batch_size < 1 OR batch_size > 10000 THEN
    RAISE EXCEPTION 'batch_size is %; it must be between 1 and 10000', batch_size
      USING ERRCODE = '22023', HINT = 'Pass how many jobs to fetch at most, 1 to 10000.';
  END IF;

  -- Resolved on every call, never cached by clients: cleanup may delete a task
  -- row with no jobs and a later add_job give the identifier a new id.
  IF task_identifiers IS NOT NULL THEN
    v_task_ids := ARRAY(
      SELECT t.id FROM graphile_worker._private_tasks AS t WHERE t.identifier = ANY (task_identifiers COLLATE "default")
    );
    IF cardinality(v_task_ids) = 0 THEN
      RETURN;
    END IF;
  END IF;

  SELECT array_agg(c.id), bool_or(c.job_queue_id IS NOT NULL) INTO v_job_ids, v_queued
  FROM (
    SELECT j.id, j.job_queue_id
    FROM graphile_worker._private_jobs AS j
    WHERE j.is_available
      AND j.run_at <= now()
      AND (v_task_ids IS NULL OR j.task_id = ANY (v_task_ids))
      AND (j.job_queue_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM graphile_worker._private_job_queues AS q
        WHERE q.id = j.job_queue_id AND NOT q.is_available
      ))
      AND (forbidden_flags IS NULL OR j.flags IS NULL OR NOT (j.flags ?| forbidden_flags))
    ORDER BY j.priority, j.run_at, j.id
    LIMIT batch_size
    FOR UPDATE OF j SKIP LOCKED
  ) AS c;

  IF v_job_ids IS NULL THEN
    RETURN;
  END IF;

  IF v_queued THEN
    v_job_ids := '{}';
    FOR v_cand IN c_candidates(v_task_ids) LOOP
      CONTINUE WHEN v_cand.job_queue_id = ANY (v_skip_queues);

      -- Lock the job, checking again on its newest version that it still
      -- qualifies (another worker may have taken it, add_job moved it).
      SELECT j.job_queue_id INTO v_queue_id
      FROM graphile_worker._private_jobs AS j
      WHERE j.id = v_cand.id
        AND j.is_available
        AND j.run_at <= now()
        AND (v_task_ids IS NULL OR j.task_id = ANY (v_task_ids))
        AND (forbidden_flags IS NULL OR j.flags IS NULL OR NOT (j.flags ?| forbidden_flags))
      FOR UPDATE SKIP LOCKED;
      IF NOT FOUND THEN
        -- Someone else holds it or just took it. Its queue's later jobs must
        -- not overtake it: a queue runs its jobs in order.
        IF v_cand.job_queue_id IS NOT NULL THEN
          v_skip_queues := v_skip_queues || v_cand.job_queue_id;
        END IF;
        CONTINUE;
      END IF;

      IF v_queue_id IS NOT NULL THEN
        CONTINUE WHEN v_queue_id = ANY (v_skip_queues);
        -- NO KEY UPDATE, not UPDATE: add_job holds queue rows FOR KEY SHARE
        -- while it enqueues, and that must not make us pass the queue over.
        PERFORM 1
        FROM graphile_worker._private_job_queues AS q
        WHERE q.id = v_queue_id AND q.is_available
        FOR NO KEY UPDATE SKIP LOCKED;
        v_skip_queues := v_skip_queues || v_queue_id;
        CONTINUE WHEN NOT FOUND;
        v_queue_ids := v_queue_ids || v_queue_id;
      END IF;

      v_job_ids := v_job_ids || v_cand.id;
      EXIT WHEN cardinality(v_job_ids) >= batch_size;
    END LOOP;

    IF cardinality(v_job_ids) = 0 THEN
      RETURN;
    END IF;

    UPDATE graphile_worker._private_job_queues AS q
    SET locked_at = now(),
        locked_by = fetch_jobs.worker_id
    WHERE q.id = ANY (v_queue_ids);
  END IF;

  -- The names come from one primary-key lookup per returned job (version 5
  -- joined, reading every task and queue row on each call). A job we locked is
  -- returned whatever happened to its task or queue row (the name is then
  -- NULL), rather than stay locked without a worker knowing of it.
  RETURN QUERY
  WITH locked AS (
    UPDATE graphile_worker._private_jobs AS j
    SET attempts = j.attempts + 1,
        locked_at = now(),
        locked_by = fetch_jobs.worker_id,
        updated_at = now()
    WHERE j.id = ANY (v_job_ids)
    RETURNING j.*
  )
  SELECT l.id,
         (SELECT t.identifier FROM graphile_worker._private_tasks AS t WHERE t.id = l.task_id),
         CASE WHEN l.job_queue_id IS NOT NULL THEN
           (SELECT q.queue_name FROM graphile_worker._private_job_queues AS q WHERE q.id = l.job_queue_id)
         END,
         l.payload, l.priority, l.run_at, l.attempts, l.max_attempts,
         l.key, l.flags, l.locked_at, l.locked_by, l.last_error, l.revision, l.created_at
  FROM locked AS l
  ORDER BY l.priority, l.run_at, l.id;
END;
$$;

COMMENT ON FUNCTION graphile_worker.fetch_jobs(worker_id text, task_identifiers text[], batch_size integer, forbidden_flags text[]) IS 'Locks for worker_id and returns up to batch_size (1..10000) due, available jobs in order of priority, run_at, id; attempts goes up by one. task_identifiers NULL: any task. Jobs with any of forbidden_flags are skipped. A job of a named queue is taken only with its queue, at most one per queue; locked rows are skipped, never waited for. Commit before running the jobs.';


DROP VIEW graphile_worker.admin_log;
DROP VIEW graphile_worker.pauses;
DROP FUNCTION graphile_worker.prune_admin_log(interval);
DROP FUNCTION graphile_worker.job_detail(bigint);
DROP FUNCTION graphile_worker.job_state(graphile_worker.jobs);
DROP FUNCTION graphile_worker.pause_queue(text, text);
DROP FUNCTION graphile_worker.resume_queue(text);
DROP FUNCTION graphile_worker.pause_task(text, text);
DROP FUNCTION graphile_worker.resume_task(text);
DROP FUNCTION graphile_worker._private_log_admin(text, integer, bigint, text, bigint[], text[]);
DROP FUNCTION graphile_worker._private_job_state(timestamptz, smallint, smallint, timestamptz, boolean);
DROP FUNCTION graphile_worker._private_check_name(text, text);
DROP TABLE graphile_worker._private_admin_log;
DROP TABLE graphile_worker._private_paused;
DROP TYPE graphile_worker.job_state;
