-- Schema version 4: indexes so that administration costs what it touches, not the table size; batched deletion of permanently failed jobs.
-- depends: 0003.worker-api
--
-- Measured with bench/admin_bench.py (make bench: 1,000,000 jobs; make
-- bench-large: 10,000,000; the mix is described in bench/generate.sql) on a
-- 2-core machine with stock PostgreSQL 15 settings, shared with other work,
-- so absolute times are noisy: the figures below are medians of rolled-back
-- runs on the same loaded state, with and without these indexes in one run.
--
-- Building the indexes reads the jobs table (about 1 s per million jobs on
-- that machine) under a SHARE lock, which blocks enqueueing, fetching and
-- completing meanwhile. On a large, busy queue, build them beforehand with
-- CREATE INDEX CONCURRENTLY, using exactly the names and definitions below;
-- IF NOT EXISTS then lets this migration keep them (and python -m installer
-- verify compares the definitions). That is the only reason for IF NOT EXISTS.

SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 4;

-- summary: the jobs of each task, so that GC_TASK_IDENTIFIERS proves a task
-- unused with one index probe instead of reading every job.
--
-- Without it the anti-join reads the whole jobs table (a hash anti-join, or a
-- re-read subquery once it outgrows work_mem): 1.5 s at 1M jobs (0.9 s of
-- server CPU). With it, one probe per task row (550): 6 to 14 ms at 1M
-- (4.6 ms CPU) and 6.7 ms at 10M, whatever work_mem.
--
-- Keyed on task_id::bigint, not task_id, on purpose: only a query that names
-- that expression (cleanup's) can use it. A plain task_id index seduces
-- fetch_jobs (task_id = ANY (...) ORDER BY priority, run_at, id LIMIT n):
-- when the statistics do not know a task yet (a new identifier, a burst of
-- jobs since the last ANALYZE) the planner reads all of that task's jobs
-- through it and sorts them, instead of walking the fetch index and stopping
-- after n rows. Measured: 49 ms instead of 0.4 ms per fetch, and the whole
-- fetch/complete cycle 3.7x slower (835 against 3,101 jobs/s at 1M).
--
-- Hot-path cost: one more index entry per inserted job and per non-HOT update
-- (fetch, fail, reschedule); the keys repeat, so deduplication keeps the index
-- small (about 9 MB per million jobs). With both GC indexes, at 1M jobs,
-- against the same schema without them in the same run: add_jobs of 100,000
-- 0.94x, fetch/complete 1.01x, single add_job calls within the noise.
-- permanently_fail_jobs and reschedule_jobs pay the same extra entry per row
-- (permanently_fail_jobs also one in jobs_permafailed_index).
CREATE INDEX IF NOT EXISTS jobs_task_id_index ON graphile_worker._private_jobs
  USING btree ((task_id::bigint));
COMMENT ON INDEX graphile_worker.jobs_task_id_index IS
  'Jobs by task id (as bigint, so that only cleanup''s query, which names that expression, uses it): cleanup(GC_TASK_IDENTIFIERS) checks each task row with one index probe instead of a scan of every job.';

-- summary: the jobs of each named queue, for GC_JOB_QUEUES, as above (and
-- keyed on job_queue_id::bigint for the same reason). Partial: jobs outside
-- any queue are never looked up by queue, and leaving them out halves the
-- index and its maintenance.
-- Without it: 0.5 to 1.4 s at 1M jobs (1,200 queues); with it: 9 to 20 ms
-- (6 ms CPU) at 1M and 12 ms at 10M.
CREATE INDEX IF NOT EXISTS jobs_job_queue_id_index ON graphile_worker._private_jobs
  USING btree ((job_queue_id::bigint)) WHERE (job_queue_id IS NOT NULL);
COMMENT ON INDEX graphile_worker.jobs_job_queue_id_index IS
  'Jobs by queue id (as bigint, so that only cleanup''s query uses it; jobs in a named queue only): cleanup(GC_JOB_QUEUES) checks each queue row with one index probe instead of a scan of every job.';

-- summary: the permanently failed jobs, in id order.
-- The predicate is the one cleanup and the batched delete use, written the
-- same way so that the planner can prove it: attempts >= max_attempts (not
-- is_available, which is also false for a merely running job). Only
-- permanently failed jobs are in it (1% in the benchmark mix), so it costs
-- the hot path nothing until a job fails for good. Keyed on id so that the
-- batched delete reads the next batch in order and stops at batch_size.
-- Without it DELETE_PERMAFAILED_JOBS reads the whole table (0.35 s at 1M,
-- deleting 10,000); with it its cost follows the rows it deletes: 75 ms of
-- CPU for those 10,000; 3.0 s for the 100,000 at 10M, where each deleted row
-- is on a page of its own that is read and written to the WAL whole (a
-- full-page image per page after each checkpoint: 1.6 GB of WAL).
CREATE INDEX IF NOT EXISTS jobs_permafailed_index ON graphile_worker._private_jobs
  USING btree (id) WHERE (attempts >= max_attempts);
COMMENT ON INDEX graphile_worker.jobs_permafailed_index IS
  'Permanently failed jobs (attempts >= max_attempts) by id: cleanup(DELETE_PERMAFAILED_JOBS) and delete_permafailed_jobs_batch read only these.';

-- summary: one batch of DELETE_PERMAFAILED_JOBS, for callers that commit
-- between batches so that no transaction holds many row locks for long.
--
-- Each batch holds its row locks until its transaction ends. Measured with
-- batches of 10,000: 1,000,000 permanently failed jobs deleted in 101 batches
-- (7.2 s) at 10M jobs, median batch 55 ms, longest 306 ms; a session asking
-- for a lock on one of those rows meanwhile waited at most 50 ms. From psql, with progress, one
-- transaction per batch (a DO block may COMMIT when it is not itself inside
-- a transaction block):
--   DO $$
--   DECLARE n bigint; total bigint := 0;
--   BEGIN
--     LOOP
--       n := graphile_worker.delete_permafailed_jobs_batch(10000);
--       COMMIT;
--       total := total + n;
--       RAISE NOTICE '% permanently failed jobs deleted so far', total;
--       EXIT WHEN n < 10000;
--     END LOOP;
--   END $$;
-- It is not a procedure in the schema because a procedure that commits
-- cannot pin search_path (PostgreSQL refuses SET on it), and every routine
-- here pins it.
CREATE FUNCTION graphile_worker.delete_permafailed_jobs_batch(batch_size integer DEFAULT 10000) RETURNS bigint
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF batch_size IS NULL THEN
    RAISE EXCEPTION 'batch_size must not be null'
      USING ERRCODE = '22004', HINT = 'Pass how many jobs to delete per call, e.g. 10000.';
  END IF;
  IF batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size is %; it must be at least 1', batch_size
      USING ERRCODE = '22023', HINT = 'Pass how many jobs to delete per call, e.g. 10000.';
  END IF;
  RETURN graphile_worker._private_delete_permafailed_jobs(batch_size);
END;
$$;
COMMENT ON FUNCTION graphile_worker.delete_permafailed_jobs_batch(integer) IS
  'Deletes at most batch_size (default 10000) unlocked, permanently failed jobs (attempts >= max_attempts), lowest ids first, skipping rows other transactions hold, and returns how many. Call it, one transaction per call, until it returns less than batch_size (python -m installer does; from psql, a DO block that COMMITs after each call). Raises 22004/22023 for a NULL or non-positive batch_size.';

