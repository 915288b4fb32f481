-- Schema version 2: the administrative functions (complete, permanently fail, reschedule, force unlock, cleanup).
-- depends: 0001.schema-v1

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 2;
