-- The contract every function of the schema keeps, read from the catalog rather than listed by hand,
-- so that a function added later is held to it without anyone remembering to add a test:
--   * a pinned search_path (or a SQL-standard body, whose references are bound when it is created);
--   * a comment;
--   * SECURITY DEFINER for the public functions (not _private_*), schema_version() aside;
--   * nothing for PUBLIC;
--   * every RAISE of a bad argument uses the SQLSTATE of its kind: a NULL 22004, a number outside
--     its range 22003, any other bad value 22023 (job_key_mode keeps graphile-worker's GWBKM, the
--     isolation check is 25000). The kind is read from the message and the argument's type.
-- (The capability sets and the README's error table are checked against the catalog by
-- tests/test_contract.py, which can read them.)
BEGIN;
SELECT plan(8);

CREATE TEMP VIEW fns AS
SELECT p.oid, p.proname::text AS name, p.oid::regprocedure::text AS signature, p.prosrc, p.prosecdef,
       p.proconfig, p.prosqlbody IS NOT NULL AS standard_body, p.prokind
FROM pg_proc AS p
WHERE p.pronamespace = 'graphile_worker'::regnamespace;

SELECT is_empty(
  $$SELECT signature FROM fns
    WHERE NOT standard_body AND NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)$$,
  'every function pins search_path = pg_catalog, pg_temp or has a SQL-standard body');
SELECT is_empty($$SELECT signature FROM fns WHERE obj_description(oid, 'pg_proc') IS NULL$$,
  'every function has a comment');
SELECT is_empty(
  $$SELECT signature FROM fns WHERE name NOT LIKE '\_private\_%' AND name <> 'schema_version' AND NOT prosecdef$$,
  'every public function is SECURITY DEFINER');
SELECT is_empty(
  $$SELECT f.signature FROM fns AS f, aclexplode(coalesce((SELECT proacl FROM pg_proc WHERE oid = f.oid),
                                                          acldefault('f', (SELECT proowner FROM pg_proc WHERE oid = f.oid)))) AS a
    WHERE a.grantee = 0$$,
  'PUBLIC may execute no function');

-- Every RAISE EXCEPTION '<message>' ... ERRCODE = '<code>' in every function body.
CREATE TEMP VIEW raises AS
SELECT f.signature, m[1] COLLATE "default" AS message, m[2] COLLATE "default" AS code,
       (SELECT format_type(a.typ, NULL)
        FROM unnest((SELECT proargnames FROM pg_proc WHERE oid = f.oid)[1:(SELECT pronargs FROM pg_proc WHERE oid = f.oid)],
                    (SELECT proargtypes::oid[] FROM pg_proc WHERE oid = f.oid)) AS a (argname, typ)
        WHERE a.argname = split_part(m[1], ' ', 1)) AS argument_type
FROM fns AS f,
     regexp_matches(f.prosrc, $re$RAISE EXCEPTION '((?:[^']|'')*)'[^;]*?ERRCODE = '(\w+)'$re$, 'g') AS m;

CREATE TEMP VIEW expected_codes AS
SELECT r.*,
  CASE
    WHEN r.message ~* 'must not (be|contain) null' THEN '22004'
    WHEN r.message LIKE 'job_key_mode %' THEN 'GWBKM'
    WHEN r.message LIKE '%needs READ COMMITTED%' THEN '25000'
    WHEN r.message ~ 'it must (be between|be at least|be at most|not be negative)'
         AND r.argument_type IN ('smallint', 'integer', 'bigint') THEN '22003'
    ELSE '22023'
  END AS expected
FROM raises AS r;

SELECT cmp_ok((SELECT count(*)::int FROM raises), '>=', 30, 'the pattern finds the argument checks (at least 30 RAISEs)');
SELECT is((SELECT count(DISTINCT signature)::int FROM raises WHERE signature LIKE '%fetch_jobs%' OR signature LIKE '%reschedule_jobs%'), 2,
  'including those of fetch_jobs and reschedule_jobs');
SELECT is_empty($$SELECT signature, message, code, expected FROM expected_codes WHERE code <> expected$$,
  'every argument check raises the SQLSTATE of its kind');
-- The classification itself: a number out of range and a bad interval differ by argument type only.
SELECT results_eq(
  $$SELECT DISTINCT code FROM expected_codes WHERE message LIKE '% it must not be negative' ORDER BY 1$$,
  $$VALUES ('22003'), ('22023')$$,
  'a negative count (reschedule_jobs'' attempts) is 22003, a negative age (prune_admin_log) 22023');

SELECT * FROM finish();
ROLLBACK;
