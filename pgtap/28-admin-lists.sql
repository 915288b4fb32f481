-- Version 12: the overview and the job list (job_overview, list_jobs).
BEGIN;
SELECT plan(54);

-- 60 jobs over three tasks and three queues, in every state, with ties of run_at and updated_at
-- (so that page boundaries fall inside a tie) and keys with LIKE's special characters.
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW(
    'lt_' || (ARRAY['a', 'b', 'c'])[1 + n % 3],
    json_build_object('n', n),
    CASE WHEN n % 4 = 1 THEN NULL ELSE 'lq' || (1 + n % 3) END,
    -- Ties: every five jobs share a run_at; the first twenty are due, the rest scheduled.
    CASE WHEN n <= 20 THEN now() - (n / 5) * interval '1 minute' ELSE now() + (n / 5) * interval '1 minute' END,
    NULL,
    CASE n WHEN 1 THEN 'a_b1' WHEN 2 THEN 'axb2' WHEN 3 THEN 'a%c3' WHEN 4 THEN 'a_b4' ELSE 'k' || n END,
    NULL, NULL
  )::graphile_worker.job_spec
  FROM generate_series(1, 60) AS n));
CREATE TEMP TABLE lj AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM graphile_worker._private_jobs;
UPDATE graphile_worker._private_jobs AS j SET updated_at = now() - (lj.n % 4) * interval '1 hour'
FROM lj WHERE lj.id = j.id;
UPDATE graphile_worker._private_jobs AS j SET attempts = 1 FROM lj WHERE lj.id = j.id AND lj.n IN (5, 25, 26);
UPDATE graphile_worker._private_jobs AS j SET attempts = 1, locked_at = now() - interval '10 minutes', locked_by = 'lw-live'
FROM lj WHERE lj.id = j.id AND lj.n IN (6, 7, 30);
UPDATE graphile_worker._private_jobs AS j SET attempts = 1, locked_at = now() - interval '6 hours', locked_by = 'lw-dead'
FROM lj WHERE lj.id = j.id AND lj.n IN (8, 31);
UPDATE graphile_worker._private_jobs AS j SET attempts = 25, last_error = E'boom\nat line 2'
FROM lj WHERE lj.id = j.id AND lj.n IN (9, 10, 11, 32, 33);
SELECT graphile_worker.pause_queue('lq3');

-- The reference: every job with its state as job_state gives it.
CREATE TEMP TABLE ref AS
SELECT j.*, graphile_worker.job_state(j) AS state FROM graphile_worker.jobs AS j;
SELECT is((SELECT count(DISTINCT state)::int FROM ref), 7, 'the fixture has jobs in all seven states');

\ir fixtures/walk.sql

-- Each state lists exactly the jobs job_state puts in it.
SELECT results_eq(
  $$SELECT s.state::text, (SELECT array_agg(l.id ORDER BY l.id) FROM graphile_worker.list_jobs(states => ARRAY[s.state], page_size => 1000) AS l)
    FROM unnest(enum_range(NULL::graphile_worker.job_state)) AS s(state) ORDER BY 1$$,
  $$SELECT s.state::text, (SELECT array_agg(r.id ORDER BY r.id) FROM ref AS r WHERE r.state = s.state)
    FROM unnest(enum_range(NULL::graphile_worker.job_state)) AS s(state) ORDER BY 1$$,
  'list_jobs(states => one state) lists the jobs job_state gives that state, for each state');
SELECT is((SELECT array_agg(l.id ORDER BY l.id) FROM graphile_worker.list_jobs(states => '{running,stale}', page_size => 1000) AS l),
  (SELECT array_agg(r.id ORDER BY r.id) FROM ref AS r WHERE r.state IN ('running', 'stale')), 'several states are a union');
SELECT is((SELECT count(*)::int FROM graphile_worker.list_jobs(page_size => 1000) AS l
           JOIN ref AS r ON r.id = l.id AND r.state = l.state AND r.task_identifier = l.task_identifier
                        AND r.queue_name IS NOT DISTINCT FROM l.queue_name AND r.key IS NOT DISTINCT FROM l.key
                        AND r.run_at = l.run_at AND r.attempts = l.attempts AND r.locked_by IS NOT DISTINCT FROM l.locked_by),
  60, 'every row carries the job''s state, task, queue, key, run_at, attempts and lock');
SELECT is((SELECT last_error_start FROM graphile_worker.list_jobs(states => '{permanently_failed}', page_size => 1)),
  'boom', 'last_error_start is the first line of the last error');

-- Each filter, against the same filter on the jobs view.
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(task_identifiers => '{lt_b}', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE task_identifier = 'lt_b'), 'filter: one task identifier');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(task_identifiers => '{lt_a,lt_c,nope}', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE task_identifier IN ('lt_a', 'lt_c')), 'filter: several task identifiers, one unknown');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(queue_names => '{lq2}', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE queue_name = 'lq2'), 'filter: one queue');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(queue_names => '{lq1,lq3}', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE queue_name IN ('lq1', 'lq3')), 'filter: several queues');
SELECT is((SELECT count(*)::int FROM graphile_worker.list_jobs(queue_names => '{no_such_queue}')), 0,
  'filter: an unknown queue matches nothing');
SELECT is((SELECT array_agg(key ORDER BY id) FROM graphile_worker.list_jobs(key_prefix => 'a_', page_size => 1000)),
  ARRAY['a_b1', 'a_b4'], 'filter: key prefix, with _ taken literally');
SELECT is((SELECT array_agg(key ORDER BY id) FROM graphile_worker.list_jobs(key_prefix => 'a%', page_size => 1000)),
  ARRAY['a%c3'], 'filter: key prefix, with % taken literally');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(min_id => (SELECT id FROM lj WHERE n = 10),
                                                                          max_id => (SELECT id FROM lj WHERE n = 19), page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM lj WHERE n BETWEEN 10 AND 19), 'filter: id window, both ends included');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(run_at_from => now() - interval '2 minutes',
                                                                          run_at_before => now() + interval '6 minutes', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE run_at >= now() - interval '2 minutes' AND run_at < now() + interval '6 minutes'),
  'filter: run_at window, from included, before excluded');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(updated_from => now() - interval '1 hour', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE updated_at >= now() - interval '1 hour'), 'filter: updated_from alone');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(updated_before => now() - interval '1 hour', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE updated_at < now() - interval '1 hour'), 'filter: updated_before alone');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(states => '{permanently_failed}', task_identifiers => '{lt_a}', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE state = 'permanently_failed' AND task_identifier = 'lt_a'), 'filters combine: task and state');
SELECT is((SELECT array_agg(id ORDER BY id) FROM graphile_worker.list_jobs(states => '{scheduled,waiting}', queue_names => '{lq1}',
                                                                          key_prefix => 'k', page_size => 1000)),
  (SELECT array_agg(id ORDER BY id) FROM ref WHERE state IN ('scheduled', 'waiting') AND queue_name = 'lq1' AND key LIKE 'k%'),
  'filters combine: states, queue and key prefix');

-- Orders and cursors: walking every page, 7 rows at a time, gives the same ids as one ORDER BY.
SELECT is(pg_temp.walk('id', false, 7), (SELECT array_agg(id ORDER BY id) FROM ref), 'walk: id ascending');
SELECT is(pg_temp.walk('id', true, 7), (SELECT array_agg(id ORDER BY id DESC) FROM ref), 'walk: id descending');
SELECT is(pg_temp.walk('run_at', false, 7), (SELECT array_agg(id ORDER BY run_at, id) FROM ref), 'walk: run_at ascending, through ties');
SELECT is(pg_temp.walk('run_at', true, 7), (SELECT array_agg(id ORDER BY run_at DESC, id DESC) FROM ref), 'walk: run_at descending, through ties');
SELECT is(pg_temp.walk('updated_at', false, 7), (SELECT array_agg(id ORDER BY updated_at, id) FROM ref), 'walk: updated_at ascending');
SELECT is(pg_temp.walk('updated_at', true, 7), (SELECT array_agg(id ORDER BY updated_at DESC, id DESC) FROM ref), 'walk: updated_at descending');
SELECT is(pg_temp.walk('run_at', false, 1), (SELECT array_agg(id ORDER BY run_at, id) FROM ref), 'walk: one row a page');
SELECT is(pg_temp.walk('run_at', false, 1000), (SELECT array_agg(id ORDER BY run_at, id) FROM ref), 'walk: one page of 1000');
SELECT is(pg_temp.walk('run_at', false, 3, '{scheduled}', '{lt_b}'),
  (SELECT array_agg(id ORDER BY run_at, id) FROM ref WHERE state = 'scheduled' AND task_identifier = 'lt_b'), 'walk: task and state by run_at');
SELECT is((SELECT count(*)::int FROM (
  SELECT run_at FROM ref GROUP BY run_at HAVING count(*) >= 5) AS t), 10, 'the fixture has ties of five run_at each');
-- A cursor survives a change of session time zone and date style.
SET LOCAL TimeZone = 'America/St_Johns';
SET LOCAL DateStyle = 'SQL, DMY';
SELECT is(pg_temp.walk('updated_at', true, 4), (SELECT array_agg(id ORDER BY updated_at DESC, id DESC) FROM ref),
  'walk: cursors read back exactly under another TimeZone and DateStyle');
RESET TimeZone;
RESET DateStyle;

-- Bad arguments raise and read nothing.
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(page_size => 0)$$, '22003', 'page_size is 0; it must be between 1 and 1000', 'page_size 0 raises 22003');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(page_size => 1001)$$, '22003', 'page_size is 1001; it must be between 1 and 1000', 'page_size 1001 raises 22003');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(page_size => NULL)$$, '22004', 'page_size must not be null', 'page_size NULL raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(order_by => 'priority')$$, '22023',
  'order_by is ''priority''; it must be id, run_at or updated_at', 'an unknown order raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(order_by => NULL)$$, '22004', 'order_by must not be null', 'order_by NULL raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(descending => NULL)$$, '22004', 'descending must not be null', 'descending NULL raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(after_cursor => 'v1|id|asc|x')$$, '22023',
  'after_cursor ''v1|id|asc|x'' is not a cursor list_jobs returned', 'a malformed cursor raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(order_by => 'run_at', after_cursor => 'v1|run_at|asc|5|not a time')$$, '22023',
  'after_cursor ''v1|run_at|asc|5|not a time'' is not a cursor list_jobs returned', 'a cursor with a bad timestamp raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(order_by => 'run_at', after_cursor => 'v1|id|asc|5')$$, '22023',
  'after_cursor was made for order_by id asc, not run_at asc', 'a cursor of another order raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(descending => true, after_cursor => 'v1|id|asc|5')$$, '22023',
  'after_cursor was made for order_by id asc, not id desc', 'a cursor of the other direction raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(states => '{}')$$, '22023', 'states is empty; pass NULL to not filter on it',
  'an empty states array raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(states => '{running,NULL}')$$, '22004', 'states element must not be null',
  'a NULL state raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(task_identifiers => '{}')$$, '22023',
  'task_identifiers is empty; pass NULL to not filter on it', 'an empty task list raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(queue_names => ARRAY['lq1', ''])$$, '22023',
  'queue_names element is 0 characters long; it must be 1 to 128', 'an empty queue name raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(task_identifiers => ARRAY[NULL::text])$$, '22004',
  'task_identifiers element must not be null', 'a NULL task identifier raises 22004');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(key_prefix => '')$$, '22023',
  'key_prefix is 0 characters long; it must be 1 to 512', 'an empty key prefix raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(min_id => 5, max_id => 4)$$, '22023',
  'min_id 5 is greater than max_id 4', 'an inverted id window raises 22023');
SELECT throws_ok($$SELECT * FROM graphile_worker.list_jobs(run_at_from => '2030-01-01', run_at_before => '2030-01-01')$$, '22023',
  NULL, 'an empty run_at window raises 22023');

-- The overview: per task and per queue, by state, as the reference counts them; capped.
SELECT results_eq(
  $$SELECT kind, name, state::text, jobs, at_least FROM graphile_worker.job_overview() ORDER BY 1, 2, 3$$,
  $$SELECT 'queue', queue_name, state::text, count(*), false FROM ref WHERE queue_name IS NOT NULL GROUP BY 2, 3
    UNION ALL
    SELECT 'task', task_identifier, state::text, count(*), false FROM ref GROUP BY 2, 3 ORDER BY 1, 2, 3$$,
  'job_overview counts each task''s and each queue''s jobs by state, as job_state gives them');
SELECT results_eq(
  $$SELECT name, state::text, jobs, at_least FROM graphile_worker.job_overview(3) WHERE kind = 'task' AND state = 'scheduled' ORDER BY 1$$,
  $$SELECT task_identifier, 'scheduled', least(count(*), 3), count(*) > 3 FROM ref WHERE state = 'scheduled' GROUP BY 1 ORDER BY 1$$,
  'above the cap a cell says cap, at least');
SELECT is((SELECT bool_and(NOT at_least AND jobs <= 3) FROM graphile_worker.job_overview(3) WHERE jobs < 3), true,
  'below the cap a cell is exact');
SELECT results_eq(
  $$SELECT name, oldest_due_run_at FROM graphile_worker.job_overview() WHERE kind = 'task' AND state = 'waiting' ORDER BY 1$$,
  $$SELECT task_identifier, min(run_at) FROM ref WHERE state = 'waiting' GROUP BY 1 ORDER BY 1$$,
  'oldest_due_run_at of a waiting row is its oldest due job''s run_at');
SELECT is((SELECT count(*)::int FROM graphile_worker.job_overview() WHERE state IN ('scheduled', 'running', 'permanently_failed')
           AND oldest_due_run_at IS NOT NULL), 0, 'and it is NULL for rows that are not waiting for a worker');
SELECT throws_ok($$SELECT * FROM graphile_worker.job_overview(0)$$, '22003', 'cap is 0; it must be at least 1', 'cap 0 raises 22003');
SELECT throws_ok($$SELECT * FROM graphile_worker.job_overview(NULL)$$, '22004', 'cap must not be null', 'cap NULL raises 22004');

SELECT * FROM finish();
ROLLBACK;
