-- fetch_jobs: structure, argument errors, order, due time, task filter,
-- forbidden flags, batch size, attempts, skipping locked jobs.
BEGIN;
SELECT plan(35);

-- Structure -------------------------------------------------------------------

SELECT has_type('graphile_worker', 'fetched_job', 'type fetched_job exists');
SELECT has_function('graphile_worker', 'fetch_jobs', ARRAY['text', 'text[]', 'integer', 'text[]'],
  'fetch_jobs(worker_id, task_identifiers, batch_size, forbidden_flags) exists');
SELECT function_returns('graphile_worker', 'fetch_jobs', ARRAY['text', 'text[]', 'integer', 'text[]'],
  'setof graphile_worker.fetched_job', 'fetch_jobs returns setof fetched_job');
SELECT volatility_is('graphile_worker', 'fetch_jobs', ARRAY['text', 'text[]', 'integer', 'text[]'], 'volatile',
  'fetch_jobs is volatile');
SELECT is((SELECT indnkeyatts FROM pg_index WHERE indexrelid = 'graphile_worker.jobs_main_index'::regclass), 3::smallint,
  'jobs_main_index keys are priority, run_at, id, so fetch order needs no sort (task_id, job_queue_id included)');
SELECT hasnt_index('graphile_worker', '_private_jobs', 'jobs_fetch_index',
  'jobs_fetch_index is gone: jobs_main_index has its definition (version 6)');
SELECT is(
  (SELECT p.proconfig @> ARRAY['plan_cache_mode=force_generic_plan', 'jit=off']
   FROM pg_proc AS p WHERE p.oid = 'graphile_worker.fetch_jobs(text, text[], integer, text[])'::regprocedure),
  true, 'fetch_jobs keeps generic plans and never JIT-compiles');

-- Argument errors ---------------------------------------------------------------

SELECT throws_ok($$SELECT * FROM graphile_worker.fetch_jobs(NULL)$$, '22004', NULL,
  'a null worker_id raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.fetch_jobs('')$$, '22023', NULL,
  'an empty worker_id raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.fetch_jobs(repeat('w', 3000))$$, '22023',
  'worker_id is 3000 characters long; at most 256 are allowed', 'a 3,000-character worker_id raises 22023 naming worker_id');
SELECT lives_ok($$SELECT * FROM graphile_worker.fetch_jobs(repeat('w', 256))$$, 'a 256-character worker_id is accepted');
SELECT throws_ok($$SELECT * FROM graphile_worker.fetch_jobs('w1', NULL, 0)$$, '22003',
  'batch_size is 0; it must be between 1 and 10000', 'batch_size 0 raises 22003 naming batch_size');
SELECT throws_ok($$SELECT * FROM graphile_worker.fetch_jobs('w1', NULL, 10001)$$, '22003',
  'batch_size is 10001; it must be between 1 and 10000', 'batch_size 10001 raises 22003 naming batch_size');
SELECT throws_ok($$SELECT * FROM graphile_worker.fetch_jobs('w1', NULL, NULL)$$, '22004', NULL,
  'a null batch_size raises 22004');

-- Fixtures ----------------------------------------------------------------------
-- Named jobs; pg_temp.jid(name) gives a job's id, pg_temp.unlock() undoes every fetch.

CREATE TEMP TABLE t_jobs (name text PRIMARY KEY, id bigint NOT NULL);
CREATE FUNCTION pg_temp.jid(name text) RETURNS bigint
  LANGUAGE sql STABLE RETURN (SELECT t.id FROM t_jobs AS t WHERE t.name = jid.name);
CREATE FUNCTION pg_temp.unlock() RETURNS void LANGUAGE sql AS $$
  UPDATE graphile_worker._private_jobs SET locked_at = NULL, locked_by = NULL, attempts = 0;
  UPDATE graphile_worker._private_job_queues SET locked_at = NULL, locked_by = NULL;
$$;

INSERT INTO t_jobs
SELECT 'late', id FROM graphile_worker.add_job('email', run_at => now() - interval '1 hour');
INSERT INTO t_jobs
SELECT 'urgent', id FROM graphile_worker.add_job('email', priority => -5);
INSERT INTO t_jobs
SELECT 'tie', id FROM graphile_worker.add_job('sms', '{"to": "x"}', run_at => now() - interval '1 hour');
INSERT INTO t_jobs
SELECT 'future', id FROM graphile_worker.add_job('email', run_at => now() + interval '1 hour');
INSERT INTO t_jobs
SELECT 'flagged', id FROM graphile_worker.add_job('sms', run_at => now() - interval '30 minutes', flags => ARRAY['slow']);
INSERT INTO t_jobs
SELECT 'now', id FROM graphile_worker.add_job('email');

-- Order and due time ------------------------------------------------------------

-- 'early' is added last (highest id) but is due first among priority 0: a
-- fetch that followed id order instead of priority, run_at, id would differ.
INSERT INTO t_jobs
SELECT 'early', id FROM graphile_worker.add_job('other', run_at => now() - interval '2 hours');
SELECT results_eq(
  $$SELECT f.id FROM generate_series(1, 7) AS g, LATERAL graphile_worker.fetch_jobs('single-' || g) AS f ORDER BY g$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['urgent', 'early', 'late', 'tie', 'flagged', 'now']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'successive single fetches take jobs by priority, then run_at, then id, and never one not yet due'
);
DELETE FROM graphile_worker._private_jobs WHERE id = pg_temp.jid('early');
SELECT pg_temp.unlock();

SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', NULL, 10)$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['urgent', 'late', 'tie', 'flagged', 'now']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'fetch_jobs returns due jobs by priority, then run_at, then id; a job due later is left'
);
SELECT results_eq(
  $$SELECT attempts, locked_by, locked_at = now() FROM graphile_worker.jobs WHERE id <> pg_temp.jid('future') ORDER BY id$$,
  $$VALUES (1::smallint, 'w1', true), (1::smallint, 'w1', true), (1::smallint, 'w1', true), (1::smallint, 'w1', true), (1::smallint, 'w1', true)$$,
  'fetched jobs are locked by the worker now, with attempts + 1'
);
SELECT results_eq(
  $$SELECT attempts, locked_at IS NULL FROM graphile_worker.jobs WHERE id = pg_temp.jid('future')$$,
  $$VALUES (0::smallint, true)$$,
  'the job that is not due is not touched'
);
SELECT is_empty($$SELECT * FROM graphile_worker.fetch_jobs('w2', NULL, 10)$$,
  'jobs another worker holds are not fetched');

SELECT pg_temp.unlock();
UPDATE graphile_worker._private_jobs SET run_at = now() WHERE id = pg_temp.jid('future');
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', ARRAY['email'], 10)$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['urgent', 'late', 'future', 'now']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'a job whose run_at is now is due (ties on priority and run_at go by id)'
);

-- The returned row ----------------------------------------------------------------

SELECT pg_temp.unlock();
SELECT results_eq(
  $$SELECT id, task_identifier, queue_name, payload::text, priority, attempts, max_attempts, key, flags,
           locked_by, locked_at = now(), last_error, revision
    FROM graphile_worker.fetch_jobs('w1', ARRAY['sms'], 1)$$,
  $$VALUES (pg_temp.jid('tie'), 'sms', NULL::text, '{"to": "x"}', 0::smallint, 1::smallint, 25::smallint,
            NULL::text, NULL::jsonb, 'w1', true, NULL::text, 0)$$,
  'fetched_job carries task identifier, payload, scheduling fields and the lock'
);

-- Task filter ---------------------------------------------------------------------

SELECT pg_temp.unlock();
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', ARRAY['sms', 'no-such-task'], 10)$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['tie', 'flagged']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'task_identifiers limits the fetch to those tasks; unknown names are ignored'
);
SELECT pg_temp.unlock();
SELECT is_empty($$SELECT * FROM graphile_worker.fetch_jobs('w1', ARRAY['no-such-task'], 10)$$,
  'only unknown task identifiers: no jobs');
SELECT is_empty($$SELECT * FROM graphile_worker.fetch_jobs('w1', '{}', 10)$$,
  'an empty task_identifiers array: no jobs');
SELECT is((SELECT count(*) FROM graphile_worker.jobs WHERE locked_at IS NOT NULL), 0::bigint,
  'a fetch that finds nothing locks nothing');

-- Identifiers are resolved on each call: a task row that cleanup deleted and
-- add_job created again under a new id is found by name.
DELETE FROM graphile_worker._private_jobs WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'sms');
DELETE FROM graphile_worker._private_tasks WHERE identifier = 'sms';
INSERT INTO t_jobs SELECT 'sms2', id FROM graphile_worker.add_job('sms', flags => ARRAY['slow', 'big']);
INSERT INTO t_jobs SELECT 'sms3', id FROM graphile_worker.add_job('sms', flags => ARRAY['fast']);
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', ARRAY['sms'], 10)$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['sms2', 'sms3']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'task identifiers are resolved on every call (a re-created task row is found)'
);

-- Forbidden flags -----------------------------------------------------------------

SELECT pg_temp.unlock();
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', NULL, 10, ARRAY['slow', 'other'])$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['urgent', 'late', 'future', 'now', 'sms3']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'a job with any of the forbidden flags is skipped; jobs without flags are not'
);
SELECT results_eq(
  $$SELECT locked_at IS NULL FROM graphile_worker.jobs WHERE id = pg_temp.jid('sms2')$$,
  $$VALUES (true)$$,
  'the skipped flagged job stays unlocked'
);
SELECT pg_temp.unlock();
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', ARRAY['sms'], 10, ARRAY['none-of-these'])$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['sms2', 'sms3']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'forbidden flags that no job has skip nothing'
);
SELECT pg_temp.unlock();
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', ARRAY['sms'], 10, '{}')$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['sms2', 'sms3']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'an empty forbidden_flags array skips nothing'
);

-- Batch size and attempts ---------------------------------------------------------

SELECT pg_temp.unlock();
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1', NULL, 2)$$,
  $$SELECT pg_temp.jid(n) FROM unnest(ARRAY['urgent', 'late']) WITH ORDINALITY AS x(n, i) ORDER BY i$$,
  'batch_size 2 returns the first two jobs'
);
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1')$$,
  $$SELECT pg_temp.jid('future')$$,
  'the default batch_size is 1, and the next fetch continues after the held jobs'
);
SELECT is((SELECT count(*) FROM graphile_worker.jobs WHERE locked_by = 'w1'), 3::bigint,
  'exactly the returned jobs are locked');

-- Unlock without resetting attempts: the next fetch counts a second attempt.
UPDATE graphile_worker._private_jobs SET locked_at = NULL, locked_by = NULL WHERE id = pg_temp.jid('urgent');
SELECT results_eq(
  $$SELECT id, attempts FROM graphile_worker.fetch_jobs('w3')$$,
  $$VALUES (pg_temp.jid('urgent'), 2::smallint)$$,
  'each fetch adds one to attempts'
);

-- A job at max_attempts (permanently failed) is never fetched.
SELECT pg_temp.unlock();
UPDATE graphile_worker._private_jobs SET attempts = max_attempts WHERE id = pg_temp.jid('urgent');
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w1')$$,
  $$SELECT pg_temp.jid('late')$$,
  'a job whose attempts reached max_attempts is not fetched'
);

SELECT * FROM finish();
ROLLBACK;
