-- Rollback of schema version 1: removes the graphile_worker schema and every job in it.
DROP SCHEMA graphile_worker CASCADE;
