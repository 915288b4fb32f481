-- release_stale_locks and the worker_locks view: locks older than 4 hours,
-- queues locked without a job of their locker, and what a DBA sees.
BEGIN;
SELECT plan(27);

-- Structure -------------------------------------------------------------------

SELECT has_function('graphile_worker', 'release_stale_locks', '{}'::text[], 'release_stale_locks() exists');
SELECT function_returns('graphile_worker', 'release_stale_locks', '{}'::text[], 'setof record',
  'release_stale_locks returns a table');
SELECT volatility_is('graphile_worker', 'release_stale_locks', '{}'::text[], 'volatile', 'release_stale_locks is volatile');
SELECT has_view('graphile_worker', 'worker_locks', 'view worker_locks exists');
SELECT columns_are('graphile_worker', 'worker_locks',
  ARRAY['worker_id', 'locked_jobs', 'locked_queues', 'oldest_lock_at', 'newest_lock_at', 'oldest_lock_age',
        'job_ids', 'queue_names', 'orphaned_queue_names', 'is_stale'],
  'worker_locks has the documented columns');
SELECT has_index('graphile_worker', '_private_jobs', 'jobs_locked_index', ARRAY['locked_by', 'job_queue_id', 'locked_at', 'id', 'task_id'],
  'jobs_locked_index finds locked jobs by worker and queue');
SELECT is(
  (SELECT pg_get_functiondef('graphile_worker.release_stale_locks()'::regprocedure) ~ 'graphile_worker\._private_is_unlocked'
      AND pg_get_functiondef('graphile_worker.release_stale_locks()'::regprocedure) !~ '4 hours'),
  true, 'release_stale_locks uses the one lock rule, _private_is_unlocked, and does not restate the interval');

-- Fixtures ----------------------------------------------------------------------
-- 'dead' fetched two jobs 5 hours ago (one in queue qd); 'slow' fetched one
-- 3 hours ago (in queue qs); 'live' fetched one now (in queue ql).

CREATE TEMP TABLE t_jobs (name text PRIMARY KEY, id bigint NOT NULL);
CREATE FUNCTION pg_temp.jid(name text) RETURNS bigint
  LANGUAGE sql STABLE RETURN (SELECT t.id FROM t_jobs AS t WHERE t.name = jid.name);
CREATE FUNCTION pg_temp.age_locks(worker_id text, age interval) RETURNS void LANGUAGE sql AS $$
  UPDATE graphile_worker._private_jobs SET locked_at = now() - age WHERE locked_by = worker_id;
  UPDATE graphile_worker._private_job_queues SET locked_at = now() - age WHERE locked_by = worker_id;
$$;

INSERT INTO t_jobs SELECT 'd1', id FROM graphile_worker.add_job('dead-task', queue_name => 'qd');
INSERT INTO t_jobs SELECT 'd2', id FROM graphile_worker.add_job('dead-task');
INSERT INTO t_jobs SELECT 'd3', id FROM graphile_worker.add_job('dead-task', queue_name => 'qd');
INSERT INTO t_jobs SELECT 's1', id FROM graphile_worker.add_job('slow-task', queue_name => 'qs');
INSERT INTO t_jobs SELECT 'l1', id FROM graphile_worker.add_job('live-task', queue_name => 'ql');
INSERT INTO t_jobs SELECT 'l2', id FROM graphile_worker.add_job('live-task', queue_name => 'ql');
SELECT count(*) FROM graphile_worker.fetch_jobs('dead', ARRAY['dead-task'], 10);
SELECT count(*) FROM graphile_worker.fetch_jobs('slow', ARRAY['slow-task'], 10);
SELECT count(*) FROM graphile_worker.fetch_jobs('live', ARRAY['live-task'], 10);
SELECT pg_temp.age_locks('dead', interval '5 hours');
SELECT pg_temp.age_locks('slow', interval '3 hours');

-- The view ------------------------------------------------------------------------

SELECT results_eq(
  $$SELECT worker_id, locked_jobs, locked_queues, job_ids, queue_names, oldest_lock_age, is_stale
    FROM graphile_worker.worker_locks ORDER BY worker_id$$,
  $$VALUES
    ('dead', 2::bigint, 1::bigint, ARRAY[pg_temp.jid('d1'), pg_temp.jid('d2')], ARRAY['qd'], interval '5 hours', true),
    ('live', 1::bigint, 1::bigint, ARRAY[pg_temp.jid('l1')], ARRAY['ql'], interval '0', false),
    ('slow', 1::bigint, 1::bigint, ARRAY[pg_temp.jid('s1')], ARRAY['qs'], interval '3 hours', false)$$,
  'worker_locks shows each worker''s locked jobs and queues, the lock age, and which workers are stale'
);
SELECT results_eq(
  $$SELECT oldest_lock_at, newest_lock_at, orphaned_queue_names FROM graphile_worker.worker_locks WHERE worker_id = 'dead'$$,
  $$VALUES (now() - interval '5 hours', now() - interval '5 hours', '{}'::text[])$$,
  'worker_locks gives lock times, and no orphaned queue while the queue''s job is held'
);

-- Releasing stale locks ---------------------------------------------------------

SELECT results_eq(
  $$SELECT released_jobs, released_queues FROM graphile_worker.release_stale_locks()$$,
  $$VALUES (2::bigint, 1::bigint)$$,
  'release_stale_locks releases the two jobs and the queue locked over 4 hours ago'
);
SELECT results_eq(
  $$SELECT id, locked_at, locked_by, attempts FROM graphile_worker.jobs WHERE id IN (pg_temp.jid('d1'), pg_temp.jid('d2')) ORDER BY id$$,
  $$VALUES (pg_temp.jid('d1'), NULL::timestamptz, NULL::text, 1::smallint), (pg_temp.jid('d2'), NULL, NULL, 1::smallint)$$,
  'the stale jobs are unlocked and keep their attempt count'
);
SELECT results_eq(
  $$SELECT queue_name, locked_by FROM graphile_worker._private_job_queues ORDER BY queue_name$$,
  $$VALUES ('qd', NULL::text), ('ql', 'live'), ('qs', 'slow')$$,
  'the stale queue is unlocked; queues locked less than 4 hours ago are kept'
);
SELECT results_eq(
  $$SELECT worker_id FROM graphile_worker.worker_locks ORDER BY worker_id$$,
  $$VALUES ('live'), ('slow')$$,
  'the dead worker is gone from worker_locks'
);
SELECT results_eq(
  $$SELECT released_jobs, released_queues FROM graphile_worker.release_stale_locks()$$,
  $$VALUES (0::bigint, 0::bigint)$$,
  'a second call finds nothing to release'
);
SELECT results_eq(
  $$SELECT id, attempts, locked_by FROM graphile_worker.fetch_jobs('new', ARRAY['dead-task'], 10)$$,
  $$VALUES (pg_temp.jid('d1'), 2::smallint, 'new'), (pg_temp.jid('d2'), 2::smallint, 'new')$$,
  'released jobs run again, as a new attempt'
);
SELECT is(graphile_worker.complete_job('dead', pg_temp.jid('d1')), NULL,
  'the dead worker, should it come back, can no longer complete the job');

-- A queue locked while its locker holds none of its jobs --------------------------
-- Someone deleted the live worker's job by hand: the queue would stay locked
-- and block l2 for 4 hours.

DELETE FROM graphile_worker._private_jobs WHERE id = pg_temp.jid('l1');
SELECT results_eq(
  $$SELECT locked_jobs, locked_queues, orphaned_queue_names, is_stale FROM graphile_worker.worker_locks WHERE worker_id = 'live'$$,
  $$VALUES (0::bigint, 1::bigint, ARRAY['ql'], false)$$,
  'worker_locks shows the queue as orphaned'
);
SELECT is_empty($$SELECT * FROM graphile_worker.fetch_jobs('other', ARRAY['live-task'], 10)$$,
  'the orphaned queue blocks its next job until released');
SELECT results_eq(
  $$SELECT released_jobs, released_queues FROM graphile_worker.release_stale_locks()$$,
  $$VALUES (0::bigint, 1::bigint)$$,
  'release_stale_locks releases the orphaned queue at once, although its lock is fresh'
);
SELECT results_eq(
  $$SELECT id FROM graphile_worker.fetch_jobs('other', ARRAY['live-task'], 10)$$,
  $$SELECT pg_temp.jid('l2')$$,
  'the queue''s next job runs'
);

-- The same when the job was permanently failed by hand (it stays, but unlocked).
UPDATE graphile_worker._private_jobs SET attempts = max_attempts, locked_at = NULL, locked_by = NULL WHERE id = pg_temp.jid('l2');
SELECT results_eq(
  $$SELECT released_jobs, released_queues FROM graphile_worker.release_stale_locks()$$,
  $$VALUES (0::bigint, 1::bigint)$$,
  'a queue whose job was unlocked by hand is released too'
);

-- A queue held by a worker that holds a job of it is never released early.
SELECT is((SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'qs'), 'slow',
  'the queue of a running job is kept');
SELECT is((SELECT locked_by FROM graphile_worker.jobs WHERE id = pg_temp.jid('s1')), 'slow',
  'and so is its job');

-- A queue locked by the worker, holding a job, but for another queue: orphaned.
UPDATE graphile_worker._private_job_queues SET locked_at = now(), locked_by = 'slow' WHERE queue_name = 'qd';
SELECT results_eq(
  $$SELECT orphaned_queue_names FROM graphile_worker.worker_locks WHERE worker_id = 'slow'$$,
  $$VALUES (ARRAY['qd'])$$,
  'a queue whose locker holds only jobs of other queues is orphaned'
);
SELECT results_eq(
  $$SELECT released_jobs, released_queues FROM graphile_worker.release_stale_locks()$$,
  $$VALUES (0::bigint, 1::bigint)$$,
  'and is released'
);

-- Stale by age wins over a held job: the 4-hour rule presumes the worker dead.
SELECT pg_temp.age_locks('slow', interval '4 hours 1 minute');
SELECT results_eq(
  $$SELECT is_stale FROM graphile_worker.worker_locks WHERE worker_id = 'slow'$$,
  $$VALUES (true)$$,
  'a worker whose newest lock is over 4 hours old is stale'
);
SELECT results_eq(
  $$SELECT released_jobs, released_queues FROM graphile_worker.release_stale_locks()$$,
  $$VALUES (1::bigint, 1::bigint)$$,
  'its job and queue are released'
);

SELECT * FROM finish();
ROLLBACK;
