-- complete_job, complete_worker_jobs, fail_job, fail_worker_jobs and the
-- backoff rule: holder only, queues released, retry times, permanent failure,
-- payload replacement.
BEGIN;
SELECT plan(56);

-- Structure -------------------------------------------------------------------

SELECT has_function('graphile_worker', 'complete_job', ARRAY['text', 'bigint'], 'complete_job(worker_id, job_id) exists');
SELECT has_function('graphile_worker', 'complete_worker_jobs', ARRAY['text', 'bigint[]'],
  'complete_worker_jobs(worker_id, job_ids) exists');
SELECT has_function('graphile_worker', 'fail_job', ARRAY['text', 'bigint', 'text', 'json'],
  'fail_job(worker_id, job_id, error_message, replacement_payload) exists');
SELECT has_function('graphile_worker', 'fail_worker_jobs', ARRAY['text', 'bigint[]', 'text'],
  'fail_worker_jobs(worker_id, job_ids, error_message) exists');
SELECT has_function('graphile_worker', '_private_retry_delay', ARRAY['integer'], '_private_retry_delay(attempts) exists');

SELECT function_returns('graphile_worker', 'complete_job', ARRAY['text', 'bigint'], 'graphile_worker._private_jobs',
  'complete_job returns a job');
SELECT function_returns('graphile_worker', 'complete_worker_jobs', ARRAY['text', 'bigint[]'],
  'setof graphile_worker._private_jobs', 'complete_worker_jobs returns setof jobs');
SELECT function_returns('graphile_worker', 'fail_job', ARRAY['text', 'bigint', 'text', 'json'],
  'graphile_worker._private_jobs', 'fail_job returns a job');
SELECT function_returns('graphile_worker', 'fail_worker_jobs', ARRAY['text', 'bigint[]', 'text'],
  'setof graphile_worker._private_jobs', 'fail_worker_jobs returns setof jobs');
SELECT function_returns('graphile_worker', '_private_retry_delay', ARRAY['integer'], 'interval',
  '_private_retry_delay returns an interval');

SELECT volatility_is('graphile_worker', 'complete_job', ARRAY['text', 'bigint'], 'volatile', 'complete_job is volatile');
SELECT volatility_is('graphile_worker', 'complete_worker_jobs', ARRAY['text', 'bigint[]'], 'volatile',
  'complete_worker_jobs is volatile');
SELECT volatility_is('graphile_worker', 'fail_job', ARRAY['text', 'bigint', 'text', 'json'], 'volatile',
  'fail_job is volatile');
SELECT volatility_is('graphile_worker', 'fail_worker_jobs', ARRAY['text', 'bigint[]', 'text'], 'volatile',
  'fail_worker_jobs is volatile');
SELECT volatility_is('graphile_worker', '_private_retry_delay', ARRAY['integer'], 'immutable',
  '_private_retry_delay is immutable');

-- The multi-row functions lock their rows in id order through the primary-key
-- scan of their generic plan (version 6); the setting that keeps that plan is part of it.
SELECT ok((SELECT proconfig @> ARRAY['plan_cache_mode=force_generic_plan'] FROM pg_catalog.pg_proc
           WHERE oid = 'graphile_worker.complete_worker_jobs(text, bigint[])'::regprocedure),
  'complete_worker_jobs keeps its generic plan (rows locked in id order)');
SELECT ok((SELECT proconfig @> ARRAY['plan_cache_mode=force_generic_plan'] FROM pg_catalog.pg_proc
           WHERE oid = 'graphile_worker._private_fail_jobs(text, bigint[], text, json)'::regprocedure),
  '_private_fail_jobs keeps its generic plan (rows locked in id order)');

-- Argument errors ---------------------------------------------------------------

SELECT throws_ok($$SELECT graphile_worker.complete_job(NULL, 1)$$, '22004', NULL, 'complete_job: null worker_id raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.complete_worker_jobs('', ARRAY[1::bigint])$$, '22023', NULL,
  'complete_worker_jobs: empty worker_id raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.complete_worker_jobs(repeat('w', 257), ARRAY[1::bigint])$$, '22023',
  'worker_id is 257 characters long; at most 256 are allowed', 'complete_worker_jobs: a worker_id over 256 characters raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.complete_job(repeat('w', 257), 1)$$, '22023',
  'worker_id is 257 characters long; at most 256 are allowed', 'complete_job: a worker_id over 256 characters raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.fail_job(repeat('w', 257), 1, 'e')$$, '22023',
  'worker_id is 257 characters long; at most 256 are allowed', 'fail_job: a worker_id over 256 characters raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.complete_and_fetch_jobs(repeat('w', 257), '{}')$$, '22023',
  'worker_id is 257 characters long; at most 256 are allowed', 'complete_and_fetch_jobs: a worker_id over 256 characters raises 22023');
SELECT throws_ok($$SELECT graphile_worker.fail_job('w1', 1, NULL)$$, '22004', 'error_message must not be null',
  'fail_job: null error_message raises 22004 naming error_message');
SELECT throws_ok($$SELECT * FROM graphile_worker.fail_worker_jobs(NULL, ARRAY[1::bigint], 'x')$$, '22004', NULL,
  'fail_worker_jobs: null worker_id raises 22004');

-- The backoff rule ----------------------------------------------------------------

SELECT is(graphile_worker._private_retry_delay(1), interval '2.718282 seconds', 'backoff after attempt 1 is e^1 s');
SELECT is(graphile_worker._private_retry_delay(2), interval '7.389056 seconds', 'backoff after attempt 2 is e^2 s');
SELECT is(graphile_worker._private_retry_delay(10), interval '22026.465795 seconds', 'backoff after attempt 10 is e^10 s');
SELECT is(graphile_worker._private_retry_delay(11), interval '22026.465795 seconds',
  'backoff after attempt 11 stays at e^10 s (capped)');

-- Fixtures ------------------------------------------------------------------------

CREATE TEMP TABLE t_jobs (name text PRIMARY KEY, id bigint NOT NULL);
CREATE FUNCTION pg_temp.jid(name text) RETURNS bigint
  LANGUAGE sql STABLE RETURN (SELECT t.id FROM t_jobs AS t WHERE t.name = jid.name);

INSERT INTO t_jobs SELECT 'a', id FROM graphile_worker.add_job('t', '{"n": 1}', queue_name => 'qa', run_at => now() - interval '3 min');
INSERT INTO t_jobs SELECT 'b', id FROM graphile_worker.add_job('t', '{"n": 2}', run_at => now() - interval '2 min');
INSERT INTO t_jobs SELECT 'c', id FROM graphile_worker.add_job('t', '{"n": 3}', run_at => now() - interval '1 min');
INSERT INTO t_jobs SELECT 'other', id FROM graphile_worker.add_job('u', '{"n": 4}');
INSERT INTO t_jobs SELECT 'idle', id FROM graphile_worker.add_job('v');
SELECT count(*) FROM graphile_worker.fetch_jobs('w1', ARRAY['t'], 10);
SELECT count(*) FROM graphile_worker.fetch_jobs('w2', ARRAY['u'], 10);

-- Complete ------------------------------------------------------------------------

SELECT is(graphile_worker.complete_job('w2', pg_temp.jid('a')), NULL, 'complete_job by a worker that does not hold the job: NULL');
SELECT is_empty($$SELECT * FROM graphile_worker.complete_worker_jobs('w2', ARRAY[pg_temp.jid('a'), pg_temp.jid('idle')])$$,
  'complete_worker_jobs: no rows for another worker''s job or an unlocked job');
SELECT results_eq(
  $$SELECT id, locked_by FROM graphile_worker.jobs WHERE id IN (pg_temp.jid('a'), pg_temp.jid('idle')) ORDER BY id$$,
  $$VALUES (pg_temp.jid('a'), 'w1'), (pg_temp.jid('idle'), NULL)$$,
  'those jobs are still there, as they were'
);
SELECT is_empty($$SELECT * FROM graphile_worker.complete_worker_jobs('w1', NULL)$$, 'a null job_ids array: no rows');
SELECT is_empty($$SELECT * FROM graphile_worker.complete_worker_jobs('w1', '{}')$$, 'an empty job_ids array: no rows');

SELECT is((graphile_worker.complete_job('w1', pg_temp.jid('a'))).id, pg_temp.jid('a'), 'complete_job by the holder returns the job');
SELECT is((SELECT count(*) FROM graphile_worker.jobs WHERE id = pg_temp.jid('a')), 0::bigint, 'the completed job is deleted');
SELECT results_eq(
  $$SELECT locked_at IS NULL, locked_by IS NULL FROM graphile_worker._private_job_queues WHERE queue_name = 'qa'$$,
  $$VALUES (true, true)$$,
  'completing a job unlocks its queue'
);
SELECT results_eq(
  $$SELECT id FROM graphile_worker.complete_worker_jobs('w1', ARRAY[pg_temp.jid('b'), pg_temp.jid('other'), pg_temp.jid('c')])$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['b', 'c']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'complete_worker_jobs deletes and returns only the jobs the worker holds'
);
SELECT is((SELECT locked_by FROM graphile_worker.jobs WHERE id = pg_temp.jid('other')), 'w2',
  'another worker''s job in the same call is left locked');

-- Fail ------------------------------------------------------------------------------

INSERT INTO t_jobs SELECT 'f1', id FROM graphile_worker.add_job('f', '{"step": 1}', queue_name => 'qf', run_at => now() - interval '1 hour');
INSERT INTO t_jobs SELECT 'f2', id FROM graphile_worker.add_job('f', '{"step": 1}', run_at => now() - interval '50 min');
INSERT INTO t_jobs SELECT 'f3', id FROM graphile_worker.add_job('f', max_attempts => 2, run_at => now() - interval '40 min');
INSERT INTO t_jobs SELECT 'f4', id FROM graphile_worker.add_job('f', run_at => now() - interval '30 min');
INSERT INTO t_jobs SELECT 'f5', id FROM graphile_worker.add_job('f', run_at => now() - interval '20 min');
-- f4 has been tried 10 times and f5 11 times: this fetch is attempt 10 (resp. 11).
UPDATE graphile_worker._private_jobs SET attempts = 9 WHERE id = pg_temp.jid('f4');
UPDATE graphile_worker._private_jobs SET attempts = 10 WHERE id = pg_temp.jid('f5');
SELECT count(*) FROM graphile_worker.fetch_jobs('w1', ARRAY['f'], 10);

SELECT is(graphile_worker.fail_job('w2', pg_temp.jid('f1'), 'not mine'), NULL, 'fail_job by a worker that does not hold the job: NULL');
SELECT results_eq(
  $$SELECT locked_by, last_error FROM graphile_worker.jobs WHERE id = pg_temp.jid('f1')$$,
  $$VALUES ('w1', NULL::text)$$,
  'the job is unchanged, still held by its worker'
);

SELECT results_eq(
  $$SELECT id, last_error, locked_at, locked_by, run_at, attempts, payload::text
    FROM graphile_worker.fail_job('w1', pg_temp.jid('f1'), 'timeout', '{"step": 2}')$$,
  $$VALUES (pg_temp.jid('f1'), 'timeout', NULL::timestamptz, NULL::text, now() + interval '2.718282 seconds', 1::smallint, '{"step": 2}')$$,
  'fail_job records the error, unlocks, retries in e^1 s from now, and replaces the payload'
);
SELECT results_eq(
  $$SELECT locked_at IS NULL, locked_by IS NULL FROM graphile_worker._private_job_queues WHERE queue_name = 'qf'$$,
  $$VALUES (true, true)$$,
  'failing a job unlocks its queue'
);
SELECT results_eq(
  $$SELECT payload::text FROM graphile_worker.fail_job('w1', pg_temp.jid('f2'), 'again')$$,
  $$VALUES ('{"step": 1}')$$,
  'without a replacement payload the payload is kept'
);

-- A job whose run_at is later than now retries counting from its run_at.
UPDATE graphile_worker._private_jobs SET run_at = now() + interval '1 hour' WHERE id = pg_temp.jid('f4');
SELECT results_eq(
  $$SELECT run_at FROM graphile_worker.fail_worker_jobs('w1', ARRAY[pg_temp.jid('f4')], 'slow')$$,
  $$VALUES (now() + interval '1 hour' + interval '22026.465795 seconds')$$,
  'the retry of attempt 10 waits e^10 s from greatest(now(), run_at)'
);
SELECT results_eq(
  $$SELECT run_at FROM graphile_worker.fail_worker_jobs('w1', ARRAY[pg_temp.jid('f5')], 'slow')$$,
  $$VALUES (now() + interval '22026.465795 seconds')$$,
  'the retry of attempt 11 waits e^10 s too'
);

-- Permanent failure at max_attempts.
SELECT is((SELECT (graphile_worker.fail_job('w1', pg_temp.jid('f3'), 'first')).attempts), 1::smallint,
  'f3 fails its first attempt');
UPDATE graphile_worker._private_jobs SET run_at = now() - interval '1 second' WHERE id = pg_temp.jid('f3');
SELECT results_eq(
  $$SELECT id, attempts FROM graphile_worker.fetch_jobs('w1', ARRAY['f'], 10)$$,
  $$VALUES (pg_temp.jid('f3'), 2::smallint)$$,
  'f3 is retried once due (attempt 2 of 2)'
);
SELECT results_eq(
  $$SELECT attempts, max_attempts, last_error, locked_at IS NULL, is_available
    FROM graphile_worker.fail_worker_jobs('w1', ARRAY[pg_temp.jid('f3')], 'last')$$,
  $$VALUES (2::smallint, 2::smallint, 'last', true, false)$$,
  'failing the last attempt leaves the job, unlocked and no longer available'
);
UPDATE graphile_worker._private_jobs SET run_at = now() - interval '1 second' WHERE id = pg_temp.jid('f3');
SELECT is_empty($$SELECT * FROM graphile_worker.fetch_jobs('w1', ARRAY['f'], 10)$$,
  'a permanently failed job is not fetched again, even when due');
SELECT is((SELECT count(*) FROM graphile_worker.jobs WHERE id = pg_temp.jid('f3')), 1::bigint,
  'the permanently failed job stays for cleanup');

-- Batch fail: only the worker's own jobs.
UPDATE graphile_worker._private_jobs SET run_at = now() - interval '1 second' WHERE id IN (pg_temp.jid('f1'), pg_temp.jid('f2'));
SELECT count(*) FROM graphile_worker.fetch_jobs('w1', ARRAY['f'], 10);
SELECT results_eq(
  $$SELECT id, last_error FROM graphile_worker.fail_worker_jobs('w1', ARRAY[pg_temp.jid('f1'), pg_temp.jid('other'), pg_temp.jid('f2')], 'batch')$$,
  $$VALUES (pg_temp.jid('f1'), 'batch'), (pg_temp.jid('f2'), 'batch')$$,
  'fail_worker_jobs fails and returns only the jobs the worker holds'
);
SELECT results_eq(
  $$SELECT attempts, run_at FROM graphile_worker.jobs WHERE id = pg_temp.jid('f2')$$,
  $$VALUES (2::smallint, now() + interval '7.389056 seconds')$$,
  'the second failure of a job waits e^2 s'
);
SELECT results_eq(
  $$SELECT locked_by, last_error FROM graphile_worker.jobs WHERE id = pg_temp.jid('other')$$,
  $$VALUES ('w2', NULL::text)$$,
  'another worker''s job in the same call is untouched'
);
SELECT is_empty($$SELECT * FROM graphile_worker.fail_worker_jobs('w1', '{}', 'x')$$, 'fail_worker_jobs with no ids: no rows');
SELECT is(graphile_worker.fail_job('w1', pg_temp.jid('f2'), 'twice'), NULL, 'failing a job that is no longer held: NULL');

SELECT * FROM finish();
ROLLBACK;
