-- Schema version 10: what an administrative UI needs first: job states, pausing queues and tasks,
-- one job in full, and an audit log of every administrative call.
-- depends: 0009.graphile-worker-compat
--
--   * job_state: the state of a job, defined once (waiting, scheduled, retrying, running, stale,
--     permanently_failed, paused); the README has the table.
--   * pause_queue / resume_queue, pause_task / resume_task. A paused queue is a queue row locked
--     with locked_at = 'infinity' by the reserved worker id 'graphile_worker.pause_queue': our
--     fetch skips locked queues, and so does graphile-worker's Node worker, whose stale-lock sweep
--     (locked_at older than 4 hours) never reaches infinity. GC_JOB_QUEUES and WorkerUtils' cleanup
--     keep locked queue rows, and force_unlock_workers now leaves that worker id alone. A paused
--     task is a row in _private_paused, which fetch_jobs reads; the Node worker knows nothing of it.
--   * job_detail: one job with payload, last error, lock, task, queue and state.
--   * _private_admin_log (view admin_log): one row per call of complete_jobs,
--     permanently_fail_jobs, reschedule_jobs, force_unlock_workers, cleanup,
--     delete_permafailed_jobs_batch, the pause and resume functions and prune_admin_log, written
--     in the caller's transaction, so a call that rolls back leaves none.
-- fetch_jobs changes only as said (paused tasks, the reserved worker id); the admin functions
-- keep their signatures, results and errors and gain the log row.

SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 10;

CREATE TYPE graphile_worker.job_state AS ENUM (
  'waiting', 'scheduled', 'retrying', 'running', 'stale', 'permanently_failed', 'paused'
);
COMMENT ON TYPE graphile_worker.job_state IS 'The state of a job (job_state, job_detail). Checked in this order: running (locked less than 4 hours ago), stale (locked longer), permanently_failed (attempts >= max_attempts), paused (its queue or task is paused), retrying (attempts > 0), scheduled (run_at in the future), waiting (due).';

-- Paused queues and tasks, by name: a name may be paused before any job uses it.
CREATE TABLE graphile_worker._private_paused (
  kind text NOT NULL,
  name text NOT NULL,
  paused_at timestamptz NOT NULL DEFAULT now(),
  paused_by text NOT NULL,
  reason text,
  CONSTRAINT _private_paused_pkey PRIMARY KEY (kind, name),
  CONSTRAINT _private_paused_kind_check CHECK (kind IN ('queue', 'task'))
);
COMMENT ON TABLE graphile_worker._private_paused IS 'Private: one row per paused queue (kind queue) or task identifier (kind task), with who paused it (session_user), when and why. Read through the view pauses.';
ALTER TABLE graphile_worker._private_paused ENABLE ROW LEVEL SECURITY;

CREATE VIEW graphile_worker.pauses AS
SELECT p.kind, p.name, p.paused_at, p.paused_by, p.reason
FROM graphile_worker._private_paused AS p;
COMMENT ON VIEW graphile_worker.pauses IS 'The paused queues and task identifiers (pause_queue, pause_task), with who paused them, when and why.';

CREATE TABLE graphile_worker._private_admin_log (
  id bigint GENERATED ALWAYS AS IDENTITY,
  at timestamptz NOT NULL DEFAULT now(),
  session_role text NOT NULL,
  function text NOT NULL,
  asked integer NOT NULL,
  changed bigint NOT NULL,
  reason text,
  job_ids bigint[],
  names text[],
  CONSTRAINT _private_admin_log_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE graphile_worker._private_admin_log IS 'Private: one row per administrative call, written in its transaction: when (transaction time), session_user, the function, how many ids or names were asked for and how many rows changed, the reason where the call takes one, and the first 1,000 job ids or names asked for. Read through the view admin_log; pruned by prune_admin_log.';
ALTER TABLE graphile_worker._private_admin_log ENABLE ROW LEVEL SECURITY;
-- prune_admin_log deletes by age.
CREATE INDEX _private_admin_log_at_index ON graphile_worker._private_admin_log USING btree (at);
COMMENT ON INDEX graphile_worker._private_admin_log_at_index IS 'Serves prune_admin_log (delete by age) and reading the log newest first.';

CREATE VIEW graphile_worker.admin_log AS
SELECT l.id, l.at, l.session_role, l.function, l.asked, l.changed, l.reason, l.job_ids, l.names
FROM graphile_worker._private_admin_log AS l;
COMMENT ON VIEW graphile_worker.admin_log IS 'The audit log: one row per administrative call that committed (complete_jobs, permanently_fail_jobs, reschedule_jobs, force_unlock_workers, cleanup, delete_permafailed_jobs_batch, pause and resume, prune_admin_log).';

-- summary: appends one audit row; called by every administrative function.
CREATE FUNCTION graphile_worker._private_log_admin(
  function_name text, asked integer, changed bigint, reason text, job_ids bigint[], names text[]
) RETURNS void
  LANGUAGE sql
  SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  -- The id lists are capped: a call with a million ids must not write a row of megabytes.
  INSERT INTO graphile_worker._private_admin_log (session_role, function, asked, changed, reason, job_ids, names)
  VALUES (session_user, function_name, coalesce(asked, 0), coalesce(changed, 0), reason,
          job_ids[1:1000], names[1:1000]);
END;
COMMENT ON FUNCTION graphile_worker._private_log_admin(text, integer, bigint, text, bigint[], text[]) IS 'Private: appends one row to the audit log (_private_admin_log) for an administrative call, with at most 1,000 job ids and names.';
REVOKE ALL ON FUNCTION graphile_worker._private_log_admin(text, integer, bigint, text, bigint[], text[]) FROM PUBLIC;

-- summary: the state of a job from its columns; the one place the states are defined.
CREATE FUNCTION graphile_worker._private_job_state(
  locked_at timestamptz, attempts smallint, max_attempts smallint, run_at timestamptz, paused boolean
) RETURNS graphile_worker.job_state
  LANGUAGE sql STABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
RETURN CASE
  -- A lock counts for 4 hours, as everywhere else (_private_is_unlocked).
  WHEN locked_at IS NOT NULL AND NOT graphile_worker._private_is_unlocked(locked_at) THEN 'running'
  WHEN locked_at IS NOT NULL THEN 'stale'
  WHEN attempts >= max_attempts THEN 'permanently_failed'
  WHEN paused THEN 'paused'
  WHEN attempts > 0 THEN 'retrying'
  WHEN run_at > now() THEN 'scheduled'
  ELSE 'waiting'
END::graphile_worker.job_state;
COMMENT ON FUNCTION graphile_worker._private_job_state(timestamptz, smallint, smallint, timestamptz, boolean) IS 'Private: the job_state of a job with these columns; paused: whether its queue or task is paused.';
REVOKE ALL ON FUNCTION graphile_worker._private_job_state(timestamptz, smallint, smallint, timestamptz, boolean) FROM PUBLIC;

-- summary: the state of a row of the jobs view.
CREATE FUNCTION graphile_worker.job_state(job graphile_worker.jobs) RETURNS graphile_worker.job_state
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
RETURN graphile_worker._private_job_state(
  job.locked_at, job.attempts, job.max_attempts, job.run_at,
  EXISTS (SELECT 1 FROM graphile_worker._private_paused AS p
          WHERE (p.kind = 'task' AND p.name = job.task_identifier COLLATE "default")
             OR (p.kind = 'queue' AND p.name = job.queue_name COLLATE "default")));
COMMENT ON FUNCTION graphile_worker.job_state(graphile_worker.jobs) IS 'The state of a job, given its row of the jobs view: SELECT j.id, graphile_worker.job_state(j) FROM graphile_worker.jobs AS j. See the type job_state for the rules.';
REVOKE ALL ON FUNCTION graphile_worker.job_state(graphile_worker.jobs) FROM PUBLIC;

-- summary: one job in full, for a detail page.
CREATE FUNCTION graphile_worker.job_detail(job_id bigint)
RETURNS TABLE (
  id bigint, task_identifier text, queue_name text, state graphile_worker.job_state, payload json,
  priority smallint, run_at timestamptz, attempts smallint, max_attempts smallint, last_error text,
  key text, flags jsonb, locked_at timestamptz, locked_by text, queue_locked_at timestamptz,
  queue_locked_by text, task_paused boolean, queue_paused boolean, revision integer,
  created_at timestamptz, updated_at timestamptz
)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  SELECT j.id, t.identifier, q.queue_name,
         graphile_worker._private_job_state(j.locked_at, j.attempts, j.max_attempts, j.run_at,
                                            tp.name IS NOT NULL OR qp.name IS NOT NULL),
         j.payload, j.priority, j.run_at, j.attempts, j.max_attempts, j.last_error, j.key, j.flags,
         j.locked_at, j.locked_by, q.locked_at, q.locked_by, tp.name IS NOT NULL, qp.name IS NOT NULL,
         j.revision, j.created_at, j.updated_at
  FROM graphile_worker._private_jobs AS j
  LEFT JOIN graphile_worker._private_tasks AS t ON t.id = j.task_id
  LEFT JOIN graphile_worker._private_job_queues AS q ON q.id = j.job_queue_id
  LEFT JOIN graphile_worker._private_paused AS tp ON tp.kind = 'task' AND tp.name = t.identifier
  LEFT JOIN graphile_worker._private_paused AS qp ON qp.kind = 'queue' AND qp.name = q.queue_name
  WHERE j.id = job_detail.job_id;
END;
COMMENT ON FUNCTION graphile_worker.job_detail(bigint) IS 'One job in full: payload, last error, its lock and its queue''s lock, task, queue, state, and whether its task or queue is paused. No row when there is no such job.';
REVOKE ALL ON FUNCTION graphile_worker.job_detail(bigint) FROM PUBLIC;

-- summary: the argument check shared by the pause and resume functions.
CREATE FUNCTION graphile_worker._private_check_name(argument text, value text) RETURNS void
  LANGUAGE plpgsql IMMUTABLE
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be null', argument USING ERRCODE = '22004';
  END IF;
  IF length(value) NOT BETWEEN 1 AND 128 THEN
    RAISE EXCEPTION '% is % characters long; it must be 1 to 128', argument, length(value)
      USING ERRCODE = '22023', HINT = 'Queue names and task identifiers are 1 to 128 characters.';
  END IF;
END;
$$;
COMMENT ON FUNCTION graphile_worker._private_check_name(text, text) IS 'Private: raises 22004 (null) or 22023 (not 1 to 128 characters) for a queue name or task identifier, naming the argument.';
REVOKE ALL ON FUNCTION graphile_worker._private_check_name(text, text) FROM PUBLIC;

-- summary: pauses a queue: our workers and graphile-worker's Node worker skip its jobs until resume_queue.
CREATE FUNCTION graphile_worker.pause_queue(queue_name text, reason text DEFAULT NULL) RETURNS boolean
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_new boolean;
BEGIN
  PERFORM graphile_worker._private_check_name('queue_name', queue_name);
  INSERT INTO graphile_worker._private_paused AS p (kind, name, paused_by, reason)
  VALUES ('queue', pause_queue.queue_name, session_user, pause_queue.reason)
  ON CONFLICT ON CONSTRAINT _private_paused_pkey DO NOTHING;
  v_new := FOUND;
  -- The pause is the queue's lock: taken over from a running job too (that job
  -- finishes; its worker then finds the queue locked by someone else and leaves it).
  -- The row is made if the queue has none yet, so its first job waits as well.
  INSERT INTO graphile_worker._private_job_queues AS q (queue_name, locked_at, locked_by)
  VALUES (pause_queue.queue_name, 'infinity', 'graphile_worker.pause_queue')
  ON CONFLICT ON CONSTRAINT _private_job_queues_queue_name_key
  DO UPDATE SET locked_at = 'infinity', locked_by = 'graphile_worker.pause_queue';
  PERFORM graphile_worker._private_log_admin('pause_queue', 1, v_new::integer, reason, NULL, ARRAY[queue_name]);
  RETURN v_new;
END;
$$;
COMMENT ON FUNCTION graphile_worker.pause_queue(text, text) IS 'Pauses a queue (made if it does not exist yet): its jobs stay where they are and are not fetched, by our worker API or by graphile-worker''s Node worker, until resume_queue. A job of it already running finishes. Returns false if it was paused already. Raises 22004/22023 for a NULL or bad name.';
REVOKE ALL ON FUNCTION graphile_worker.pause_queue(text, text) FROM PUBLIC;

-- summary: resumes a paused queue.
CREATE FUNCTION graphile_worker.resume_queue(queue_name text) RETURNS boolean
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_was boolean;
BEGIN
  PERFORM graphile_worker._private_check_name('queue_name', queue_name);
  DELETE FROM graphile_worker._private_paused AS p
  WHERE p.kind = 'queue' AND p.name = resume_queue.queue_name COLLATE "default";
  v_was := FOUND;
  -- Hand the lock back to a job of the queue still running, if there is one, so
  -- that a second job cannot start beside it; otherwise the queue is free.
  UPDATE graphile_worker._private_job_queues AS q
  SET (locked_at, locked_by) = (
    SELECT j.locked_at, j.locked_by FROM graphile_worker._private_jobs AS j
    WHERE j.job_queue_id IS NOT NULL AND j.job_queue_id::bigint = q.id::bigint AND j.locked_at IS NOT NULL
    ORDER BY j.locked_at DESC LIMIT 1)
  WHERE q.queue_name = resume_queue.queue_name COLLATE "default"
    AND q.locked_by = 'graphile_worker.pause_queue';
  PERFORM graphile_worker._private_log_admin('resume_queue', 1, v_was::integer, NULL, NULL, ARRAY[queue_name]);
  RETURN v_was;
END;
$$;
COMMENT ON FUNCTION graphile_worker.resume_queue(text) IS 'Resumes a queue paused by pause_queue: its jobs run again in their order. Returns false if it was not paused. Raises 22004/22023 for a NULL or bad name.';
REVOKE ALL ON FUNCTION graphile_worker.resume_queue(text) FROM PUBLIC;

-- summary: pauses a task identifier for our worker API.
CREATE FUNCTION graphile_worker.pause_task(task_identifier text, reason text DEFAULT NULL) RETURNS boolean
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_new boolean;
BEGIN
  PERFORM graphile_worker._private_check_name('task_identifier', task_identifier);
  INSERT INTO graphile_worker._private_paused AS p (kind, name, paused_by, reason)
  VALUES ('task', pause_task.task_identifier, session_user, pause_task.reason)
  ON CONFLICT ON CONSTRAINT _private_paused_pkey DO NOTHING;
  v_new := FOUND;
  PERFORM graphile_worker._private_log_admin('pause_task', 1, v_new::integer, reason, NULL, ARRAY[task_identifier]);
  RETURN v_new;
END;
$$;
COMMENT ON FUNCTION graphile_worker.pause_task(text, text) IS 'Pauses a task identifier: fetch_jobs and complete_and_fetch_jobs skip its jobs, which keep their place, until resume_task. graphile-worker''s Node worker does not know task pauses (pause a queue for it). Returns false if it was paused already. Raises 22004/22023 for a NULL or bad name.';
REVOKE ALL ON FUNCTION graphile_worker.pause_task(text, text) FROM PUBLIC;

-- summary: resumes a paused task identifier.
CREATE FUNCTION graphile_worker.resume_task(task_identifier text) RETURNS boolean
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_was boolean;
BEGIN
  PERFORM graphile_worker._private_check_name('task_identifier', task_identifier);
  DELETE FROM graphile_worker._private_paused AS p
  WHERE p.kind = 'task' AND p.name = resume_task.task_identifier COLLATE "default";
  v_was := FOUND;
  PERFORM graphile_worker._private_log_admin('resume_task', 1, v_was::integer, NULL, NULL, ARRAY[task_identifier]);
  RETURN v_was;
END;
$$;
COMMENT ON FUNCTION graphile_worker.resume_task(text) IS 'Resumes a task identifier paused by pause_task. Returns false if it was not paused. Raises 22004/22023 for a NULL or bad name.';
REVOKE ALL ON FUNCTION graphile_worker.resume_task(text) FROM PUBLIC;

-- summary: deletes audit rows older than an age.
CREATE FUNCTION graphile_worker.prune_admin_log(older_than interval) RETURNS bigint
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_deleted bigint;
BEGIN
  IF older_than IS NULL THEN
    RAISE EXCEPTION 'older_than must not be null'
      USING ERRCODE = '22004', HINT = 'Pass an age, e.g. interval ''90 days''.';
  END IF;
  IF older_than < interval '0' THEN
    RAISE EXCEPTION 'older_than is %; it must not be negative', older_than
      USING ERRCODE = '22023', HINT = 'Pass an age, e.g. interval ''90 days''.';
  END IF;
  DELETE FROM graphile_worker._private_admin_log AS l WHERE l.at < now() - older_than;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  -- The pruning itself is logged (after the delete, so it is never its own victim).
  PERFORM graphile_worker._private_log_admin('prune_admin_log', 0, v_deleted, older_than::text, NULL, NULL);
  RETURN v_deleted;
END;
$$;
COMMENT ON FUNCTION graphile_worker.prune_admin_log(interval) IS 'Deletes the audit rows (admin_log) older than older_than and returns how many; the call itself is logged. Raises 22004/22023 for a NULL or negative age.';
REVOKE ALL ON FUNCTION graphile_worker.prune_admin_log(interval) FROM PUBLIC;

-- summary: as version 9 (now plpgsql, to count the rows), and one audit row per call.
CREATE OR REPLACE FUNCTION graphile_worker.complete_jobs(job_ids bigint[]) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_changed bigint;
BEGIN
  RETURN QUERY
  DELETE FROM graphile_worker._private_jobs AS jobs
  WHERE jobs.id = ANY (complete_jobs.job_ids)
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING *;
  GET DIAGNOSTICS v_changed = ROW_COUNT;
  PERFORM graphile_worker._private_log_admin('complete_jobs', cardinality(job_ids), v_changed, NULL, job_ids, NULL);
END;
$$;

-- summary: as version 9 (now plpgsql, to count the rows), and one audit row per call.
CREATE OR REPLACE FUNCTION graphile_worker.permanently_fail_jobs(job_ids bigint[], error_message text DEFAULT NULL::text) RETURNS SETOF graphile_worker._private_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_changed bigint;
BEGIN
  RETURN QUERY
  UPDATE graphile_worker._private_jobs AS jobs
  SET attempts = jobs.max_attempts,
      last_error = coalesce(permanently_fail_jobs.error_message, 'Manually marked as failed'),
      updated_at = now()
  WHERE jobs.id = ANY (permanently_fail_jobs.job_ids)
    AND graphile_worker._private_is_unlocked(jobs.locked_at)
  RETURNING *;
  GET DIAGNOSTICS v_changed = ROW_COUNT;
  PERFORM graphile_worker._private_log_admin('permanently_fail_jobs', cardinality(job_ids), v_changed,
                                             error_message, job_ids, NULL);
END;
$$;

-- summary: as version 9, and one audit row per call.
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
  GET DIAGNOSTICS v_changed = ROW_COUNT;
  PERFORM graphile_worker._private_log_admin('reschedule_jobs', cardinality(job_ids), v_changed, NULL, job_ids, NULL);
END;
$$;

-- summary: as version 9, but a paused queue stays paused; one audit row per call.
CREATE OR REPLACE FUNCTION graphile_worker.force_unlock_workers(worker_ids text[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  -- No lock check here on purpose: releasing these locks is the whole point.
  WITH jobs AS (
    UPDATE graphile_worker._private_jobs AS jobs
    SET locked_at = NULL,
        locked_by = NULL
    WHERE jobs.locked_by = ANY (force_unlock_workers.worker_ids COLLATE "default")
      AND jobs.locked_at IS NOT NULL
    RETURNING 1
  ), queues AS (
    -- A paused queue is locked by the reserved id of pause_queue: only resume_queue frees it.
    UPDATE graphile_worker._private_job_queues AS job_queues
    SET locked_at = NULL,
        locked_by = NULL
    WHERE job_queues.locked_by = ANY (force_unlock_workers.worker_ids COLLATE "default")
      AND job_queues.locked_by <> 'graphile_worker.pause_queue'
    RETURNING 1
  )
  -- One audit row; the result stays NULL, as before (and as graphile-worker's own function returns).
  SELECT NULL::void
  FROM (SELECT graphile_worker._private_log_admin(
          'force_unlock_workers', cardinality(force_unlock_workers.worker_ids),
          (SELECT count(*) FROM jobs) + (SELECT count(*) FROM queues), NULL, NULL, force_unlock_workers.worker_ids)
       ) AS logged;
$$;

-- summary: as version 9, and one audit row per call (not for an empty task list).
CREATE OR REPLACE FUNCTION graphile_worker.cleanup(tasks graphile_worker.cleanup_task[] DEFAULT '{GC_JOB_QUEUES,GC_TASK_IDENTIFIERS}'::graphile_worker.cleanup_task[], task_identifiers_to_keep text[] DEFAULT '{}'::text[]) RETURNS TABLE(task graphile_worker.cleanup_task, deleted_count bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_total bigint := 0;
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
    v_total := v_total + deleted_count;
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
    v_total := v_total + deleted_count;
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
    v_total := v_total + deleted_count;
    RETURN NEXT;
  END IF;

  PERFORM graphile_worker._private_log_admin('cleanup', cardinality(tasks), v_total, NULL, NULL, tasks::text[]);
END;
$$;

-- summary: as version 9, and one audit row per call.
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
      USING ERRCODE = '22023', HINT = 'Pass how many jobs to delete per call, e.g. 10000.';
  END IF;
  v_deleted := graphile_worker._private_delete_permafailed_jobs(batch_size);
  PERFORM graphile_worker._private_log_admin('delete_permafailed_jobs_batch', 0, v_deleted, NULL, NULL, NULL);
  RETURN v_deleted;
END;
$$;

-- summary: as version 9, but skipping paused tasks and refusing the worker id reserved for paused queues.
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
      USING ERRCODE = '22023', HINT = 'Pass how many jobs to fetch at most, 1 to 10000.';
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

COMMENT ON FUNCTION graphile_worker.force_unlock_workers(worker_ids text[]) IS 'Clears locked_at and locked_by on every job and queue locked by one of these worker ids, so their jobs can run again at once instead of after 4 hours; a queue paused by pause_queue stays paused. Only for workers that have died: never pass a live worker''s id.';
COMMENT ON FUNCTION graphile_worker.fetch_jobs(worker_id text, task_identifiers text[], batch_size integer, forbidden_flags text[]) IS 'Locks for worker_id and returns up to batch_size (1..10000) due, available jobs in order of priority, run_at, id; attempts goes up by one. task_identifiers NULL: any task. Jobs with any of forbidden_flags, and jobs of paused tasks and queues, are skipped. A job of a named queue is taken only with its queue, at most one per queue; locked rows are skipped, never waited for. Commit before running the jobs. The worker id graphile_worker.pause_queue is reserved (22023).';
