-- Rollback of schema version 4: back to version 3 (drops the scale indexes and the batched delete).
SET LOCAL lock_timeout = '10s';

-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.delete_permafailed_jobs_batch(integer);
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX graphile_worker.jobs_permafailed_index;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX graphile_worker.jobs_job_queue_id_index;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX graphile_worker.jobs_task_id_index;

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 3;
