-- force_unlock_workers: clears the locks of the given (dead) workers' jobs and queues, and no others.
BEGIN;
SELECT plan(18);
\ir fixtures/admin-fixture.sql

CREATE TEMP TABLE fx_queues_before AS
SELECT queue_name, locked_at, locked_by FROM graphile_worker._private_job_queues WHERE queue_name LIKE 'fx\_%';

-- Structure (definer mode, search_path and comment: 09-contract.sql, for every function).
SELECT has_function('graphile_worker', 'force_unlock_workers', ARRAY['text[]'],
  'force_unlock_workers(text[]) exists');
SELECT function_returns('graphile_worker', 'force_unlock_workers', ARRAY['text[]'], 'void',
  'force_unlock_workers returns void, like Graphile Worker');
SELECT volatility_is('graphile_worker', 'force_unlock_workers', ARRAY['text[]'], 'volatile',
  'force_unlock_workers is volatile');
SELECT is(pg_get_function_arguments('graphile_worker.force_unlock_workers(text[])'::regprocedure), 'worker_ids text[]',
  'the parameter is named worker_ids, as in Graphile Worker');

-- Nothing to do: NULL, empty, unknown worker, a NULL element.
SELECT lives_ok($$ SELECT graphile_worker.force_unlock_workers(NULL) $$, 'NULL is accepted');
SELECT lives_ok($$ SELECT graphile_worker.force_unlock_workers('{}') $$, 'an empty array is accepted');
SELECT lives_ok($$ SELECT graphile_worker.force_unlock_workers(ARRAY['worker-unknown', NULL]) $$,
  'an unknown worker id and a NULL element are accepted');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IS NOT NULL $$, $$ SELECT * FROM fx_before $$,
  'NULL, an empty array and an unknown worker id leave every job as it was');
SELECT set_eq($$ SELECT queue_name, locked_at, locked_by FROM graphile_worker._private_job_queues WHERE queue_name LIKE 'fx\_%' $$,
  $$ SELECT * FROM fx_queues_before $$,
  'and every queue as it was');

-- The dead worker: its job and its queue are released; nothing else moves.
SELECT lives_ok($$ SELECT graphile_worker.force_unlock_workers(ARRAY['worker-dead']) $$, 'unlocking worker-dead succeeds');
SELECT set_eq($$ SELECT * FROM pg_temp.fx_state() WHERE name IS NOT NULL $$,
  $$ SELECT name, id, job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts, last_error, created_at,
            updated_at, key,
            CASE WHEN locked_by = 'worker-dead' THEN NULL ELSE locked_at END,
            CASE WHEN locked_by = 'worker-dead' THEN NULL ELSE locked_by END,
            revision, flags,
            CASE WHEN locked_by = 'worker-dead' THEN attempts < max_attempts ELSE is_available END
     FROM fx_before $$,
  'the dead worker''s job loses locked_at and locked_by (and becomes available); every other column and job is unchanged');
SELECT set_eq($$ SELECT queue_name, locked_at, locked_by FROM graphile_worker._private_job_queues WHERE queue_name LIKE 'fx\_%' $$,
  $$ SELECT queue_name,
            CASE WHEN locked_by = 'worker-dead' THEN NULL ELSE locked_at END,
            CASE WHEN locked_by = 'worker-dead' THEN NULL ELSE locked_by END
     FROM fx_queues_before $$,
  'the dead worker''s queue is unlocked; the live worker''s queues keep their locks');
SELECT is((SELECT is_available FROM graphile_worker._private_job_queues WHERE queue_name = 'fx_queue_dead'), true,
  'the released queue is available again');

-- A recent lock is released too: the caller says the worker is dead, so there is no lock check.
SELECT lives_ok($$ SELECT graphile_worker.force_unlock_workers(ARRAY['worker-unknown', 'worker-live', 'worker-live']) $$,
  'unlocking worker-live (named twice, next to an unknown id) succeeds');
SELECT is_empty($$ SELECT 1 FROM graphile_worker._private_jobs WHERE id IN (SELECT id FROM fx_job)
                   AND (locked_at IS NOT NULL OR locked_by IS NOT NULL) $$,
  'after unlocking worker-live too, no fixture job is locked');
SELECT is_empty($$ SELECT 1 FROM graphile_worker._private_job_queues WHERE queue_name LIKE 'fx\_%'
                   AND (locked_at IS NOT NULL OR locked_by IS NOT NULL) $$,
  'and no fixture queue is locked');
SELECT results_eq($$ SELECT attempts, max_attempts, updated_at FROM graphile_worker._private_jobs WHERE id = pg_temp.fx('locked_recent') $$,
  $$ SELECT attempts, max_attempts, updated_at FROM fx_before WHERE name = 'locked_recent' $$,
  'unlocking keeps attempts: the interrupted attempt still counts');
SELECT is((SELECT count(*) FROM graphile_worker._private_jobs WHERE id IN (SELECT id FROM fx_job)), 7::bigint,
  'no job was deleted');

SELECT * FROM finish();
ROLLBACK;
