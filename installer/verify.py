"""Drift detection: compare the installed schema with the one this package ships.

Each object of the graphile_worker schema (function, table columns, index,
constraint, view, type, row level security flag, comment) is reduced to a
digest of its catalog definition. The package ships the digests of a fresh
install at the newest version (extension/fingerprint.json, written by
make schema), so verify needs no second database and no pg_dump.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from installer.core import SCHEMA, migrations_dir

FINGERPRINT_QUERY = """
WITH ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s)
SELECT 'function ' || p.oid::pg_catalog.regprocedure::text,
       pg_catalog.md5(pg_catalog.pg_get_functiondef(p.oid)
                      || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), ''))
FROM pg_catalog.pg_proc AS p, ns WHERE p.pronamespace = ns.oid
UNION ALL
SELECT 'table ' || c.relname,
       pg_catalog.md5(pg_catalog.string_agg(
         a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text
         || ' ' || a.attgenerated::text || ' ' || a.attidentity::text || ' '
         || coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
         || c.relrowsecurity::text || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), ''))
FROM pg_catalog.pg_class AS c
JOIN ns ON c.relnamespace = ns.oid
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relkind = 'r'
GROUP BY c.oid, c.relname, c.relrowsecurity
UNION ALL
SELECT 'index ' || i.relname, pg_catalog.md5(pg_catalog.pg_get_indexdef(i.oid))
FROM pg_catalog.pg_class AS i, ns WHERE i.relnamespace = ns.oid AND i.relkind = 'i'
UNION ALL
SELECT 'constraint ' || c.relname || '.' || con.conname, pg_catalog.md5(pg_catalog.pg_get_constraintdef(con.oid))
FROM pg_catalog.pg_constraint AS con
JOIN pg_catalog.pg_class AS c ON c.oid = con.conrelid
JOIN ns ON c.relnamespace = ns.oid
UNION ALL
SELECT 'view ' || v.relname,
       pg_catalog.md5(pg_catalog.pg_get_viewdef(v.oid) || coalesce(pg_catalog.obj_description(v.oid, 'pg_class'), ''))
FROM pg_catalog.pg_class AS v, ns WHERE v.relnamespace = ns.oid AND v.relkind IN ('v', 'm')
UNION ALL
SELECT 'type ' || t.typname,
       pg_catalog.md5(coalesce((SELECT pg_catalog.string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                FROM pg_catalog.pg_enum AS e WHERE e.enumtypid = t.oid), '')
                      || coalesce((SELECT pg_catalog.string_agg(a.attname || ' '
                                          || pg_catalog.format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum)
                                   FROM pg_catalog.pg_attribute AS a
                                   WHERE a.attrelid = t.typrelid AND a.attnum > 0), '')
                      || coalesce(pg_catalog.obj_description(t.oid, 'pg_type'), ''))
FROM pg_catalog.pg_type AS t, ns
WHERE t.typnamespace = ns.oid AND (t.typtype = 'e' OR (t.typtype = 'c' AND
      (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = t.typrelid) = 'c'))
ORDER BY 1
"""


def fingerprint_path() -> Path:
    return migrations_dir().parent / "fingerprint.json"


def fingerprint(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(FINGERPRINT_QUERY, {"schema": SCHEMA}).fetchall())


def expected() -> dict:
    return json.loads(fingerprint_path().read_text())


def drift(conn: psycopg.Connection) -> list[str]:
    """One line per object that differs from the shipped schema; empty when none does."""
    want = expected()["objects"]
    have = fingerprint(conn)
    lines = []
    for name in sorted(set(want) | set(have)):
        if name not in have:
            lines.append(f"missing  {name}")
        elif name not in want:
            lines.append(f"extra    {name}")
        elif want[name] != have[name]:
            lines.append(f"changed  {name}")
    return lines


def write_expected(conn: psycopg.Connection, version: int) -> Path:
    path = fingerprint_path()
    path.write_text(
        json.dumps({"schema_version": version, "objects": fingerprint(conn)}, indent=1, sort_keys=True) + "\n"
    )
    return path
