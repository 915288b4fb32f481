-- Schema version 3: the worker API (fetch, complete, fail, release stale locks) for clients in any language.
-- depends: 0002.admin-functions
--
-- A worker is any process with a Postgres driver and a worker id of its own
-- choosing. It calls fetch_jobs in one short transaction and commits, runs the
-- jobs, then calls complete_* or fail_* in another; the job and queue locks
-- (locked_at, locked_by) carry the ownership across those transactions. Every
-- function here checks that the caller holds the job: a worker can never
-- complete or fail another worker's job.
--
-- Lock order, to stay free of deadlocks: jobs before queues, each by id.
-- fetch_jobs never waits for a row lock (it skips locked rows), so it cannot
-- be part of a deadlock at all.

-- The two indexes below lock the jobs table against writes while they build
-- (about a second per million jobs): fail fast rather than queue behind a long transaction.
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 3;

-- summary: due, available jobs in fetch order, id included as a key column.
-- jobs_main_index (priority, run_at) cannot give the order fetch_jobs promises
-- (priority, run_at, id): add_jobs gives all jobs of one call the same run_at,
-- so a tie group can be the whole queue and would have to be sorted on every
-- fetch. With id as the third key the fetch reads just the first rows.
CREATE INDEX jobs_fetch_index ON graphile_worker._private_jobs
  USING btree (priority, run_at, id) INCLUDE (task_id, job_queue_id) WHERE (is_available = true);
COMMENT ON INDEX graphile_worker.jobs_fetch_index IS
  'Due, available jobs in the order fetch_jobs takes them (priority, run_at, id), so a fetch reads only the rows it returns or skips.';

-- summary: the locked jobs, by worker, for complete/fail by holder, the
-- worker_locks view and release_stale_locks. Only locked rows are indexed
-- (a handful: one per running job), so it costs one small insert per fetch.
CREATE INDEX jobs_locked_index ON graphile_worker._private_jobs
  USING btree (locked_by, job_queue_id) INCLUDE (locked_at) WHERE (locked_at IS NOT NULL);
COMMENT ON INDEX graphile_worker.jobs_locked_index IS
  'Locked (running) jobs by worker id and queue: serves worker_locks, release_stale_locks and force_unlock_workers without reading the whole table.';

-- summary: one job as fetch_jobs hands it to a worker.
CREATE TYPE graphile_worker.fetched_job AS (
  id bigint,
  task_identifier text,
  queue_name text,
  payload json,
  priority smallint,
  run_at timestamptz,
  attempts smallint,
  max_attempts smallint,
  key text,
  flags jsonb,
  locked_at timestamptz,
  locked_by text,
  last_error text,
  revision integer,
  created_at timestamptz
);
COMMENT ON TYPE graphile_worker.fetched_job IS
  'A job locked for a worker by fetch_jobs: id, task identifier, queue name, payload, scheduling fields (attempts already counts this run), the lock, and the error of the previous attempt.';

-- summary: THE backoff rule. A failed job waits exp(least(attempts, 10)) seconds
-- (2.7 s after the first attempt, about 6 h 7 min from the tenth on).
CREATE FUNCTION graphile_worker._private_retry_delay(attempts integer) RETURNS interval
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN pg_catalog.exp(LEAST(attempts, 10)::double precision) * interval '1 second';
COMMENT ON FUNCTION graphile_worker._private_retry_delay(integer) IS
  'Private: how long a job that failed on attempt number attempts waits before its next try: exp(least(attempts, 10)) seconds.';

-- summary: argument check shared by every worker function.
CREATE FUNCTION graphile_worker._private_check_worker_id(worker_id text) RETURNS void
  LANGUAGE plpgsql IMMUTABLE
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker._private_check_worker_id(text) IS
  'Private: raises 22004 (null) or 22023 (empty) for a bad worker_id.';

-- summary: lock and return up to batch_size due, available jobs for a worker.
--
-- Why a loop rather than one statement: a batch may hold at most one job per
-- named queue, and a queued job may only be taken together with its queue
-- row, both with SKIP LOCKED. Which jobs qualify therefore depends on the
-- locks taken so far, so candidates are read in order (priority, run_at, id)
-- from one cursor, and each is locked on its own. A candidate whose row or queue another transaction
-- holds is passed over; one whose job row we locked but whose queue we could
-- not stays row-locked (unchanged) until our commit, which only makes
-- concurrent fetches pass over it too.
CREATE FUNCTION graphile_worker.fetch_jobs(
  worker_id text,
  task_identifiers text[] DEFAULT NULL,
  batch_size integer DEFAULT 1,
  forbidden_flags text[] DEFAULT NULL
) RETURNS SETOF graphile_worker.fetched_job
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
  -- The candidate query reads a few index rows, but its estimated cost can be
  -- that of the whole index, which would JIT-compile it (~100 ms) on every call.
  SET jit = off
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
COMMENT ON FUNCTION graphile_worker.fetch_jobs(text, text[], integer, text[]) IS
  'Locks for worker_id and returns up to batch_size (1..10000) due, available jobs in order of priority, run_at, id; attempts goes up by one. task_identifiers NULL: any task. Jobs with any of forbidden_flags are skipped. A job of a named queue is taken only with its queue, at most one per queue; locked rows are skipped, never waited for. Commit before running the jobs.';

-- summary: release the queues of jobs a worker has finished with.
CREATE FUNCTION graphile_worker._private_release_queues(worker_id text, queue_ids integer[]) RETURNS void
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker._private_release_queues(text, integer[]) IS
  'Private: unlocks those of the given queues that worker_id holds, in id order.';

-- summary: complete (delete) the jobs a worker holds, and free their queues.
CREATE FUNCTION graphile_worker.complete_worker_jobs(worker_id text, job_ids bigint[])
RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker.complete_worker_jobs(text, bigint[]) IS
  'Deletes the jobs among job_ids that worker_id holds (locked_by), unlocks their queues and returns the deleted jobs; jobs held by another worker or by none are left alone and not returned.';

-- summary: complete one job a worker holds.
CREATE FUNCTION graphile_worker.complete_job(worker_id text, job_id bigint)
RETURNS graphile_worker._private_jobs
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM graphile_worker.complete_worker_jobs(complete_job.worker_id, ARRAY[complete_job.job_id]);
$$;
COMMENT ON FUNCTION graphile_worker.complete_job(text, bigint) IS
  'Deletes job_id if worker_id holds it, unlocks its queue and returns it; NULL when worker_id does not hold that job.';

-- summary: fail the jobs a worker holds: record the error, unlock, schedule the retry.
CREATE FUNCTION graphile_worker._private_fail_jobs(
  worker_id text,
  job_ids bigint[],
  error_message text,
  replacement_payload json
) RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION graphile_worker._private_fail_jobs(text, bigint[], text, json) IS
  'Private: the body of fail_job and fail_worker_jobs.';

-- summary: fail the jobs a worker holds; they retry after the backoff.
CREATE FUNCTION graphile_worker.fail_worker_jobs(worker_id text, job_ids bigint[], error_message text)
RETURNS SETOF graphile_worker._private_jobs
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM graphile_worker._private_fail_jobs(
    fail_worker_jobs.worker_id, fail_worker_jobs.job_ids, fail_worker_jobs.error_message, NULL
  );
$$;
COMMENT ON FUNCTION graphile_worker.fail_worker_jobs(text, bigint[], text) IS
  'For the jobs among job_ids that worker_id holds: stores error_message in last_error, unlocks job and queue, and sets run_at = greatest(now(), run_at) + exp(least(attempts, 10)) seconds; a job at max_attempts stays permanently failed. Returns the updated jobs.';

-- summary: fail one job a worker holds, optionally replacing its payload.
CREATE FUNCTION graphile_worker.fail_job(
  worker_id text,
  job_id bigint,
  error_message text,
  replacement_payload json DEFAULT NULL
) RETURNS graphile_worker._private_jobs
  LANGUAGE sql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM graphile_worker._private_fail_jobs(
    fail_job.worker_id, ARRAY[fail_job.job_id], fail_job.error_message, fail_job.replacement_payload
  );
$$;
COMMENT ON FUNCTION graphile_worker.fail_job(text, bigint, text, json) IS
  'Fails job_id if worker_id holds it (see fail_worker_jobs); replacement_payload, when not NULL, becomes the payload of the next attempt (to record progress). NULL when worker_id does not hold that job.';

-- summary: free what dead workers left locked: job and queue locks older
-- than 4 hours, and queues locked although their locker holds none of their jobs.
--
-- The second case is safe to decide only on a fresh snapshot: the queue rows
-- are locked first (skipping any a transaction is changing right now), and a
-- following statement, whose snapshot sees every fetch that committed before
-- those locks, looks for the job that justifies each queue lock.
CREATE FUNCTION graphile_worker.release_stale_locks()
RETURNS TABLE (released_jobs bigint, released_queues bigint)
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_jobs bigint;
  v_queues bigint;
  v_locked_queues integer[];
BEGIN
  WITH stale AS (
    SELECT j.id FROM graphile_worker._private_jobs AS j
    WHERE j.locked_at IS NOT NULL AND graphile_worker._private_is_unlocked(j.locked_at)
    ORDER BY j.id
    FOR UPDATE SKIP LOCKED
  )
  UPDATE graphile_worker._private_jobs AS j
  SET locked_at = NULL,
      locked_by = NULL,
      updated_at = now()
  FROM stale
  WHERE j.id = stale.id;
  GET DIAGNOSTICS v_jobs = ROW_COUNT;

  v_locked_queues := ARRAY(
    SELECT q.id FROM graphile_worker._private_job_queues AS q
    WHERE q.locked_at IS NOT NULL
    ORDER BY q.id
    FOR NO KEY UPDATE SKIP LOCKED
  );

  UPDATE graphile_worker._private_job_queues AS q
  SET locked_at = NULL,
      locked_by = NULL
  WHERE q.id = ANY (v_locked_queues)
    AND q.locked_at IS NOT NULL
    AND (graphile_worker._private_is_unlocked(q.locked_at)
      OR NOT EXISTS (
        SELECT 1 FROM graphile_worker._private_jobs AS j
        WHERE j.locked_at IS NOT NULL AND j.locked_by = q.locked_by AND j.job_queue_id = q.id
      ));
  GET DIAGNOSTICS v_queues = ROW_COUNT;

  RETURN QUERY SELECT v_jobs, v_queues;
END;
$$;
COMMENT ON FUNCTION graphile_worker.release_stale_locks() IS
  'Unlocks jobs and queues locked more than 4 hours ago (workers presumed dead), and queues locked while their locker holds none of their jobs (e.g. the job was deleted by hand). Returns how many of each it released. Workers call it periodically, e.g. every minute.';

-- summary: what each worker id holds, and for how long: find dead workers here.
CREATE VIEW graphile_worker.worker_locks AS
  WITH locks AS (
    SELECT j.locked_by, j.locked_at, j.id AS job_id, NULL::text AS queue_name, false AS orphaned
    FROM graphile_worker._private_jobs AS j
    WHERE j.locked_at IS NOT NULL
    UNION ALL
    SELECT q.locked_by, q.locked_at, NULL::bigint, q.queue_name,
           NOT EXISTS (
             SELECT 1 FROM graphile_worker._private_jobs AS j
             WHERE j.locked_at IS NOT NULL AND j.locked_by = q.locked_by AND j.job_queue_id = q.id
           )
    FROM graphile_worker._private_job_queues AS q
    WHERE q.locked_at IS NOT NULL
  )
  SELECT
    locks.locked_by AS worker_id,
    count(locks.job_id) AS locked_jobs,
    count(locks.queue_name) AS locked_queues,
    min(locks.locked_at) AS oldest_lock_at,
    max(locks.locked_at) AS newest_lock_at,
    pg_catalog.now() - min(locks.locked_at) AS oldest_lock_age,
    coalesce(array_agg(locks.job_id ORDER BY locks.job_id) FILTER (WHERE locks.job_id IS NOT NULL), '{}') AS job_ids,
    coalesce(array_agg(locks.queue_name ORDER BY locks.queue_name) FILTER (WHERE locks.queue_name IS NOT NULL), '{}')
      AS queue_names,
    coalesce(array_agg(locks.queue_name ORDER BY locks.queue_name) FILTER (WHERE locks.orphaned), '{}')
      AS orphaned_queue_names,
    graphile_worker._private_is_unlocked(max(locks.locked_at)) AS is_stale
  FROM locks
  GROUP BY locks.locked_by;
COMMENT ON VIEW graphile_worker.worker_locks IS
  'One row per worker id holding locks: counts and ids of its locked jobs and queues, oldest and newest lock time, orphaned_queue_names (locked without a job of theirs; release_stale_locks frees them), is_stale (even its newest lock is over 4 hours old: presumed dead).';
