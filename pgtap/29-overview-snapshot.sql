-- Version 13: the stored overview (job_overview_snapshot, refresh_job_overview) and list_jobs'
-- count of locked jobs (few: found from jobs_locked_index; many: read in id order).
BEGIN;
SELECT plan(15);

SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('os_' || (ARRAY['a', 'b'])[1 + n % 2], '{}'::json, 'osq' || (1 + n % 3),
             now() + n * interval '1 minute', NULL, NULL, NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 30) AS n));

SELECT is((SELECT count(*)::int FROM graphile_worker._private_overview_counted), 0, 'no count is stored before the first call');
SELECT results_eq(
  $$SELECT kind, name, state::text, jobs, at_least, oldest_due_run_at FROM graphile_worker.job_overview_snapshot() ORDER BY 1, 2, 3$$,
  $$SELECT kind, name, state::text, jobs, at_least, oldest_due_run_at FROM graphile_worker.job_overview() ORDER BY 1, 2, 3$$,
  'the first call counts, and returns what job_overview returns');
SELECT is((SELECT DISTINCT counted_at FROM graphile_worker.job_overview_snapshot()), now(), 'counted_at is the time of the count');
SELECT results_eq(
  $$SELECT kind, name, state::text, jobs, at_least FROM graphile_worker.job_overview_snapshot(4) ORDER BY 1, 2, 3$$,
  $$SELECT kind, name, state::text, jobs, at_least FROM graphile_worker.job_overview(4) ORDER BY 1, 2, 3$$,
  'the cap is applied as job_overview applies it');

-- More jobs: the stored count does not see them until it is counted again.
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('os_c', '{}'::json, NULL, now() + interval '1 day', NULL, NULL, NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 5)));
SELECT is((SELECT count(*)::int FROM graphile_worker.job_overview_snapshot() WHERE name = 'os_c'), 0,
  'without max_age the stored count is returned whatever its age');
UPDATE graphile_worker._private_overview_counted SET counted_at = now() - interval '1 hour';
SELECT is((SELECT count(*)::int FROM graphile_worker.job_overview_snapshot(max_age => interval '2 hours') WHERE name = 'os_c'), 0,
  'a count younger than max_age is returned as it is');
SELECT is((SELECT jobs FROM graphile_worker.job_overview_snapshot(max_age => interval '10 minutes') WHERE name = 'os_c'), 5::bigint,
  'a count older than max_age is made again first');
SELECT is((SELECT DISTINCT counted_at FROM graphile_worker.job_overview_snapshot()), now(), 'and its time is stored');
DELETE FROM graphile_worker._private_jobs AS j USING graphile_worker._private_tasks AS t
WHERE t.id = j.task_id AND t.identifier = 'os_c';
SELECT is(graphile_worker.refresh_job_overview(), now(), 'refresh_job_overview returns the time of the count');
SELECT is((SELECT count(*)::int FROM graphile_worker.job_overview_snapshot() WHERE name = 'os_c'), 0,
  'refresh_job_overview replaces the stored rows');

SELECT throws_ok($$SELECT * FROM graphile_worker.job_overview_snapshot(0)$$, '22003', 'cap is 0; it must be at least 1', 'cap 0 raises 22003');
SELECT throws_ok($$SELECT * FROM graphile_worker.job_overview_snapshot(NULL)$$, '22004', 'cap must not be null', 'cap NULL raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.job_overview_snapshot(max_age => interval '-1 minute')$$, '22023',
  'max_age is -00:01:00; it must not be negative', 'a negative max_age raises 22023');

SELECT is((SELECT count(*)::int FROM graphile_worker.list_jobs(states => '{stale}')),
  (SELECT count(*)::int FROM graphile_worker.jobs AS j WHERE graphile_worker.job_state(j) = 'stale'),
  'no stale jobs: an empty page');

-- 10,000 stale jobs (a crashed fleet): list_jobs counts them many and reads in id order; the page
-- is still the first 100 stale jobs by id.
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('os_stale', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 10000)));
UPDATE graphile_worker._private_jobs AS j SET locked_at = now() - interval '5 hours', locked_by = 'os-dead', attempts = 1
FROM graphile_worker._private_tasks AS t WHERE t.id = j.task_id AND t.identifier = 'os_stale';
SELECT results_eq(
  $$SELECT id FROM graphile_worker.list_jobs(states => '{stale}', page_size => 100)$$,
  $$SELECT j.id FROM graphile_worker.jobs AS j WHERE graphile_worker.job_state(j) = 'stale' ORDER BY j.id LIMIT 100$$,
  'many stale jobs: the first page is the first 100 stale jobs by id');

SELECT * FROM finish();
ROLLBACK;
