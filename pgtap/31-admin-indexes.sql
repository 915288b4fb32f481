-- Version 14: jobs_job_queue_id_index by queue then id and the page of one queue it serves, key
-- prefixes as an escaped LIKE, and the stored overview without JIT.
BEGIN;
SELECT plan(9);

-- Keys with LIKE's escape character and wildcards, non-ASCII letters and both cases; half the jobs
-- in a queue, half without a key.
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('ix_task', '{}'::json, CASE WHEN n % 2 = 0 THEN 'ixq' || (n % 4) END, NULL, NULL,
             (ARRAY['a\b1', 'a\\2', 'ab3', 'é1', 'éa2', 'e1', 'A1', 'a%4', 'a_5', 'ax_6', 'Ab7', 'abc8',
                    'ß9', 'z'])[n],
             NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 28) AS n));

-- Structure.
SELECT ok((SELECT obj_description('graphile_worker.jobs_job_queue_id_index'::regclass, 'pg_class') IS NOT NULL),
  'jobs_job_queue_id_index has a comment');

-- The shape list_jobs writes for one queue, and its plan.
\ir fixtures/plan-of.sql
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan_of($$
  SELECT j.id FROM graphile_worker._private_jobs AS j
  WHERE j.job_queue_id IS NOT NULL AND (j.job_queue_id)::bigint = 1 ORDER BY j.id DESC LIMIT 5 $$),
  '^Limit\n\s*->  Index Scan Backward using jobs_job_queue_id_index',
  'one queue''s page in id order is read from jobs_job_queue_id_index in order, with no sort');
RESET enable_seqscan;

-- Key prefixes: exactly the keys that start with them, byte for byte.
SELECT is((SELECT array_agg(key ORDER BY id) FROM graphile_worker.list_jobs(key_prefix => 'a\')),
  ARRAY['a\b1', 'a\\2'], 'a backslash in the prefix is taken literally');
SELECT is((SELECT array_agg(key ORDER BY id) FROM graphile_worker.list_jobs(key_prefix => 'é')),
  ARRAY['é1', 'éa2'], 'a non-ASCII prefix matches only keys that start with it');
SELECT is((SELECT array_agg(key ORDER BY id) FROM graphile_worker.list_jobs(key_prefix => 'A')),
  ARRAY['A1', 'Ab7'], 'prefixes are case sensitive');
SELECT is_empty($$
  SELECT p FROM unnest(ARRAY['a', 'a\', 'a\\', 'a%', 'a_', 'ab', 'abc8', 'e', 'é', 'ß', 'z', 'x', '%', '_', '\']) AS p
  WHERE ARRAY(SELECT l.id FROM graphile_worker.list_jobs(key_prefix => p, page_size => 1000) AS l ORDER BY l.id)
     IS DISTINCT FROM ARRAY(SELECT j.id FROM graphile_worker._private_jobs AS j WHERE starts_with(j.key, p) ORDER BY j.id) $$,
  'every prefix lists what starts_with finds');

-- One queue's jobs page by page, both ways.
\ir fixtures/walk.sql
SELECT is(pg_temp.walk('id', false, 2, p_queues => '{ixq2}'),
  ARRAY(SELECT id FROM graphile_worker.jobs WHERE queue_name = 'ixq2' ORDER BY id),
  'one queue, in id order across pages of 2');
SELECT is(pg_temp.walk('id', true, 3, p_queues => '{ixq2}'),
  ARRAY(SELECT id FROM graphile_worker.jobs WHERE queue_name = 'ixq2' ORDER BY id DESC),
  'one queue, in descending id order across pages of 3');

-- The stored overview's read is never compiled.
SELECT ok((SELECT 'jit=off' = ANY (proconfig) FROM pg_catalog.pg_proc
           WHERE oid = 'graphile_worker.job_overview_snapshot(integer, interval)'::regprocedure),
  'job_overview_snapshot runs with jit off');

SELECT * FROM finish();
ROLLBACK;
