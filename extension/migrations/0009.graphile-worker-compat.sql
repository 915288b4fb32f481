-- Schema version 9: what graphile-worker's own Node worker, CLI and WorkerUtils need to run on this schema.
-- depends: 0008.input-limits
--
-- The npm package graphile-worker (0.17 and 0.18) reads graphile_worker.migrations
-- at start-up and applies every revision of its own it finds missing there; with
-- no such table it tries to create its schema from scratch and fails on our
-- objects. Its cron scheduler keeps its state in _private_known_crontabs. This
-- version adds both with that package's layout, records revisions 1 to 20 as
-- present (what 0.18.0 ships; 0.17 knows 1 to 19 and warns only), and keeps
-- task ids stable across cleanup, because the Node worker caches a task's id
-- for as long as it runs:
--   * a task row deleted by any DELETE (our cleanup, or WorkerUtils' cleanup)
--     is remembered in _private_retired_tasks, and a later insert of that
--     identifier gets the old id back;
--   * a task or queue row deleted while a job still refers to it (the plain
--     DELETE of WorkerUtils' cleanup races enqueuers that way) is put back at
--     once with its id, so that job is not orphaned.
-- Nothing else changes: no function, index or privilege of version 8.

SET LOCAL lock_timeout = '10s';

CREATE OR REPLACE FUNCTION graphile_worker.schema_version() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 9;

-- The table graphile-worker's migrate step reads: the highest id and the highest breaking id.
CREATE TABLE graphile_worker.migrations (
  id integer PRIMARY KEY,
  ts timestamptz NOT NULL DEFAULT now(),
  breaking boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE graphile_worker.migrations IS 'The graphile-worker (npm) schema revisions this schema provides: 1 to 20, as graphile-worker 0.18.0 records them (breaking: 1, 3, 11, 13, 14, 16, 19). Its Node worker reads this at start-up; a row above 20 means a newer graphile-worker changed this schema (installer verify and status report it).';

-- Revisions whose breaking flag graphile-worker sets: a worker that does not
-- know the highest breaking id refuses to start (exit code 57).
INSERT INTO graphile_worker.migrations (id, breaking)
SELECT i, i IN (1, 3, 11, 13, 14, 16, 19)
FROM generate_series(1, 20) AS i;

-- The cron scheduler's state, as graphile-worker 0.18 lays it out (its constraint name included).
CREATE TABLE graphile_worker._private_known_crontabs (
  identifier text NOT NULL,
  known_since timestamptz NOT NULL,
  last_execution timestamptz,
  CONSTRAINT known_crontabs_pkey PRIMARY KEY (identifier)
);
COMMENT ON TABLE graphile_worker._private_known_crontabs IS 'Private: one row per crontab item graphile-worker''s Node scheduler has seen: when it first saw it and when it last enqueued it (for backfill). Written only by that scheduler.';
-- Like the other private tables: a table privilege alone shows no row.
ALTER TABLE graphile_worker._private_known_crontabs ENABLE ROW LEVEL SECURITY;

-- Ids of task rows that were deleted, so that their identifier gets the same id back.
CREATE TABLE graphile_worker._private_retired_tasks (
  identifier text NOT NULL,
  id integer NOT NULL,
  retired_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT _private_retired_tasks_pkey PRIMARY KEY (identifier)
);
COMMENT ON TABLE graphile_worker._private_retired_tasks IS 'Private: the id each deleted task identifier had. A process that cached the id (graphile-worker''s Node worker does, for as long as it runs) keeps finding that task''s jobs when the identifier comes back. A row goes away when its identifier is used again.';
ALTER TABLE graphile_worker._private_retired_tasks ENABLE ROW LEVEL SECURITY;

-- summary: a new task row takes the id its identifier had before it was deleted.
CREATE FUNCTION graphile_worker._private_tasks_reuse_id() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id integer;
BEGIN
  -- Taking the row out here is safe under concurrency: a second insert of the
  -- same identifier waits for this delete, finds no row, and then conflicts
  -- on the identifier's unique index with the row this insert makes.
  DELETE FROM graphile_worker._private_retired_tasks AS r
  WHERE r.identifier = NEW.identifier COLLATE "default"
  RETURNING r.id INTO v_id;
  IF v_id IS NOT NULL THEN
    NEW.id := v_id;
  END IF;
  RETURN NEW;
END;
$$;
COMMENT ON FUNCTION graphile_worker._private_tasks_reuse_id() IS 'Private (trigger): gives a task row being inserted the id its identifier had before it was deleted, if any (see _private_retired_tasks).';
REVOKE ALL ON FUNCTION graphile_worker._private_tasks_reuse_id() FROM PUBLIC;

CREATE TRIGGER _private_tasks_reuse_id
  BEFORE INSERT ON graphile_worker._private_tasks
  FOR EACH ROW EXECUTE FUNCTION graphile_worker._private_tasks_reuse_id();

-- summary: after a DELETE of task rows, put back rows still in use and remember the ids of the rest.
CREATE FUNCTION graphile_worker._private_tasks_deleted() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- A plain "delete tasks without jobs" (WorkerUtils' cleanup) may delete a
  -- row an enqueuer held while it added a job: the DELETE waited for that
  -- enqueuer but judged "no job" with its older snapshot. This statement
  -- has a fresh snapshot, sees that job, and puts the row back with its id.
  -- Our own cleanup re-checks before it deletes, so this finds nothing there.
  INSERT INTO graphile_worker._private_tasks (id, identifier) OVERRIDING SYSTEM VALUE
  SELECT g.id, g.identifier FROM gone AS g
  WHERE EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j WHERE j.task_id::bigint = g.id::bigint);

  INSERT INTO graphile_worker._private_retired_tasks (identifier, id)
  SELECT g.identifier, g.id FROM gone AS g
  WHERE NOT EXISTS (SELECT 1 FROM graphile_worker._private_tasks AS t WHERE t.id = g.id)
  ON CONFLICT (identifier) DO UPDATE SET id = EXCLUDED.id, retired_at = now();
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION graphile_worker._private_tasks_deleted() IS 'Private (trigger): after task rows are deleted, re-inserts (same id) those a job still refers to and records the ids of the others in _private_retired_tasks.';
REVOKE ALL ON FUNCTION graphile_worker._private_tasks_deleted() FROM PUBLIC;

CREATE TRIGGER _private_tasks_deleted
  AFTER DELETE ON graphile_worker._private_tasks
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION graphile_worker._private_tasks_deleted();

-- summary: after a DELETE of queue rows, put back the rows a job still refers to.
CREATE FUNCTION graphile_worker._private_job_queues_deleted() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- The same race as for tasks (see _private_tasks_deleted): a job whose
  -- queue row is gone would never be fetched, by us or by the Node worker.
  INSERT INTO graphile_worker._private_job_queues (id, queue_name, locked_at, locked_by) OVERRIDING SYSTEM VALUE
  SELECT g.id, g.queue_name, g.locked_at, g.locked_by FROM gone AS g
  WHERE EXISTS (SELECT 1 FROM graphile_worker._private_jobs AS j
                WHERE j.job_queue_id IS NOT NULL AND j.job_queue_id::bigint = g.id::bigint);
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION graphile_worker._private_job_queues_deleted() IS 'Private (trigger): after queue rows are deleted, re-inserts (same id, name and lock) those a job still refers to.';
REVOKE ALL ON FUNCTION graphile_worker._private_job_queues_deleted() FROM PUBLIC;

CREATE TRIGGER _private_job_queues_deleted
  AFTER DELETE ON graphile_worker._private_job_queues
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION graphile_worker._private_job_queues_deleted();
