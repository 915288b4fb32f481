-- Schema version 11: one SQLSTATE per kind of bad argument, in every function.
-- depends: 0010.admin-ui
--
-- The rule (README, "Error codes"; pgtap/09-contract.sql checks every RAISE in the schema against it):
--   * a NULL where a value is needed: 22004 (null_value_not_allowed);
--   * a number outside its allowed range: 22003 (numeric_value_out_of_range);
--   * any other invalid value (a text too long or empty, a reserved or repeated value, a bad
--     interval): 22023 (invalid_parameter_value);
--   * job_key_mode keeps GWBKM, graphile-worker's own code for it.
-- Three checks broke the rule and change code, not message: fetch_jobs' (and so
-- complete_and_fetch_jobs') batch_size outside 1..10000, delete_permafailed_jobs_batch's batch_size
-- below 1, and reschedule_jobs' negative attempts were 22023 and are now 22003, like max_attempts
-- and priority everywhere.

SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 11;

-- summary: as version 10; batch_size out of range raises 22003.
CREATE OR REPLACE FUNCTION graphile_worker.fetch_jobs(worker_id text, task_identifiers text[] DEFAULT NULL::text[], batch_size integer DEFAULT 1, forbidden_flags text[] DEFAULT NULL::text[]) RETURNS SETOF graphile_worker.fetched_job
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  v_task_ids integer[];
  -- Paused tasks, when the caller takes any task (NULL when none is paused).
  v_paused_ids integer[];
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
      AND (v_paused_ids IS NULL OR NOT (j.task_id = ANY (v_paused_ids)))
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
  IF worker_id = 'graphile_worker.pause_queue' THEN
    RAISE EXCEPTION 'worker_id % is reserved: it marks the queues pause_queue has paused', worker_id
      USING ERRCODE = '22023', HINT = 'Use a worker id of your own, e.g. ''worker-'' || gen_random_uuid().';
  END IF;
  IF batch_size IS NULL THEN
    RAISE EXCEPTION 'batch_size must not be null'
      USING ERRCODE = '22004', HINT = 'Pass how many jobs to fetch at most, 1 to 10000.';
  END IF;
  IF batch_size < 1 OR batch_size > 10000 THEN
    RAISE EXCEPTION 'batch_size is %; it must be between 1 and 10000', batch_size
      USING ERRCODE = '22003', HINT = 'Pass how many jobs to fetch at most, 1 to 10000.';
  END IF;

  -- Resolved on every call, never cached by clients: cleanup may delete a task
  -- row with no jobs and a later add_job give the identifier a new id.
  IF task_identifiers IS NOT NULL THEN
    v_task_ids := ARRAY(
      SELECT t.id FROM graphile_worker._private_tasks AS t WHERE t.identifier = ANY (task_identifiers COLLATE "default")
        AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_paused AS p
                        WHERE p.kind = 'task' AND p.name = t.identifier)
    );
    IF cardinality(v_task_ids) = 0 THEN
      RETURN;
    END IF;
  ELSE
    -- Usually empty: one probe of a small table per call.
    v_paused_ids := ARRAY(
      SELECT t.id FROM graphile_worker._private_paused AS p
      JOIN graphile_worker._private_tasks AS t ON t.identifier = p.name
      WHERE p.kind = 'task'
    );
    IF cardinality(v_paused_ids) = 0 THEN
      v_paused_ids := NULL;
    END IF;
  END IF;

  SELECT array_agg(c.id), bool_or(c.job_queue_id IS NOT NULL) INTO v_job_ids, v_queued
  FROM (
    SELECT j.id, j.job_queue_id
    FROM graphile_worker._private_jobs AS j
    WHERE j.is_available
      AND j.run_at <= now()
      AND (v_task_ids IS NULL OR j.task_id = ANY (v_task_ids))
      AND (v_paused_ids IS NULL OR NOT (j.task_id = ANY (v_paused_ids)))
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
        AND (v_paused_ids IS NULL OR NOT (j.task_id = ANY (v_paused_ids)))
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

-- summary: as version 10; batch_size below 1 raises 22003.
CREATE OR REPLACE FUNCTION graphile_worker.delete_permafailed_jobs_batch(batch_size integer DEFAULT 10000) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_deleted bigint;
BEGIN
  IF batch_size IS NULL THEN
    RAISE EXCEPTION 'batch_size must not be null'
      USING ERRCODE = '22004', HINT = 'Pass how many jobs to delete per call, e.g. 10000.';
  END IF;
  IF batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size is %; it must be at least 1', batch_size
      USING ERRCODE = '22003', HINT = 'Pass how many jobs to delete per call, e.g. 10000.';
  END IF;
  v_deleted := graphile_worker._private_delete_permafailed_jobs(batch_size);
  PERFORM graphile_worker._private_log_admin('delete_permafailed_jobs_batch', 0, v_deleted, NULL, NULL, NULL);
  RETURN v_deleted;
END;
$$;

-- summary: as version 10; negative attempts raise 22003.
CREATE OR REPLACE FUNCTION graphile_worker.reschedule_jobs(job_ids bigint[], run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, priority integer DEFAULT NULL::integer, attempts integer DEFAULT NULL::integer, max_attempts integer DEFAULT NULL::integer) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_changed bigint;
BEGIN
  -- The columns are smallint with a CHECK on max_attempts; checking here first
  -- names the argument, where a failed cast or the table's CHECK would not.
  IF priority < -32768 OR priority > 32767 THEN
    RAISE EXCEPTION 'priority is %; it must be between -32768 and 32767', priority
      USING ERRCODE = '22003', HINT = 'Lower numbers run first; pass NULL to keep each job''s priority.';
  END IF;
  IF attempts < 0 THEN
    RAISE EXCEPTION 'attempts is %; it must not be negative', attempts
      USING ERRCODE = '22003', HINT = 'Pass 0 to let the jobs start their attempts afresh, or NULL to keep them.';
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
  GET DIAGNOSTICS v_changed = ROW_COUNT;
  PERFORM graphile_worker._private_log_admin('reschedule_jobs', cardinality(job_ids), v_changed, NULL, job_ids, NULL);
END;
$$;

COMMENT ON FUNCTION graphile_worker.delete_permafailed_jobs_batch(batch_size integer) IS 'Deletes at most batch_size (default 10000) unlocked, permanently failed jobs (attempts >= max_attempts), lowest ids first, skipping rows other transactions hold, and returns how many. Call it, one transaction per call, until it returns less than batch_size (python -m installer does; from psql, a DO block that COMMITs after each call). Raises 22004 for a NULL and 22003 for a non-positive batch_size.';
COMMENT ON FUNCTION graphile_worker.reschedule_jobs(job_ids bigint[], run_at timestamp with time zone, priority integer, attempts integer, max_attempts integer) IS 'Sets run_at, priority, attempts and max_attempts of the given unlocked jobs; a NULL argument keeps that field. Returns the updated rows. Raises 22003 (priority, attempts or max_attempts out of range) before changing anything.';
