-- fetch_jobs and named queues: one running job per queue, the queue locked with
-- its job, at most one job per queue in a batch, released on complete.
BEGIN;
SELECT plan(12);

CREATE TEMP TABLE t_jobs (name text PRIMARY KEY, id bigint NOT NULL);
CREATE FUNCTION pg_temp.jid(name text) RETURNS bigint
  LANGUAGE sql STABLE RETURN (SELECT t.id FROM t_jobs AS t WHERE t.name = jid.name);
CREATE FUNCTION pg_temp.ids(names text[]) RETURNS TABLE (id bigint)
  LANGUAGE sql STABLE RETURN (SELECT pg_temp.jid(n) FROM unnest(names) WITH ORDINALITY AS x(n, i) ORDER BY i);

-- Queue q1 holds three jobs ahead of everything else, q2 one, and one plain job.
INSERT INTO t_jobs SELECT 'q1a', id FROM graphile_worker.add_job('t', queue_name => 'q1', run_at => now() - interval '5 min');
INSERT INTO t_jobs SELECT 'q1b', id FROM graphile_worker.add_job('t', queue_name => 'q1', run_at => now() - interval '4 min');
INSERT INTO t_jobs SELECT 'q1c', id FROM graphile_worker.add_job('t', queue_name => 'q1', run_at => now() - interval '3 min');
INSERT INTO t_jobs SELECT 'q2a', id FROM graphile_worker.add_job('t', queue_name => 'q2', run_at => now() - interval '2 min');
INSERT INTO t_jobs SELECT 'plain', id FROM graphile_worker.add_job('t', run_at => now() - interval '1 min');

SELECT results_eq(
  $$SELECT id, queue_name FROM graphile_worker.fetch_jobs('w1', NULL, 10)$$,
  $$SELECT * FROM (VALUES (pg_temp.jid('q1a'), 'q1'), (pg_temp.jid('q2a'), 'q2'), (pg_temp.jid('plain'), NULL)) AS v$$,
  'a batch takes at most one job per queue (the first), plus plain jobs'
);
SELECT results_eq(
  $$SELECT queue_name, locked_by, locked_at = now(), is_available FROM graphile_worker._private_job_queues ORDER BY queue_name$$,
  $$VALUES ('q1', 'w1', true, false), ('q2', 'w1', true, false)$$,
  'each queue is locked by the worker together with its job'
);
SELECT results_eq(
  $$SELECT locked_at IS NULL, attempts FROM graphile_worker.jobs WHERE id IN (pg_temp.jid('q1b'), pg_temp.jid('q1c')) ORDER BY id$$,
  $$VALUES (true, 0::smallint), (true, 0::smallint)$$,
  'the other jobs of the queue are left untouched'
);
SELECT is_empty($$SELECT * FROM graphile_worker.fetch_jobs('w2', NULL, 10)$$,
  'while a queue runs a job, no worker gets another job of it');

-- The holder completes; the queue is free and its next job goes to whoever asks.
SELECT results_eq(
  $$SELECT id FROM graphile_worker.complete_worker_jobs('w1', ARRAY[pg_temp.jid('q1a')])$$,
  $$SELECT pg_temp.jid('q1a')$$,
  'the holder completes the first job of q1'
);
SELECT results_eq(
  $$SELECT locked_at IS NULL, locked_by IS NULL FROM graphile_worker._private_job_queues WHERE queue_name = 'q1'$$,
  $$VALUES (true, true)$$,
  'completing the job unlocks its queue'
);
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w2', NULL, 10)$$,
  $$SELECT pg_temp.jid('q1b')$$,
  'the next job of the queue is fetched, and only that one'
);
SELECT results_eq(
  $$SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'q1'$$,
  $$VALUES ('w2')$$,
  'the queue now belongs to the new holder'
);

-- Failing releases the queue too, and the failed job waits for its retry.
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fail_worker_jobs('w2', ARRAY[pg_temp.jid('q1b')], 'boom')$$,
  $$SELECT pg_temp.jid('q1b')$$,
  'the holder fails the job'
);
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('w3', NULL, 10)$$,
  $$SELECT pg_temp.jid('q1c')$$,
  'after a failure the queue moves on to its next due job (the failed one waits for its retry)'
);

-- A queue locked by hand, with no job of it locked: fetch trusts the lock
-- (release_stale_locks frees such a queue; see 22-stale-locks.sql).
SELECT graphile_worker.complete_worker_jobs('w3', ARRAY[pg_temp.jid('q1c')]);
INSERT INTO t_jobs SELECT 'q2b', id FROM graphile_worker.add_job('t', queue_name => 'q2');
SELECT graphile_worker.complete_worker_jobs('w1', ARRAY[pg_temp.jid('q2a')]);
UPDATE graphile_worker._private_job_queues SET locked_at = now(), locked_by = 'ghost' WHERE queue_name = 'q2';
SELECT is_empty($$SELECT * FROM graphile_worker.fetch_jobs('w4', NULL, 10)$$,
  'fetch does not take a job of a locked queue, even one whose locker holds no job');
SELECT is(
  (SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'q2'), 'ghost',
  'fetch leaves the lock of such a queue as it is'
);

SELECT * FROM finish();
ROLLBACK;
