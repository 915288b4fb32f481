-- cleanup: the cleanup_task enum and each task alone, together, with identifiers to keep and locked queues.
BEGIN;
SELECT plan(32);
-- cleanup works on the whole database: start from empty tables (rolled back at
-- the end) so that the counts below are exactly the fixture's.
DELETE FROM graphile_worker._private_jobs;
DELETE FROM graphile_worker._private_tasks;
DELETE FROM graphile_worker._private_job_queues;
\ir fixtures/admin-fixture.sql

-- One more job: permanently failed, with a stale lock, the only user of fx_task_d and fx_queue_d.
INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('fx_task_d');
INSERT INTO graphile_worker._private_job_queues (queue_name) VALUES ('fx_queue_d');
INSERT INTO graphile_worker._private_jobs (task_id, job_queue_id, payload, attempts, max_attempts, locked_at, locked_by)
SELECT t.id, q.id, '{"extra": "stale_permafailed"}', 5, 5, now() - interval '5 hours', 'worker-dead'
FROM graphile_worker._private_tasks AS t, graphile_worker._private_job_queues AS q
WHERE t.identifier = 'fx_task_d' AND q.queue_name = 'fx_queue_d';

-- Everything cleanup could delete, by kind.
CREATE FUNCTION pg_temp.census() RETURNS TABLE (kind text, name text)
  LANGUAGE sql STABLE
AS $$
  SELECT 'task', identifier FROM graphile_worker._private_tasks
  UNION ALL SELECT 'queue', queue_name FROM graphile_worker._private_job_queues
  UNION ALL SELECT 'job', coalesce(payload ->> 'fx', payload ->> 'extra') FROM graphile_worker._private_jobs
$$;
CREATE TEMP TABLE fx_census_before AS SELECT * FROM pg_temp.census();

-- Structure (definer mode, search_path and comment: 09-contract.sql, for every function).
SELECT has_enum('graphile_worker', 'cleanup_task', 'the cleanup_task enum exists');
SELECT enum_has_labels('graphile_worker', 'cleanup_task',
  ARRAY['GC_JOB_QUEUES', 'GC_TASK_IDENTIFIERS', 'DELETE_PERMAFAILED_JOBS'],
  'cleanup_task has the three labels of Graphile Worker, in its order');
SELECT isnt(obj_description('graphile_worker.cleanup_task'::regtype, 'pg_type'), NULL,
  'cleanup_task has a comment');
SELECT has_function('graphile_worker', 'cleanup', ARRAY['graphile_worker.cleanup_task[]', 'text[]'],
  'cleanup(cleanup_task[], text[]) exists');
SELECT function_returns('graphile_worker', 'cleanup', ARRAY['graphile_worker.cleanup_task[]', 'text[]'], 'setof record',
  'cleanup returns a set');
SELECT is(pg_get_function_result('graphile_worker.cleanup(graphile_worker.cleanup_task[], text[])'::regprocedure),
  'TABLE(task graphile_worker.cleanup_task, deleted_count bigint)',
  'cleanup returns table(task cleanup_task, deleted_count bigint)');
SELECT is(pg_get_function_arguments('graphile_worker.cleanup(graphile_worker.cleanup_task[], text[])'::regprocedure),
  'tasks graphile_worker.cleanup_task[] DEFAULT ''{GC_JOB_QUEUES,GC_TASK_IDENTIFIERS}''::graphile_worker.cleanup_task[], task_identifiers_to_keep text[] DEFAULT ''{}''::text[]',
  'cleanup''s parameters and their defaults');
SELECT volatility_is('graphile_worker', 'cleanup', ARRAY['graphile_worker.cleanup_task[]', 'text[]'], 'volatile',
  'cleanup is volatile');

-- Nothing asked, nothing done.
SELECT is_empty($$ SELECT * FROM graphile_worker.cleanup(NULL) $$, 'NULL tasks: no rows');
SELECT is_empty($$ SELECT * FROM graphile_worker.cleanup('{}') $$, 'no tasks: no rows');
SELECT is_empty($$ SELECT * FROM graphile_worker.cleanup('{}', '{fx_task_a}') $$, 'no tasks, with identifiers to keep: no rows');

-- Bad input.
SELECT throws_ok($$ SELECT * FROM graphile_worker.cleanup('{BOGUS}') $$, '22P02', NULL,
  'an unknown task name raises invalid_text_representation');
SELECT throws_ok($$ SELECT * FROM graphile_worker.cleanup(ARRAY['GC_JOB_QUEUES', 'gc_task_identifiers']::graphile_worker.cleanup_task[]) $$,
  '22P02', NULL,
  'task names are case sensitive: a lower-case name raises invalid_text_representation');
SELECT throws_ok($$ SELECT * FROM graphile_worker.cleanup(ARRAY['GC_JOB_QUEUES', NULL]::graphile_worker.cleanup_task[]) $$,
  '22004', 'tasks must not contain NULL',
  'a NULL task raises null_value_not_allowed naming tasks');
SELECT set_eq($$ SELECT * FROM pg_temp.census() $$, $$ SELECT * FROM fx_census_before $$,
  'after the empty calls and the errors nothing was deleted');

-- DELETE_PERMAFAILED_JOBS alone.
SELECT results_eq($$ SELECT * FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS}') $$,
  $$ VALUES ('DELETE_PERMAFAILED_JOBS'::graphile_worker.cleanup_task, 2::bigint) $$,
  'DELETE_PERMAFAILED_JOBS alone: one row, two jobs deleted (the unlocked one and the one with a stale lock)');
SELECT set_eq($$ SELECT * FROM pg_temp.census() $$,
  $$ SELECT * FROM fx_census_before WHERE (kind, name) NOT IN (('job', 'permafailed'), ('job', 'stale_permafailed')) $$,
  'only those two jobs are gone: the running job on its last attempt stays, and no task or queue is collected');

-- GC_JOB_QUEUES alone.
SELECT results_eq($$ SELECT * FROM graphile_worker.cleanup('{GC_JOB_QUEUES}') $$,
  $$ VALUES ('GC_JOB_QUEUES'::graphile_worker.cleanup_task, 4::bigint) $$,
  'GC_JOB_QUEUES alone: one row, four queues deleted');
SELECT set_eq($$ SELECT name FROM pg_temp.census() WHERE kind = 'queue' $$,
  ARRAY['fx_queue_a', 'fx_queue_locked', 'fx_queue_live_empty'],
  'queues with jobs and the empty queue locked a minute ago stay; empty, stale-locked and freed queues are gone');
SELECT set_eq($$ SELECT name FROM pg_temp.census() WHERE kind = 'task' $$,
  $$ SELECT name FROM fx_census_before WHERE kind = 'task' $$,
  'GC_JOB_QUEUES deletes no task');

-- GC_TASK_IDENTIFIERS alone, keeping one (a NULL in the list is harmless).
SELECT results_eq($$ SELECT * FROM graphile_worker.cleanup('{GC_TASK_IDENTIFIERS}', ARRAY['fx_task_keep', NULL]) $$,
  $$ VALUES ('GC_TASK_IDENTIFIERS'::graphile_worker.cleanup_task, 3::bigint) $$,
  'GC_TASK_IDENTIFIERS alone: one row, three tasks deleted');
SELECT set_eq($$ SELECT name FROM pg_temp.census() WHERE kind = 'task' $$,
  ARRAY['fx_task_a', 'fx_task_c', 'fx_task_keep'],
  'tasks with jobs (the locked ones'' included) and the one to keep stay');
SELECT set_eq($$ SELECT name FROM pg_temp.census() WHERE kind = 'queue' $$,
  ARRAY['fx_queue_a', 'fx_queue_locked', 'fx_queue_live_empty'],
  'GC_TASK_IDENTIFIERS deletes no queue');

-- All three together, asked in reverse order with a duplicate: they run (and are
-- reported) in the order DELETE_PERMAFAILED_JOBS, GC_TASK_IDENTIFIERS, GC_JOB_QUEUES,
-- so the rows the deleted job used are collected in the same call.
SELECT lives_ok($$ SELECT graphile_worker.reschedule_jobs(ARRAY[pg_temp.fx('failed_once')], attempts => 25) $$,
  'failed_once is made permanently failed');
SELECT results_eq($$ SELECT * FROM graphile_worker.cleanup(
                       '{GC_JOB_QUEUES,GC_TASK_IDENTIFIERS,DELETE_PERMAFAILED_JOBS,GC_JOB_QUEUES}', NULL) $$,
  $$ VALUES ('DELETE_PERMAFAILED_JOBS'::graphile_worker.cleanup_task, 1::bigint),
            ('GC_TASK_IDENTIFIERS', 1::bigint),
            ('GC_JOB_QUEUES', 1::bigint) $$,
  'all together: one row per task, in execution order; the job''s queue is freed and collected, fx_task_keep is no longer kept');
SELECT set_eq($$ SELECT kind || ':' || name FROM pg_temp.census() WHERE kind <> 'job' $$,
  ARRAY['task:fx_task_a', 'task:fx_task_c', 'queue:fx_queue_locked', 'queue:fx_queue_live_empty'],
  'left: the tasks and queue used by jobs, and the locked empty queue');

-- The defaults: GC_TASK_IDENTIFIERS then GC_JOB_QUEUES, keeping nothing.
INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('fx_task_f');
INSERT INTO graphile_worker._private_job_queues (queue_name) VALUES ('fx_queue_f');
SELECT results_eq($$ SELECT * FROM graphile_worker.cleanup() $$,
  $$ VALUES ('GC_TASK_IDENTIFIERS'::graphile_worker.cleanup_task, 1::bigint), ('GC_JOB_QUEUES', 1::bigint) $$,
  'cleanup() runs GC_TASK_IDENTIFIERS then GC_JOB_QUEUES');
SELECT is_empty($$ SELECT 1 FROM pg_temp.census() WHERE name IN ('fx_task_f', 'fx_queue_f') $$,
  'cleanup() deleted the unused task and queue');

-- Once the live worker's queue lock is stale, the empty queue is collected.
UPDATE graphile_worker._private_job_queues SET locked_at = now() - interval '5 hours' WHERE queue_name = 'fx_queue_live_empty';
SELECT results_eq($$ SELECT * FROM graphile_worker.cleanup('{GC_JOB_QUEUES}') $$,
  $$ VALUES ('GC_JOB_QUEUES'::graphile_worker.cleanup_task, 1::bigint) $$,
  'an empty queue whose lock is older than 4 hours is collected');

-- What survived all of that.
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IS NOT NULL AND name <> 'failed_once' $$,
  $$ SELECT * FROM fx_before WHERE name NOT IN ('permafailed', 'failed_once') $$,
  'every job that was not permanently failed is still there, unchanged');
SELECT is((SELECT count(*) FROM graphile_worker.jobs), (SELECT count(*) FROM graphile_worker._private_jobs),
  'every remaining job still has its task row (the jobs view shows them all)');
SELECT is_empty($$ SELECT 1 FROM graphile_worker._private_jobs AS j
                   WHERE j.job_queue_id IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_job_queues AS q WHERE q.id = j.job_queue_id) $$,
  'every remaining job that has a queue still has its queue row');

SELECT * FROM finish();
ROLLBACK;
