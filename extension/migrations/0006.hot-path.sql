-- Schema version 6: the hot path (enqueue, fetch, complete, fail) costs less per call; fetch is never starved by locked rows.
-- depends: 0005.privileges
--
-- What each job pays for is enqueue, fetch and complete; the changes here
-- are about cost per call, measured against the same calls in version 5:
--
--  * Bodies are plpgsql, whose statement plans are kept for the session.
--    A LANGUAGE sql function that pins search_path cannot be inlined, and
--    PostgreSQL before 18 plans its body again on every call.
--  * Work is skipped when a call does not need it: queue statements for jobs
--    without a queue, key statements for jobs without a key, the check
--    function per spec when every spec is valid.
--  * fetch_jobs locks its batch with one statement (FOR UPDATE SKIP LOCKED
--    under LIMIT). Rows that other transactions hold are passed over by the
--    lock step and do not count against the limit, so a transaction holding
--    many due jobs can no longer make a fetch come back empty (version 5
--    read at most batch_size * 10 + 100 candidates and could return none).
--  * One index fewer on every insert and non-HOT update of a job: version 3's
--    jobs_fetch_index had the columns of jobs_main_index and id as a third key;
--    it now is jobs_main_index, and the old definition goes.
--
-- Every function keeps its signature, its SECURITY DEFINER mode and its
-- grants (CREATE OR REPLACE keeps owner and privileges). One function is
-- new: complete_and_fetch_jobs, a worker cycle in one call and one commit.

-- The index swap below takes an exclusive lock on the jobs table for an
-- instant (no index is built): fail fast rather than queue behind a long transaction.
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 6;

-- summary: due, available jobs in fetch order (priority, run_at, id).
-- Redefined under the reference's name: ordered by (priority, run_at) it
-- serves every query the old definition served, and the id key gives
-- fetch_jobs its tie order without a sort. Renaming the version 3 index,
-- which already had this definition, builds nothing.
-- DROP INDEX CONCURRENTLY cannot run in the migration's transaction; the
-- exclusive lock lasts as long as it takes to unlink the file.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX graphile_worker.jobs_main_index;
-- No client names an index; verify compares the definitions.
-- squawk-ignore renaming-object
ALTER INDEX graphile_worker.jobs_fetch_index RENAME TO jobs_main_index;
COMMENT ON INDEX graphile_worker.jobs_main_index IS
  'Due, available jobs in the order fetch_jobs takes them (priority, run_at, id): a fetch reads the rows it returns and those it passes over, never sorts. Costs one entry per insert and per update that leaves a job available.';

-- summary: the insert notification, now plpgsql so that its statement plan is kept.
CREATE OR REPLACE FUNCTION graphile_worker._private_notify_insert(job_count bigint) RETURNS void
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_notify('jobs:insert', json_build_object('r', random(), 'count', job_count)::text);
END;
$$;

-- summary: make sure the task and queue rows exist and hold them until commit.
--
-- Same contract as version 1 (see the reason for the lock there); the order
-- of work changes: lock first and insert only when a row is missing, so
-- that the usual call (every row exists) is one statement per table.
-- A row that is missing, or that cleanup deleted before we could lock it,
-- is inserted and the loop tries again; it ends as soon as cleanup is done.
-- Callers (add_job, add_jobs) now pass each name once and no NULL, so the
-- rows wanted are the arrays' lengths.
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
      WHERE t.identifier = ANY (identifiers)
      ORDER BY t.id
      FOR KEY SHARE
    ) AS held;
    -- Jobs without a queue (the common case) skip the queue statements.
    IF v_want_queues > 0 THEN
      SELECT count(*) INTO v_got_queues FROM (
        SELECT jq.id FROM graphile_worker._private_job_queues AS jq
        WHERE jq.queue_name = ANY (queue_names)
        ORDER BY jq.id
        FOR KEY SHARE
      ) AS held;
    END IF;
    EXIT WHEN v_got_tasks = v_want_tasks AND v_got_queues = v_want_queues;

    -- Insert only the missing names, so that identity values are not burnt on conflicts.
    INSERT INTO graphile_worker._private_tasks (identifier)
      SELECT DISTINCT i FROM unnest(identifiers) AS i
      WHERE i IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_tasks AS t WHERE t.identifier = i)
      ON CONFLICT DO NOTHING;
    IF v_want_queues > 0 THEN
      INSERT INTO graphile_worker._private_job_queues (queue_name)
        SELECT DISTINCT q FROM unnest(queue_names) AS q
        WHERE q IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_job_queues AS jq WHERE jq.queue_name = q)
        ON CONFLICT DO NOTHING;
    END IF;
  END LOOP;
END;
$$;

-- summary: enqueue many jobs in one call.
--
-- Changes from version 1, same behaviour: one pass over the specs finds a
-- bad spec, the keys and the names (version 1 called _private_check_job for
-- every spec and read the array four times); calls without keys insert
-- plainly; specs without flags skip the flags subquery.
CREATE OR REPLACE FUNCTION graphile_worker.add_jobs(
  specs graphile_worker.job_spec[],
  job_key_preserve_run_at boolean DEFAULT false
) RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
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

-- summary: enqueue one job.
--
-- A job without a key (the common case) is inserted here directly; a keyed
-- job goes through add_jobs, the one place for the key rules, except in
-- unsafe_dedupe mode, which has rules of its own.
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
  IF job_key_mode IS NOT NULL AND job_key_mode NOT IN ('replace', 'preserve_run_at', 'unsafe_dedupe') THEN
    RAISE EXCEPTION 'job_key_mode is %; expected replace, preserve_run_at or unsafe_dedupe', quote_literal(job_key_mode)
      USING ERRCODE = 'GWBKM', HINT = 'replace is the default; see the README on job keys.';
  END IF;
  PERFORM graphile_worker._private_check_job(identifier, queue_name, max_attempts, job_key, priority);

  IF job_key IS NOT NULL AND job_key_mode IS DISTINCT FROM 'unsafe_dedupe' THEN
    SELECT * INTO v_job
    FROM graphile_worker.add_jobs(
      ARRAY[ROW(identifier, payload, queue_name, run_at, max_attempts::smallint,
                job_key, priority::smallint, flags)::graphile_worker.job_spec],
      job_key_mode = 'preserve_run_at'
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

-- summary: lock and return up to batch_size due, available jobs for a worker.
--
-- Two paths. The first is one statement: lock the first batch_size due jobs
-- in fetch order, FOR UPDATE SKIP LOCKED under the LIMIT, so rows other
-- transactions hold are passed over and the limit counts only rows we got.
-- When none of them is in a named queue, that is the batch.
--
-- Otherwise the per-queue rules apply (at most one job per named queue, taken
-- together with its queue row; a queue's first job is never overtaken by its
-- second) and which jobs qualify depends on the locks taken so far. Then the
-- candidates are read again in order from one cursor (one snapshot, so every
-- queue is judged as it was at one moment) and each is locked on its own. A
-- candidate whose row or queue another transaction holds is passed over;
-- rows we locked but do not take (a second job of a queue, say) stay locked
-- and unchanged until our commit, which only makes concurrent fetches pass
-- over them too. The cursor reads as far as it must to fill the batch.
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
      SELECT t.id FROM graphile_worker._private_tasks AS t WHERE t.identifier = ANY (task_identifiers)
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

-- summary: release the queues of jobs a worker has finished with (plpgsql now, so its plan is kept).
-- Callers call it only when one of their jobs had a queue.
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
      AND held.locked_by = _private_release_queues.worker_id
    ORDER BY held.id
    FOR NO KEY UPDATE
  );
END;
$$;

-- summary: complete (delete) the jobs a worker holds, and free their queues.
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
    WHERE j.id = ANY (complete_worker_jobs.job_ids) AND j.locked_by = complete_worker_jobs.worker_id
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

-- summary: complete one job a worker holds: one DELETE, and a queue update only for a job in a queue.
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
  WHERE j.id = complete_job.job_id AND j.locked_by = complete_job.worker_id
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

-- summary: the body of fail_job and fail_worker_jobs; a queue update only for jobs in a queue.
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
    WHERE j.id = ANY (_private_fail_jobs.job_ids) AND j.locked_by = _private_fail_jobs.worker_id
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

-- summary: fail the jobs a worker holds; they retry after the backoff (plpgsql now, so its plan is kept).
CREATE OR REPLACE FUNCTION graphile_worker.fail_worker_jobs(worker_id text, job_ids bigint[], error_message text)
RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY SELECT * FROM graphile_worker._private_fail_jobs(
    fail_worker_jobs.worker_id, fail_worker_jobs.job_ids, fail_worker_jobs.error_message, NULL
  );
END;
$$;

-- summary: fail one job a worker holds, optionally replacing its payload (plpgsql now, so its plan is kept).
CREATE OR REPLACE FUNCTION graphile_worker.fail_job(
  worker_id text,
  job_id bigint,
  error_message text,
  replacement_payload json DEFAULT NULL
) RETURNS graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_job graphile_worker._private_jobs;
BEGIN
  SELECT * INTO v_job FROM graphile_worker._private_fail_jobs(
    fail_job.worker_id, ARRAY[fail_job.job_id], fail_job.error_message, fail_job.replacement_payload
  );
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  RETURN v_job;
END;
$$;

-- summary: one worker cycle in one call: complete what the worker finished, fetch its next batch.
--
-- A worker that runs jobs in batches calls this once per batch and commits
-- once: the completions and the next fetch share one transaction, one
-- round trip and one commit. The jobs are completed first, so a job of a
-- named queue that completes here frees its queue for this same fetch.
CREATE FUNCTION graphile_worker.complete_and_fetch_jobs(
  worker_id text,
  completed_job_ids bigint[],
  task_identifiers text[] DEFAULT NULL,
  batch_size integer DEFAULT 1,
  forbidden_flags text[] DEFAULT NULL
) RETURNS SETOF graphile_worker.fetched_job
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker.complete_and_fetch_jobs(text, bigint[], text[], integer, text[]) IS
  'One worker cycle: deletes the jobs among completed_job_ids that worker_id holds (as complete_worker_jobs, freeing their queues), then locks and returns up to batch_size due jobs (as fetch_jobs). Commit before running them. Errors as fetch_jobs; on any error nothing is completed.';

-- New functions are executable by no one until a capability set grants them
-- (the default privileges of version 5 already say so; this states it).
REVOKE ALL ON FUNCTION graphile_worker.complete_and_fetch_jobs(text, bigint[], text[], integer, text[]) FROM PUBLIC;
