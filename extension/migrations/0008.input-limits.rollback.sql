-- Rollback of schema version 8: version 7's function bodies (as installed, from its schema.sql), and _private_check_job with its five arguments.
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 7;

CREATE OR REPLACE FUNCTION graphile_worker._private_check_worker_id(worker_id text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF worker_id IS NULL THEN
    RAISE EXCEPTION 'worker_id must not be null'
      USING ERRCODE = '22004', HINT = 'Pass the id this worker process uses for all its calls, e.g. ''worker-'' || a random suffix.';
  END IF;
  IF worker_id = '' THEN
    RAISE EXCEPTION 'worker_id must not be empty'
      USING ERRCODE = '22023', HINT = 'Pass the id this worker process uses for all its calls, e.g. ''worker-'' || a random suffix.';
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker.add_job(identifier text, payload json DEFAULT NULL::json, queue_name text DEFAULT NULL::text, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, max_attempts integer DEFAULT NULL::integer, job_key text DEFAULT NULL::text, priority integer DEFAULT NULL::integer, flags text[] DEFAULT NULL::text[], job_key_mode text DEFAULT 'replace'::text) RETURNS graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_job graphile_worker._private_jobs;
BEGIN
  IF job_key_mode IS NOT NULL AND job_key_mode COLLATE "default" NOT IN ('replace', 'preserve_run_at', 'unsafe_dedupe') THEN
    RAISE EXCEPTION 'job_key_mode is %; expected replace, preserve_run_at or unsafe_dedupe', quote_literal(job_key_mode)
      USING ERRCODE = 'GWBKM', HINT = 'replace is the default; see the README on job keys.';
  END IF;
  PERFORM graphile_worker._private_check_job(identifier, queue_name, max_attempts, job_key, priority);

  IF job_key IS NOT NULL AND job_key_mode COLLATE "default" IS DISTINCT FROM 'unsafe_dedupe' THEN
    SELECT * INTO v_job
    FROM graphile_worker.add_jobs(
      ARRAY[ROW(identifier, payload, queue_name, run_at, max_attempts::smallint,
                job_key, priority::smallint, flags)::graphile_worker.job_spec],
      job_key_mode COLLATE "default" = 'preserve_run_at'
    );
    RETURN v_job;
  END IF;

  PERFORM graphile_worker._private_hold_tasks_and_queues(
    ARRAY[identifier], CASE WHEN queue_name IS NULL THEN '{}'::text[] ELSE ARRAY[queue_name] END);

  -- No key: a plain insert. unsafe_dedupe: if a job with this key exists in
  -- any state, even running, leave it as it is and return it. The new
  -- information may never be acted on; use only when that is acceptable.
  -- (Without a key the ON CONFLICT arbiter never matches: NULL keys are distinct.)
  INSERT INTO graphile_worker._private_jobs AS jobs
    (job_queue_id, task_id, payload, run_at, max_attempts, key, priority, flags)
  SELECT
    job_queues.id,
    tasks.id,
    coalesce(add_job.payload, '{}'::json),
    coalesce(add_job.run_at, now()),
    coalesce(add_job.max_attempts, 25),
    add_job.job_key,
    coalesce(add_job.priority, 0),
    CASE WHEN add_job.flags IS NOT NULL THEN (SELECT jsonb_object_agg(flag, true) FROM unnest(add_job.flags) AS flag) END
  FROM graphile_worker._private_tasks AS tasks
  LEFT JOIN graphile_worker._private_job_queues AS job_queues ON job_queues.queue_name = add_job.queue_name COLLATE "default"
  WHERE tasks.identifier = add_job.identifier COLLATE "default"
  ON CONFLICT (key) DO UPDATE SET
    revision = jobs.revision + 1,
    updated_at = now()
  RETURNING * INTO v_job;

  IF v_job.revision = 0 THEN
    PERFORM graphile_worker._private_notify_insert(1);
  END IF;
  RETURN v_job;
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker.add_jobs(specs graphile_worker.job_spec[], job_key_preserve_run_at boolean DEFAULT false) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_count bigint;
  v_duplicate text;
  v_keys text[];
  v_identifiers text[];
  v_queue_names text[];
  v_bad bigint;
  v_bad_spec graphile_worker.job_spec;
BEGIN
  IF specs IS NULL OR cardinality(specs) = 0 THEN
    RETURN;
  END IF;

  -- One pass over the specs: the first one _private_check_job would refuse
  -- (the same conditions; that function stays the one place for the
  -- messages), the keys, and the task and queue names without repeats.
  SELECT min(s.n) FILTER (WHERE s.identifier IS NULL
                             OR length(s.identifier) > 128
                             OR length(s.queue_name) > 128
                             OR s.job_key = '' OR length(s.job_key) > 512
                             OR s.max_attempts < 1),
         coalesce(array_agg(s.job_key) FILTER (WHERE s.job_key IS NOT NULL), '{}'),
         array_agg(DISTINCT s.identifier),
         coalesce(array_agg(DISTINCT s.queue_name) FILTER (WHERE s.queue_name IS NOT NULL), '{}')
  INTO v_bad, v_keys, v_identifiers, v_queue_names
  FROM unnest(specs) WITH ORDINALITY AS s(identifier, payload, queue_name, run_at, max_attempts, job_key, priority, flags, n);
  IF v_bad IS NOT NULL THEN
    -- (ordinality counts from 1 whatever the array's lower bound)
    v_bad_spec := specs[array_lower(specs, 1) + v_bad - 1];
    PERFORM graphile_worker._private_check_job(v_bad_spec.identifier, v_bad_spec.queue_name,
      v_bad_spec.max_attempts, v_bad_spec.job_key, v_bad_spec.priority);
  END IF;

  -- One upsert cannot touch the same key twice; say which key instead of failing obscurely.
  IF cardinality(v_keys) > 1 THEN
    SELECT k INTO v_duplicate FROM unnest(v_keys) AS k GROUP BY k HAVING count(*) > 1 LIMIT 1;
    IF v_duplicate IS NOT NULL THEN
      RAISE EXCEPTION 'job_key % appears more than once in specs', quote_literal(v_duplicate)
        USING ERRCODE = '22023', HINT = 'Give each spec of one add_jobs call a distinct job_key.';
    END IF;
  END IF;

  PERFORM graphile_worker._private_hold_tasks_and_queues(v_identifiers, v_queue_names);

  IF cardinality(v_keys) = 0 THEN
    -- No keys, no conflicts: a plain insert. With ON CONFLICT every row would
    -- be a speculative insertion, measured 15-20% dearer over 100,000 rows.
    -- The column list is the upsert's below; keep the two in step.
    RETURN QUERY
    INSERT INTO graphile_worker._private_jobs AS jobs
      (job_queue_id, task_id, payload, run_at, max_attempts, key, priority, flags)
    SELECT
      job_queues.id,
      tasks.id,
      coalesce(s.payload, '{}'::json),
      coalesce(s.run_at, now()),
      coalesce(s.max_attempts, 25),
      NULL,
      coalesce(s.priority, 0),
      CASE WHEN s.flags IS NOT NULL THEN (SELECT jsonb_object_agg(flag, true) FROM unnest(s.flags) AS flag) END
    FROM unnest(specs) WITH ORDINALITY AS s
    INNER JOIN graphile_worker._private_tasks AS tasks ON tasks.identifier = s.identifier
    LEFT JOIN graphile_worker._private_job_queues AS job_queues ON job_queues.queue_name = s.queue_name
    ORDER BY s.ordinality
    RETURNING *;
  ELSE
    -- Hold the existing jobs with these keys, so that no worker can take one of
    -- them between the decision below and the upsert (it would then be neither
    -- replaced nor superseded, and the new job silently dropped).
    PERFORM 1
    FROM graphile_worker._private_jobs AS jobs
    WHERE jobs.key = ANY (v_keys)
    ORDER BY jobs.id
    FOR UPDATE;

    -- A keyed job that is running (locked) or permanently failed is out of date:
    -- it gives up its key and will not retry, and the spec becomes a new job.
    UPDATE graphile_worker._private_jobs AS jobs
    SET key = NULL,
        attempts = jobs.max_attempts,
        updated_at = now()
    WHERE jobs.key = ANY (v_keys)
      AND jobs.is_available IS NOT TRUE;

    RETURN QUERY
    INSERT INTO graphile_worker._private_jobs AS jobs
      (job_queue_id, task_id, payload, run_at, max_attempts, key, priority, flags)
    SELECT
      job_queues.id,
      tasks.id,
      coalesce(s.payload, '{}'::json),
      coalesce(s.run_at, now()),
      coalesce(s.max_attempts, 25),
      s.job_key,
      coalesce(s.priority, 0),
      CASE WHEN s.flags IS NOT NULL THEN (SELECT jsonb_object_agg(flag, true) FROM unnest(s.flags) AS flag) END
    FROM unnest(specs) WITH ORDINALITY AS s
    INNER JOIN graphile_worker._private_tasks AS tasks ON tasks.identifier = s.identifier
    LEFT JOIN graphile_worker._private_job_queues AS job_queues ON job_queues.queue_name = s.queue_name
    ORDER BY s.ordinality
    ON CONFLICT (key) DO UPDATE SET
      job_queue_id = excluded.job_queue_id,
      task_id = excluded.task_id,
      -- Two array payloads are concatenated, so repeated calls can accumulate items.
      payload = CASE
        WHEN json_typeof(jobs.payload) = 'array' AND json_typeof(excluded.payload) = 'array'
          THEN (jobs.payload::jsonb || excluded.payload::jsonb)::json
        ELSE excluded.payload
      END,
      max_attempts = excluded.max_attempts,
      run_at = CASE
        WHEN job_key_preserve_run_at AND jobs.attempts = 0 THEN jobs.run_at
        ELSE excluded.run_at
      END,
      priority = excluded.priority,
      revision = jobs.revision + 1,
      flags = excluded.flags,
      attempts = 0,
      last_error = NULL,
      updated_at = now()
    WHERE jobs.locked_at IS NULL
    RETURNING *;
  END IF;

  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM graphile_worker._private_notify_insert(v_count);
  END IF;
END;
$$;

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
  IF worker_id IS NULL OR worker_id = '' THEN  -- the check raises; calling it only then saves a call per job
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

CREATE OR REPLACE FUNCTION graphile_worker.complete_and_fetch_jobs(worker_id text, completed_job_ids bigint[], task_identifiers text[] DEFAULT NULL::text[], batch_size integer DEFAULT 1, forbidden_flags text[] DEFAULT NULL::text[]) RETURNS SETOF graphile_worker.fetched_job
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- Checked here as well, so that a bad worker_id fails before anything is completed.
  IF worker_id IS NULL OR worker_id = '' THEN
    PERFORM graphile_worker._private_check_worker_id(worker_id);
  END IF;
  IF completed_job_ids IS NOT NULL AND cardinality(completed_job_ids) > 0 THEN
    PERFORM graphile_worker.complete_worker_jobs(worker_id, completed_job_ids);
  END IF;
  RETURN QUERY SELECT * FROM graphile_worker.fetch_jobs(worker_id, task_identifiers, batch_size, forbidden_flags);
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker.complete_job(worker_id text, job_id bigint) RETURNS graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_job graphile_worker._private_jobs;
BEGIN
  IF worker_id IS NULL OR worker_id = '' THEN  -- the check raises; calling it only then saves a call per job
    PERFORM graphile_worker._private_check_worker_id(worker_id);
  END IF;
  DELETE FROM graphile_worker._private_jobs AS j
  WHERE j.id = complete_job.job_id AND j.locked_by = complete_job.worker_id COLLATE "default"
  RETURNING j.* INTO v_job;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF v_job.job_queue_id IS NOT NULL THEN
    PERFORM graphile_worker._private_release_queues(worker_id, ARRAY[v_job.job_queue_id]);
  END IF;
  RETURN v_job;
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker.complete_worker_jobs(worker_id text, job_ids bigint[]) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  v_jobs graphile_worker._private_jobs[];
  v_queue_ids integer[];
BEGIN
  IF worker_id IS NULL OR worker_id = '' THEN  -- the check raises; calling it only then saves a call per job
    PERFORM graphile_worker._private_check_worker_id(worker_id);
  END IF;
  IF job_ids IS NULL OR cardinality(job_ids) = 0 THEN
    RETURN;
  END IF;

  -- The DELETE locks its rows in id order (see plan_cache_mode above), so
  -- two callers with overlapping ids cannot deadlock; version 5 locked them
  -- first in a separate step, which wrote each row twice.
  WITH deleted AS (
    DELETE FROM graphile_worker._private_jobs AS j
    WHERE j.id = ANY (complete_worker_jobs.job_ids) AND j.locked_by = complete_worker_jobs.worker_id COLLATE "default"
    RETURNING j.*
  )
  SELECT array_agg(deleted ORDER BY deleted.id),
         array_agg(deleted.job_queue_id) FILTER (WHERE deleted.job_queue_id IS NOT NULL)
  INTO v_jobs, v_queue_ids
  FROM deleted;

  IF v_queue_ids IS NOT NULL THEN
    PERFORM graphile_worker._private_release_queues(worker_id, v_queue_ids);
  END IF;
  RETURN QUERY SELECT * FROM unnest(v_jobs);
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker._private_fail_jobs(worker_id text, job_ids bigint[], error_message text, replacement_payload json) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  v_jobs graphile_worker._private_jobs[];
  v_queue_ids integer[];
BEGIN
  IF worker_id IS NULL OR worker_id = '' THEN  -- the check raises; calling it only then saves a call per job
    PERFORM graphile_worker._private_check_worker_id(worker_id);
  END IF;
  IF error_message IS NULL THEN
    RAISE EXCEPTION 'error_message must not be null'
      USING ERRCODE = '22004', HINT = 'Pass the error text; it is stored in last_error for the next attempt and for DBAs.';
  END IF;
  IF job_ids IS NULL OR cardinality(job_ids) = 0 THEN
    RETURN;
  END IF;

  -- A job whose attempts reached max_attempts is no longer available once
  -- unlocked (is_available): it stays, permanently failed, for cleanup.
  -- Rows are locked in id order, as in complete_worker_jobs.
  WITH failed AS (
    UPDATE graphile_worker._private_jobs AS j
    SET last_error = _private_fail_jobs.error_message,
        run_at = GREATEST(now(), j.run_at) + graphile_worker._private_retry_delay(j.attempts),
        payload = coalesce(_private_fail_jobs.replacement_payload, j.payload),
        locked_at = NULL,
        locked_by = NULL,
        updated_at = now()
    WHERE j.id = ANY (_private_fail_jobs.job_ids) AND j.locked_by = _private_fail_jobs.worker_id COLLATE "default"
    RETURNING j.*
  )
  SELECT array_agg(failed ORDER BY failed.id),
         array_agg(failed.job_queue_id) FILTER (WHERE failed.job_queue_id IS NOT NULL)
  INTO v_jobs, v_queue_ids
  FROM failed;

  IF v_queue_ids IS NOT NULL THEN
    PERFORM graphile_worker._private_release_queues(worker_id, v_queue_ids);
  END IF;
  RETURN QUERY SELECT * FROM unnest(v_jobs);
END;
$$;

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

DROP FUNCTION graphile_worker._private_check_job(text, text, integer, text, integer, json, text[]);

CREATE FUNCTION graphile_worker._private_check_job(identifier text, queue_name text, max_attempts integer, job_key text, priority integer) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF identifier IS NULL THEN
    RAISE EXCEPTION 'identifier must not be null'
      USING ERRCODE = '22004', HINT = 'Pass the task identifier of the job.';
  END IF;
  IF length(identifier) > 128 THEN
    RAISE EXCEPTION 'identifier is % characters long; at most 128 are allowed', length(identifier)
      USING ERRCODE = '22023', HINT = 'Use a shorter task identifier.';
  END IF;
  IF length(queue_name) > 128 THEN
    RAISE EXCEPTION 'queue_name is % characters long; at most 128 are allowed', length(queue_name)
      USING ERRCODE = '22023', HINT = 'Use a shorter queue name.';
  END IF;
  IF job_key = '' OR length(job_key) > 512 THEN
    RAISE EXCEPTION 'job_key is % characters long; it must be 1 to 512', length(job_key)
      USING ERRCODE = '22023', HINT = 'Pass NULL for no key, or a key of 1 to 512 characters.';
  END IF;
  IF max_attempts < 1 OR max_attempts > 32767 THEN
    RAISE EXCEPTION 'max_attempts is %; it must be between 1 and 32767', max_attempts
      USING ERRCODE = '22003', HINT = 'Pass NULL for the default of 25.';
  END IF;
  IF priority < -32768 OR priority > 32767 THEN
    RAISE EXCEPTION 'priority is %; it must be between -32768 and 32767', priority
      USING ERRCODE = '22003', HINT = 'Lower numbers run first; pass NULL for 0.';
  END IF;
END;
$$;

COMMENT ON FUNCTION graphile_worker._private_check_job(text, text, integer, text, integer) IS 'Private: raises a clear error (22004, 22023, 22003) naming the bad argument of add_job/add_jobs.';
REVOKE ALL ON FUNCTION graphile_worker._private_check_job(text, text, integer, text, integer) FROM PUBLIC;
COMMENT ON FUNCTION graphile_worker._private_check_worker_id(text) IS 'Private: raises 22004 (null) or 22023 (empty) for a bad worker_id.';
COMMENT ON FUNCTION graphile_worker.reschedule_jobs(bigint[], timestamptz, integer, integer, integer) IS 'Sets run_at, priority, attempts and max_attempts of the given unlocked jobs; a NULL argument keeps that field. Returns the updated rows. Raises 22003 (out of smallint range), 22023 (attempts < 0) or 23514 (max_attempts < 1) before changing anything.';
