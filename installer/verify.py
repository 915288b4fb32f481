"""Drift detection: compare the installed schema with the one this package ships.

What is compared. Every object of the graphile_worker schema is reduced to a few
named aspects, each a short text or the md5 digest of a longer catalog
definition: functions (definition, owner, comment), tables (columns, row level
security and its FORCE flag, persistence (logged or unlogged), storage options,
replica identity, owner, comment), views (definition, columns, options such as
security_barrier, owner), sequences (type, increment, minimum, maximum, start,
cache, cycle, owning column, owner), indexes (definition, valid, ready,
clustered), constraints, triggers, rules, row level security policies, types
(enums, composites, domains, ranges, base types), operators, and any collation,
conversion, operator class or family, statistics object, text search object or
extension in the schema, plus default privileges (ALTER DEFAULT PRIVILEGES IN
SCHEMA). The package ships these for a fresh install at the newest version
(extension/fingerprint.json, written by make schema), so verify needs no second
database and no pg_dump. Each differing object is one line: ``missing``,
``extra``, or ``changed`` followed by the aspects that differ.

What is deliberately not compared: a sequence's current value (ALTER SEQUENCE
... RESTART only moves it, and every insert moves it too), statistics,
tablespaces, and anything outside the schema other than the grants below.

Owners are compared without role names or OIDs: the expected owner of every
object is the role that owns the installer's bookkeeping schema
(graphile_worker_migrations), i.e. the role that ran migrate, shown as
``installer``; any other owner is reported by name.

Privileges are compared the same way, never by role OID or by which roles
exist. The owner's own privileges are implied and ignored. What PUBLIC holds
must be exactly what it holds in a fresh install (fingerprint.json's
``public_privileges``). Every other role's privileges on the schema and its
objects must be explained by graphile_worker_migrations.role_grants, which
``installer grant`` writes: a row (role, set) explains USAGE on the schema,
EXECUTE on every overload of the set's functions and SELECT on the set's views
(installer.grants.CAPABILITIES), without grant option. verify reports

- ``extra    privilege P on OBJECT held by ROLE``: a privilege (or a grant
  option) that no recorded set explains, PUBLIC's included;
- ``missing  privilege P on OBJECT for ROLE (recorded set S)``: a recorded
  set whose privilege is not actually held;
- ``extra    role_grants row ROLE/SET``: a row naming a role that does not
  exist or a set the installer does not know, or (installer.grants.stale) a
  role dropped and re-created under that name since the grant.

Rendering is pinned: the catalog is read under ``search_path = pg_catalog``
whatever the connection's own path, so names are always schema-qualified the
same way. View definitions change text across PostgreSQL majors (from 16 on,
pg_get_viewdef leaves column references of a single-relation query
unqualified), so a view's definition is compared in a normalised form: the
deparsed text with every relation or alias qualifier of a column reference
removed (schema qualifiers kept). What that could hide (a column taken from a
different relation of a join) is caught by a second aspect, ``references``: the
sorted descriptions of the objects the view's query depends on (columns,
relations, functions, operators), which do not depend on the major.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import psycopg
from psycopg import sql

from installer.core import META_SCHEMA, SCHEMA, migrations_dir

# The search_path every fingerprint is rendered under.
FIXED_SEARCH_PATH = "pg_catalog"

# SQL: how an owner is written: "installer" for the role that ran migrate.
_OWNER = "CASE WHEN {0} = ref.oid THEN 'installer' ELSE pg_catalog.pg_get_userbyid({0})::pg_catalog.text END"
_COMMENT = "'md5:' || pg_catalog.md5(coalesce(pg_catalog.obj_description({0}, '{1}'), ''))"


def _md5(expr: str) -> str:
    return f"'md5:' || pg_catalog.md5({expr})"


_RELKIND = (
    "CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'v' THEN 'view '"
    " WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence ' WHEN 'f' THEN 'foreign table '"
    " ELSE 'relation ' END"
)

# (name, aspect, value) for every aspect of every object; views' definitions come separately.
FINGERPRINT_QUERY = f"""
WITH ns AS (SELECT oid, nspowner FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s),
ref AS (SELECT coalesce((SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = %(meta)s),
                        (SELECT nspowner FROM ns)) AS oid),
rel AS (SELECT c.* FROM pg_catalog.pg_class AS c, ns WHERE c.relnamespace = ns.oid),
aspects (name, aspect, value) AS (
    SELECT 'schema ' || %(schema)s, 'owner', {_OWNER.format("ns.nspowner")} FROM ns, ref
    UNION ALL
    SELECT 'schema ' || %(schema)s, 'comment', {_COMMENT.format("ns.oid", "pg_namespace")} FROM ns
    -- functions and procedures
    UNION ALL
    SELECT 'function ' || p.oid::pg_catalog.regprocedure::pg_catalog.text, x.aspect, x.value
    FROM pg_catalog.pg_proc AS p JOIN ns ON p.pronamespace = ns.oid CROSS JOIN ref
    CROSS JOIN LATERAL (VALUES
        ('definition', {
    _md5(
        "CASE WHEN p.prokind = 'a' THEN (SELECT a.aggtransfn::pg_catalog.text || ' '"
        " || a.aggfinalfn::pg_catalog.text || ' ' || pg_catalog.format_type(a.aggtranstype, NULL)"
        " || ' ' || coalesce(a.agginitval, '') FROM pg_catalog.pg_aggregate AS a WHERE a.aggfnoid = p.oid)"
        " ELSE pg_catalog.pg_get_functiondef(p.oid) END"
    )
}),
        ('owner', {_OWNER.format("p.proowner")}),
        ('comment', {_COMMENT.format("p.oid", "pg_proc")})) AS x (aspect, value)
    -- tables
    UNION ALL
    SELECT 'table ' || c.relname, x.aspect, x.value
    FROM rel AS c CROSS JOIN ref
    CROSS JOIN LATERAL (VALUES
        ('columns', {
    _md5(
        "coalesce((SELECT pg_catalog.string_agg(a.attname || ' '"
        " || pg_catalog.format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::pg_catalog.text"
        " || ' ' || a.attgenerated::pg_catalog.text || ' ' || a.attidentity::pg_catalog.text || ' '"
        " || coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') || ' '"
        " || coalesce(pg_catalog.col_description(a.attrelid, a.attnum), ''), ', ' ORDER BY a.attnum)"
        " FROM pg_catalog.pg_attribute AS a"
        " LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')"
    )
}),
        ('row level security', c.relrowsecurity::pg_catalog.text),
        ('force row level security', c.relforcerowsecurity::pg_catalog.text),
        ('persistence', CASE c.relpersistence WHEN 'p' THEN 'logged' WHEN 'u' THEN 'unlogged' ELSE 'temporary' END),
        ('options', coalesce(c.reloptions::pg_catalog.text, '')),
        ('replica identity', c.relreplident::pg_catalog.text),
        ('partitioned', (c.relkind = 'p')::pg_catalog.text),
        ('owner', {_OWNER.format("c.relowner")}),
        ('comment', {_COMMENT.format("c.oid", "pg_class")})) AS x (aspect, value)
    WHERE c.relkind IN ('r', 'p')
    -- views, materialized views and foreign tables (definitions: VIEW_QUERY)
    UNION ALL
    SELECT {_RELKIND} || c.relname, x.aspect, x.value
    FROM rel AS c CROSS JOIN ref
    CROSS JOIN LATERAL (VALUES
        ('columns', {
    _md5(
        "coalesce((SELECT pg_catalog.string_agg(a.attname || ' '"
        " || pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)"
        " FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum > 0"
        " AND NOT a.attisdropped), '')"
    )
}),
        ('options', coalesce(c.reloptions::pg_catalog.text, '')),
        ('owner', {_OWNER.format("c.relowner")}),
        ('comment', {_COMMENT.format("c.oid", "pg_class")})) AS x (aspect, value)
    WHERE c.relkind IN ('v', 'm', 'f')
    -- sequences
    UNION ALL
    SELECT 'sequence ' || c.relname, x.aspect, x.value
    FROM rel AS c JOIN pg_catalog.pg_sequence AS s ON s.seqrelid = c.oid CROSS JOIN ref
    CROSS JOIN LATERAL (VALUES
        ('type', pg_catalog.format_type(s.seqtypid, NULL)),
        ('increment', s.seqincrement::pg_catalog.text),
        ('minimum', s.seqmin::pg_catalog.text),
        ('maximum', s.seqmax::pg_catalog.text),
        ('start', s.seqstart::pg_catalog.text),
        ('cache', s.seqcache::pg_catalog.text),
        ('cycle', s.seqcycle::pg_catalog.text),
        ('persistence', CASE c.relpersistence WHEN 'p' THEN 'logged' WHEN 'u' THEN 'unlogged' ELSE 'temporary' END),
        ('owned by', coalesce((SELECT pg_catalog.string_agg(t.relname || '.' || a.attname, ', ')
                               FROM pg_catalog.pg_depend AS dep
                               JOIN pg_catalog.pg_class AS t ON t.oid = dep.refobjid
                               JOIN pg_catalog.pg_attribute AS a
                                 ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
                               WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                 AND dep.objid = c.oid AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                 AND dep.deptype IN ('a', 'i')), '')),
        ('owner', {_OWNER.format("c.relowner")}),
        ('comment', {_COMMENT.format("c.oid", "pg_class")})) AS x (aspect, value)
    -- indexes
    UNION ALL
    SELECT 'index ' || c.relname, x.aspect, x.value
    FROM rel AS c JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid
    CROSS JOIN LATERAL (VALUES
        ('definition', {_md5("pg_catalog.pg_get_indexdef(c.oid)")}),
        ('valid', i.indisvalid::pg_catalog.text),
        ('ready', i.indisready::pg_catalog.text),
        ('clustered', i.indisclustered::pg_catalog.text),
        ('comment', {_COMMENT.format("c.oid", "pg_class")})) AS x (aspect, value)
    -- constraints of tables and of domains
    UNION ALL
    SELECT 'constraint ' || coalesce(c.relname, 'domain ' || t.typname) || '.' || con.conname,
           'definition', {_md5("pg_catalog.pg_get_constraintdef(con.oid)")}
    FROM pg_catalog.pg_constraint AS con
    LEFT JOIN pg_catalog.pg_class AS c ON c.oid = con.conrelid AND con.conrelid <> 0
    LEFT JOIN pg_catalog.pg_type AS t ON t.oid = con.contypid AND con.contypid <> 0
    CROSS JOIN ns
    -- From PostgreSQL 18 on, NOT NULL is a constraint too; the columns aspect holds it on every major.
    WHERE (c.relnamespace = ns.oid OR t.typnamespace = ns.oid) AND con.contype <> 'n'
    -- triggers
    UNION ALL
    SELECT 'trigger ' || c.relname || '.' || tg.tgname, x.aspect, x.value
    FROM pg_catalog.pg_trigger AS tg JOIN rel AS c ON c.oid = tg.tgrelid
    CROSS JOIN LATERAL (VALUES
        ('definition', {_md5("pg_catalog.pg_get_triggerdef(tg.oid)")}),
        ('enabled', tg.tgenabled::pg_catalog.text)) AS x (aspect, value)
    WHERE NOT tg.tgisinternal
    -- rules (a view's own _RETURN rule is its definition)
    UNION ALL
    SELECT 'rule ' || c.relname || '.' || r.rulename, x.aspect, x.value
    FROM pg_catalog.pg_rewrite AS r JOIN rel AS c ON c.oid = r.ev_class
    CROSS JOIN LATERAL (VALUES
        ('definition', {_md5("pg_catalog.pg_get_ruledef(r.oid)")}),
        ('enabled', r.ev_enabled::pg_catalog.text)) AS x (aspect, value)
    WHERE r.rulename <> '_RETURN'
    -- row level security policies
    UNION ALL
    SELECT 'policy ' || c.relname || '.' || pol.polname, 'definition',
           {
    _md5(
        "pol.polcmd::pg_catalog.text || ' ' || pol.polpermissive::pg_catalog.text || ' '"
        " || (SELECT pg_catalog.string_agg(CASE WHEN r = 0 THEN 'PUBLIC'"
        " ELSE pg_catalog.pg_get_userbyid(r)::pg_catalog.text END, ',' ORDER BY 1)"
        " FROM pg_catalog.unnest(pol.polroles) AS r) || ' '"
        " || coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), '') || ' '"
        " || coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), '')"
    )
}
    FROM pg_catalog.pg_policy AS pol JOIN rel AS c ON c.oid = pol.polrelid
    -- types: enums, composites, domains, ranges, base types (not arrays, not relations' row types)
    UNION ALL
    SELECT 'type ' || t.typname, x.aspect, x.value
    FROM pg_catalog.pg_type AS t JOIN ns ON t.typnamespace = ns.oid CROSS JOIN ref
    CROSS JOIN LATERAL (VALUES
        ('kind', t.typtype::pg_catalog.text),
        ('definition', {
    _md5(
        "coalesce((SELECT pg_catalog.string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)"
        " FROM pg_catalog.pg_enum AS e WHERE e.enumtypid = t.oid), '')"
        " || coalesce((SELECT pg_catalog.string_agg(a.attname || ' '"
        " || pg_catalog.format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum)"
        " FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = t.typrelid AND a.attnum > 0), '')"
        " || CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) || ' '"
        " || t.typnotnull::pg_catalog.text || ' ' || coalesce(t.typdefault, '') ELSE '' END"
        " || coalesce((SELECT pg_catalog.format_type(rg.rngsubtype, NULL) FROM pg_catalog.pg_range AS rg"
        " WHERE rg.rngtypid = t.oid), '')"
        " || CASE WHEN t.typtype = 'b' THEN t.typinput::pg_catalog.text || ' ' || t.typoutput::pg_catalog.text"
        " ELSE '' END"
    )
}),
        ('owner', {_OWNER.format("t.typowner")}),
        ('comment', {_COMMENT.format("t.oid", "pg_type")})) AS x (aspect, value)
    WHERE NOT (t.typrelid <> 0 AND (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = t.typrelid) <> 'c')
      AND NOT (t.typelem <> 0 AND EXISTS (SELECT FROM pg_catalog.pg_type AS el
                                         WHERE el.oid = t.typelem AND el.typarray = t.oid))
    -- operators
    UNION ALL
    SELECT 'operator ' || o.oid::pg_catalog.regoperator::pg_catalog.text, x.aspect, x.value
    FROM pg_catalog.pg_operator AS o JOIN ns ON o.oprnamespace = ns.oid CROSS JOIN ref
    CROSS JOIN LATERAL (VALUES
        ('definition', {
    _md5(
        "o.oprcode::pg_catalog.text || ' ' || pg_catalog.format_type(o.oprresult, NULL) || ' '"
        " || o.oprcom::pg_catalog.regoper::pg_catalog.text || ' ' || o.oprnegate::pg_catalog.regoper::pg_catalog.text"
        " || ' ' || o.oprrest::pg_catalog.text || ' ' || o.oprjoin::pg_catalog.text"
    )
}),
        ('owner', {_OWNER.format("o.oprowner")})) AS x (aspect, value)
    -- other kinds of object that a schema can hold
    UNION ALL
    SELECT kind || ' ' || name, 'present', 'true' FROM (
        SELECT 'collation', collname::pg_catalog.text, collnamespace FROM pg_catalog.pg_collation
        UNION ALL SELECT 'conversion', conname::pg_catalog.text, connamespace FROM pg_catalog.pg_conversion
        UNION ALL SELECT 'operator class', opcname::pg_catalog.text, opcnamespace FROM pg_catalog.pg_opclass
        UNION ALL SELECT 'operator family', opfname::pg_catalog.text, opfnamespace FROM pg_catalog.pg_opfamily
        UNION ALL SELECT 'statistics', stxname::pg_catalog.text, stxnamespace FROM pg_catalog.pg_statistic_ext
        UNION ALL SELECT 'text search configuration', cfgname::pg_catalog.text, cfgnamespace
                  FROM pg_catalog.pg_ts_config
        UNION ALL SELECT 'text search dictionary', dictname::pg_catalog.text, dictnamespace
                  FROM pg_catalog.pg_ts_dict
        UNION ALL SELECT 'text search parser', prsname::pg_catalog.text, prsnamespace FROM pg_catalog.pg_ts_parser
        UNION ALL SELECT 'text search template', tmplname::pg_catalog.text, tmplnamespace
                  FROM pg_catalog.pg_ts_template
        UNION ALL SELECT 'extension', extname::pg_catalog.text, extnamespace FROM pg_catalog.pg_extension
    ) AS o (kind, name, nsp) JOIN ns ON o.nsp = ns.oid
    -- default privileges for objects created in the schema later
    UNION ALL
    SELECT 'default privileges of ' || {_OWNER.format("da.defaclrole")} || ' on '
           || CASE da.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                                    WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas'
                                    ELSE da.defaclobjtype::pg_catalog.text END,
           'grants',
           coalesce((SELECT pg_catalog.string_agg(a.privilege_type
                       || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END || ' to '
                       || CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                               ELSE pg_catalog.pg_get_userbyid(a.grantee)::pg_catalog.text END,
                       ', ' ORDER BY 1)
                     FROM pg_catalog.aclexplode(da.defaclacl) AS a), '')
    FROM pg_catalog.pg_default_acl AS da JOIN ns ON da.defaclnamespace = ns.oid CROSS JOIN ref
)
SELECT name, aspect, value FROM aspects ORDER BY 1, 2
"""

# Views and materialized views: the deparsed query and what it depends on.
VIEW_QUERY = """
SELECT CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END || c.relname,
       pg_catalog.pg_get_viewdef(c.oid),
       ARRAY(SELECT DISTINCT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
             FROM pg_catalog.pg_rewrite AS r
             JOIN pg_catalog.pg_depend AS d
               ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
             WHERE r.ev_class = c.oid AND r.rulename = '_RETURN'
               AND NOT (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = c.oid)
             ORDER BY 1),
       ARRAY(SELECT pg_catalog.quote_ident(nspname) FROM pg_catalog.pg_namespace)
FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s)
  AND c.relkind IN ('v', 'm')
"""

# Every privilege on the schema and its objects held by a role other than the object's owner.
PRIVILEGES_QUERY = """
WITH ns AS (SELECT oid, nspname, nspowner, nspacl FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s),
acls (what, owner, acl) AS (
    SELECT 'schema ' || pg_catalog.quote_ident(ns.nspname), ns.nspowner,
           coalesce(ns.nspacl, pg_catalog.acldefault('n', ns.nspowner)) FROM ns
    UNION ALL
    SELECT 'function ' || p.oid::pg_catalog.regprocedure::pg_catalog.text, p.proowner,
           coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
    FROM pg_catalog.pg_proc AS p JOIN ns ON p.pronamespace = ns.oid
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence '
                          WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
           || c.oid::pg_catalog.regclass::pg_catalog.text, c.relowner,
           coalesce(c.relacl, pg_catalog.acldefault(
               (CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::pg_catalog."char", c.relowner))
    FROM pg_catalog.pg_class AS c JOIN ns ON c.relnamespace = ns.oid
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT 'column ' || c.oid::pg_catalog.regclass::pg_catalog.text || '.' || pg_catalog.quote_ident(a.attname),
           c.relowner, a.attacl
    FROM pg_catalog.pg_attribute AS a JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
    JOIN ns ON c.relnamespace = ns.oid
    WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'type ' || pg_catalog.format_type(t.oid, NULL), t.typowner,
           coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner))
    FROM pg_catalog.pg_type AS t JOIN ns ON t.typnamespace = ns.oid
    WHERE NOT (t.typrelid <> 0 AND (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = t.typrelid) <> 'c')
      AND NOT (t.typelem <> 0 AND EXISTS (SELECT FROM pg_catalog.pg_type AS el
                                         WHERE el.oid = t.typelem AND el.typarray = t.oid))
)
SELECT DISTINCT acls.what, a.privilege_type, a.is_grantable,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::pg_catalog.text END
FROM acls CROSS JOIN LATERAL pg_catalog.aclexplode(acls.acl) AS a
WHERE a.grantee <> acls.owner
ORDER BY 1, 2, 4
"""

# A column reference's qualifier in deparsed SQL: an identifier (maybe quoted) followed by a dot.
_QUALIFIER = re.compile(r'(?<![\w."$])("(?:[^"]|"")+"|[A-Za-z_][\w$]*)\.(?=[A-Za-z_"])')


def fingerprint_path() -> Path:
    return migrations_dir().parent / "fingerprint.json"


def normalise_viewdef(text: str, schemas: set[str]) -> str:
    """A view's deparsed query without relation qualifiers (schema qualifiers stay) or layout."""
    stripped = _QUALIFIER.sub(lambda m: m.group(0) if m.group(1) in schemas else "", text)
    return " ".join(stripped.split())


def _digest(text: str) -> str:
    return "md5:" + hashlib.md5(text.encode()).hexdigest()


def fingerprint(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    """Every object of the schema: {name: {aspect: value}}, rendered under FIXED_SEARCH_PATH."""
    params = {"schema": SCHEMA, "meta": META_SCHEMA}
    objects: dict[str, dict[str, str]] = {}
    with conn.transaction():
        conn.execute(f"SET LOCAL search_path = {FIXED_SEARCH_PATH}")
        for name, aspect, value in conn.execute(FINGERPRINT_QUERY, params).fetchall():
            objects.setdefault(name, {})[aspect] = value
        for name, text, references, schemas in conn.execute(VIEW_QUERY, params).fetchall():
            entry = objects.setdefault(name, {})
            entry["definition"] = _digest(normalise_viewdef(text, set(schemas)))
            entry["references"] = _digest("\n".join(references))
    return objects


def privileges(conn: psycopg.Connection) -> set[tuple[str, str, bool, str]]:
    """(object, privilege, grantable, grantee) held by anyone but the object's owner."""
    with conn.transaction():
        conn.execute(f"SET LOCAL search_path = {FIXED_SEARCH_PATH}")
        return {tuple(row) for row in conn.execute(PRIVILEGES_QUERY, {"schema": SCHEMA}).fetchall()}


def _format_privilege(privilege: str, grantable: bool) -> str:
    return privilege + (" WITH GRANT OPTION" if grantable else "")


def public_privileges(conn: psycopg.Connection) -> list[str]:
    return sorted(
        f"{_format_privilege(p, g)} on {what}" for what, p, g, grantee in privileges(conn) if grantee == "PUBLIC"
    )


def privilege_drift(conn: psycopg.Connection, public: list[str], recorded: list[tuple[str, str]]) -> list[str]:
    """Privileges that PUBLIC's fresh-install list and role_grants do not explain, and recorded ones not held.

    recorded: the (role, capability) rows of role_grants, as installer.grants.recorded reads them."""
    from installer.grants import CAPABILITIES, TABLE_PRIVILEGES

    held = privileges(conn)
    schema_label = f"schema {SCHEMA}"
    functions: dict[str, list[str]] = {}
    with conn.transaction():
        conn.execute(f"SET LOCAL search_path = {FIXED_SEARCH_PATH}")
        for name, signature in conn.execute(
            "SELECT p.proname::pg_catalog.text, p.oid::pg_catalog.regprocedure::pg_catalog.text"
            " FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace"
            " WHERE n.nspname = %s ORDER BY 2",
            [SCHEMA],
        ).fetchall():
            functions.setdefault(name, []).append(signature)
        roles = {r for (r,) in conn.execute("SELECT rolname::pg_catalog.text FROM pg_catalog.pg_roles").fetchall()}
        views = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_class AS c"
                " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = %s",
                [SCHEMA],
            ).fetchall()
        }
    lines = []
    # (object, privilege, grantee) -> the recorded set that explains it
    explained: dict[tuple[str, str, str], str] = {}
    for role, capability in recorded:
        spec = CAPABILITIES.get(capability)
        if role not in roles or spec is None:
            why = "no such role" if role not in roles else "unknown capability set"
            lines.append(f"extra    role_grants row {role}/{capability}: {why}")
            continue
        explained.setdefault((schema_label, "USAGE", role), capability)
        for name in spec["functions"]:
            for signature in functions.get(name, []):
                explained.setdefault((f"function {signature}", "EXECUTE", role), capability)
        for view in spec["views"]:
            if view in views:
                explained.setdefault((f"view {SCHEMA}.{view}", "SELECT", role), capability)
        for privilege, table, columns in TABLE_PRIVILEGES.get(capability, ()):
            if table not in views:
                continue
            for what in [f"column {SCHEMA}.{table}.{c}" for c in columns] if columns else [f"table {SCHEMA}.{table}"]:
                explained.setdefault((what, privilege, role), capability)
    public_set = set(public)
    held_plain = set()
    for what, privilege, grantable, grantee in sorted(held):
        held_plain.add((what, privilege, grantee))
        if grantee == "PUBLIC":
            ok = f"{_format_privilege(privilege, grantable)} on {what}" in public_set
        else:
            ok = not grantable and (what, privilege, grantee) in explained
        if not ok:
            who = "PUBLIC" if grantee == "PUBLIC" else f"role {grantee} (no recorded set explains it)"
            lines.append(f"extra    privilege {_format_privilege(privilege, grantable)} on {what} held by {who}")
    for (what, privilege, grantee), capability in sorted(explained.items()):
        if (what, privilege, grantee) not in held_plain:
            lines.append(f"missing  privilege {privilege} on {what} for role {grantee} (recorded set {capability})")
    held_public = {f"{_format_privilege(p, g)} on {what}" for what, p, g, grantee in held if grantee == "PUBLIC"}
    for entry in sorted(public_set - held_public):
        lines.append(f"missing  privilege {entry} for PUBLIC")
    return lines


# The graphile-worker (npm) schema revisions that schema version 9 records in graphile_worker.migrations:
# what graphile-worker 0.18.0 ships (0.17.x knows 1 to 19), and which of them it flags as breaking.
GRAPHILE_WORKER_REVISIONS = range(1, 21)
GRAPHILE_WORKER_BREAKING = frozenset({1, 3, 11, 13, 14, 16, 19})
GRAPHILE_WORKER_VERSIONS = "0.17 and 0.18"


def migration_rows_drift(conn: psycopg.Connection) -> list[str]:
    """One line per graphile_worker.migrations row that differs from what version 9 wrote.

    A row above 20 means a graphile-worker newer than 0.18 started as the schema owner and applied
    its own migration over this schema; a missing row means 0.17 or 0.18 would do so at its next
    start. Empty when the table does not exist (versions before 9)."""
    found = conn.execute(
        "SELECT c.relkind = 'r' AND c.relowner = n.nspowner FROM pg_catalog.pg_class AS c"
        " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = 'migrations'",
        [SCHEMA],
    ).fetchone()
    if found is None:
        return []
    if not found[0]:
        # Reading it could run someone else's code (a view's functions, a policy); the fingerprint reports it.
        return ["changed  migrations: not a table owned by the schema's owner; its rows were not read"]
    rows = dict(
        conn.execute(
            sql.SQL("SELECT id, breaking FROM {} ORDER BY id").format(sql.Identifier(SCHEMA, "migrations"))
        ).fetchall()
    )
    lines = []
    for revision in GRAPHILE_WORKER_REVISIONS:
        if revision not in rows:
            lines.append(
                f"missing  migrations row {revision}: graphile-worker {GRAPHILE_WORKER_VERSIONS} would apply its "
                f"revision {revision} over this schema at its next start (put it back: INSERT INTO {SCHEMA}.migrations "
                f"(id, breaking) VALUES ({revision}, {str(revision in GRAPHILE_WORKER_BREAKING).lower()}))"
            )
        elif rows[revision] != (revision in GRAPHILE_WORKER_BREAKING):
            lines.append(
                f"changed  migrations row {revision}: breaking {rows[revision]} -> "
                f"{revision in GRAPHILE_WORKER_BREAKING} expected"
            )
    for revision in sorted(set(rows) - set(GRAPHILE_WORKER_REVISIONS)):
        kind = "breaking" if rows[revision] else "non-breaking"
        lines.append(
            f"extra    migrations row {revision} ({kind}): not written by this installer; a graphile-worker newer "
            f"than 0.18 ran its own migration {revision} over this schema (it may have replaced functions: "
            "installer verify lists what changed); this schema supports graphile-worker "
            f"{GRAPHILE_WORKER_VERSIONS} only"
        )
    return lines


def expected_policies(conn: psycopg.Connection, objects: set[str]) -> dict[str, dict[str, str]]:
    """The policies installer.grants keeps for the roles holding the graphile-worker set, as
    fingerprint entries (none when no role holds it)."""
    from installer.grants import POLICY, POLICY_TABLES, policy_definition, policy_roles

    if not _has_grants_table(conn):
        return {}
    roles = policy_roles(conn)
    if not roles:
        return {}
    value = "md5:" + hashlib.md5(policy_definition(roles).encode()).hexdigest()
    return {f"policy {table}.{POLICY}": {"definition": value} for table in POLICY_TABLES if f"table {table}" in objects}


def _has_grants_table(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", [f"{META_SCHEMA}.role_grants"]).fetchone()[0]


def expected() -> dict:
    return json.loads(fingerprint_path().read_text())


def _show(value: str) -> str:
    return value if value else "(none)"


def drift(conn: psycopg.Connection, recorded: list[tuple[str, str]]) -> list[str]:
    """One line per object (or privilege) that differs from the shipped schema; empty when none does.

    recorded: the grants role_grants records (installer.grants.recorded)."""
    shipped = expected()
    want = dict(shipped["objects"])
    have = fingerprint(conn)
    want.update(expected_policies(conn, set(have)))
    lines = []
    for name in sorted(set(want) | set(have)):
        if name not in have:
            lines.append(f"missing  {name}")
        elif name not in want:
            lines.append(f"extra    {name}")
        elif want[name] != have[name]:
            changes = []
            for aspect in sorted(set(want[name]) | set(have[name])):
                old, new = want[name].get(aspect), have[name].get(aspect)
                if old == new:
                    continue
                if old is None or new is None or old.startswith("md5:") or new.startswith("md5:"):
                    changes.append(aspect)
                else:
                    changes.append(f"{aspect} {_show(old)} -> {_show(new)}")
            lines.append(f"changed  {name}: {'; '.join(changes)}")
    lines += privilege_drift(conn, shipped.get("public_privileges", []), recorded)
    lines += migration_rows_drift(conn)
    return lines


def write_expected(conn: psycopg.Connection, version: int) -> Path:
    path = fingerprint_path()
    document = {"schema_version": version, "objects": fingerprint(conn), "public_privileges": public_privileges(conn)}
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path
