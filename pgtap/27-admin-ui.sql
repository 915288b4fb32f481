-- Version 10: job states, pausing queues and tasks, one job in full, and the audit log.
BEGIN;
SELECT plan(48);

-- One job in each state. Locks and attempts are set directly: the states are about columns.
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO ids
SELECT 'waiting', (graphile_worker.add_job('ui_task')).id UNION ALL
SELECT 'scheduled', (graphile_worker.add_job('ui_task', run_at => now() + interval '1 day')).id UNION ALL
SELECT 'retrying', (graphile_worker.add_job('ui_task', run_at => now() + interval '1 minute')).id UNION ALL
SELECT 'running', (graphile_worker.add_job('ui_task')).id UNION ALL
SELECT 'stale', (graphile_worker.add_job('ui_task')).id UNION ALL
SELECT 'permanently_failed', (graphile_worker.add_job('ui_task', max_attempts => 2)).id UNION ALL
SELECT 'paused_queue', (graphile_worker.add_job('ui_task', queue_name => 'ui_q')).id UNION ALL
SELECT 'paused_task', (graphile_worker.add_job('ui_paused_task')).id;
UPDATE graphile_worker._private_jobs SET attempts = 1 WHERE id = (SELECT id FROM ids WHERE name = 'retrying');
UPDATE graphile_worker._private_jobs SET attempts = 1, locked_at = now() - interval '1 hour', locked_by = 'w-live'
WHERE id = (SELECT id FROM ids WHERE name = 'running');
UPDATE graphile_worker._private_jobs SET attempts = 1, locked_at = now() - interval '5 hours', locked_by = 'w-dead'
WHERE id = (SELECT id FROM ids WHERE name = 'stale');
UPDATE graphile_worker._private_jobs SET attempts = 2, last_error = 'boom'
WHERE id = (SELECT id FROM ids WHERE name = 'permanently_failed');

SELECT is(graphile_worker.pause_queue('ui_q', 'maintenance'), true, 'pause_queue returns true when it pauses');
SELECT is(graphile_worker.pause_queue('ui_q'), false, 'and false when the queue was paused already');
SELECT is(graphile_worker.pause_task('ui_paused_task'), true, 'pause_task returns true when it pauses');

SELECT results_eq(
  $$SELECT i.name, graphile_worker.job_state(j)::text FROM graphile_worker.jobs AS j JOIN ids AS i ON i.id = j.id ORDER BY j.id$$,
  $$VALUES ('waiting', 'waiting'), ('scheduled', 'scheduled'), ('retrying', 'retrying'), ('running', 'running'),
           ('stale', 'stale'), ('permanently_failed', 'permanently_failed'), ('paused_queue', 'paused'),
           ('paused_task', 'paused')$$,
  'job_state gives each job its state');
SELECT is((SELECT state::text FROM graphile_worker.job_detail((SELECT id FROM ids WHERE name = 'paused_queue'))), 'paused',
  'job_detail gives the same state');
SELECT is((SELECT count(*)::int FROM graphile_worker.job_detail(-1)), 0, 'job_detail of no such job is no row');
SELECT results_eq(
  $$SELECT task_identifier, queue_name, payload::text, queue_locked_at, queue_locked_by, queue_paused, task_paused
    FROM graphile_worker.job_detail((SELECT id FROM ids WHERE name = 'paused_queue'))$$,
  $$VALUES ('ui_task', 'ui_q', '{}', 'infinity'::timestamptz, 'graphile_worker.pause_queue', true, false)$$,
  'job_detail shows task, queue, payload, the queue''s lock and the pause');
SELECT results_eq(
  $$SELECT last_error, attempts, max_attempts FROM graphile_worker.job_detail((SELECT id FROM ids WHERE name = 'permanently_failed'))$$,
  $$VALUES ('boom'::text, 2::smallint, 2::smallint)$$, 'job_detail shows the last error and attempts');

-- Precedence: a failed or running job of a paused queue keeps its state.
UPDATE graphile_worker._private_jobs SET job_queue_id = (SELECT id FROM graphile_worker._private_job_queues WHERE queue_name = 'ui_q')
WHERE id IN (SELECT id FROM ids WHERE name IN ('running', 'permanently_failed'));
SELECT results_eq(
  $$SELECT graphile_worker.job_state(j)::text FROM graphile_worker.jobs AS j
    WHERE j.id IN (SELECT id FROM ids WHERE name IN ('running', 'permanently_failed')) ORDER BY j.id$$,
  $$VALUES ('running'), ('permanently_failed')$$, 'running and permanently_failed come before paused');
UPDATE graphile_worker._private_jobs SET job_queue_id = NULL
WHERE id IN (SELECT id FROM ids WHERE name IN ('running', 'permanently_failed'));

-- Our worker API does not fetch paused jobs, by any task list.
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.fetch_jobs('ui-w', NULL, 100)),
  ARRAY[(SELECT id FROM ids WHERE name = 'waiting')], 'fetch_jobs (any task) takes the one waiting job, nothing paused');
SELECT is((SELECT count(*)::int FROM graphile_worker.fetch_jobs('ui-w', ARRAY['ui_paused_task'], 100)), 0,
  'fetch_jobs naming the paused task takes nothing');
SELECT is((SELECT count(*)::int FROM graphile_worker.complete_and_fetch_jobs('ui-w', NULL, ARRAY['ui_task', 'ui_paused_task'], 100)), 0,
  'complete_and_fetch_jobs takes nothing paused either');

-- A paused queue survives cleanup and force_unlock_workers.
SELECT graphile_worker.add_job('ui_task', queue_name => 'ui_empty_q');
DELETE FROM graphile_worker._private_jobs WHERE job_queue_id = (SELECT id FROM graphile_worker._private_job_queues WHERE queue_name = 'ui_empty_q');
SELECT graphile_worker.pause_queue('ui_empty_q');
SELECT graphile_worker.pause_queue('ui_never_used_q');
SELECT graphile_worker.cleanup('{GC_JOB_QUEUES}');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_job_queues WHERE queue_name IN ('ui_empty_q', 'ui_never_used_q')), 2,
  'GC_JOB_QUEUES keeps paused queues, with jobs or without (a queue never used gets its row at pause)');
SELECT graphile_worker.force_unlock_workers(ARRAY['graphile_worker.pause_queue']);
SELECT is((SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'ui_q'), 'graphile_worker.pause_queue',
  'force_unlock_workers, even given the reserved id, does not resume a queue');
SELECT throws_ok($$SELECT * FROM graphile_worker.fetch_jobs('graphile_worker.pause_queue')$$, '22023',
  'worker_id graphile_worker.pause_queue is reserved: it marks the queues pause_queue has paused',
  'fetch_jobs refuses the reserved worker id');

-- Resume: the jobs run again, in place.
SELECT is(graphile_worker.resume_queue('ui_q'), true, 'resume_queue returns true when it resumes');
SELECT is(graphile_worker.resume_queue('ui_q'), false, 'and false when the queue was not paused');
SELECT is((SELECT locked_at FROM graphile_worker._private_job_queues WHERE queue_name = 'ui_q'), NULL,
  'a resumed queue with nothing running is unlocked');
SELECT is(graphile_worker.resume_task('ui_paused_task'), true, 'resume_task returns true when it resumes');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.fetch_jobs('ui-w2', NULL, 100)),
  ARRAY(SELECT id FROM ids WHERE name IN ('paused_queue', 'paused_task') ORDER BY id),
  'after resume both jobs are fetched');

-- Pausing a queue while one of its jobs runs: the job finishes, the queue stays paused; resuming while it
-- still runs hands the queue back to that job's worker, so a second job cannot start beside it.
SELECT graphile_worker.add_job('ui_task', queue_name => 'ui_busy_q'), graphile_worker.add_job('ui_task', queue_name => 'ui_busy_q');
SELECT id AS busy_id FROM graphile_worker.fetch_jobs('ui-busy', ARRAY['ui_task'], 1) \gset
SELECT graphile_worker.pause_queue('ui_busy_q');
SELECT is((SELECT count(*)::int FROM graphile_worker.complete_job('ui-busy', :busy_id)), 1, 'the running job completes');
SELECT is((SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'ui_busy_q'), 'graphile_worker.pause_queue',
  'completing it does not unlock the paused queue');
SELECT is((SELECT count(*)::int FROM graphile_worker.fetch_jobs('ui-busy', ARRAY['ui_task'], 10)), 0, 'its next job waits');
SELECT graphile_worker.resume_queue('ui_busy_q');
SELECT id AS busy2_id FROM graphile_worker.fetch_jobs('ui-busy', ARRAY['ui_task'], 1) \gset
SELECT graphile_worker.pause_queue('ui_busy_q');
SELECT graphile_worker.resume_queue('ui_busy_q');
SELECT is((SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'ui_busy_q'), 'ui-busy',
  'resume while a job runs gives the queue back to that job''s worker');

-- Bad names change nothing.
SELECT throws_ok($$SELECT graphile_worker.pause_queue(NULL)$$, '22004', 'queue_name must not be null', 'pause_queue(NULL) raises 22004');
SELECT throws_ok($$SELECT graphile_worker.pause_queue('')$$, '22023', 'queue_name is 0 characters long; it must be 1 to 128',
  'pause_queue('''') raises 22023');
SELECT throws_ok($$SELECT graphile_worker.pause_task(repeat('t', 129))$$, '22023',
  'task_identifier is 129 characters long; it must be 1 to 128', 'a 129-character task identifier raises 22023');
SELECT throws_ok($$SELECT graphile_worker.resume_task(NULL)$$, '22004', 'task_identifier must not be null', 'resume_task(NULL) raises 22004');
SELECT throws_ok($$SELECT graphile_worker.resume_queue(NULL)$$, '22004', 'queue_name must not be null', 'resume_queue(NULL) raises 22004');
SELECT throws_ok($$SELECT graphile_worker.prune_admin_log(NULL)$$, '22004', 'older_than must not be null', 'prune_admin_log(NULL) raises 22004');
SELECT throws_ok($$SELECT graphile_worker.prune_admin_log(interval '-1 day')$$, '22023', NULL, 'a negative age raises 22023');
SELECT is((SELECT count(*)::int FROM graphile_worker.pauses), 2, 'only the two queues paused above remain paused');

-- The audit log: one row per call, with counts, reason and ids.
DELETE FROM graphile_worker._private_admin_log;
SELECT graphile_worker.add_job('ui_log', job_key => 'l1'), graphile_worker.add_job('ui_log', job_key => 'l2'),
       graphile_worker.add_job('ui_log', job_key => 'l3');
SELECT count(*) FROM graphile_worker.complete_jobs(ARRAY[(SELECT id FROM graphile_worker._private_jobs WHERE key = 'l1'), -5]);
SELECT count(*) FROM graphile_worker.permanently_fail_jobs(ARRAY[(SELECT id FROM graphile_worker._private_jobs WHERE key = 'l2')], 'bad data');
SELECT count(*) FROM graphile_worker.reschedule_jobs(ARRAY[(SELECT id FROM graphile_worker._private_jobs WHERE key = 'l3')], priority => 3);
SELECT graphile_worker.force_unlock_workers(ARRAY['w-dead']);
SELECT count(*) FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS}');
SELECT graphile_worker.delete_permafailed_jobs_batch(10);
SELECT graphile_worker.pause_task('ui_log', 'audit');
SELECT graphile_worker.resume_task('ui_log');
SELECT results_eq(
  $$SELECT function, asked, changed, reason, session_role = session_user FROM graphile_worker.admin_log ORDER BY id$$,
  $$VALUES ('complete_jobs'::text, 2, 1::bigint, NULL::text, true), ('permanently_fail_jobs', 1, 1, 'bad data', true),
           ('reschedule_jobs', 1, 1, NULL, true), ('force_unlock_workers', 1, 1, NULL, true),
           ('cleanup', 2, 2, NULL, true), ('delete_permafailed_jobs_batch', 0, 0, NULL, true),
           ('pause_task', 1, 1, 'audit', true), ('resume_task', 1, 1, NULL, true)$$,
  'each administrative call wrote one row: function, asked, changed, reason, session_user');
SELECT is((SELECT job_ids[2] FROM graphile_worker.admin_log WHERE function = 'complete_jobs'), -5::bigint,
  'the ids asked for are logged, found or not');
SELECT is((SELECT names FROM graphile_worker.admin_log WHERE function = 'cleanup'), ARRAY['DELETE_PERMAFAILED_JOBS', 'GC_TASK_IDENTIFIERS'],
  'cleanup logs its tasks');
SELECT is((SELECT names FROM graphile_worker.admin_log WHERE function = 'force_unlock_workers'), ARRAY['w-dead'],
  'force_unlock_workers logs the worker ids');
SELECT is((SELECT at FROM graphile_worker.admin_log ORDER BY id LIMIT 1), now(), 'at is the transaction time');

SELECT graphile_worker.complete_jobs(ARRAY(SELECT g FROM generate_series(1, 5000) AS g));
SELECT results_eq(
  $$SELECT asked, cardinality(job_ids) FROM graphile_worker.admin_log WHERE function = 'complete_jobs' ORDER BY id DESC LIMIT 1$$,
  $$VALUES (5000, 1000)$$, 'a call with 5,000 ids logs the count and the first 1,000');

-- A call that rolls back leaves no row.
SELECT count(*) AS before_rollback FROM graphile_worker.admin_log \gset
SAVEPOINT s;
SELECT graphile_worker.pause_queue('ui_rolled_back');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM graphile_worker.admin_log), :before_rollback::bigint, 'a rolled back call leaves no audit row');
SELECT is((SELECT count(*)::int FROM graphile_worker.pauses WHERE name = 'ui_rolled_back'), 0, 'nor a pause');

-- Pruning by age, logged itself.
UPDATE graphile_worker._private_admin_log SET at = now() - interval '100 days' WHERE function = 'complete_jobs';
SELECT is(graphile_worker.prune_admin_log(interval '90 days'), 2::bigint, 'prune_admin_log deletes the rows older than the age');
SELECT is((SELECT count(*)::int FROM graphile_worker.admin_log WHERE function = 'complete_jobs'), 0, 'they are gone');
SELECT results_eq($$SELECT changed, reason FROM graphile_worker.admin_log WHERE function = 'prune_admin_log'$$,
  $$VALUES (2::bigint, '90 days'::text)$$, 'the pruning is logged');

-- Structure: the new public functions and views are the admin set's.
SELECT is((SELECT count(*)::int FROM pg_proc
           WHERE pronamespace = 'graphile_worker'::regnamespace
             AND proname IN ('job_state', 'job_detail', 'pause_queue', 'resume_queue', 'pause_task', 'resume_task', 'prune_admin_log')
             AND prosecdef AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp'] AND obj_description(oid, 'pg_proc') IS NOT NULL),
  7, 'the seven new functions are definer functions with a pinned search_path and a comment');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'graphile_worker._private_paused'::regclass)
      AND (SELECT relrowsecurity FROM pg_class WHERE oid = 'graphile_worker._private_admin_log'::regclass),
  'row level security is on for the pause and log tables');
SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.oid IN ('graphile_worker.pauses'::regclass, 'graphile_worker.admin_log'::regclass)
             AND obj_description(c.oid, 'pg_class') IS NOT NULL), 2, 'the two views have comments');
SELECT has_type('graphile_worker', 'job_state', 'the job_state type exists');
SELECT enum_has_labels('graphile_worker', 'job_state',
  ARRAY['waiting', 'scheduled', 'retrying', 'running', 'stale', 'permanently_failed', 'paused'], 'job_state has the seven states');

SELECT * FROM finish();
ROLLBACK;
