-- Schema version 7: text arguments are compared in the database's default collation, whatever collation the caller attaches.
-- depends: 0006.hot-path
--
-- A caller's collation travels into a function with its arguments. With a
-- nondeterministic collation, which any role with TEMP can create
-- (CREATE COLLATION pg_temp.ci (provider = icu, locale = 'und-u-ks-level2',
-- deterministic = false)), version 6 matched keys, task identifiers, queue
-- names and worker ids case-insensitively inside the definer functions:
-- remove_job('WELCOME-ADA' COLLATE pg_temp.ci) deleted the job keyed
-- 'Welcome-Ada', a worker id could match another worker's, and add_job with
-- tasks 'a' and 'A' present looped for ever in _private_hold_tasks_and_queues
-- (two rows found where one was wanted) while holding its locks.
--
-- Each comparison of a text argument with a column now names COLLATE
-- "default", which overrides an argument's collation and is the columns' own,
-- so the unique and primary-key indexes still serve the comparisons. The
-- bodies are otherwise those of the versions before; every function keeps its
-- signature, definer mode, settings, comment and grants.

SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 7;

-- summary: _private_hold_tasks_and_queues, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker._private_hold_tasks_and_queues(identifiers text[], queue_names text[])
RETURNS void
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_want_tasks integer := coalesce(cardinality(identifiers), 0);
  v_want_queues integer := coalesce(cardinality(queue_names), 0);
  v_got_tasks integer;
  v_got_queues integer := 0;
BEGIN
  LOOP
    -- Lock in a fixed order (by id) so that concurrent callers cannot deadlock.
    SELECT count(*) INTO v_got_tasks FROM (
      SELECT t.id FROM graphile_worker._private_tasks AS t
      WHERE t.identifier = ANY (identifiers COLLATE "default")
      ORDER BY t.id
      FOR KEY SHARE
    ) AS held;
    -- Jobs without a queue (the common case) skip the queue statements.
    IF v_want_queues > 0 THEN
      SELECT count(*) INTO v_got_queues FROM (
        SELECT jq.id FROM graphile_worker._private_job_queues AS jq
        WHERE jq.queue_name = ANY (queue_names COLLATE "default")
        ORDER BY jq.id
        FOR KEY SHARE
      ) AS held;
    END IF;
    EXIT WHEN v_got_tasks = v_want_tasks AND v_got_queues = v_want_queues;

    -- Insert only the missing names, so that identity values are not burnt on conflicts.
    INSERT INTO graphile_worker._private_tasks (identifier)
      SELECT DISTINCT i COLLATE "default" FROM unnest(identifiers) AS i
      WHERE i IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_tasks AS t WHERE t.identifier = i COLLATE "default")
      ON CONFLICT DO NOTHING;
    IF v_want_queues > 0 THEN
      INSERT INTO graphile_worker._private_job_queues (queue_name)
        SELECT DISTINCT q COLLATE "default" FROM unnest(queue_names) AS q
        WHERE q IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_job_queues AS jq WHERE jq.queue_name = q COLLATE "default")
        ON CONFLICT DO NOTHING;
    END IF;
  END LOOP;
END;
$$;

-- summary: add_job, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker.add_job(
  identifier text,
  payload json DEFAULT NULL,
  queue_name text DEFAULT NULL,
  run_at timestamptz DEFAULT NULL,
  max_attempts integer DEFAULT NULL,
  job_key text DEFAULT NULL,
  priority integer DEFAULT NULL,
  flags text[] DEFAULT NULL,
  job_key_mode text DEFAULT 'replace'
) RETURNS graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
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

-- summary: fetch_jobs, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker.fetch_jobs(
  worker_id text,
  task_identifiers text[] DEFAULT NULL,
  batch_size integer DEFAULT 1,
  forbidden_flags text[] DEFAULT NULL
) RETURNS SETOF graphile_worker.fetched_job
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  -- The candidate query reads a few index rows, but its estimated cost can be
  -- that of the whole index, which would JIT-compile it (~100 ms) on every call.
  SET jit = off
  -- The statements' generic plans (walk jobs_main_index in order, stop at the
  -- limit) are the right ones for any arguments; custom plans would be
  -- planned again on every call.
  SET plan_cache_mode = force_generic_plan
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

-- summary: _private_release_queues, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker._private_release_queues(worker_id text, queue_ids integer[]) RETURNS void
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE graphile_worker._private_job_queues AS q
  SET locked_at = NULL,
      locked_by = NULL
  WHERE q.id IN (
    SELECT held.id FROM graphile_worker._private_job_queues AS held
    WHERE held.id = ANY (_private_release_queues.queue_ids)
      AND held.locked_by = _private_release_queues.worker_id COLLATE "default"
    ORDER BY held.id
    FOR NO KEY UPDATE
  );
END;
$$;

-- summary: complete_worker_jobs, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker.complete_worker_jobs(worker_id text, job_ids bigint[])
RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  -- The generic plan of id = ANY (job_ids) is a primary-key scan, which visits
  -- (and locks) the rows in ascending id order whatever the array's length.
  SET plan_cache_mode = force_generic_plan
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

-- summary: complete_job, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker.complete_job(worker_id text, job_id bigint)
RETURNS graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
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

-- summary: _private_fail_jobs, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker._private_fail_jobs(
  worker_id text,
  job_ids bigint[],
  error_message text,
  replacement_payload json
) RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
  -- As in complete_worker_jobs: a primary-key scan, rows locked in id order.
  SET plan_cache_mode = force_generic_plan
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

-- summary: remove_job, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker.remove_job(job_key text) RETURNS graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_job graphile_worker._private_jobs;
BEGIN
  DELETE FROM graphile_worker._private_jobs AS jobs
  WHERE jobs.key = remove_job.job_key COLLATE "default"
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING * INTO v_job;
  IF v_job.id IS NOT NULL THEN
    PERFORM graphile_worker._private_notify_insert(-1);
    RETURN v_job;
  END IF;

  -- A running job cannot be deleted under its worker: take its key and use up its attempts instead.
  UPDATE graphile_worker._private_jobs AS jobs
  SET key = NULL,
      attempts = jobs.max_attempts,
      updated_at = now()
  WHERE jobs.key = remove_job.job_key COLLATE "default"
  RETURNING * INTO v_job;
  RETURN v_job;
END;
$$;

-- summary: force_unlock_workers, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker.force_unlock_workers(worker_ids text[]) RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
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

-- summary: cleanup, with its text comparisons in the default collation.
CREATE OR REPLACE FUNCTION graphile_worker.cleanup(
  tasks graphile_worker.cleanup_task[] DEFAULT '{GC_JOB_QUEUES,GC_TASK_IDENTIFIERS}',
  task_identifiers_to_keep text[] DEFAULT '{}'
) RETURNS TABLE (task graphile_worker.cleanup_task, deleted_count bigint)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
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
