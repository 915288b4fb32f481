-- Rollback of schema version 14: version 13's queue index, job_overview_snapshot and list_jobs.
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 13;

CREATE INDEX jobs_job_queue_id_index_v13 ON graphile_worker._private_jobs
  USING btree ((job_queue_id::bigint)) WHERE (job_queue_id IS NOT NULL);
DROP INDEX graphile_worker.jobs_job_queue_id_index;
-- squawk-ignore renaming-object
ALTER INDEX graphile_worker.jobs_job_queue_id_index_v13 RENAME TO jobs_job_queue_id_index;
COMMENT ON INDEX graphile_worker.jobs_job_queue_id_index IS
  'Jobs by queue id (as bigint, so that only cleanup''s query uses it; jobs in a named queue only): cleanup(GC_JOB_QUEUES) checks each queue row with one index probe instead of a scan of every job.';

-- summary: the stored overview, counted again first if it is missing or too old.
CREATE OR REPLACE FUNCTION graphile_worker.job_overview_snapshot(cap integer DEFAULT 10000, max_age interval DEFAULT NULL)
RETURNS TABLE (
  kind text, name text, state graphile_worker.job_state, jobs bigint, at_least boolean,
  oldest_due_run_at timestamptz, counted_at timestamptz
)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_counted_at timestamptz;
BEGIN
  IF cap IS NULL THEN
    RAISE EXCEPTION 'cap must not be null' USING ERRCODE = '22004';
  END IF;
  IF cap < 1 THEN
    RAISE EXCEPTION 'cap is %; it must be at least 1', cap USING ERRCODE = '22003';
  END IF;
  IF max_age < interval '0' THEN
    RAISE EXCEPTION 'max_age is %; it must not be negative', max_age
      USING ERRCODE = '22023', HINT = 'Pass NULL to read the stored count whatever its age.';
  END IF;
  SELECT c.counted_at INTO v_counted_at FROM graphile_worker._private_overview_counted AS c;
  IF v_counted_at IS NULL OR v_counted_at < now() - max_age THEN
    BEGIN
      -- Someone else counting: the count they replace is what this call returns, rather than
      -- waiting seconds for theirs.
      LOCK TABLE graphile_worker._private_overview_counted IN SHARE ROW EXCLUSIVE MODE NOWAIT;
      -- They may have finished between the read above and the lock.
      SELECT c.counted_at INTO v_counted_at FROM graphile_worker._private_overview_counted AS c;
      IF v_counted_at IS NULL OR v_counted_at < now() - max_age THEN
        PERFORM graphile_worker.refresh_job_overview();
      END IF;
    EXCEPTION WHEN lock_not_available THEN
      NULL;
    END;
  END IF;
  RETURN QUERY
  SELECT o.kind, o.name, o.state, least(o.jobs, cap::bigint), o.jobs > cap, o.oldest_due_run_at, c.counted_at
  FROM graphile_worker._private_overview AS o
  CROSS JOIN graphile_worker._private_overview_counted AS c
  ORDER BY 1 DESC, 2, 3;
END;
$$;

-- summary: a page of jobs, filtered and ordered, with a cursor for the next page.
CREATE OR REPLACE FUNCTION graphile_worker.list_jobs(
  states graphile_worker.job_state[] DEFAULT NULL,
  task_identifiers text[] DEFAULT NULL,
  queue_names text[] DEFAULT NULL,
  key_prefix text DEFAULT NULL,
  min_id bigint DEFAULT NULL,
  max_id bigint DEFAULT NULL,
  run_at_from timestamptz DEFAULT NULL,
  run_at_before timestamptz DEFAULT NULL,
  updated_from timestamptz DEFAULT NULL,
  updated_before timestamptz DEFAULT NULL,
  order_by text DEFAULT 'id',
  descending boolean DEFAULT false,
  page_size integer DEFAULT 100,
  after_cursor text DEFAULT NULL
)
RETURNS TABLE (
  id bigint, task_identifier text, queue_name text, state graphile_worker.job_state,
  priority smallint, run_at timestamptz, attempts smallint, max_attempts smallint, key text,
  locked_at timestamptz, locked_by text, created_at timestamptz, updated_at timestamptz,
  last_error_start text, next_cursor text
)
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  -- A page is a few milliseconds of work; compiling it, or starting parallel workers (10 to 20 ms
  -- measured), would cost more. The pages that sort much of the table turn parallelism back on below.
  SET jit = off
  SET max_parallel_workers_per_gather = 0
  -- The cursor carries a timestamp as text: fixed zone and style make it read back exactly.
  SET TimeZone = 'UTC'
  SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
  v_direction text;
  v_where text[] := '{}';
  v_state_terms text[] := '{}';
  v_paused_term text;
  v_task_ids bigint[];
  v_queue_ids bigint[];
  v_paused_tasks integer[];
  v_paused_queues integer[];
  v_match text[];
  v_after_id bigint;
  v_after_at timestamptz;
  v_state graphile_worker.job_state;
  v_priorities smallint[];
  -- Whether the page must be found from the filters' indexes and sorted, not by reading the jobs in
  -- id order until enough match (which is right when matches are dense, and reads the whole table
  -- when there are none).
  v_sparse boolean := false;
  v_narrow text;
  -- Whether the running (or stale) jobs asked for alone are few: counted from jobs_locked_index.
  v_few_locked boolean;
  v_locked integer;
  v_sql text;
BEGIN
  -- Arguments first: a bad one raises before anything is read.
  IF order_by IS NULL THEN
    RAISE EXCEPTION 'order_by must not be null' USING ERRCODE = '22004';
  END IF;
  IF order_by NOT IN ('id', 'run_at', 'updated_at') THEN
    RAISE EXCEPTION 'order_by is %; it must be id, run_at or updated_at', quote_literal(order_by)
      USING ERRCODE = '22023';
  END IF;
  IF descending IS NULL THEN
    RAISE EXCEPTION 'descending must not be null' USING ERRCODE = '22004';
  END IF;
  IF page_size IS NULL THEN
    RAISE EXCEPTION 'page_size must not be null' USING ERRCODE = '22004';
  END IF;
  IF page_size NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'page_size is %; it must be between 1 and 1000', page_size USING ERRCODE = '22003';
  END IF;
  IF cardinality(states) = 0 THEN
    RAISE EXCEPTION 'states is empty; pass NULL to not filter on it' USING ERRCODE = '22023';
  END IF;
  IF array_position(states, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'states element must not be null' USING ERRCODE = '22004';
  END IF;
  IF task_identifiers IS NOT NULL THEN
    PERFORM graphile_worker._private_check_names('task_identifiers', task_identifiers);
  END IF;
  IF queue_names IS NOT NULL THEN
    PERFORM graphile_worker._private_check_names('queue_names', queue_names);
  END IF;
  IF length(key_prefix) NOT BETWEEN 1 AND 512 THEN
    RAISE EXCEPTION 'key_prefix is % characters long; it must be 1 to 512', length(key_prefix)
      USING ERRCODE = '22023', HINT = 'Pass NULL to not filter on the job key.';
  END IF;
  IF min_id > max_id THEN
    RAISE EXCEPTION 'min_id % is greater than max_id %', min_id, max_id USING ERRCODE = '22023';
  END IF;
  IF run_at_from >= run_at_before THEN
    RAISE EXCEPTION 'run_at_from % is not before run_at_before %', run_at_from, run_at_before
      USING ERRCODE = '22023';
  END IF;
  IF updated_from >= updated_before THEN
    RAISE EXCEPTION 'updated_from % is not before updated_before %', updated_from, updated_before
      USING ERRCODE = '22023';
  END IF;
  v_direction := CASE WHEN descending THEN 'DESC' ELSE 'ASC' END;

  -- The cursor: v1|<order_by>|<asc or desc>|<id>[|<timestamp>], made by this function from the last
  -- row of a page. It must come from a call with the same order.
  IF after_cursor IS NOT NULL THEN
    v_match := regexp_match(after_cursor, '^v1\|(id|run_at|updated_at)\|(asc|desc)\|([0-9]{1,19})(?:\|(.+))?$');
    IF v_match IS NULL OR (v_match[1] = 'id') <> (v_match[4] IS NULL) THEN
      RAISE EXCEPTION 'after_cursor % is not a cursor list_jobs returned', quote_literal(left(after_cursor, 100))
        USING ERRCODE = '22023', HINT = 'Pass the next_cursor of the last row of the previous page.';
    END IF;
    IF v_match[1] <> order_by OR v_match[2] <> lower(v_direction) THEN
      RAISE EXCEPTION 'after_cursor was made for order_by % %, not % %', v_match[1], v_match[2], order_by, lower(v_direction)
        USING ERRCODE = '22023', HINT = 'Pass the same order_by and descending as the call that returned the cursor.';
    END IF;
    BEGIN
      v_after_id := v_match[3]::bigint;
      v_after_at := v_match[4]::timestamptz;
    EXCEPTION WHEN data_exception THEN
      RAISE EXCEPTION 'after_cursor % is not a cursor list_jobs returned', quote_literal(left(after_cursor, 100))
        USING ERRCODE = '22023', HINT = 'Pass the next_cursor of the last row of the previous page.';
    END;
  END IF;

  -- Names to ids; a name no job uses matches nothing.
  IF task_identifiers IS NOT NULL THEN
    v_task_ids := ARRAY(SELECT t.id FROM graphile_worker._private_tasks AS t
                        WHERE t.identifier = ANY (task_identifiers));
  END IF;
  IF queue_names IS NOT NULL THEN
    v_queue_ids := ARRAY(SELECT q.id FROM graphile_worker._private_job_queues AS q
                         WHERE q.queue_name = ANY (queue_names));
  END IF;
  v_paused_tasks := ARRAY(SELECT t.id FROM graphile_worker._private_tasks AS t
                          JOIN graphile_worker._private_paused AS p ON p.kind = 'task' AND p.name = t.identifier);
  v_paused_queues := ARRAY(SELECT q.id FROM graphile_worker._private_job_queues AS q
                           JOIN graphile_worker._private_paused AS p ON p.kind = 'queue' AND p.name = q.queue_name);
  -- Waiting jobs are the due entries of jobs_main_index, whose first column is priority: naming
  -- every priority in use (one index probe each, found by skipping from one to the next) turns
  -- "due" into a range per priority. Beyond 100 priorities the probes would cost more than they save.
  IF 'waiting' = ANY (states) THEN
    WITH RECURSIVE p AS (
      (SELECT j.priority FROM graphile_worker._private_jobs AS j
       WHERE j.is_available ORDER BY j.priority LIMIT 1)
      UNION ALL
      SELECT (SELECT j.priority FROM graphile_worker._private_jobs AS j
              WHERE j.is_available AND j.priority > p.priority ORDER BY j.priority LIMIT 1)
      FROM p WHERE p.priority IS NOT NULL
    )
    SELECT array_agg(p.priority) INTO v_priorities
    FROM (SELECT p.priority FROM p WHERE p.priority IS NOT NULL LIMIT 101) AS p;
    IF cardinality(v_priorities) > 100 THEN
      v_priorities := NULL;
    END IF;
    -- The planner cannot tell how many jobs are due (its statistics do not tie run_at to
    -- is_available), so count them, up to 10,000, from the same index: fewer than that, and the
    -- page is found from them.
    IF v_priorities IS NOT NULL AND cardinality(states) = 1 THEN
      v_sparse := (SELECT count(*) < 10000 FROM (
        SELECT 1 FROM graphile_worker._private_jobs AS j
        WHERE j.is_available AND j.priority = ANY (v_priorities) AND j.run_at <= now()
        LIMIT 10000) AS due);
    END IF;
  END IF;

  -- The locked jobs asked for alone (one state, no task or queue filter): count them, up to 10,000,
  -- from jobs_locked_index, which has their lock time. Few (a fleet's worth), and the page is found
  -- from that index and sorted; many (after a crash, stale jobs by the thousand), and the jobs are
  -- read in order until the page is full, which then takes a few thousand rows, not all of them.
  IF cardinality(states) = 1 AND states[1] IN ('running', 'stale') AND v_task_ids IS NULL AND v_queue_ids IS NULL THEN
    IF states[1] = 'running' THEN
      v_locked := (SELECT count(*) FROM (SELECT 1 FROM graphile_worker._private_jobs AS j
                   WHERE j.locked_at >= now() - interval '4 hours' LIMIT 10000) AS locked);
    ELSE
      v_locked := (SELECT count(*) FROM (SELECT 1 FROM graphile_worker._private_jobs AS j
                   WHERE j.locked_at < now() - interval '4 hours' LIMIT 10000) AS locked);
    END IF;
    -- None (the usual answer for stale): the page is empty, whatever the other filters.
    IF v_locked = 0 THEN
      RETURN;
    END IF;
    v_few_locked := v_locked < 10000;
  END IF;

  -- The query is put together from the fixed fragments below, one per filter given, so that its plan
  -- is made for this call's filters (an index per filter) rather than for all of them at once.
  -- Every value is a parameter ($1..$17, bound by USING); only the column and direction of the
  -- order are text, and they come from the lists checked above.
  IF cardinality(v_paused_tasks) > 0 OR cardinality(v_paused_queues) > 0 THEN
    v_paused_term := '(j.task_id = ANY ($14) OR (j.job_queue_id IS NOT NULL AND j.job_queue_id = ANY ($15)))';
  ELSE
    v_paused_term := 'false';
  END IF;
  -- With a task or queue filter, the few running or stale jobs of those are found from
  -- jobs_locked_index alone (it includes task_id and job_queue_id), not by reading every job of the
  -- task or queue (the failed ones have partial indexes by task and by queue of their own).
  v_narrow := concat(CASE WHEN v_task_ids IS NOT NULL THEN ' AND s.task_id = ANY ($2)' END,
                     CASE WHEN v_queue_ids IS NOT NULL THEN ' AND s.job_queue_id = ANY ($3)' END);
  -- Each state as a condition on the columns, by the rules of _private_job_state (the type's
  -- comment); pgtap/28-admin-lists.sql checks that each state lists exactly the jobs job_state gives it.
  IF states IS NOT NULL THEN
    FOREACH v_state IN ARRAY states LOOP
      v_state_terms := v_state_terms || CASE v_state
        -- From jobs_locked_index when they are few, or narrowed to tasks or queues.
        WHEN 'running' THEN '(j.locked_at >= now() - interval ''4 hours''' || CASE WHEN v_narrow <> '' OR v_few_locked
          THEN ' AND j.id IN (SELECT s.id FROM graphile_worker._private_jobs AS s WHERE s.locked_at >= now() - interval ''4 hours''' || v_narrow || ')'
          ELSE '' END || ')'
        -- Stale jobs are usually few or none among many locked ones: from jobs_locked_index, unless
        -- counted many above.
        WHEN 'stale' THEN '(j.locked_at < now() - interval ''4 hours''' || CASE WHEN v_few_locked IS NOT false
          THEN ' AND j.id IN (SELECT s.id FROM graphile_worker._private_jobs AS s WHERE s.locked_at < now() - interval ''4 hours''' || v_narrow || ')'
          ELSE '' END || ')'
        WHEN 'permanently_failed' THEN '(j.locked_at IS NULL AND j.attempts >= j.max_attempts)'
        -- The jobs of the paused tasks and queues, from jobs_task_id_index and jobs_job_queue_id_index.
        WHEN 'paused' THEN '(j.is_available AND ((j.task_id)::bigint = ANY ($14::bigint[]) OR (j.job_queue_id IS NOT NULL AND (j.job_queue_id)::bigint = ANY ($15::bigint[]))))'
        WHEN 'retrying' THEN '(j.is_available AND j.attempts > 0 AND NOT ' || v_paused_term || ')'
        WHEN 'scheduled' THEN '(j.is_available AND j.attempts <= 0 AND j.run_at > now() AND NOT ' || v_paused_term || ')'
        WHEN 'waiting' THEN '(j.is_available AND j.attempts <= 0 AND j.run_at <= now() AND NOT ' || v_paused_term
                            || CASE WHEN v_priorities IS NOT NULL THEN ' AND j.priority = ANY ($17)' ELSE '' END || ')'
      END;
    END LOOP;
    -- Few rows each: find them from those indexes and sort them, rather than read in id order.
    IF (states <@ ARRAY['stale', 'paused', 'retrying']::graphile_worker.job_state[] AND v_few_locked IS NOT false)
       OR (v_narrow <> '' AND states <@ ARRAY['running', 'stale', 'permanently_failed', 'retrying']::graphile_worker.job_state[])
       OR v_few_locked THEN
      v_sparse := true;
    END IF;
    v_where := v_where || ('(' || array_to_string(v_state_terms, ' OR ') || ')');
  END IF;
  -- As bigint, the expressions of jobs_task_id_index and jobs_job_queue_id_index. When the states
  -- are few (v_sparse) the plain columns, which no index has first: the plan then starts from the
  -- states' own indexes.
  IF v_sparse THEN
    IF v_task_ids IS NOT NULL THEN
      v_where := v_where || 'j.task_id = ANY ($2)'::text;
    END IF;
    IF v_queue_ids IS NOT NULL THEN
      v_where := v_where || 'j.job_queue_id = ANY ($3)'::text;
    END IF;
  ELSIF cardinality(v_task_ids) = 1 THEN
    v_where := v_where || '(j.task_id)::bigint = ($2)[1]'::text;
  ELSIF v_task_ids IS NOT NULL THEN
    v_where := v_where || '(j.task_id)::bigint = ANY ($2)'::text;
  END IF;
  IF NOT v_sparse AND cardinality(v_queue_ids) = 1 THEN
    v_where := v_where || 'j.job_queue_id IS NOT NULL AND (j.job_queue_id)::bigint = ($3)[1]'::text;
  ELSIF NOT v_sparse AND v_queue_ids IS NOT NULL THEN
    v_where := v_where || 'j.job_queue_id IS NOT NULL AND (j.job_queue_id)::bigint = ANY ($3)'::text;
  END IF;
  IF key_prefix IS NOT NULL THEN
    -- No index serves it (see the head of this file): the keys are read with the rows.
    v_where := v_where || 'starts_with(j.key, $4)'::text;
  END IF;
  IF min_id IS NOT NULL THEN
    v_where := v_where || 'j.id >= $5'::text;
  END IF;
  IF max_id IS NOT NULL THEN
    v_where := v_where || 'j.id <= $6'::text;
  END IF;
  IF run_at_from IS NOT NULL THEN
    v_where := v_where || 'j.run_at >= $7'::text;
  END IF;
  IF run_at_before IS NOT NULL THEN
    v_where := v_where || 'j.run_at < $8'::text;
  END IF;
  IF updated_from IS NOT NULL THEN
    v_where := v_where || 'j.updated_at >= $9'::text;
  END IF;
  IF updated_before IS NOT NULL THEN
    v_where := v_where || 'j.updated_at < $10'::text;
  END IF;
  IF after_cursor IS NOT NULL THEN
    v_where := v_where || CASE
      WHEN order_by = 'id' THEN format('j.id %s $11', CASE WHEN descending THEN '<' ELSE '>' END)
      ELSE format('(j.%I, j.id) %s ($12, $11)', order_by, CASE WHEN descending THEN '<' ELSE '>' END)
    END;
  END IF;

  -- A page that sorts the whole table (by run_at or updated_at, or by a key prefix no index serves,
  -- with no state, task or queue to narrow it) is seconds of work that parallel workers shorten.
  IF NOT v_sparse AND v_task_ids IS NULL AND v_queue_ids IS NULL AND (order_by <> 'id' OR key_prefix IS NOT NULL) THEN
    PERFORM set_config('max_parallel_workers_per_gather',
                       (SELECT s.reset_val FROM pg_settings AS s WHERE s.name = 'max_parallel_workers_per_gather'), true);
  END IF;

  v_sql := format($q$
    SELECT p.id, t.identifier, q.queue_name,
           graphile_worker._private_job_state(p.locked_at, p.attempts, p.max_attempts, p.run_at,
                                              p.task_id = ANY ($14) OR p.job_queue_id = ANY ($15)),
           p.priority, p.run_at, p.attempts, p.max_attempts, p.key, p.locked_at, p.locked_by,
           p.created_at, p.updated_at, left(split_part(p.last_error, E'\n', 1), 200),
           concat_ws('|', 'v1', $13, lower(%2$L), p.id,
                     CASE $13 WHEN 'run_at' THEN p.run_at::text WHEN 'updated_at' THEN p.updated_at::text END)
    FROM (
      SELECT j.id, j.task_id, j.job_queue_id, j.priority, j.run_at, j.attempts, j.max_attempts,
             j.key, j.locked_at, j.locked_by, j.created_at, j.updated_at, j.last_error
      FROM graphile_worker._private_jobs AS j
      WHERE %1$s
      ORDER BY %3$s
      LIMIT $16
    ) AS p
    LEFT JOIN graphile_worker._private_tasks AS t ON t.id = p.task_id
    LEFT JOIN graphile_worker._private_job_queues AS q ON q.id = p.job_queue_id
    ORDER BY %4$s
    $q$,
    CASE WHEN cardinality(v_where) = 0 THEN 'true' ELSE array_to_string(v_where, ' AND ') END,
    v_direction,
    -- j.id + 0 keeps the planner from reading the primary key in order (see v_sparse).
    CASE WHEN order_by = 'id' THEN format('%s %s', CASE WHEN v_sparse THEN 'j.id + 0' ELSE 'j.id' END, v_direction)
         ELSE format('j.%I %s, j.id %s', order_by, v_direction, v_direction) END,
    CASE WHEN order_by = 'id' THEN format('p.id %s', v_direction)
         ELSE format('p.%I %s, p.id %s', order_by, v_direction, v_direction) END);
  RETURN QUERY EXECUTE v_sql
    USING states, v_task_ids, v_queue_ids, key_prefix, min_id, max_id, run_at_from, run_at_before,
          updated_from, updated_before, v_after_id, v_after_at, order_by, v_paused_tasks, v_paused_queues,
          page_size, v_priorities;
END;
$$;
