-- Rollback of schema version 9: drops what it added. The cron scheduler's state and the remembered task ids go with it.
SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 8;

DROP TRIGGER _private_job_queues_deleted ON graphile_worker._private_job_queues;
DROP FUNCTION graphile_worker._private_job_queues_deleted();
DROP TRIGGER _private_tasks_deleted ON graphile_worker._private_tasks;
DROP FUNCTION graphile_worker._private_tasks_deleted();
DROP TRIGGER _private_tasks_reuse_id ON graphile_worker._private_tasks;
DROP FUNCTION graphile_worker._private_tasks_reuse_id();
DROP TABLE graphile_worker._private_retired_tasks;
DROP TABLE graphile_worker._private_known_crontabs;
DROP TABLE graphile_worker.migrations;
