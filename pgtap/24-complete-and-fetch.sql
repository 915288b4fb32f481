-- complete_and_fetch_jobs: one worker cycle in one call. Structure, errors
-- (nothing completed on error), holder-only completion, the freed queue is
-- fetchable in the same call, and the batch of a mixed table.
BEGIN;
SELECT plan(16);

-- Structure -------------------------------------------------------------------

SELECT has_function('graphile_worker', 'complete_and_fetch_jobs', ARRAY['text', 'bigint[]', 'text[]', 'integer', 'text[]'],
  'complete_and_fetch_jobs(worker_id, completed_job_ids, task_identifiers, batch_size, forbidden_flags) exists');
SELECT function_returns('graphile_worker', 'complete_and_fetch_jobs', ARRAY['text', 'bigint[]', 'text[]', 'integer', 'text[]'],
  'setof graphile_worker.fetched_job', 'complete_and_fetch_jobs returns setof fetched_job');
SELECT ok(NOT has_function_privilege('public',
    'graphile_worker.complete_and_fetch_jobs(text, bigint[], text[], integer, text[])', 'EXECUTE'),
  'PUBLIC cannot execute complete_and_fetch_jobs');
SELECT isnt(obj_description('graphile_worker.complete_and_fetch_jobs(text, bigint[], text[], integer, text[])'::regprocedure),
  NULL, 'complete_and_fetch_jobs has a comment');

-- Fixtures ----------------------------------------------------------------------

CREATE TEMP TABLE t_jobs (name text PRIMARY KEY, id bigint NOT NULL);
CREATE FUNCTION pg_temp.jid(name text) RETURNS bigint
  LANGUAGE sql STABLE RETURN (SELECT t.id FROM t_jobs AS t WHERE t.name = jid.name);

INSERT INTO t_jobs SELECT 'a', id FROM graphile_worker.add_job('t', run_at => now() - interval '5 minutes');
INSERT INTO t_jobs SELECT 'b', id FROM graphile_worker.add_job('t', run_at => now() - interval '4 minutes');
INSERT INTO t_jobs SELECT 'q1', id FROM graphile_worker.add_job('t', queue_name => 'q', run_at => now() - interval '3 minutes');
INSERT INTO t_jobs SELECT 'q2', id FROM graphile_worker.add_job('t', queue_name => 'q', run_at => now() - interval '2 minutes');
INSERT INTO t_jobs SELECT 'c', id FROM graphile_worker.add_job('t', run_at => now() - interval '1 minute');

-- Errors: checked before anything is completed -------------------------------------

SELECT results_eq($$SELECT id FROM graphile_worker.complete_and_fetch_jobs('w1', NULL, NULL, 2)$$,
  $$VALUES (pg_temp.jid('a')), (pg_temp.jid('b'))$$,
  'with no completed ids it is a plain fetch');
SELECT throws_ok($$SELECT * FROM graphile_worker.complete_and_fetch_jobs(NULL, ARRAY[pg_temp.jid('a')])$$, '22004', NULL,
  'a null worker_id raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.complete_and_fetch_jobs('w1', ARRAY[pg_temp.jid('a')], NULL, 0)$$, '22003',
  'batch_size is 0; it must be between 1 and 10000', 'a bad batch_size raises 22003 as fetch_jobs does');
SELECT is((SELECT count(*) FROM graphile_worker._private_jobs WHERE id = pg_temp.jid('a')), 1::bigint,
  'after those errors the job to complete is still there (the call is atomic)');

-- The cycle ---------------------------------------------------------------------

-- w2 does not hold a: it is not completed. w1 completes a and b and gets the next two:
-- q1 (taken with its queue) and c; q2 waits for its queue.
SELECT is_empty($$SELECT * FROM graphile_worker.complete_and_fetch_jobs('w2', ARRAY[pg_temp.jid('a')], ARRAY['none'], 1)$$,
  'another worker''s ids are not completed (and an unknown task fetches nothing)');
SELECT is((SELECT count(*) FROM graphile_worker._private_jobs WHERE id = pg_temp.jid('a')), 1::bigint,
  'the job held by w1 survives w2''s call');
SELECT results_eq(
  $$SELECT id, queue_name FROM graphile_worker.complete_and_fetch_jobs('w1', ARRAY[pg_temp.jid('a'), pg_temp.jid('b')], NULL, 5)$$,
  $$VALUES (pg_temp.jid('q1'), 'q'::text), (pg_temp.jid('c'), NULL)$$,
  'completes the held jobs, then fetches: one job of the queue, in fetch order');
SELECT is((SELECT count(*) FROM graphile_worker._private_jobs WHERE id IN (pg_temp.jid('a'), pg_temp.jid('b'))), 0::bigint,
  'the completed jobs are deleted');
SELECT is((SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'q'), 'w1',
  'the queue is locked by the worker with its job');

-- Completing q1 frees the queue for the fetch of the same call.
SELECT results_eq(
  $$SELECT id FROM graphile_worker.complete_and_fetch_jobs('w1', ARRAY[pg_temp.jid('q1'), pg_temp.jid('c')], NULL, 5)$$,
  $$VALUES (pg_temp.jid('q2'))$$,
  'a queue freed by this call''s completion gives its next job to the same call');
SELECT is((SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'q'), 'w1',
  'the queue is held again, now for q2');
SELECT is_empty(
  $$SELECT * FROM graphile_worker.complete_and_fetch_jobs('w1', ARRAY[pg_temp.jid('q2')], NULL, 5)$$,
  'the last completion leaves nothing to fetch');

SELECT * FROM finish();
ROLLBACK;
