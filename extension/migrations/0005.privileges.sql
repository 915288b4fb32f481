-- Schema version 5: the public functions run with their owner's rights, and PUBLIC may execute nothing.
-- depends: 0004.scale-indexes
--
-- The privilege model. The private tables have row level security with no
-- policy and no grants: only their owner (the role that ran migrate) reads or
-- writes them. Every public function below is SECURITY DEFINER, so a role
-- that may EXECUTE it acts on the tables through it and in no other way.
-- Each is safe as definer because it pins search_path to pg_catalog, pg_temp
-- (no caller's schema is ever searched) and names every object with its
-- schema. Roles receive EXECUTE in three sets (enqueue, worker, admin) from
-- `python -m installer grant`, which records them and grants them again after
-- every later migration.

SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 5;

-- Enqueue.
ALTER FUNCTION graphile_worker.add_job(text, json, text, timestamptz, integer, text, integer, text[], text) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.add_jobs(graphile_worker.job_spec[], boolean) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.remove_job(text) SECURITY DEFINER;

-- Administration.
ALTER FUNCTION graphile_worker.complete_jobs(bigint[]) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.permanently_fail_jobs(bigint[], text) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.reschedule_jobs(bigint[], timestamptz, integer, integer, integer) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.force_unlock_workers(text[]) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.cleanup(graphile_worker.cleanup_task[], text[]) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.delete_permafailed_jobs_batch(integer) SECURITY DEFINER;

-- Worker.
ALTER FUNCTION graphile_worker.fetch_jobs(text, text[], integer, text[]) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.complete_job(text, bigint) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.complete_worker_jobs(text, bigint[]) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.fail_job(text, bigint, text, json) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.fail_worker_jobs(text, bigint[], text) SECURITY DEFINER;
ALTER FUNCTION graphile_worker.release_stale_locks() SECURITY DEFINER;

-- PostgreSQL grants EXECUTE on every new function to PUBLIC; take it back for
-- the functions that exist and for those later migrations create.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA graphile_worker FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA graphile_worker REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA graphile_worker FROM PUBLIC;
REVOKE ALL ON SCHEMA graphile_worker FROM PUBLIC;
