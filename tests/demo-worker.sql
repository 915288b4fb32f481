-- A whole worker in plain SQL, for psql: fetch a batch, "run" each job (do
-- nothing), complete it; loop until no job is due. A job whose payload has
-- "fail": true is failed instead, to show the retry (it is then not due for
-- a few seconds, so this loop leaves it for the admin functions to see).
--
--   psql -X -v ON_ERROR_STOP=1 -d DSN -f tests/demo-worker.sql
--
-- Each fetch and each completion commits on its own, as in a real worker:
-- the locks (locked_at, locked_by) carry the jobs from one transaction to the
-- next, and a worker that dies between them leaves its jobs locked until
-- force_unlock_workers or release_stale_locks frees them. That is why this is
-- a DO block run outside any transaction: it may COMMIT.

DO $demo$
DECLARE
  -- Unguessable, because the id is all that proves a lock is ours: a pid can be
  -- read from pg_stat_activity by any role.
  v_worker text := 'demo-worker-' || pg_catalog.gen_random_uuid();
  v_jobs graphile_worker.fetched_job[];
  v_done bigint[];
  v_failed bigint[];
  v_total_done bigint := 0;
  v_total_failed bigint := 0;
  v_released record;
BEGIN
  -- What a worker does now and then: free what dead workers left locked.
  SELECT * INTO v_released FROM graphile_worker.release_stale_locks();
  RAISE NOTICE '%: released % stale job locks and % queue locks', v_worker, v_released.released_jobs, v_released.released_queues;

  LOOP
    v_jobs := ARRAY(SELECT j FROM graphile_worker.fetch_jobs(v_worker, NULL, 10) AS j);
    COMMIT;
    EXIT WHEN pg_catalog.cardinality(v_jobs) = 0;

    -- The jobs would run here. Then report the outcome, in one transaction.
    v_failed := ARRAY(SELECT j.id FROM pg_catalog.unnest(v_jobs) AS j
                      WHERE (j.payload ->> 'fail') IS NOT DISTINCT FROM 'true');
    v_done := ARRAY(SELECT j.id FROM pg_catalog.unnest(v_jobs) AS j WHERE j.id <> ALL (v_failed));
    PERFORM graphile_worker.complete_worker_jobs(v_worker, v_done);
    PERFORM graphile_worker.fail_worker_jobs(v_worker, v_failed, 'demo: the payload asked to fail');
    COMMIT;

    v_total_done := v_total_done + pg_catalog.cardinality(v_done);
    v_total_failed := v_total_failed + pg_catalog.cardinality(v_failed);
    RAISE NOTICE '%: ran % jobs (%), completed %, failed %', v_worker, pg_catalog.cardinality(v_jobs),
      (SELECT pg_catalog.string_agg(j.task_identifier || '#' || j.id || coalesce('@' || j.queue_name, ''), ' ' ORDER BY j.id)
       FROM pg_catalog.unnest(v_jobs) AS j),
      pg_catalog.cardinality(v_done), pg_catalog.cardinality(v_failed);
  END LOOP;

  RAISE NOTICE '%: no job is due; completed %, failed % (they retry later)', v_worker, v_total_done, v_total_failed;
END
$demo$;

-- What is left: jobs waiting (not due yet, failed and waiting to retry, or
-- permanently failed) and, if any, the locks workers hold.
SELECT id, task_identifier, queue_name, run_at > now() AS waiting, attempts, max_attempts, last_error
FROM graphile_worker.jobs
ORDER BY id;
SELECT * FROM graphile_worker.worker_locks;
