-- Structure of schema version 1: tables, columns, constraints, indexes, view, type and functions.
BEGIN;
SELECT plan(63);

SELECT has_schema('graphile_worker', 'schema graphile_worker exists');
SELECT tables_are('graphile_worker', ARRAY['_private_tasks', '_private_job_queues', '_private_jobs',
  'migrations', '_private_known_crontabs', '_private_retired_tasks', '_private_paused', '_private_admin_log',
  '_private_overview', '_private_overview_counted'],
  'exactly the three job tables, the three of version 9 (migrations, known crontabs, retired tasks), the two of version 10 (pauses, audit log) and the two of version 13 (the stored overview)');

SELECT columns_are('graphile_worker', '_private_tasks', ARRAY['id', 'identifier'], '_private_tasks columns');
SELECT col_type_is('graphile_worker', '_private_tasks', 'id', 'integer', '_private_tasks.id is integer');
SELECT col_is_pk('graphile_worker', '_private_tasks', 'id', '_private_tasks.id is the primary key');
SELECT col_is_unique('graphile_worker', '_private_tasks', 'identifier', 'task identifiers are unique');
SELECT col_has_check('graphile_worker', '_private_tasks', 'identifier', 'identifier length is checked');

SELECT columns_are('graphile_worker', '_private_job_queues',
  ARRAY['id', 'queue_name', 'locked_at', 'locked_by', 'is_available'], '_private_job_queues columns');
SELECT col_type_is('graphile_worker', '_private_job_queues', 'queue_name', 'text', 'queue_name is text');
SELECT col_is_unique('graphile_worker', '_private_job_queues', 'queue_name', 'queue names are unique');
SELECT col_has_check('graphile_worker', '_private_job_queues', 'queue_name', 'queue_name length is checked');
SELECT col_type_is('graphile_worker', '_private_job_queues', 'is_available', 'boolean', 'queue is_available is boolean');
SELECT is((SELECT attgenerated::text FROM pg_attribute
           WHERE attrelid = 'graphile_worker._private_job_queues'::regclass AND attname = 'is_available'),
  's', 'queue is_available is a stored generated column');

SELECT columns_are('graphile_worker', '_private_jobs', ARRAY[
  'id', 'job_queue_id', 'task_id', 'payload', 'priority', 'run_at', 'attempts', 'max_attempts', 'last_error',
  'created_at', 'updated_at', 'key', 'locked_at', 'locked_by', 'revision', 'flags', 'is_available'],
  '_private_jobs columns');
SELECT col_type_is('graphile_worker', '_private_jobs', 'id', 'bigint', 'job id is bigint');
SELECT col_is_pk('graphile_worker', '_private_jobs', 'id', 'job id is the primary key');
SELECT col_type_is('graphile_worker', '_private_jobs', 'job_queue_id', 'integer', 'job_queue_id is integer');
SELECT col_is_null('graphile_worker', '_private_jobs', 'job_queue_id', 'job_queue_id is nullable');
SELECT col_not_null('graphile_worker', '_private_jobs', 'task_id', 'task_id is not null');
SELECT col_type_is('graphile_worker', '_private_jobs', 'payload', 'json', 'payload is json');
SELECT is((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a
           ON a.attrelid = d.adrelid AND a.attnum = d.adnum
           WHERE d.adrelid = 'graphile_worker._private_jobs'::regclass AND a.attname = 'payload'),
  '''{}''::json', 'payload defaults to {}');
SELECT col_type_is('graphile_worker', '_private_jobs', 'priority', 'smallint', 'priority is smallint');
SELECT col_default_is('graphile_worker', '_private_jobs', 'priority', '0', 'priority defaults to 0');
SELECT col_type_is('graphile_worker', '_private_jobs', 'run_at', 'timestamp with time zone', 'run_at is timestamptz');
SELECT col_default_is('graphile_worker', '_private_jobs', 'run_at', 'now()', 'run_at defaults to now()');
SELECT col_type_is('graphile_worker', '_private_jobs', 'attempts', 'smallint', 'attempts is smallint');
SELECT col_default_is('graphile_worker', '_private_jobs', 'attempts', '0', 'attempts defaults to 0');
SELECT col_type_is('graphile_worker', '_private_jobs', 'max_attempts', 'smallint', 'max_attempts is smallint');
SELECT col_default_is('graphile_worker', '_private_jobs', 'max_attempts', '25', 'max_attempts defaults to 25');
SELECT col_has_check('graphile_worker', '_private_jobs', 'max_attempts', 'max_attempts is checked');
SELECT col_type_is('graphile_worker', '_private_jobs', 'key', 'text', 'key is text');
SELECT col_is_unique('graphile_worker', '_private_jobs', 'key', 'job keys are unique');
SELECT col_has_check('graphile_worker', '_private_jobs', 'key', 'key length is checked');
SELECT col_type_is('graphile_worker', '_private_jobs', 'revision', 'integer', 'revision is integer');
SELECT col_type_is('graphile_worker', '_private_jobs', 'flags', 'jsonb', 'flags is jsonb');
SELECT col_type_is('graphile_worker', '_private_jobs', 'is_available', 'boolean', 'job is_available is boolean');
SELECT is((SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef d JOIN pg_attribute a
           ON a.attrelid = d.adrelid AND a.attnum = d.adnum
           WHERE d.adrelid = 'graphile_worker._private_jobs'::regclass AND a.attname = 'is_available'),
  '((locked_at IS NULL) AND (attempts < max_attempts))', 'job is_available = unlocked and attempts left');

SELECT has_index('graphile_worker', '_private_jobs', 'jobs_main_index',
  ARRAY['priority', 'run_at', 'id', 'task_id', 'job_queue_id'],
  'jobs_main_index on (priority, run_at, id) including task_id, job_queue_id');
SELECT has_index('graphile_worker', '_private_jobs', 'jobs_no_queue_index', ARRAY['priority', 'run_at', 'id', 'task_id'],
  'jobs_no_queue_index on (priority, run_at) including id, task_id');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index
           WHERE indexrelid = 'graphile_worker.jobs_main_index'::regclass),
  '(is_available = true)', 'jobs_main_index holds available jobs only');

SELECT ok((SELECT bool_and(relrowsecurity) FROM pg_class
           WHERE relnamespace = 'graphile_worker'::regnamespace AND relname LIKE '\_private\_%' AND relkind = 'r'),
  'row level security is enabled on every private table');

SELECT has_view('graphile_worker', 'jobs', 'view jobs exists');
SELECT columns_are('graphile_worker', 'jobs', ARRAY[
  'id', 'queue_name', 'task_identifier', 'priority', 'run_at', 'attempts', 'max_attempts', 'last_error',
  'created_at', 'updated_at', 'key', 'locked_at', 'locked_by', 'revision', 'flags'],
  'view jobs columns (no payload)');

SELECT has_type('graphile_worker', 'job_spec', 'type job_spec exists');
SELECT is(ARRAY(SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
                WHERE attrelid = 'graphile_worker.job_spec'::regclass AND attnum > 0 ORDER BY attnum),
  ARRAY['identifier text', 'payload json', 'queue_name text', 'run_at timestamp with time zone',
        'max_attempts smallint', 'job_key text', 'priority smallint', 'flags text[]'],
  'job_spec fields and types');

SELECT has_function('graphile_worker', 'add_job',
  ARRAY['text', 'json', 'text', 'timestamp with time zone', 'integer', 'text', 'integer', 'text[]', 'text'],
  'add_job(identifier, payload, queue_name, run_at, max_attempts, job_key, priority, flags, job_key_mode)');
SELECT function_returns('graphile_worker', 'add_job',
  ARRAY['text', 'json', 'text', 'timestamp with time zone', 'integer', 'text', 'integer', 'text[]', 'text'],
  'graphile_worker._private_jobs', 'add_job returns one _private_jobs row');
SELECT has_function('graphile_worker', 'add_jobs', ARRAY['graphile_worker.job_spec[]', 'boolean'],
  'add_jobs(specs, job_key_preserve_run_at)');
SELECT function_returns('graphile_worker', 'add_jobs', ARRAY['graphile_worker.job_spec[]', 'boolean'],
  'setof graphile_worker._private_jobs', 'add_jobs returns setof _private_jobs');
SELECT has_function('graphile_worker', 'remove_job', ARRAY['text'], 'remove_job(job_key)');
SELECT function_returns('graphile_worker', 'remove_job', ARRAY['text'],
  'graphile_worker._private_jobs', 'remove_job returns one _private_jobs row');
SELECT is_strict('graphile_worker', 'remove_job', ARRAY['text'], 'remove_job is strict');
SELECT has_function('graphile_worker', 'schema_version', '{}'::text[], 'schema_version()');
SELECT function_returns('graphile_worker', 'schema_version', '{}'::text[], 'integer', 'schema_version returns integer');
SELECT is(graphile_worker.schema_version(), 14, 'installed schema version is the newest');
-- The privilege model: public functions run as their owner, and PUBLIC may execute none of them.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'graphile_worker'::regnamespace
                  AND p.proname NOT LIKE '\_private\_%' AND p.proname <> 'schema_version' AND NOT p.prosecdef
                ORDER BY 1),
  '{}'::text[], 'every public function is SECURITY DEFINER');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'graphile_worker'::regnamespace
                  AND has_function_privilege('public', p.oid, 'EXECUTE')
                ORDER BY 1),
  '{}'::text[], 'PUBLIC may execute no function of the schema');

-- Every function pins its search_path, or is a RETURN-form SQL function whose references are bound at creation.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'graphile_worker'::regnamespace
                  AND p.prosqlbody IS NULL
                  AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']
                ORDER BY 1),
  '{}'::text[], 'every function body without pre-bound references pins search_path');
-- Every object a DBA can see carries a comment.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'graphile_worker'::regnamespace
                  AND obj_description(p.oid, 'pg_proc') IS NULL ORDER BY 1),
  '{}'::text[], 'every function has a COMMENT');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                WHERE c.relnamespace = 'graphile_worker'::regnamespace AND c.relkind IN ('r', 'v', 'c', 'm')
                  AND CASE WHEN c.relkind = 'c' THEN obj_description(c.reltype, 'pg_type')
                           ELSE obj_description(c.oid, 'pg_class') END IS NULL ORDER BY 1),
  '{}'::text[], 'every table, view and type has a COMMENT');
SELECT is(ARRAY(SELECT t.typname::text FROM pg_type t
                WHERE t.typnamespace = 'graphile_worker'::regnamespace AND t.typtype = 'e'
                  AND obj_description(t.oid, 'pg_type') IS NULL ORDER BY 1),
  '{}'::text[], 'every enum has a COMMENT');
SELECT isnt(obj_description('graphile_worker'::regnamespace, 'pg_namespace'), NULL, 'the schema has a COMMENT');
SELECT is((SELECT count(*)::int FROM pg_class WHERE relnamespace = 'public'::regnamespace
           AND (relname LIKE '%yoyo%' OR relname LIKE '\_private\_%')), 0,
  'neither the schema nor the installer''s bookkeeping went into public');
SELECT * FROM finish();
ROLLBACK;
