-- Behaviour of add_job, add_jobs and remove_job: defaults, job keys and their modes, locked jobs, bad input.
BEGIN;
SELECT plan(70);

-- Defaults of a bare add_job.
SELECT add_job AS j FROM graphile_worker.add_job('send_email') \gset bare_
SELECT results_eq(
  $$SELECT task_identifier, queue_name, priority, attempts, max_attempts, key, revision, flags, locked_at
    FROM graphile_worker.jobs WHERE task_identifier = 'send_email'$$,
  $$VALUES ('send_email'::text, NULL::text, 0::smallint, 0::smallint, 25::smallint, NULL::text, 0, NULL::jsonb,
            NULL::timestamptz)$$,
  'add_job defaults: no queue, priority 0, 25 attempts, no key, no flags, unlocked');
SELECT is((SELECT payload::text FROM graphile_worker._private_jobs j
           JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = 'send_email'),
  '{}', 'payload defaults to {}');
SELECT ok((SELECT run_at = now() FROM graphile_worker.jobs WHERE task_identifier = 'send_email'),
  'run_at defaults to now()');

-- Every argument is stored.
SELECT results_eq(
  $$SELECT (j).priority, (j).max_attempts, (j).key, (j).flags, (j).payload::text, (j).run_at
    FROM (SELECT graphile_worker.add_job('resize', '{"w": 3}', 'images', '2030-01-01 00:00+00', 7, 'img-1', -5,
                                         ARRAY['gpu', 'slow']) AS j) AS s$$,
  $$VALUES (-5::smallint, 7::smallint, 'img-1'::text, '{"gpu": true, "slow": true}'::jsonb, '{"w": 3}'::text,
            '2030-01-01 00:00+00'::timestamptz)$$,
  'add_job stores priority, max_attempts, key, flags as an object, payload and run_at');
SELECT is((SELECT queue_name FROM graphile_worker.jobs WHERE key = 'img-1'), 'images', 'queue row created and linked');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_tasks WHERE identifier = 'resize'), 1, 'task row created');

-- Task and queue rows are shared, not duplicated.
SELECT graphile_worker.add_job('resize', queue_name => 'images');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_job_queues WHERE queue_name = 'images'), 1,
  'a second job in the queue reuses the queue row');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_tasks WHERE identifier = 'resize'), 1,
  'a second job of the task reuses the task row');

-- Job key, mode replace (default): the waiting job is updated in place.
SELECT graphile_worker.add_job('report', '{"v": 1}', job_key => 'rep', run_at => '2031-01-01 00:00+00', priority => 1);
CREATE TEMP TABLE ids ON COMMIT DROP AS SELECT 'rep'::text AS name, id FROM graphile_worker.jobs WHERE key = 'rep';
UPDATE graphile_worker._private_jobs SET attempts = 2, last_error = 'boom' WHERE key = 'rep';
SELECT graphile_worker.add_job('report2', '{"v": 2}', 'q-rep', '2032-01-01 00:00+00', 9, 'rep', 3, ARRAY['f']);
SELECT results_eq(
  $$SELECT id, task_identifier, queue_name, run_at, max_attempts, priority, attempts, last_error, revision, flags
    FROM graphile_worker.jobs WHERE key = 'rep'$$,
  $$VALUES ((SELECT id FROM ids WHERE name = 'rep'), 'report2'::text, 'q-rep'::text, '2032-01-01 00:00+00'::timestamptz, 9::smallint,
            3::smallint, 0::smallint, NULL::text, 1, '{"f": true}'::jsonb)$$,
  'replace: same job id, every field replaced, attempts and error reset, revision bumped');
SELECT is((SELECT payload::text FROM graphile_worker._private_jobs WHERE key = 'rep'), '{"v": 2}',
  'replace: object payload replaced');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_jobs WHERE key = 'rep'), 1, 'replace: still one job');

-- Array payloads accumulate.
SELECT graphile_worker.add_job('batch', '[1]', job_key => 'arr');
SELECT graphile_worker.add_job('batch', '[2, 3]', job_key => 'arr');
SELECT is((SELECT payload::jsonb FROM graphile_worker._private_jobs WHERE key = 'arr'), '[1, 2, 3]'::jsonb,
  'replace: two array payloads are concatenated');
-- Concatenated as json: elements keep their order and their text, even text jsonb cannot hold.
SELECT graphile_worker.add_job('batch', '[{"b":1,"a":2}, "\u0000"]', job_key => 'nul');
SELECT lives_ok($$SELECT graphile_worker.add_job('batch', '["after"]', job_key => 'nul')$$,
  'replace: an array payload holding \u0000 does not stop later adds to its key');
SELECT is((SELECT payload::text FROM graphile_worker._private_jobs WHERE key = 'nul'), '[{"b":1,"a":2}, "\u0000", "after"]',
  'replace: the concatenation keeps each element as it was written, in order');
SELECT graphile_worker.add_job('batch', '[]', job_key => 'empty');
SELECT graphile_worker.add_job('batch', '[]', job_key => 'empty');
SELECT is((SELECT payload::text FROM graphile_worker._private_jobs WHERE key = 'empty'), '[]',
  'replace: two empty arrays make an empty array');
SELECT graphile_worker.add_job('batch', '{"x": 1}', job_key => 'arr');
SELECT is((SELECT payload::jsonb FROM graphile_worker._private_jobs WHERE key = 'arr'), '{"x": 1}'::jsonb,
  'replace: an object replaces an array');

-- Mode preserve_run_at.
SELECT graphile_worker.add_job('digest', job_key => 'dig', run_at => '2033-03-03 00:00+00');
SELECT graphile_worker.add_job('digest', '{"n": 2}', job_key => 'dig', run_at => '2040-01-01 00:00+00',
                               job_key_mode => 'preserve_run_at');
SELECT results_eq($$SELECT run_at, revision FROM graphile_worker.jobs WHERE key = 'dig'$$,
  $$VALUES ('2033-03-03 00:00+00'::timestamptz, 1)$$, 'preserve_run_at: run_at kept, job updated');
UPDATE graphile_worker._private_jobs SET attempts = 1 WHERE key = 'dig';
SELECT graphile_worker.add_job('digest', job_key => 'dig', run_at => '2041-01-01 00:00+00',
                               job_key_mode => 'preserve_run_at');
SELECT is((SELECT run_at FROM graphile_worker.jobs WHERE key = 'dig'), '2041-01-01 00:00+00'::timestamptz,
  'preserve_run_at: a job that already ran (attempts > 0) takes the new run_at');
SELECT add_jobs AS pj FROM graphile_worker.add_jobs(
  ARRAY[ROW('digest', NULL, NULL, '2050-01-01 00:00+00', NULL, 'dig', NULL, NULL)::graphile_worker.job_spec], true) \gset
SELECT is((SELECT run_at FROM graphile_worker.jobs WHERE key = 'dig'), '2041-01-01 00:00+00'::timestamptz,
  'add_jobs(..., true): the replace reset attempts to 0, so run_at is preserved again');

-- Mode unsafe_dedupe: the existing job is left as it is.
SELECT graphile_worker.add_job('ping', '{"a": 1}', job_key => 'dd', run_at => '2034-01-01 00:00+00');
SELECT results_eq(
  $$SELECT (j).payload::text, (j).run_at, (j).revision
    FROM (SELECT graphile_worker.add_job('ping', '{"a": 2}', job_key => 'dd', run_at => '2035-01-01 00:00+00',
                                         job_key_mode => 'unsafe_dedupe') AS j) s$$,
  $$VALUES ('{"a": 1}'::text, '2034-01-01 00:00+00'::timestamptz, 1)$$,
  'unsafe_dedupe: returns the existing job unchanged except its revision');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_jobs WHERE key = 'dd'), 1, 'unsafe_dedupe: no new job');
UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'w1' WHERE key = 'dd';
SELECT is((graphile_worker.add_job('ping', job_key => 'dd', job_key_mode => 'unsafe_dedupe')).locked_by, 'w1',
  'unsafe_dedupe: even a running job is left in place');
SELECT is((SELECT (graphile_worker.add_job('ping', job_key => 'dd-new', job_key_mode => 'unsafe_dedupe')).revision), 0,
  'unsafe_dedupe: a new key makes a new job');
SELECT is((SELECT (graphile_worker.add_job('pong', queue_name => 'dq', job_key => 'dd-q',
                                           job_key_mode => 'unsafe_dedupe')).job_queue_id IS NOT NULL), true,
  'unsafe_dedupe: queue row created and linked');

-- A locked (running) job with the key: it gives up the key and will not retry; a new job is made.
SELECT graphile_worker.add_job('sync', '{"v": 1}', job_key => 'lk');
INSERT INTO ids SELECT 'lk', id FROM graphile_worker.jobs WHERE key = 'lk';
UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'w2', attempts = 1 WHERE key = 'lk';
SELECT graphile_worker.add_job('sync', '{"v": 2}', job_key => 'lk');
SELECT results_eq($$SELECT key, attempts = max_attempts, locked_by FROM graphile_worker.jobs WHERE id = (SELECT id FROM ids WHERE name = 'lk')$$,
  $$VALUES (NULL::text, true, 'w2'::text)$$, 'locked job: key cleared, attempts used up, still locked by its worker');
SELECT results_eq($$SELECT id <> (SELECT id FROM ids WHERE name = 'lk'), attempts, revision FROM graphile_worker.jobs WHERE key = 'lk'$$,
  $$VALUES (true, 0::smallint, 0)$$, 'locked job: the key now names a new, fresh job');
-- The same for a permanently failed job.
SELECT graphile_worker.add_job('sync', job_key => 'pf', max_attempts => 1);
UPDATE graphile_worker._private_jobs SET attempts = 1 WHERE key = 'pf';
SELECT id AS pf_old FROM graphile_worker.jobs WHERE key = 'pf' \gset
SELECT isnt((graphile_worker.add_job('sync', job_key => 'pf')).id, :pf_old::bigint,
  'permanently failed job with the key: a new job is made');
SELECT is((SELECT key FROM graphile_worker.jobs WHERE id = :pf_old), NULL, 'permanently failed job gives up its key');

-- add_jobs: many at once, keys and order.
CREATE TEMP TABLE bulk ON COMMIT DROP AS
  SELECT j.id, j.key, n FROM graphile_worker.add_jobs(ARRAY[
      ROW('bulk_a', '{"i": 1}', NULL, NULL, NULL, NULL, NULL, NULL),
      ROW('bulk_b', NULL, 'bulkq', NULL, 3, 'bk1', 2, ARRAY['x']),
      ROW('bulk_a', '{"i": 3}', 'bulkq', NULL, NULL, NULL, NULL, NULL)]::graphile_worker.job_spec[])
    WITH ORDINALITY AS j(id, job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts, last_error,
                          created_at, updated_at, key, locked_at, locked_by, revision, flags, is_available, n);
SELECT results_eq(
  $$SELECT v.task_identifier, v.queue_name, v.key FROM bulk JOIN graphile_worker.jobs AS v USING (id) ORDER BY bulk.n$$,
  $$VALUES ('bulk_a'::text, NULL::text, NULL::text), ('bulk_b', 'bulkq', 'bk1'), ('bulk_a', 'bulkq', NULL)$$,
  'add_jobs returns the jobs in the order of the specs');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_tasks WHERE identifier LIKE 'bulk\_%'), 2,
  'add_jobs creates each task row once');
-- Without any key, add_jobs takes its plain-insert path: same order, same fields.
SELECT results_eq(
  $$SELECT task_id IS NOT NULL, payload::text, priority,
           max_attempts, flags, key
    FROM graphile_worker.add_jobs(ARRAY[
      ROW('bulk_c', '{"i": 1}', NULL, NULL, NULL, NULL, NULL, NULL),
      ROW('bulk_c', NULL, 'bulkq', NULL, 4, NULL, -1, ARRAY['y', 'z'])]::graphile_worker.job_spec[])$$,
  $$VALUES (true, '{"i": 1}', 0::smallint, 25::smallint, NULL::jsonb, NULL::text),
           (true, '{}', -1::smallint, 4::smallint, '{"y": true, "z": true}'::jsonb, NULL::text)$$,
  'keyless add_jobs: defaults, flags and order as the keyed path gives them');
SELECT is_empty($$SELECT * FROM graphile_worker.add_jobs(NULL)$$, 'add_jobs(NULL) adds nothing');
SELECT is_empty($$SELECT * FROM graphile_worker.add_jobs('{}')$$, 'add_jobs(empty array) adds nothing');

-- remove_job.
SELECT graphile_worker.add_job('temp', job_key => 'rm1');
SELECT is((graphile_worker.remove_job('rm1')).key, 'rm1', 'remove_job returns the deleted job');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_jobs WHERE key = 'rm1'), 0, 'remove_job deletes it');
SELECT is((graphile_worker.remove_job('no-such-key')).id, NULL, 'remove_job of an unknown key returns NULL');
SELECT is(graphile_worker.remove_job(NULL), NULL, 'remove_job(NULL) is NULL (strict)');
SELECT graphile_worker.add_job('temp', job_key => 'rm2');
UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'w3' WHERE key = 'rm2';
SELECT id AS rm2 FROM graphile_worker.jobs WHERE key = 'rm2' \gset
SELECT results_eq($$SELECT key, attempts = max_attempts, locked_by FROM graphile_worker.remove_job('rm2')$$,
  $$VALUES (NULL::text, true, 'w3'::text)$$, 'remove_job of a running job: key cleared, no retry, still locked');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_jobs WHERE id = :rm2), 1, 'the running job is not deleted');
SELECT graphile_worker.add_job('temp', job_key => 'rm3');
UPDATE graphile_worker._private_jobs SET locked_at = now() - interval '5 hours', locked_by = 'dead' WHERE key = 'rm3';
SELECT is((graphile_worker.remove_job('rm3')).key, 'rm3', 'remove_job deletes a job whose lock is older than 4 hours');

-- Bad input: a specific SQLSTATE, and nothing changes.
SELECT count(*) AS before FROM graphile_worker._private_jobs \gset
SELECT throws_ok($$SELECT graphile_worker.add_job('x', job_key_mode => 'sometimes')$$, 'GWBKM', NULL,
  'an unknown job_key_mode raises GWBKM');
SELECT throws_ok($$SELECT graphile_worker.add_job(NULL)$$, '22004', NULL, 'a NULL identifier raises 22004');
SELECT throws_ok($$SELECT graphile_worker.add_job(repeat('t', 129))$$, '22023', NULL,
  'an identifier over 128 characters raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', queue_name => repeat('q', 129))$$, '22023', NULL,
  'a queue_name over 128 characters raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', job_key => repeat('k', 513))$$, '22023', NULL,
  'a job_key over 512 characters raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', max_attempts => 0)$$, '22003', NULL,
  'max_attempts 0 raises 22003');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', priority => 40000)$$, '22003', NULL,
  'a priority beyond smallint raises 22003');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('a', NULL, NULL, NULL, NULL, 'same', NULL, NULL),
                                                          ROW('b', NULL, NULL, NULL, NULL, 'same', NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22023', NULL,
  'add_jobs with one key twice raises 22023');
-- A bad spec after good ones: its own error, and the good ones are not added either.
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                                                          ROW('fine', NULL, NULL, NULL, 0, NULL, NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22003',
  'max_attempts is 0; it must be between 1 and 32767', 'add_jobs: a bad second spec raises its error, naming the argument');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                                                          ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22004',
  'identifier must not be null', 'add_jobs: a NULL identifier in a later spec raises 22004');
SELECT throws_ok($$SELECT graphile_worker.add_jobs('[0:1]={"(fine,,,,,,,)","(fine,,,,0,,,)"}'::graphile_worker.job_spec[])$$, '22003',
  'max_attempts is 0; it must be between 1 and 32767', 'add_jobs: the bad spec is found in an array whose subscripts start at 0');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, repeat('q', 129), NULL, NULL, NULL, NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22023', NULL,
  'add_jobs: a queue_name over 128 characters raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, NULL, NULL, NULL, '', NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22023', NULL,
  'add_jobs: an empty job_key raises 22023');
-- Empty names, payload size and flags.
SELECT throws_ok($$SELECT graphile_worker.add_job('')$$, '22023',
  'identifier is 0 characters long; it must be 1 to 128', 'an empty identifier raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', queue_name => '')$$, '22023',
  'queue_name is 0 characters long; it must be 1 to 128', 'an empty queue_name raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', ('"' || repeat('p', 1048575) || '"')::json)$$, '22023',
  'payload is 1048577 bytes long; at most 1048576 (1 MiB) are allowed', 'a payload over 1 MiB raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', flags => ARRAY[NULL]::text[])$$, '22004',
  'flags must not contain null', 'a NULL flag raises 22004 naming flags');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', flags => ARRAY['ok', ''])$$, '22023',
  'a flag is 0 characters long; each must be 1 to 128', 'an empty flag raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', flags => ARRAY[repeat('f', 129)])$$, '22023',
  'a flag is 129 characters long; each must be 1 to 128', 'a flag over 128 characters raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', flags => ARRAY(SELECT 'f' || i FROM generate_series(1, 65) AS i))$$,
  '22023', 'flags has 65 entries; at most 64 are allowed', 'more than 64 flags raise 22023');
SELECT throws_ok($$SELECT graphile_worker.add_job('x', job_key => 'k', flags => ARRAY[NULL]::text[])$$, '22004',
  'flags must not contain null', 'a NULL flag raises 22004 on the keyed path too');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                                                          ROW('', NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22023',
  'identifier is 0 characters long; it must be 1 to 128', 'add_jobs: an empty identifier raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, '', NULL, NULL, NULL, NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22023',
  'queue_name is 0 characters long; it must be 1 to 128', 'add_jobs: an empty queue_name raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', ('"' || repeat('p', 1048575) || '"')::json,
                                                              NULL, NULL, NULL, NULL, NULL, NULL)
                                                   ]::graphile_worker.job_spec[])$$, '22023',
  'payload is 1048577 bytes long; at most 1048576 (1 MiB) are allowed', 'add_jobs: a payload over 1 MiB raises 22023');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['a']),
                                                          ROW('fine', NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['a', NULL])
                                                   ]::graphile_worker.job_spec[])$$, '22004',
  'flags must not contain null', 'add_jobs: a NULL flag in a later spec raises 22004 naming flags');
SELECT throws_ok($$SELECT graphile_worker.add_jobs(ARRAY[ROW('fine', NULL, NULL, NULL, NULL, 'k2', NULL,
                                                              ARRAY(SELECT 'f' || i FROM generate_series(1, 65) AS i))
                                                   ]::graphile_worker.job_spec[])$$, '22023',
  'flags has 65 entries; at most 64 are allowed', 'add_jobs: more than 64 flags raise 22023 on the keyed path');
SELECT is((SELECT count(*) FROM graphile_worker._private_jobs), :before::bigint, 'failed calls added no job');
-- The limits themselves are allowed.
SELECT lives_ok($$SELECT graphile_worker.add_job(repeat('i', 128), ('"' || repeat('p', 1048574) || '"')::json,
                                                 queue_name => repeat('q', 128),
                                                 flags => ARRAY(SELECT repeat('f', 127) || i FROM generate_series(0, 9) AS i)
                                                          || ARRAY(SELECT 'g' || i FROM generate_series(1, 54) AS i))$$,
  'a 128-character identifier and queue, a payload of exactly 1 MiB and 64 flags of up to 128 characters are accepted');
SELECT is((SELECT octet_length(payload::text) FROM graphile_worker._private_jobs ORDER BY id DESC LIMIT 1), 1048576,
  'the 1 MiB payload is stored whole');
SELECT is((SELECT count(*)::int FROM graphile_worker._private_jobs j, jsonb_object_keys(j.flags)
           WHERE j.id = (SELECT max(id) FROM graphile_worker._private_jobs)), 64, 'the 64 flags are stored');
SELECT * FROM finish();
ROLLBACK;
