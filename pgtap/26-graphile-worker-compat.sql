-- Version 9: the objects graphile-worker's Node worker reads and writes, with its layout and
-- the revision rows that tell versions 0.17 and 0.18 the schema is current; task ids that
-- survive cleanup; task and queue rows that a plain DELETE cannot take from a job.
BEGIN;
SELECT plan(31);

-- migrations, as graphile-worker lays it out.
SELECT columns_are('graphile_worker', 'migrations', ARRAY['id', 'ts', 'breaking'], 'migrations columns');
SELECT col_type_is('graphile_worker', 'migrations', 'id', 'integer', 'migrations.id is integer');
SELECT col_is_pk('graphile_worker', 'migrations', 'id', 'migrations.id is the primary key');
SELECT col_not_null('graphile_worker', 'migrations', 'ts', 'migrations.ts is not null');
SELECT col_default_is('graphile_worker', 'migrations', 'breaking', 'false', 'breaking defaults to false');
SELECT results_eq(
  'SELECT id, breaking FROM graphile_worker.migrations ORDER BY id',
  $$SELECT i, i IN (1, 3, 11, 13, 14, 16, 19) FROM generate_series(1, 20) AS i$$,
  'revisions 1 to 20 are recorded, breaking exactly for 1, 3, 11, 13, 14, 16 and 19');
-- What the Node worker's migrate step reads: latest 20 (0.18 knows 20), latest breaking 19 (0.17 knows 19).
SELECT results_eq(
  $$SELECT (SELECT id FROM graphile_worker.migrations ORDER BY id DESC LIMIT 1),
           (SELECT id FROM graphile_worker.migrations WHERE breaking IS TRUE ORDER BY id DESC LIMIT 1)$$,
  'VALUES (20, 19)', 'the start-up query sees revision 20 and breaking revision 19');

-- _private_known_crontabs.
SELECT columns_are('graphile_worker', '_private_known_crontabs', ARRAY['identifier', 'known_since', 'last_execution'],
  '_private_known_crontabs columns');
SELECT col_is_pk('graphile_worker', '_private_known_crontabs', 'identifier', 'identifier is the primary key');
SELECT has_pk('graphile_worker', '_private_known_crontabs', 'known_crontabs has a primary key');
SELECT is((SELECT conname::text FROM pg_constraint
           WHERE conrelid = 'graphile_worker._private_known_crontabs'::regclass AND contype = 'p'),
  'known_crontabs_pkey', 'its primary key has the name the scheduler''s ON CONFLICT relies on');
SELECT col_not_null('graphile_worker', '_private_known_crontabs', 'known_since', 'known_since is not null');
SELECT col_is_null('graphile_worker', '_private_known_crontabs', 'last_execution', 'last_execution is nullable');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'graphile_worker._private_known_crontabs'::regclass),
  'row level security is enabled on _private_known_crontabs');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'graphile_worker._private_retired_tasks'::regclass),
  'row level security is enabled on _private_retired_tasks');
SELECT is((SELECT count(*)::int FROM pg_class c
           WHERE c.relnamespace = 'graphile_worker'::regnamespace AND c.relkind = 'r'
             AND c.relname IN ('migrations', '_private_known_crontabs', '_private_retired_tasks')
             AND obj_description(c.oid, 'pg_class') IS NOT NULL), 3, 'the three new tables have comments');
SELECT is((SELECT count(*)::int FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.relnamespace = 'graphile_worker'::regnamespace
             AND c.relname IN ('migrations', '_private_known_crontabs', '_private_retired_tasks')
             AND a.grantee = 0), 0, 'PUBLIC holds no privilege on them');

-- Task ids survive cleanup.
SELECT graphile_worker.add_job('compat_a');
SELECT id AS a_id FROM graphile_worker._private_tasks WHERE identifier = 'compat_a' \gset
DELETE FROM graphile_worker._private_jobs
WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'compat_a');
SELECT is((SELECT deleted_count FROM graphile_worker.cleanup('{GC_TASK_IDENTIFIERS}')) > 0, true,
  'GC_TASK_IDENTIFIERS deletes the unused task row');
SELECT is((SELECT id FROM graphile_worker._private_retired_tasks WHERE identifier = 'compat_a'), :a_id,
  'its id is remembered');
SELECT is((graphile_worker.add_job('compat_a')).task_id, :a_id, 'add_job of that identifier gets the old id back');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_retired_tasks WHERE identifier = 'compat_a'), 0,
  'and the remembered row is gone');

-- The same through the Node worker's own statements: a plain DELETE, then its insert of missing identifiers.
INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('compat_b');
SELECT id AS b_id FROM graphile_worker._private_tasks WHERE identifier = 'compat_b' \gset
DELETE FROM graphile_worker._private_tasks WHERE identifier = 'compat_b';
INSERT INTO graphile_worker._private_tasks AS tasks (identifier)
SELECT i FROM unnest(ARRAY['compat_b', 'compat_c']) AS u(i)
WHERE NOT EXISTS (SELECT 1 FROM graphile_worker._private_tasks AS existing WHERE existing.identifier = u.i)
ON CONFLICT DO NOTHING;
SELECT is((SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'compat_b'), :b_id,
  'a plain DELETE remembers the id too, and the Node worker''s insert gets it back');
SELECT isnt((SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'compat_c'), :b_id,
  'a new identifier gets a new id');

-- A DELETE cannot take a task or queue row from a job that refers to it.
SELECT graphile_worker.add_job('compat_d', queue_name => 'compat_q');
SELECT id AS d_id FROM graphile_worker._private_tasks WHERE identifier = 'compat_d' \gset
SELECT id AS q_id FROM graphile_worker._private_job_queues WHERE queue_name = 'compat_q' \gset
DELETE FROM graphile_worker._private_tasks WHERE identifier = 'compat_d';
DELETE FROM graphile_worker._private_job_queues WHERE queue_name = 'compat_q';
SELECT is((SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'compat_d'), :d_id,
  'a task row in use is put back with its id');
SELECT is((SELECT id FROM graphile_worker._private_job_queues WHERE queue_name = 'compat_q'), :q_id,
  'a queue row in use is put back with its id');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_retired_tasks WHERE identifier = 'compat_d'), 0,
  'a task row put back is not remembered as retired');
SELECT is((SELECT count(*)::int FROM graphile_worker.jobs WHERE task_identifier = 'compat_d' AND queue_name = 'compat_q'), 1,
  'its job is still listed with its task and queue');

-- The triggers' functions: private, definer, pinned search_path, commented.
SELECT is((SELECT count(*)::int FROM pg_proc
           WHERE pronamespace = 'graphile_worker'::regnamespace
             AND proname IN ('_private_tasks_reuse_id', '_private_tasks_deleted', '_private_job_queues_deleted')
             AND prosecdef AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp']
             AND obj_description(oid, 'pg_proc') IS NOT NULL), 3,
  'the trigger functions are definer functions with a pinned search_path and a comment');
SELECT is((SELECT count(*)::int FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
           WHERE p.pronamespace = 'graphile_worker'::regnamespace
             AND p.proname IN ('_private_tasks_reuse_id', '_private_tasks_deleted', '_private_job_queues_deleted')
             AND a.grantee = 0), 0, 'PUBLIC may not execute them');
SELECT triggers_are('graphile_worker', '_private_tasks', ARRAY['_private_tasks_reuse_id', '_private_tasks_deleted'],
  'the task table has the two triggers');
SELECT triggers_are('graphile_worker', '_private_job_queues', ARRAY['_private_job_queues_deleted'],
  'the queue table has its trigger');

SELECT * FROM finish();
ROLLBACK;
