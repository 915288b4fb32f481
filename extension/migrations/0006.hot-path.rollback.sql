-- Rollback of schema version 6: back to version 5's function bodies and indexes.
-- The bodies below are version 5's as installed (from its schema.sql), replaced in place so that
-- owner, comments and grants stay.
SET LOCAL lock_timeout = '10s';

-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.complete_and_fetch_jobs(text, bigint[], text[], integer, text[]);

CREATE OR REPLACE FUNCTION graphile_worker.fail_job(worker_id text, job_id bigint, error_message text, replacement_payload json DEFAULT NULL::json) RETURNS graphile_worker._private_jobs
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT * FROM graphile_worker._private_fail_jobs(
    fail_job.worker_id, ARRAY[fail_job.job_id], fail_job.error_message, fail_job.replacement_payload
  );
$$;

CREATE OR REPLACE FUNCTION graphile_worker.fail_worker_jobs(worker_id text, job_ids bigint[], error_message text) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT * FROM graphile_worker._private_fail_jobs(
    fail_worker_jobs.worker_id, fail_worker_jobs.job_ids, fail_worker_jobs.error_message, NULL
  );
$$;

CREATE OR REPLACE FUNCTION graphile_worker._private_fail_jobs(worker_id text, job_ids bigint[], error_message text, replacement_payload json) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_jobs graphile_worker._private_jobs[];
BEGIN
  PERFORM graphile_worker._private_check_worker_id(worker_id);
  IF error_message IS NULL THEN
    RAISE EXCEPTION 'error_message must not be null'
      USING ERRCODE = '22004', HINT = 'Pass the error text; it is stored in last_error for the next attempt and for DBAs.';
  END IF;
  IF job_ids IS NULL OR cardinality(job_ids) = 0 THEN
    RETURN;
  END IF;

  -- A job whose attempts reached max_attempts is no longer available once
  -- unlocked (is_available): it stays, permanently failed, for cleanup.
  WITH held AS (
    SELECT j.id FROM graphile_worker._private_jobs AS j
    WHERE j.id = ANY (_private_fail_jobs.job_ids) AND j.locked_by = _private_fail_jobs.worker_id
    ORDER BY j.id
    FOR UPDATE
  ), failed AS (
    UPDATE graphile_worker._private_jobs AS j
    SET last_error = _private_fail_jobs.error_message,
        run_at = GREATEST(now(), j.run_at) + graphile_worker._private_retry_delay(j.attempts),
        payload = coalesce(_private_fail_jobs.replacement_payload, j.payload),
        locked_at = NULL,
        locked_by = NULL,
        updated_at = now()
    FROM held
    WHERE j.id = held.id AND j.locked_by = _private_fail_jobs.worker_id
    RETURNING j.*
  )
  SELECT array_agg(failed ORDER BY failed.id) INTO v_jobs FROM failed;

  IF v_jobs IS NULL THEN
    RETURN;
  END IF;
  PERFORM graphile_worker._private_release_queues(
    worker_id, ARRAY(SELECT j.job_queue_id FROM unnest(v_jobs) AS j WHERE j.job_queue_id IS NOT NULL)
  );
  RETURN QUERY SELECT * FROM unnest(v_jobs);
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker.complete_job(worker_id text, job_id bigint) RETURNS graphile_worker._private_jobs
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT * FROM graphile_worker.complete_worker_jobs(complete_job.worker_id, ARRAY[complete_job.job_id]);
$$;

CREATE OR REPLACE FUNCTION graphile_worker.complete_worker_jobs(worker_id text, job_ids bigint[]) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_jobs graphile_worker._private_jobs[];
BEGIN
  PERFORM graphile_worker._private_check_worker_id(worker_id);
  IF job_ids IS NULL OR cardinality(job_ids) = 0 THEN
    RETURN;
  END IF;

  WITH held AS (
    SELECT j.id FROM graphile_worker._private_jobs AS j
    WHERE j.id = ANY (complete_worker_jobs.job_ids) AND j.locked_by = complete_worker_jobs.worker_id
    ORDER BY j.id
    FOR UPDATE
  ), deleted AS (
    DELETE FROM graphile_worker._private_jobs AS j
    USING held
    WHERE j.id = held.id AND j.locked_by = complete_worker_jobs.worker_id
    RETURNING j.*
  )
  SELECT array_agg(deleted ORDER BY deleted.id) INTO v_jobs FROM deleted;

  IF v_jobs IS NULL THEN
    RETURN;
  END IF;
  PERFORM graphile_worker._private_release_queues(
    worker_id, ARRAY(SELECT j.job_queue_id FROM unnest(v_jobs) AS j WHERE j.job_queue_id IS NOT NULL)
  );
  RETURN QUERY SELECT * FROM unnest(v_jobs);
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker._private_release_queues(worker_id text, queue_ids integer[]) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  UPDATE graphile_worker._private_job_queues AS q
  SET locked_at = NULL,
      locked_by = NULL
  WHERE q.id IN (
    SELECT held.id FROM graphile_worker._private_job_queues AS held
    WHERE held.id = ANY (_private_release_queues.queue_ids)
      AND held.locked_by = _private_release_queues.worker_id
    ORDER BY held.id
    FOR NO KEY UPDATE
  );
$$;

CREATE OR REPLACE FUNCTION graphile_worker.fetch_jobs(worker_id text, task_identifiers text[] DEFAULT NULL::text[], batch_size integer DEFAULT 1, forbidden_flags text[] DEFAULT NULL::text[]) RETURNS SETOF graphile_worker.fetched_job
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    AS $$
DECLARE
  v_task_ids integer[];
  v_job_ids bigint[] := '{}';
  v_queue_ids integer[] := '{}';
  -- Queues taken in this batch or held by someone else: skip their other jobs.
  v_skip_queues integer[] := '{}';
  v_scan_limit integer;
  v_cand record;
  v_queue_id integer;
BEGIN
  PERFORM graphile_worker._private_check_worker_id(worker_id);
  IF batch_size IS NULL THEN
    RAISE EXCEPTION 'batch_size must not be null'
      USING ERRCODE = '22004', HINT = 'Pass how many jobs to fetch at most, 1 to 10000.';
  END IF;
  IF batch_size < 1 OR batch_size > 10000 THEN
    RAISE EXCEPTION 'batch_size is %; it must be between 1 and 10000', batch_size
      USING ERRCODE = '22023', HINT = 'Pass how many jobs to fetch at most, 1 to 10000.';
  END IF;
  -- Enough candidates to get past the jobs concurrent workers are taking
  -- (the LIMIT also makes the planner walk jobs_fetch_index, not sort).
  v_scan_limit := batch_size * 10 + 100;

  -- Resolved on every call, never cached by clients: cleanup may delete a task
  -- row with no jobs and a later add_job give the identifier a new id.
  IF task_identifiers IS NOT NULL THEN
    v_task_ids := ARRAY(
      SELECT t.id FROM graphile_worker._private_tasks AS t WHERE t.identifier = ANY (task_identifiers)
    );
    IF cardinality(v_task_ids) = 0 THEN
      RETURN;
    END IF;
  END IF;

  -- One cursor, so one snapshot: every queue is judged as it was at one
  -- moment, and a queue's first job cannot be overtaken by its second.
  FOR v_cand IN
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
    LIMIT v_scan_limit
  LOOP
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

  -- Left joins: a job we locked is returned whatever happened to its task or
  -- queue row, rather than stay locked without a worker knowing of it.
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
  SELECT l.id, t.identifier, q.queue_name, l.payload, l.priority, l.run_at, l.attempts, l.max_attempts,
         l.key, l.flags, l.locked_at, l.locked_by, l.last_error, l.revision, l.created_at
  FROM locked AS l
  LEFT JOIN graphile_worker._private_tasks AS t ON t.id = l.task_id
  LEFT JOIN graphile_worker._private_job_queues AS q ON q.id = l.job_queue_id
  ORDER BY l.priority, l.run_at, l.id;
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker.add_job(identifier text, payload json DEFAULT NULL::json, queue_name text DEFAULT NULL::text, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, max_attempts integer DEFAULT NULL::integer, job_key text DEFAULT NULL::text, priority integer DEFAULT NULL::integer, flags text[] DEFAULT NULL::text[], job_key_mode text DEFAULT 'replace'::text) RETURNS graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_job graphile_worker._private_jobs;
BEGIN
  IF job_key_mode IS NOT NULL AND job_key_mode NOT IN ('replace', 'preserve_run_at', 'unsafe_dedupe') THEN
    RAISE EXCEPTION 'job_key_mode is %; expected replace, preserve_run_at or unsafe_dedupe', quote_literal(job_key_mode)
      USING ERRCODE = 'GWBKM', HINT = 'replace is the default; see the README on job keys.';
  END IF;
  PERFORM graphile_worker._private_check_job(identifier, queue_name, max_attempts, job_key, priority);

  IF job_key IS NULL OR job_key_mode IS DISTINCT FROM 'unsafe_dedupe' THEN
    SELECT * INTO v_job
    FROM graphile_worker.add_jobs(
      ARRAY[ROW(identifier, payload, queue_name, run_at, max_attempts::smallint,
                job_key, priority::smallint, flags)::graphile_worker.job_spec],
      job_key_mode = 'preserve_run_at'
    );
    RETURN v_job;
  END IF;

  -- unsafe_dedupe: if a job with this key exists in any state, even running,
  -- leave it as it is and return it. The new information may never be acted on;
  -- use only when that is acceptable.
  PERFORM graphile_worker._private_hold_tasks_and_queues(ARRAY[identifier], ARRAY[queue_name]);
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
    (SELECT jsonb_object_agg(flag, true) FROM unnest(add_job.flags) AS flag)
  FROM graphile_worker._private_tasks AS tasks
  LEFT JOIN graphile_worker._private_job_queues AS job_queues ON job_queues.queue_name = add_job.queue_name
  WHERE tasks.identifier = add_job.identifier
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
BEGIN
  IF specs IS NULL OR cardinality(specs) = 0 THEN
    RETURN;
  END IF;

  PERFORM graphile_worker._private_check_job(s.identifier, s.queue_name, s.max_attempts, s.job_key, s.priority)
  FROM unnest(specs) AS s;

  v_keys := ARRAY(SELECT s.job_key FROM unnest(specs) AS s WHERE s.job_key IS NOT NULL);

  -- One upsert cannot touch the same key twice; say which key instead of failing obscurely.
  IF cardinality(v_keys) > 1 THEN
    SELECT k INTO v_duplicate FROM unnest(v_keys) AS k GROUP BY k HAVING count(*) > 1 LIMIT 1;
    IF v_duplicate IS NOT NULL THEN
      RAISE EXCEPTION 'job_key % appears more than once in specs', quote_literal(v_duplicate)
        USING ERRCODE = '22023', HINT = 'Give each spec of one add_jobs call a distinct job_key.';
    END IF;
  END IF;

  PERFORM graphile_worker._private_hold_tasks_and_queues(
    ARRAY(SELECT s.identifier FROM unnest(specs) AS s),
    ARRAY(SELECT s.queue_name FROM unnest(specs) AS s WHERE s.queue_name IS NOT NULL)
  );

  -- Keyless specs (the common case) skip the two statements below.
  IF cardinality(v_keys) > 0 THEN
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
  END IF;

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
    (SELECT jsonb_object_agg(flag, true) FROM unnest(s.flags) AS flag)
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

  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM graphile_worker._private_notify_insert(v_count);
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker._private_hold_tasks_and_queues(identifiers text[], queue_names text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_want_tasks integer := (SELECT count(DISTINCT i) FROM unnest(identifiers) AS i WHERE i IS NOT NULL);
  v_want_queues integer := (SELECT count(DISTINCT q) FROM unnest(queue_names) AS q WHERE q IS NOT NULL);
  v_got_tasks integer;
  v_got_queues integer;
BEGIN
  LOOP
    -- Insert only the missing names, so that identity values are not burnt on conflicts.
    INSERT INTO graphile_worker._private_tasks (identifier)
      SELECT DISTINCT i FROM unnest(identifiers) AS i
      WHERE i IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_tasks AS t WHERE t.identifier = i)
      ON CONFLICT DO NOTHING;
    -- Lock in a fixed order (by id) so that concurrent callers cannot deadlock.
    SELECT count(*) INTO v_got_tasks FROM (
      SELECT t.id FROM graphile_worker._private_tasks AS t
      WHERE t.identifier = ANY (identifiers)
      ORDER BY t.id
      FOR KEY SHARE
    ) AS held;
    v_got_queues := 0;
    -- Jobs without a queue (the common case) skip the queue statements.
    IF v_want_queues > 0 THEN
      INSERT INTO graphile_worker._private_job_queues (queue_name)
        SELECT DISTINCT q FROM unnest(queue_names) AS q
        WHERE q IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_job_queues AS jq WHERE jq.queue_name = q)
        ON CONFLICT DO NOTHING;

      SELECT count(*) INTO v_got_queues FROM (
        SELECT jq.id FROM graphile_worker._private_job_queues AS jq
        WHERE jq.queue_name = ANY (queue_names)
        ORDER BY jq.id
        FOR KEY SHARE
      ) AS held;
    END IF;

    EXIT WHEN v_got_tasks = v_want_tasks AND v_got_queues = v_want_queues;
  END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION graphile_worker._private_notify_insert(job_count bigint) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT pg_notify('jobs:insert', json_build_object('r', random(), 'count', job_count)::text);
$$;

-- Version 5 had both indexes: the fetch index under its own name, and the reference's two-column main index.
-- squawk-ignore renaming-object
ALTER INDEX graphile_worker.jobs_main_index RENAME TO jobs_fetch_index;
COMMENT ON INDEX graphile_worker.jobs_fetch_index IS
  'Due, available jobs in the order fetch_jobs takes them (priority, run_at, id), so a fetch reads only the rows it returns or skips.';
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX jobs_main_index ON graphile_worker._private_jobs
  USING btree (priority, run_at) INCLUDE (id, task_id, job_queue_id) WHERE (is_available = true);

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 5;
