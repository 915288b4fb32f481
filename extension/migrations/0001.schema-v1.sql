-- Schema version 1: the job tables, the jobs view, job_spec, and the enqueue functions (add_job, add_jobs, remove_job).
--
-- Every name is schema-qualified and every plpgsql/sql-with-body function pins
-- search_path, so a caller's search_path can never change what these functions
-- resolve. Single-expression helpers use the SQL-standard RETURN form instead:
-- their references are bound when they are created, and the planner can still
-- inline them into the calling query.

-- Fail fast rather than queue behind a long transaction (yoyo wraps the file in one transaction).
SET LOCAL lock_timeout = '10s';

CREATE SCHEMA graphile_worker;
COMMENT ON SCHEMA graphile_worker IS
  'Job queue: tables, views and functions to enqueue, run and administer jobs. Installed and upgraded by python -m installer.';

-- summary: task identifiers, referenced by jobs through task_id.
CREATE TABLE graphile_worker._private_tasks (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  identifier text NOT NULL UNIQUE CHECK (pg_catalog.length(identifier) <= 128)
);
COMMENT ON TABLE graphile_worker._private_tasks IS
  'Private: one row per task identifier. Jobs refer to it by id; use the functions, not this table.';

-- summary: named queues; a locked queue runs no other job until it is unlocked.
CREATE TABLE graphile_worker._private_job_queues (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue_name text NOT NULL UNIQUE CHECK (pg_catalog.length(queue_name) <= 128),
  locked_at timestamptz,
  locked_by text,
  is_available boolean GENERATED ALWAYS AS (locked_at IS NULL) STORED NOT NULL
);
COMMENT ON TABLE graphile_worker._private_job_queues IS
  'Private: one row per named queue, locked (locked_at, locked_by) while one of its jobs runs, so that its jobs run one at a time.';

-- summary: the jobs themselves.
CREATE TABLE graphile_worker._private_jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_queue_id integer,
  task_id integer NOT NULL,
  payload json NOT NULL DEFAULT '{}'::json,
  priority smallint NOT NULL DEFAULT 0,
  run_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  attempts smallint NOT NULL DEFAULT 0,
  max_attempts smallint NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
  last_error text,
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  key text UNIQUE CHECK (pg_catalog.length(key) > 0 AND pg_catalog.length(key) <= 512),
  locked_at timestamptz,
  locked_by text,
  revision integer NOT NULL DEFAULT 0,
  flags jsonb,
  is_available boolean GENERATED ALWAYS AS (locked_at IS NULL AND attempts < max_attempts) STORED NOT NULL
);
COMMENT ON TABLE graphile_worker._private_jobs IS
  'Private: one row per job until it completes. attempts = max_attempts means permanently failed; locked_at set means a worker holds it.';

-- The two indexes a worker's fetch reads: due, available jobs in priority order.
-- The second serves fetches that ask only for jobs outside any queue.
CREATE INDEX jobs_main_index ON graphile_worker._private_jobs
  USING btree (priority, run_at) INCLUDE (id, task_id, job_queue_id) WHERE (is_available = true);
CREATE INDEX jobs_no_queue_index ON graphile_worker._private_jobs
  USING btree (priority, run_at) INCLUDE (id, task_id) WHERE (is_available = true AND job_queue_id IS NULL);

-- No role is meant to touch the private tables directly; row level security
-- with no policy makes that explicit for any role that is not their owner.
ALTER TABLE graphile_worker._private_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE graphile_worker._private_job_queues ENABLE ROW LEVEL SECURITY;
ALTER TABLE graphile_worker._private_jobs ENABLE ROW LEVEL SECURITY;

-- summary: jobs with their task identifier and queue name, without the payload.
CREATE VIEW graphile_worker.jobs AS
  SELECT
    jobs.id,
    job_queues.queue_name,
    tasks.identifier AS task_identifier,
    jobs.priority,
    jobs.run_at,
    jobs.attempts,
    jobs.max_attempts,
    jobs.last_error,
    jobs.created_at,
    jobs.updated_at,
    jobs.key,
    jobs.locked_at,
    jobs.locked_by,
    jobs.revision,
    jobs.flags
  FROM graphile_worker._private_jobs AS jobs
  INNER JOIN graphile_worker._private_tasks AS tasks ON tasks.id = jobs.task_id
  LEFT JOIN graphile_worker._private_job_queues AS job_queues ON job_queues.id = jobs.job_queue_id;
COMMENT ON VIEW graphile_worker.jobs IS
  'Read-only view of every job with its task identifier and queue name; the payload is left out on purpose (it may be large or private).';

-- summary: one job to enqueue, as passed to add_jobs.
CREATE TYPE graphile_worker.job_spec AS (
  identifier text,
  payload json,
  queue_name text,
  run_at timestamptz,
  max_attempts smallint,
  job_key text,
  priority smallint,
  flags text[]
);
COMMENT ON TYPE graphile_worker.job_spec IS
  'One job for add_jobs: task identifier, payload, queue, run_at, max_attempts, job key, priority and flags; NULL fields take add_job''s defaults.';

-- summary: the installed schema version, for DBAs and the installer.
CREATE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 1;
COMMENT ON FUNCTION graphile_worker.schema_version() IS
  'The version of the graphile_worker schema that is installed (one per migration).';

-- summary: THE lock rule. A job or queue is locked while locked_at is set and
-- younger than 4 hours; older locks belong to workers presumed dead.
CREATE FUNCTION graphile_worker._private_is_unlocked(locked_at timestamptz) RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE
  RETURN locked_at IS NULL OR locked_at < pg_catalog.now() - interval '4 hours';
COMMENT ON FUNCTION graphile_worker._private_is_unlocked(timestamptz) IS
  'True when a job or queue with this locked_at may be changed by administration: never locked, or locked more than 4 hours ago (a dead worker).';

-- summary: argument checks shared by add_job and add_jobs, so both raise the same errors.
CREATE FUNCTION graphile_worker._private_check_job(
  identifier text,
  queue_name text,
  max_attempts integer,
  job_key text,
  priority integer
) RETURNS void
  LANGUAGE plpgsql STABLE
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker._private_check_job(text, text, integer, text, integer) IS
  'Private: raises a clear error (22004, 22023, 22003) naming the bad argument of add_job/add_jobs.';

-- summary: make sure the task and queue rows exist and hold them until commit.
--
-- Why the lock: cleanup (GC_TASK_IDENTIFIERS, GC_JOB_QUEUES) deletes task and
-- queue rows that no job refers to. Without a lock, such a row could be deleted
-- after this transaction found it but before its job row is visible, and the
-- job would be lost (inner join on the task) or lose its queue (left join).
-- FOR KEY SHARE lets any number of enqueuers share a row, while cleanup's
-- FOR UPDATE ... SKIP LOCKED simply passes over rows that are held. A row that
-- cleanup deleted before we could lock it is missing from the locked set; we
-- then insert it again and retry, so the loop ends as soon as cleanup is done.
CREATE FUNCTION graphile_worker._private_hold_tasks_and_queues(identifiers text[], queue_names text[])
RETURNS void
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker._private_hold_tasks_and_queues(text[], text[]) IS
  'Private: creates missing task and queue rows and locks them FOR KEY SHARE until commit, so a concurrent cleanup cannot delete them under a new job.';

-- summary: tell listening workers that jobs were added.
-- A random member keeps two notifications of one transaction distinct:
-- PostgreSQL folds identical payloads on one channel into one.
CREATE FUNCTION graphile_worker._private_notify_insert(job_count bigint) RETURNS void
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_notify('jobs:insert', json_build_object('r', random(), 'count', job_count)::text);
$$;
COMMENT ON FUNCTION graphile_worker._private_notify_insert(bigint) IS
  'Private: sends NOTIFY "jobs:insert" with {"r": random, "count": n}; n < 0 when jobs were removed.';

-- summary: enqueue many jobs in one call.
CREATE FUNCTION graphile_worker.add_jobs(
  specs graphile_worker.job_spec[],
  job_key_preserve_run_at boolean DEFAULT false
) RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker.add_jobs(graphile_worker.job_spec[], boolean) IS
  'Enqueues every spec in one statement and returns the jobs. A spec whose job_key exists replaces that job (array payloads are concatenated; run_at kept when job_key_preserve_run_at and the job never ran); a running or permanently failed job with that key gives up its key and a new job is made.';

-- summary: enqueue one job.
CREATE FUNCTION graphile_worker.add_job(
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
  LANGUAGE plpgsql VOLATILE
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
COMMENT ON FUNCTION graphile_worker.add_job(text, json, text, timestamptz, integer, text, integer, text[], text) IS
  'Enqueues one job and returns it. job_key_mode: replace (default) updates a waiting job with the same key; preserve_run_at does so but keeps its run_at; unsafe_dedupe leaves any existing job with that key untouched.';

-- summary: delete a waiting job by key, or stop a running one from retrying.
CREATE FUNCTION graphile_worker.remove_job(job_key text) RETURNS graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE STRICT
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_job graphile_worker._private_jobs;
BEGIN
  DELETE FROM graphile_worker._private_jobs AS jobs
  WHERE jobs.key = remove_job.job_key
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
  WHERE jobs.key = remove_job.job_key
  RETURNING * INTO v_job;
  RETURN v_job;
END;
$$;
COMMENT ON FUNCTION graphile_worker.remove_job(text) IS
  'Deletes the unlocked job with this key and returns it; a locked (running) job instead loses its key and will not be retried. Returns NULL when no job has the key.';
