-- Rollback of schema version 3: back to version 2.
-- Drops everything 0003 created, by full signature, dependants first.
SET LOCAL lock_timeout = '10s';
DROP VIEW graphile_worker.worker_locks;
DROP FUNCTION graphile_worker.release_stale_locks();
DROP FUNCTION graphile_worker.fail_job(text, bigint, text, json);
DROP FUNCTION graphile_worker.fail_worker_jobs(text, bigint[], text);
DROP FUNCTION graphile_worker._private_fail_jobs(text, bigint[], text, json);
DROP FUNCTION graphile_worker.complete_job(text, bigint);
DROP FUNCTION graphile_worker.complete_worker_jobs(text, bigint[]);
DROP FUNCTION graphile_worker._private_release_queues(text, integer[]);
DROP FUNCTION graphile_worker.fetch_jobs(text, text[], integer, text[]);
DROP FUNCTION graphile_worker._private_check_worker_id(text);
DROP FUNCTION graphile_worker._private_retry_delay(integer);
DROP TYPE graphile_worker.fetched_job;
DROP INDEX graphile_worker.jobs_locked_index;
DROP INDEX graphile_worker.jobs_fetch_index;

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 2;
