-- Benchmark data: a year-old queue at a chosen size, the same rows every time.
--
-- Usage (empty, migrated database; run as the tables' owner):
--   psql -v ON_ERROR_STOP=1 -c "SET bench.jobs = 1000000" -f bench/generate.sql   (psql runs -c first)
--   or: SET bench.jobs = '1000000'; then this file, as bench/admin_bench.py does.
--
-- Deterministic: every value is arithmetic on the row number (no random()),
-- except timestamps, which are relative to now() because "locked" means
-- "locked in the last 4 hours". The mix the scale targets are set on, for job number i:
--   * 550 task identifiers task_0001..task_0550; jobs use the first 545,
--     so GC_TASK_IDENTIFIERS has 5 rows to delete.
--   * 1,200 queues queue_0001..queue_1200; jobs use the first 1,188. Of the 12
--     unused, 2 are locked by a live worker, so GC_JOB_QUEUES deletes 10.
--     Even-numbered jobs are in a queue (half of the jobs).
--   * i % 100 = 50: permanently failed (attempts = max_attempts), 1%.
--   * i % 100 = 1: locked by a live worker in the last hour, 1%; about 20
--     jobs per worker id (worker_00000, worker_00001, ...), so a dead worker
--     holds as many jobs at 10M as at 1M.
--   * everything else: waiting, run_at spread over the next year (scheduled
--     jobs), so that a worker benchmark fetching due jobs is not served by them.
--   * every 20th job has a job key; every 5th has priority 1.
-- Inserted straight into the private tables (no add_jobs), then VACUUM
-- ANALYZE is left to the caller (VACUUM cannot run inside a function or
-- transaction block); bench/admin_bench.py runs it.

SET client_min_messages = warning;
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';

TRUNCATE graphile_worker._private_jobs, graphile_worker._private_tasks, graphile_worker._private_job_queues;

-- Building an index once is much faster than growing it row by row: set aside
-- the jobs indexes that are not constraints (with their comments) and build
-- them again after the load. The primary key and the key constraint stay.
CREATE TEMP TABLE bench_saved_indexes ON COMMIT PRESERVE ROWS AS
SELECT i.indexrelid::regclass::text AS name,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       pg_catalog.obj_description(i.indexrelid, 'pg_class') AS description
FROM pg_catalog.pg_index AS i
WHERE i.indrelid = 'graphile_worker._private_jobs'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS c WHERE c.conindid = i.indexrelid);
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM pg_temp.bench_saved_indexes LOOP
    EXECUTE pg_catalog.format('DROP INDEX %s', r.name);
  END LOOP;
END;
$$;

INSERT INTO graphile_worker._private_tasks (id, identifier) OVERRIDING SYSTEM VALUE
SELECT t, 'task_' || pg_catalog.lpad(t::text, 4, '0')
FROM pg_catalog.generate_series(1, 550) AS t;

INSERT INTO graphile_worker._private_job_queues (id, queue_name, locked_at, locked_by) OVERRIDING SYSTEM VALUE
SELECT q,
       'queue_' || pg_catalog.lpad(q::text, 4, '0'),
       CASE WHEN q > 1198 THEN pg_catalog.now() - interval '10 minutes' END,
       CASE WHEN q > 1198 THEN 'worker_live_queue_' || q END
FROM pg_catalog.generate_series(1, 1200) AS q;

INSERT INTO graphile_worker._private_jobs
  (id, job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts,
   last_error, created_at, updated_at, key, locked_at, locked_by, revision, flags)
OVERRIDING SYSTEM VALUE
SELECT
  i,
  CASE WHEN i % 2 = 0 THEN 1 + ((i / 2) * 31) % 1188 END,
  1 + (i * 7919) % 545,
  pg_catalog.json_build_object('n', i),
  CASE WHEN i % 5 = 0 THEN 1 ELSE 0 END,
  CASE
    WHEN i % 100 IN (1, 50) THEN v.now - interval '2 hours'
    ELSE v.now + interval '1 day' + (i % 31536000) * interval '1 second'
  END,
  CASE WHEN i % 100 = 50 THEN 25 WHEN i % 100 = 1 THEN 1 ELSE 0 END,
  25,
  CASE WHEN i % 100 = 50 THEN 'bench: failed for good' END,
  v.now - interval '30 days',
  v.now - interval '1 day',
  CASE WHEN i % 20 = 7 THEN 'key_' || i END,
  CASE WHEN i % 100 = 1 THEN v.now - (i % 3600) * interval '1 second' END,
  CASE WHEN i % 100 = 1 THEN 'worker_' || pg_catalog.lpad(((i / 100) / 20)::text, 5, '0') END,
  0,
  NULL::jsonb
FROM pg_catalog.generate_series(1::bigint, pg_catalog.current_setting('bench.jobs')::bigint) AS i,
     (SELECT pg_catalog.now() AS now) AS v;

DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM pg_temp.bench_saved_indexes LOOP
    EXECUTE r.definition;
    IF r.description IS NOT NULL THEN
      EXECUTE pg_catalog.format('COMMENT ON INDEX %s IS %L', r.name, r.description);
    END IF;
  END LOOP;
END;
$$;
DROP TABLE pg_temp.bench_saved_indexes;

-- Identity sequences continue after the generated ids, as if add_jobs had made them.
DO $$
BEGIN
  PERFORM pg_catalog.setval(pg_catalog.pg_get_serial_sequence('graphile_worker._private_jobs', 'id'),
                            GREATEST(pg_catalog.current_setting('bench.jobs')::bigint, 1));
  PERFORM pg_catalog.setval(pg_catalog.pg_get_serial_sequence('graphile_worker._private_tasks', 'id'), 550);
  PERFORM pg_catalog.setval(pg_catalog.pg_get_serial_sequence('graphile_worker._private_job_queues', 'id'), 1200);
END;
$$;
