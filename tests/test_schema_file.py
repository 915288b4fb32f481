"""extension/schema.sql is the whole schema in one file: loading it equals migrating."""

from __future__ import annotations

import psycopg

from .schema_tools import SCHEMA_SQL, dump, normalise, render


def test_schema_file_is_current(installed):
    assert SCHEMA_SQL.read_text() == render(installed), "extension/schema.sql is stale: run make schema"


def test_loading_schema_file_equals_migrating(installed, postgresql):
    with psycopg.connect(installed, autocommit=True) as conn:
        conn.execute("CREATE DATABASE gw_from_file")
    other = installed.rsplit("/", 1)[0] + "/gw_from_file"
    try:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute(SCHEMA_SQL.read_text())
        assert normalise(dump(other)) == normalise(dump(installed))
    finally:
        with psycopg.connect(installed, autocommit=True) as conn:
            conn.execute("DROP DATABASE gw_from_file WITH (FORCE)")
