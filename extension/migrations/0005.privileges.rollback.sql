-- Rollback of schema version 5: functions run with the caller's rights again and PUBLIC may execute them.
SET LOCAL lock_timeout = '10s';

ALTER DEFAULT PRIVILEGES IN SCHEMA graphile_worker GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA graphile_worker TO PUBLIC;

ALTER FUNCTION graphile_worker.release_stale_locks() SECURITY INVOKER;
ALTER FUNCTION graphile_worker.fail_worker_jobs(text, bigint[], text) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.fail_job(text, bigint, text, json) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.complete_worker_jobs(text, bigint[]) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.complete_job(text, bigint) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.fetch_jobs(text, text[], integer, text[]) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.delete_permafailed_jobs_batch(integer) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.cleanup(graphile_worker.cleanup_task[], text[]) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.force_unlock_workers(text[]) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.reschedule_jobs(bigint[], timestamptz, integer, integer, integer) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.permanently_fail_jobs(bigint[], text) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.complete_jobs(bigint[]) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.remove_job(text) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.add_jobs(graphile_worker.job_spec[], boolean) SECURITY INVOKER;
ALTER FUNCTION graphile_worker.add_job(text, json, text, timestamptz, integer, text, integer, text[], text) SECURITY INVOKER;

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 4;
