"""The parts of the schema's contract that live outside SQL, checked against the catalog.

pgtap/09-contract.sql checks what the catalog alone can tell (pinned search_path, comments, definer
mode, PUBLIC, one SQLSTATE per kind of argument check). This file checks the two lists kept by hand
elsewhere: the capability sets (installer/grants.py) cover every public function and name only
objects that exist, and the README's error table says exactly which SQLSTATEs each public function
raises, directly or through the private functions it calls."""

from __future__ import annotations

import re
from pathlib import Path

from installer.grants import CAPABILITIES

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "graphile_worker"
RAISE = re.compile(r"RAISE EXCEPTION '(?:[^']|'')*'[^;]*?ERRCODE = '(\w+)'")
CALL = re.compile(rf"{SCHEMA}\.(\w+)\s*\(")
# Raised by PostgreSQL itself, not by a RAISE of ours: the cleanup_task enum's input function.
RAISED_BY_POSTGRES = {("cleanup", "22P02")}


def functions(db) -> dict[str, str]:
    """name -> the bodies of every overload, concatenated."""
    bodies: dict[str, str] = {}
    for name, src in db.execute(
        "SELECT p.proname::text, p.prosrc FROM pg_proc AS p WHERE p.pronamespace = %s::regnamespace", [SCHEMA]
    ).fetchall():
        bodies[name] = bodies.get(name, "") + "\n" + (src or "")
    return bodies


def raised(bodies: dict[str, str]) -> dict[str, set[str]]:
    """name -> the SQLSTATEs its body raises, or that a function it calls raises (transitively)."""
    direct = {name: set(RAISE.findall(src)) for name, src in bodies.items()}
    calls = {name: {c for c in CALL.findall(src) if c in bodies and c != name} for name, src in bodies.items()}
    result = {}
    for name in bodies:
        seen, todo, codes = set(), [name], set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            codes |= direct[current]
            todo.extend(calls[current])
        result[name] = codes
    return result


def readme_errors(known: set[str]) -> set[tuple[str, str]]:
    """(function, SQLSTATE) pairs of the README's error table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    pairs = set()
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| SQLSTATE")]
    assert len(rows) >= 15, "the README's error table was not found"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        codes = re.findall(r"\b(GWBKM|[0-9]{2}[0-9A-Z]{3})\b", cells[0])
        names = [n for n in re.findall(r"`(\w+)`", cells[1]) if n in known]
        assert codes and names, f"README error row without a code or a known function: {row}"
        pairs |= {(n, c) for n in names for c in codes}
    return pairs


def test_the_readme_error_table_matches_what_each_function_raises(db):
    bodies = functions(db)
    codes = raised(bodies)
    public = {n for n in bodies if not n.startswith("_private_")}
    documented = readme_errors(set(bodies))
    actual = {(n, c) for n in public for c in codes[n]} | RAISED_BY_POSTGRES
    assert sorted(documented - actual) == [], "the README lists codes these functions never raise"
    assert sorted(actual - documented) == [], "these functions raise codes the README does not list for them"


def test_every_public_function_is_in_a_capability_set_and_every_set_names_real_objects(db):
    bodies = functions(db)
    public = {n for n in bodies if not n.startswith("_private_")}
    in_sets = {f for spec in CAPABILITIES.values() for f in spec["functions"]}
    assert sorted(public - in_sets) == [], "public functions no capability set grants"
    assert sorted(in_sets - set(bodies)) == [], "capability sets name functions that do not exist"
    relations = {
        r[0]
        for r in db.execute(
            "SELECT c.relname::text FROM pg_class AS c WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'v'",
            [SCHEMA],
        ).fetchall()
    }
    views = {v for spec in CAPABILITIES.values() for v in spec["views"]}
    assert sorted(views - relations) == [], "capability sets name views that do not exist"
    assert sorted(relations - views) == [], "views no capability set can read"
