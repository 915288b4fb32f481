-- permanently_fail_jobs: attempts = max_attempts and a last_error on the unlocked jobs given.
BEGIN;
SELECT plan(16);
\ir fixtures/admin-fixture.sql

-- Structure (definer mode, search_path and comment: 09-contract.sql, for every function).
SELECT has_function('graphile_worker', 'permanently_fail_jobs', ARRAY['bigint[]', 'text'],
  'permanently_fail_jobs(bigint[], text) exists');
SELECT function_returns('graphile_worker', 'permanently_fail_jobs', ARRAY['bigint[]', 'text'],
  'setof graphile_worker._private_jobs',
  'permanently_fail_jobs returns setof _private_jobs, like Graphile Worker');
SELECT volatility_is('graphile_worker', 'permanently_fail_jobs', ARRAY['bigint[]', 'text'], 'volatile',
  'permanently_fail_jobs is volatile');
SELECT is(pg_get_function_arguments('graphile_worker.permanently_fail_jobs(bigint[], text)'::regprocedure),
  'job_ids bigint[], error_message text DEFAULT NULL::text',
  'parameters are named as in Graphile Worker and error_message defaults to NULL');

-- Nothing to do.
SELECT is_empty($$ SELECT * FROM graphile_worker.permanently_fail_jobs('{}', 'x') $$,
  'an empty array fails nothing');
SELECT is_empty($$ SELECT * FROM graphile_worker.permanently_fail_jobs(NULL) $$,
  'NULL fails nothing');
SELECT is_empty($$ SELECT * FROM graphile_worker.permanently_fail_jobs(ARRAY[-1, (SELECT max(id) + 1000 FROM fx_job)]) $$,
  'ids that do not exist fail nothing');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IS NOT NULL $$, $$ SELECT * FROM fx_before $$,
  'after those calls every job is as it was');

-- Without a message (and with a duplicate id): the default message.
CREATE TEMP TABLE fx_out1 AS
SELECT (pg_temp.fx_shape(j)).*
FROM graphile_worker.permanently_fail_jobs(
  pg_temp.fx_ids('regular', 'locked_recent', 'locked_stale') || pg_temp.fx('regular')) AS j;
SELECT results_eq($$ SELECT name FROM fx_out1 ORDER BY name $$, ARRAY['locked_stale', 'regular'],
  'without a message: returns each unlocked job once; the job locked a minute ago is left out');

-- With a message, and with an explicit NULL one.
CREATE TEMP TABLE fx_out2 AS
SELECT (pg_temp.fx_shape(j)).*
FROM graphile_worker.permanently_fail_jobs(pg_temp.fx_ids('failed_once', 'permafailed'), 'operator: bad payload') AS j;
CREATE TEMP TABLE fx_out3 AS
SELECT (pg_temp.fx_shape(j)).*
FROM graphile_worker.permanently_fail_jobs(ARRAY[pg_temp.fx('in_locked_queue')], error_message => NULL) AS j;

-- What each failed row must look like: as before, with attempts, last_error and updated_at changed.
CREATE TEMP TABLE fx_expected AS
SELECT b.name, b.id, b.job_queue_id, b.task_id, b.payload, b.priority, b.run_at,
       b.max_attempts AS attempts, b.max_attempts,
       CASE WHEN b.name IN ('failed_once', 'permafailed') THEN 'operator: bad payload' ELSE 'Manually marked as failed' END
         AS last_error,
       b.created_at, now() AS updated_at, b.key, b.locked_at, b.locked_by, b.revision, b.flags, false AS is_available
FROM fx_before AS b
WHERE b.name IN ('regular', 'locked_stale', 'failed_once', 'permafailed', 'in_locked_queue');

SELECT set_eq($$ SELECT * FROM fx_out1 UNION ALL SELECT * FROM fx_out2 UNION ALL SELECT * FROM fx_out3 $$,
  $$ SELECT * FROM fx_expected $$,
  'the returned rows have attempts = max_attempts, the message (or the default for none and NULL), updated_at = now(), nothing else changed');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IN ('regular', 'locked_stale', 'failed_once', 'permafailed', 'in_locked_queue') $$,
  $$ SELECT * FROM fx_expected $$,
  'the stored rows are the rows returned');
SELECT is((SELECT last_error FROM fx_out2 WHERE name = 'permafailed'), 'operator: bad payload',
  'an already failed job gets the new message');
SELECT results_eq($$ SELECT locked_at, locked_by FROM graphile_worker._private_jobs WHERE id = pg_temp.fx('locked_stale') $$,
  $$ VALUES (now() - interval '5 hours', 'worker-dead'::text) $$,
  'failing a job with a stale lock does not unlock it (force_unlock_workers does that)');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IN ('locked_recent', 'untouched') $$,
  $$ SELECT * FROM fx_before WHERE name IN ('locked_recent', 'untouched') $$,
  'the locked job and the job not named are left exactly as they were');
SELECT is((SELECT count(*) FROM graphile_worker.jobs WHERE id IN (SELECT id FROM fx_job)), 7::bigint,
  'no job was deleted');

SELECT is_empty($$ SELECT * FROM graphile_worker.permanently_fail_jobs(ARRAY[pg_temp.fx('locked_recent')], 'stop') $$,
  'failing the locked job alone returns nothing');

SELECT * FROM finish();
ROLLBACK;
