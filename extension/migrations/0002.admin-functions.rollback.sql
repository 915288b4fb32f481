-- Rollback of schema version 2: back to version 1.
-- Drops everything 0002 created, by full signature, the type after the function that uses it.
-- Removing these functions is the point of this rollback, hence the squawk-ignore lines.
SET LOCAL lock_timeout = '10s';
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.cleanup(graphile_worker.cleanup_task[], text[]);
-- squawk-ignore ban-drop-type
DROP TYPE graphile_worker.cleanup_task;
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker._private_delete_permafailed_jobs(bigint);
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.force_unlock_workers(text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.reschedule_jobs(bigint[], timestamptz, integer, integer, integer);
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.permanently_fail_jobs(bigint[], text);
-- squawk-ignore ban-drop-function
DROP FUNCTION graphile_worker.complete_jobs(bigint[]);

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 1;
