-- Schema version 4: the scale indexes, the query shapes that use them, and the batched delete of permanently failed jobs.
BEGIN;
SELECT plan(39);

-- Structure: the indexes and what they cover.
SELECT has_index('graphile_worker', '_private_jobs', 'jobs_task_id_index', '((task_id)::bigint)',
  'jobs_task_id_index indexes task_id::bigint (so that only cleanup, which names that expression, uses it)');
SELECT has_index('graphile_worker', '_private_jobs', 'jobs_job_queue_id_index', ARRAY['((job_queue_id)::bigint)', 'id'],
  'jobs_job_queue_id_index indexes job_queue_id::bigint, then id (version 14)');
SELECT has_index('graphile_worker', '_private_jobs', 'jobs_permafailed_index', ARRAY['id'],
  'jobs_permafailed_index indexes id');
SELECT is((SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_catalog.pg_index AS i
           WHERE i.indexrelid = 'graphile_worker.jobs_permafailed_index'::regclass),
  '(attempts >= max_attempts)',
  'jobs_permafailed_index holds only permanently failed jobs (attempts >= max_attempts)');
SELECT is((SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_catalog.pg_index AS i
           WHERE i.indexrelid = 'graphile_worker.jobs_job_queue_id_index'::regclass),
  '(job_queue_id IS NOT NULL)',
  'jobs_job_queue_id_index leaves out jobs without a queue');
SELECT is((SELECT i.indpred FROM pg_catalog.pg_index AS i
           WHERE i.indexrelid = 'graphile_worker.jobs_task_id_index'::regclass),
  NULL,
  'jobs_task_id_index covers every job');
SELECT ok((SELECT bool_and(obj_description(c.oid, 'pg_class') IS NOT NULL) FROM pg_catalog.pg_class AS c
           WHERE c.oid IN ('graphile_worker.jobs_task_id_index'::regclass,
                           'graphile_worker.jobs_job_queue_id_index'::regclass,
                           'graphile_worker.jobs_permafailed_index'::regclass)),
  'every scale index has a comment');

-- Structure: the batched delete.
SELECT has_function('graphile_worker', 'delete_permafailed_jobs_batch', ARRAY['integer'],
  'delete_permafailed_jobs_batch(integer) exists');
SELECT function_returns('graphile_worker', 'delete_permafailed_jobs_batch', ARRAY['integer'], 'bigint',
  'delete_permafailed_jobs_batch returns the number deleted (bigint)');
SELECT volatility_is('graphile_worker', 'delete_permafailed_jobs_batch', ARRAY['integer'], 'volatile',
  'delete_permafailed_jobs_batch is volatile');
SELECT is_definer('graphile_worker', 'delete_permafailed_jobs_batch', ARRAY['integer'],
  'delete_permafailed_jobs_batch runs as the schema owner (privilege model of version 5)');
SELECT is((SELECT proconfig FROM pg_catalog.pg_proc
           WHERE oid = 'graphile_worker.delete_permafailed_jobs_batch(integer)'::regprocedure),
  ARRAY['search_path=pg_catalog, pg_temp'], 'delete_permafailed_jobs_batch pins search_path');
SELECT is(pg_get_function_arguments('graphile_worker.delete_permafailed_jobs_batch(integer)'::regprocedure),
  'batch_size integer DEFAULT 10000', 'delete_permafailed_jobs_batch takes batch_size, 10000 by default');
SELECT isnt(obj_description('graphile_worker.delete_permafailed_jobs_batch(integer)'::regprocedure, 'pg_proc'), NULL,
  'delete_permafailed_jobs_batch has a comment');
SELECT is((SELECT proconfig FROM pg_catalog.pg_proc
           WHERE oid = 'graphile_worker._private_delete_permafailed_jobs(bigint)'::regprocedure),
  ARRAY['search_path=pg_catalog, pg_temp'], '_private_delete_permafailed_jobs pins search_path');
SELECT is((SELECT proconfig FROM pg_catalog.pg_proc
           WHERE oid = 'graphile_worker.cleanup(graphile_worker.cleanup_task[], text[])'::regprocedure),
  ARRAY['search_path=pg_catalog, pg_temp'], 'cleanup, redefined in version 4, still pins search_path');
SELECT is((SELECT proconfig FROM pg_catalog.pg_proc
           WHERE oid = 'graphile_worker.force_unlock_workers(text[])'::regprocedure),
  ARRAY['search_path=pg_catalog, pg_temp'], 'force_unlock_workers, redefined in version 4, still pins search_path');

-- Query shapes: the admin statements can use the indexes (seq scans off, so that
-- a tiny table cannot hide an index the planner could not prove usable).
\ir fixtures/plan-of.sql
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan_of($$
  SELECT t.id FROM graphile_worker._private_tasks AS t
  WHERE NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.task_id::bigint = t.id::bigint)
  FOR UPDATE OF t SKIP LOCKED $$), 'jobs_task_id_index',
  'the task anti-join of GC_TASK_IDENTIFIERS probes jobs_task_id_index');
SELECT matches(pg_temp.plan_of($$
  SELECT jq.id FROM graphile_worker._private_job_queues AS jq
  WHERE graphile_worker._private_is_unlocked(jq.locked_at)
    AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j
                    WHERE j.job_queue_id IS NOT NULL AND j.job_queue_id::bigint = jq.id::bigint)
  FOR UPDATE OF jq SKIP LOCKED $$), 'jobs_job_queue_id_index',
  'the queue anti-join of GC_JOB_QUEUES probes the partial jobs_job_queue_id_index');
SELECT matches(pg_temp.plan_of($$
  SELECT j.id FROM graphile_worker._private_jobs AS j
  WHERE j.attempts >= j.max_attempts AND graphile_worker._private_is_unlocked(j.locked_at)
  ORDER BY j.id LIMIT 10 FOR UPDATE SKIP LOCKED $$), 'jobs_permafailed_index',
  'the permanently failed jobs are read from jobs_permafailed_index');
SELECT matches(pg_temp.plan_of($$
  UPDATE graphile_worker._private_jobs AS jobs SET locked_at = NULL, locked_by = NULL
  WHERE jobs.locked_by = ANY (ARRAY['w']) AND jobs.locked_at IS NOT NULL $$), 'jobs_locked_index',
  'force_unlock_workers'' job update can use jobs_locked_index');
SELECT matches(
  (SELECT prosrc FROM pg_catalog.pg_proc WHERE oid = 'graphile_worker.cleanup(graphile_worker.cleanup_task[], text[])'::regprocedure),
  'j\.task_id::bigint = t\.id::bigint.*j\.task_id::bigint = t\.id::bigint.*j\.job_queue_id::bigint = jq\.id::bigint.*j\.job_queue_id::bigint = jq\.id::bigint',
  'cleanup''s four anti-joins name the indexed expressions');
-- The hot path must not be tempted by them: a fetch by task (as fetch_jobs
-- asks) or by queue cannot search them, whatever the statistics say.
SELECT doesnt_match(pg_temp.plan_of($$
  SELECT j.id FROM graphile_worker._private_jobs AS j
  WHERE j.is_available AND j.run_at <= now() AND j.task_id = ANY (ARRAY[1, 2])
  ORDER BY j.priority, j.run_at, j.id LIMIT 10 $$), '(jobs_task_id_index|jobs_job_queue_id_index|jobs_permafailed_index)[^\n]*\n\s*Index Cond',
  'a fetch by task identifier cannot use the scale indexes');
-- (Not with id as well: since version 14 jobs_job_queue_id_index has id second, and on a tiny table
-- the planner may read all of it for that column; on a real one the primary key always costs less.)
SELECT doesnt_match(pg_temp.plan_of($$
  SELECT j.id FROM graphile_worker._private_jobs AS j
  WHERE j.job_queue_id = 3 AND j.task_id = 4 $$),
  -- (With enable_seqscan off, a tiny table may be read whole through any index: no Index Cond then.)
  '(jobs_task_id_index|jobs_job_queue_id_index|jobs_permafailed_index)[^\n]*\n\s*Index Cond',
  'nor can a lookup by queue and task');
SELECT matches(
  (SELECT prosrc FROM pg_catalog.pg_proc WHERE oid = 'graphile_worker.force_unlock_workers(text[])'::regprocedure),
  'jobs\.locked_at IS NOT NULL',
  'force_unlock_workers states locked_at IS NOT NULL, which jobs_locked_index needs');
RESET enable_seqscan;

-- Behaviour. Jobs named by payload->>'s30'.
INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('s30_task');
INSERT INTO graphile_worker._private_jobs (task_id, payload, attempts, max_attempts, locked_at, locked_by)
SELECT t.id, json_build_object('s30', v.name), v.attempts, v.max_attempts, v.locked_at, v.locked_by
FROM graphile_worker._private_tasks AS t,
  (VALUES
    ('perma_1', 25, 25, NULL::timestamptz, NULL::text),
    ('perma_2', 3, 3, NULL, NULL),
    ('perma_3', 30, 25, NULL, NULL),
    ('perma_4', 25, 25, NULL, NULL),
    ('perma_stale', 25, 25, now() - interval '5 hours', 'worker-dead'),
    ('perma_running', 3, 3, now() - interval '1 minute', 'worker-live'),
    ('waiting', 0, 25, NULL, NULL),
    ('failed_once', 1, 25, NULL, NULL),
    ('running', 1, 25, now(), 'worker-live')
  ) AS v(name, attempts, max_attempts, locked_at, locked_by)
WHERE t.identifier = 's30_task'
ORDER BY v.name;
CREATE FUNCTION pg_temp.s30_left() RETURNS SETOF text
  LANGUAGE sql
AS $$ SELECT payload->>'s30' FROM graphile_worker._private_jobs WHERE payload->>'s30' IS NOT NULL ORDER BY 1 $$;
-- Only our jobs count: a database used for other tests may hold more permanently failed ones.
DELETE FROM graphile_worker._private_jobs WHERE payload->>'s30' IS NULL AND attempts >= max_attempts;

SELECT throws_ok($$ SELECT graphile_worker.delete_permafailed_jobs_batch(0) $$,
  '22003', 'batch_size is 0; it must be at least 1', 'batch_size 0 is refused with 22003, naming batch_size');
SELECT throws_ok($$ SELECT graphile_worker.delete_permafailed_jobs_batch(-5) $$,
  '22003', 'batch_size is -5; it must be at least 1', 'a negative batch_size is refused with 22003');
SELECT throws_ok($$ SELECT graphile_worker.delete_permafailed_jobs_batch(NULL) $$,
  '22004', 'batch_size must not be null', 'a NULL batch_size is refused with 22004');
SELECT is((SELECT count(*)::int FROM pg_temp.s30_left()), 9, 'a refused call deletes nothing');

SELECT is(graphile_worker.delete_permafailed_jobs_batch(2), 2::bigint, 'the first batch of 2 deletes 2 jobs');
SELECT bag_eq($$ SELECT * FROM pg_temp.s30_left() $$,
  $$ VALUES ('perma_3'), ('perma_4'), ('perma_stale'), ('perma_running'), ('waiting'), ('failed_once'), ('running') $$,
  'the lowest ids go first: perma_1 and perma_2 are gone');
SELECT is(graphile_worker.delete_permafailed_jobs_batch(2), 2::bigint, 'the second batch deletes 2 more');
SELECT is(graphile_worker.delete_permafailed_jobs_batch(2), 1::bigint,
  'the third batch deletes the last one, a job whose lock is stale (over 4 hours)');
SELECT is(graphile_worker.delete_permafailed_jobs_batch(2), 0::bigint, 'then nothing is left to delete');
SELECT bag_eq($$ SELECT * FROM pg_temp.s30_left() $$,
  $$ VALUES ('perma_running'), ('waiting'), ('failed_once'), ('running') $$,
  'a running job on its last attempt, waiting, retrying and running jobs are all kept');
SELECT is(graphile_worker.delete_permafailed_jobs_batch(), 0::bigint, 'the default batch size works too');

-- cleanup(DELETE_PERMAFAILED_JOBS), redefined in version 4 on the same statement.
UPDATE graphile_worker._private_jobs SET attempts = max_attempts WHERE payload->>'s30' IN ('waiting', 'running');
SELECT results_eq($$ SELECT task::text, deleted_count FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS}') $$,
  $$ VALUES ('DELETE_PERMAFAILED_JOBS', 1::bigint) $$,
  'cleanup deletes the unlocked permanently failed job in one go and counts it');
SELECT bag_eq($$ SELECT * FROM pg_temp.s30_left() $$,
  $$ VALUES ('perma_running'), ('failed_once'), ('running') $$,
  'and keeps the locked ones');

SELECT is((SELECT count(*)::int FROM pg_catalog.pg_proc
           WHERE pronamespace = 'graphile_worker'::regnamespace AND prokind = 'p'), 0,
  'no procedure: a committing procedure could not pin search_path (batching is done by the caller)');

SELECT * FROM finish();
ROLLBACK;
