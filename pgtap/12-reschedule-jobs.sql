-- reschedule_jobs: coalesce(new, old) for run_at, priority, attempts, max_attempts on the unlocked jobs given.
BEGIN;
SELECT plan(27);
\ir fixtures/admin-fixture.sql

-- Structure (definer mode, search_path and comment: 09-contract.sql, for every function).
SELECT has_function('graphile_worker', 'reschedule_jobs',
  ARRAY['bigint[]', 'timestamp with time zone', 'integer', 'integer', 'integer'],
  'reschedule_jobs(bigint[], timestamptz, integer, integer, integer) exists');
SELECT function_returns('graphile_worker', 'reschedule_jobs',
  ARRAY['bigint[]', 'timestamp with time zone', 'integer', 'integer', 'integer'],
  'setof graphile_worker._private_jobs',
  'reschedule_jobs returns setof _private_jobs, like Graphile Worker');
SELECT volatility_is('graphile_worker', 'reschedule_jobs',
  ARRAY['bigint[]', 'timestamp with time zone', 'integer', 'integer', 'integer'], 'volatile',
  'reschedule_jobs is volatile');
SELECT is(pg_get_function_arguments('graphile_worker.reschedule_jobs(bigint[], timestamptz, integer, integer, integer)'::regprocedure),
  'job_ids bigint[], run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, priority integer DEFAULT NULL::integer, attempts integer DEFAULT NULL::integer, max_attempts integer DEFAULT NULL::integer',
  'parameters are named as in Graphile Worker and all but job_ids default to NULL');

-- Nothing to do.
SELECT is_empty($$ SELECT * FROM graphile_worker.reschedule_jobs('{}', priority => 1) $$,
  'an empty array reschedules nothing');
SELECT is_empty($$ SELECT * FROM graphile_worker.reschedule_jobs(NULL, priority => 1) $$,
  'NULL reschedules nothing');
SELECT is_empty($$ SELECT * FROM graphile_worker.reschedule_jobs(ARRAY[-1, (SELECT max(id) + 1000 FROM fx_job)], priority => 1) $$,
  'ids that do not exist reschedule nothing');

-- Bad arguments: a specific SQLSTATE, a message naming the argument, and nothing changed.
SELECT throws_ok($$ SELECT * FROM graphile_worker.reschedule_jobs(pg_temp.fx_ids('regular', 'failed_once'), max_attempts => 0) $$,
  '22003', 'max_attempts is 0; it must be at least 1',
  'max_attempts => 0 raises 22003 naming max_attempts, as add_job does');
SELECT throws_ok($$ SELECT * FROM graphile_worker.reschedule_jobs(pg_temp.fx_ids('regular'), run_at => now(), max_attempts => -3) $$,
  '22003', 'max_attempts is -3; it must be at least 1',
  'a negative max_attempts raises 22003, even with other fields given');
SELECT throws_ok($$ SELECT * FROM graphile_worker.reschedule_jobs(pg_temp.fx_ids('regular'), max_attempts => 32768) $$,
  '22003', 'max_attempts is 32768; it must be at most 32767',
  'max_attempts beyond smallint raises numeric_value_out_of_range naming max_attempts');
SELECT throws_ok($$ SELECT * FROM graphile_worker.reschedule_jobs(pg_temp.fx_ids('regular'), priority => 32768) $$,
  '22003', 'priority is 32768; it must be between -32768 and 32767',
  'priority beyond smallint raises numeric_value_out_of_range naming priority');
SELECT throws_ok($$ SELECT * FROM graphile_worker.reschedule_jobs(pg_temp.fx_ids('regular'), priority => -32769) $$,
  '22003', 'priority is -32769; it must be between -32768 and 32767',
  'priority below smallint raises numeric_value_out_of_range naming priority');
SELECT throws_ok($$ SELECT * FROM graphile_worker.reschedule_jobs(pg_temp.fx_ids('regular'), attempts => -1) $$,
  '22003', 'attempts is -1; it must not be negative',
  'negative attempts raises numeric_value_out_of_range naming attempts');
SELECT throws_ok($$ SELECT * FROM graphile_worker.reschedule_jobs(pg_temp.fx_ids('regular'), attempts => 40000) $$,
  '22003', 'attempts is 40000; it must be at most 32767',
  'attempts beyond smallint raises numeric_value_out_of_range naming attempts');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IS NOT NULL $$, $$ SELECT * FROM fx_before $$,
  'after the empty calls and the errors every job is as it was');

-- Every field NULL: only updated_at moves (and the job is returned).
SELECT set_eq($$ SELECT (pg_temp.fx_shape(j)).* FROM graphile_worker.reschedule_jobs(ARRAY[pg_temp.fx('regular')]) AS j $$,
  $$ SELECT name, id, job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts, last_error, created_at,
            now(), key, locked_at, locked_by, revision, flags, is_available FROM fx_before WHERE name = 'regular' $$,
  'with every field NULL the job is returned with only updated_at changed');

-- Each field alone, each on its own job; the returned row must be the stored row.
CREATE TEMP TABLE fx_out AS
SELECT 'run_at' AS field, (pg_temp.fx_shape(j)).*
FROM graphile_worker.reschedule_jobs(ARRAY[pg_temp.fx('failed_once')], run_at => now() + interval '1 day') AS j;
INSERT INTO fx_out
SELECT 'priority', (pg_temp.fx_shape(j)).*
FROM graphile_worker.reschedule_jobs(ARRAY[pg_temp.fx('in_locked_queue')], priority => -5) AS j;
INSERT INTO fx_out
SELECT 'attempts', (pg_temp.fx_shape(j)).*
FROM graphile_worker.reschedule_jobs(ARRAY[pg_temp.fx('permafailed')], attempts => 0) AS j;
INSERT INTO fx_out
SELECT 'max_attempts', (pg_temp.fx_shape(j)).*
FROM graphile_worker.reschedule_jobs(ARRAY[pg_temp.fx('regular')], max_attempts => 1) AS j;

SELECT set_eq($$ SELECT name, id, job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts, last_error,
                        created_at, updated_at, key, locked_at, locked_by, revision, flags, is_available FROM fx_out $$,
  $$ SELECT * FROM pg_temp.fx_state() WHERE name IN ('failed_once', 'in_locked_queue', 'permafailed', 'regular') $$,
  'the rows returned are the rows stored');
SELECT results_eq($$ SELECT run_at, priority, attempts, max_attempts, updated_at FROM fx_out WHERE field = 'run_at' $$,
  $$ SELECT now() + interval '1 day', priority, attempts, max_attempts, now() FROM fx_before WHERE name = 'failed_once' $$,
  'run_at alone changes run_at and updated_at only');
SELECT results_eq($$ SELECT run_at, priority, attempts, max_attempts FROM fx_out WHERE field = 'priority' $$,
  $$ SELECT run_at, (-5)::smallint, attempts, max_attempts FROM fx_before WHERE name = 'in_locked_queue' $$,
  'priority alone changes priority only, also for a job waiting in a locked queue');
SELECT results_eq($$ SELECT run_at, priority, attempts, max_attempts, last_error, is_available FROM fx_out WHERE field = 'attempts' $$,
  $$ SELECT run_at, priority, 0::smallint, max_attempts, last_error, true FROM fx_before WHERE name = 'permafailed' $$,
  'attempts => 0 alone revives a permanently failed job (it is available again) and keeps its last_error');
SELECT results_eq($$ SELECT run_at, priority, attempts, max_attempts FROM fx_out WHERE field = 'max_attempts' $$,
  $$ SELECT run_at, priority, attempts, 1::smallint FROM fx_before WHERE name = 'regular' $$,
  'max_attempts alone changes max_attempts only');
SELECT is((SELECT count(*) FROM fx_out), 4::bigint,
  'each single-field call returned its one job');

-- All fields together, on the job whose lock is stale, with a duplicate id and the locked job.
CREATE TEMP TABLE fx_all AS
SELECT (pg_temp.fx_shape(j)).*
FROM graphile_worker.reschedule_jobs(
  pg_temp.fx_ids('locked_stale', 'locked_recent') || pg_temp.fx('locked_stale'),
  run_at => now() + interval '5 minutes', priority => 7, attempts => 2, max_attempts => 10) AS j;
SELECT results_eq($$ SELECT name, run_at, priority, attempts, max_attempts, updated_at, locked_at, locked_by FROM fx_all $$,
  $$ VALUES ('locked_stale', now() + interval '5 minutes', 7::smallint, 2::smallint, 10::smallint, now(),
             now() - interval '5 hours', 'worker-dead'::text) $$,
  'all fields at once: the stale-locked job is returned once with every field set (its lock is not cleared); the locked job is not returned');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IN ('locked_recent', 'untouched') $$,
  $$ SELECT * FROM fx_before WHERE name IN ('locked_recent', 'untouched') $$,
  'the locked job and the job not named are left exactly as they were');

-- Bounds that are allowed.
SELECT results_eq($$ SELECT priority, attempts, max_attempts FROM graphile_worker.reschedule_jobs(
                        ARRAY[pg_temp.fx('regular')], priority => -32768, attempts => 32767, max_attempts => 32767) $$,
  $$ VALUES ((-32768)::smallint, 32767::smallint, 32767::smallint) $$,
  'the smallint bounds themselves are accepted');
SELECT results_eq($$ SELECT attempts, max_attempts, is_available FROM graphile_worker.reschedule_jobs(
                        ARRAY[pg_temp.fx('regular')], attempts => 5, max_attempts => 5) $$,
  $$ VALUES (5::smallint, 5::smallint, false) $$,
  'attempts = max_attempts is allowed and makes the job permanently failed');
SELECT is_empty($$ SELECT * FROM graphile_worker.reschedule_jobs(ARRAY[pg_temp.fx('locked_recent')], run_at => now()) $$,
  'rescheduling the locked job alone returns nothing');

SELECT * FROM finish();
ROLLBACK;
