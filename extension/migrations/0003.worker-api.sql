-- Schema version 3: the worker API (fetch, complete, fail, release stale locks) for clients in any language.
-- depends: 0002.admin-functions

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 3;
