"""extension/schema.sql is the whole schema in one file: loading it equals migrating."""

from __future__ import annotations

import psycopg
import pytest

from tools.schema_tools import SCHEMA_MAJOR, SCHEMA_SQL, dump, normalise, render, server_major


def test_schema_file_is_current(installed):
    major = server_major(installed)
    if major != SCHEMA_MAJOR:
        pytest.skip(f"schema.sql is PostgreSQL {SCHEMA_MAJOR}'s pg_dump output; this server is {major}")
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
