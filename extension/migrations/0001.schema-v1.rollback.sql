-- Rollback of schema version 1: removes the graphile_worker schema and every job in it.
SET LOCAL lock_timeout = '10s';
-- squawk-ignore ban-drop-schema
DROP SCHEMA graphile_worker CASCADE;
