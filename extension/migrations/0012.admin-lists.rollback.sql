-- Rollback of schema version 12: drops what it added and builds jobs_locked_index as version 11 had
-- it (no function of version 11 changed).
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 11;

DROP FUNCTION graphile_worker.list_jobs(graphile_worker.job_state[], text[], text[], text, bigint, bigint, timestamptz, timestamptz, timestamptz, timestamptz, text, boolean, integer, text);
DROP FUNCTION graphile_worker.job_overview(integer);
DROP FUNCTION graphile_worker._private_check_names(text, text[]);
DROP INDEX graphile_worker.jobs_retrying_index;
DROP INDEX graphile_worker.jobs_permafailed_task_index;
DROP INDEX graphile_worker.jobs_permafailed_queue_index;

DROP INDEX graphile_worker.jobs_locked_index;
CREATE INDEX jobs_locked_index ON graphile_worker._private_jobs USING btree (locked_by, job_queue_id) INCLUDE (locked_at) WHERE (locked_at IS NOT NULL);
COMMENT ON INDEX graphile_worker.jobs_locked_index IS 'Locked (running) jobs by worker id and queue: serves worker_locks, release_stale_locks and force_unlock_workers without reading the whole table.';
