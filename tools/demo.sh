#!/usr/bin/env bash
# make demo: install the schema into a fresh database, enqueue jobs through psql,
# run them with the plain-SQL worker loop, and let the admin functions act on what is left.
#   tools/demo.sh DSN PYTHON
set -euo pipefail
dsn=$1
py=$2
root=$(cd "$(dirname "$0")/.." && pwd)
admin_dsn=${dsn%/*}/postgres
db=${dsn##*/}
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
step() { printf '\n== %s\n' "$*"; }

psql "$admin_dsn" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"

step "python -m installer migrate"
"$py" -m installer --database "$dsn" migrate
step "python -m installer status"
"$py" -m installer --database "$dsn" status

step "enqueue with add_job and add_jobs"
psql "$dsn" <<'SQL'
SELECT id, key FROM graphile_worker.add_job('send_email', '{"to": "ada@example.com"}', job_key => 'welcome-ada');
SELECT id FROM graphile_worker.add_job('resize_image', '{"id": 1}', queue_name => 'images');
SELECT id FROM graphile_worker.add_job('resize_image', '{"id": 2}', queue_name => 'images');
SELECT id FROM graphile_worker.add_job('report', run_at => now() + interval '1 day');
SELECT count(*) AS added FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('noop', json_build_object('n', n), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 5) AS n));
SELECT id FROM graphile_worker.add_job('flaky', max_attempts => 1);
SQL
step "the jobs view"
psql "$dsn" -c "SELECT id, task_identifier, queue_name, priority, attempts, max_attempts, key, run_at > now() AS later
                FROM graphile_worker.jobs ORDER BY id"

step "worker loop in plain SQL (tests/demo-worker.sql)"
psql "$dsn" -f "$root/tests/demo-worker.sql"

step "what is left"
psql "$dsn" -c "SELECT id, task_identifier, attempts, max_attempts, last_error, run_at > now() AS later
                FROM graphile_worker.jobs ORDER BY id"

step "admin: reschedule the future job to now, permanently fail it, then clean up"
psql "$dsn" <<'SQL'
SELECT id, run_at <= now() AS due FROM graphile_worker.reschedule_jobs(
  ARRAY(SELECT id FROM graphile_worker.jobs WHERE task_identifier = 'report'), run_at => now());
SELECT id, attempts, last_error FROM graphile_worker.permanently_fail_jobs(
  ARRAY(SELECT id FROM graphile_worker.jobs WHERE task_identifier = 'report'), 'not wanted after all');
SELECT * FROM graphile_worker.cleanup('{DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES}');
SELECT count(*) AS jobs_left FROM graphile_worker.jobs;
SQL

step "admin UI: two payments fail for good; the overview, a page of failed jobs, one job in full"
psql "$dsn" <<'SQL'
SELECT count(*) AS added FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('charge_card', json_build_object('order', 1000 + n), NULL, NULL, 1, NULL, NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 3) AS n));
SELECT count(*) AS added FROM graphile_worker.add_jobs(ARRAY(
  SELECT ROW('send_email', json_build_object('n', n), 'emails', now() + interval '1 hour', NULL, NULL, NULL, NULL)::graphile_worker.job_spec
  FROM generate_series(1, 4) AS n));
SELECT count(*) AS failed FROM graphile_worker.fail_worker_jobs('demo-ui-worker',
  ARRAY(SELECT id FROM graphile_worker.fetch_jobs('demo-ui-worker', '{charge_card}', 2)),
  E'card declined (code 51)\n    at charge (payments.js:42)');
SQL
psql "$dsn" -c "SELECT * FROM graphile_worker.job_overview()"
psql "$dsn" -c "SELECT id, task_identifier, attempts, max_attempts, last_error_start, next_cursor
                FROM graphile_worker.list_jobs(states => '{permanently_failed}', page_size => 10)"
psql "$dsn" -x -c "SELECT * FROM graphile_worker.job_detail(
                     (SELECT id FROM graphile_worker.list_jobs(states => '{permanently_failed}', page_size => 1)))"
