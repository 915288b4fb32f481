-- complete_jobs: deletes the unlocked jobs it is given and returns them.
BEGIN;
SELECT plan(15);
\ir fixtures/admin-fixture.sql

-- Structure (definer mode, search_path and comment: 09-contract.sql, for every function).
SELECT has_function('graphile_worker', 'complete_jobs', ARRAY['bigint[]'],
  'complete_jobs(bigint[]) exists');
SELECT function_returns('graphile_worker', 'complete_jobs', ARRAY['bigint[]'], 'setof graphile_worker._private_jobs',
  'complete_jobs returns setof _private_jobs, like Graphile Worker');
SELECT volatility_is('graphile_worker', 'complete_jobs', ARRAY['bigint[]'], 'volatile',
  'complete_jobs is volatile');
SELECT is(pg_get_function_arguments('graphile_worker.complete_jobs(bigint[])'::regprocedure), 'job_ids bigint[]',
  'the parameter is named job_ids, as in Graphile Worker');

-- Nothing to do: empty array, NULL, ids that do not exist.
SELECT is_empty($$ SELECT * FROM graphile_worker.complete_jobs('{}') $$,
  'an empty array completes nothing');
SELECT is_empty($$ SELECT * FROM graphile_worker.complete_jobs(NULL) $$,
  'NULL completes nothing');
SELECT is_empty($$ SELECT * FROM graphile_worker.complete_jobs(ARRAY[-1, (SELECT max(id) + 1000 FROM fx_job)]) $$,
  'ids that do not exist complete nothing');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IS NOT NULL $$, $$ SELECT * FROM fx_before $$,
  'after those calls every job is as it was');

-- Every kind of job at once, with a duplicate and a missing id.
CREATE TEMP TABLE fx_out AS
SELECT (pg_temp.fx_shape(j)).*
FROM graphile_worker.complete_jobs(
  pg_temp.fx_ids('regular', 'failed_once', 'permafailed', 'locked_recent', 'locked_stale', 'in_locked_queue')
  || ARRAY[pg_temp.fx('regular'), -1]
) AS j;

SELECT results_eq($$ SELECT name FROM fx_out ORDER BY name $$,
  ARRAY['failed_once', 'in_locked_queue', 'locked_stale', 'permafailed', 'regular'],
  'returns each unlocked job once (stale lock, permanently failed and queued ones included), not the one locked a minute ago');
SELECT set_eq($$ SELECT * FROM fx_out $$,
  $$ SELECT * FROM fx_before WHERE name IN ('failed_once', 'in_locked_queue', 'locked_stale', 'permafailed', 'regular') $$,
  'the returned rows are the jobs exactly as they were before deletion');
SELECT is_empty($$ SELECT 1 FROM graphile_worker._private_jobs WHERE id IN (SELECT id FROM fx_out) $$,
  'the returned jobs are deleted');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IS NOT NULL $$,
  $$ SELECT * FROM fx_before WHERE name IN ('locked_recent', 'untouched') $$,
  'the locked job and the job not named are left exactly as they were');
SELECT results_eq($$ SELECT locked_by, locked_at FROM graphile_worker._private_job_queues WHERE queue_name = 'fx_queue_locked' $$,
  $$ VALUES ('worker-live'::text, now() - interval '1 minute') $$,
  'completing a job waiting in a locked queue leaves the queue''s lock alone');

-- A second call on the same ids finds nothing left to do.
SELECT is_empty($$ SELECT * FROM graphile_worker.complete_jobs(pg_temp.fx_ids('regular', 'locked_recent')) $$,
  'completing again returns nothing: the unlocked job is gone and the locked one is still locked');
SELECT is((SELECT count(*) FROM graphile_worker.jobs WHERE id = pg_temp.fx('locked_recent')), 1::bigint,
  'the locked job is still visible in the jobs view');

SELECT * FROM finish();
ROLLBACK;
