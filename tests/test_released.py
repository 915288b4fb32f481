"""Released migrations are frozen: extension/RELEASED records each file's digest, and nothing may change it."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_release_tool(root: Path):
    spec = importlib.util.spec_from_file_location("release_tool", root / "tools" / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = load_release_tool(ROOT)


def test_released_files_are_unchanged():
    assert release.recorded(), "extension/RELEASED records no version"
    assert release.mismatches() == []


def test_pyproject_version_follows_the_newest_released_schema():
    newest = max(v for v, _, _ in release.recorded())
    version = re.search(r'(?m)^version = "([^"]*)"$', (ROOT / "pyproject.toml").read_text()).group(1)
    assert version == f"0.{newest}.0"


@pytest.fixture
def checkout(tmp_path):
    """A copy of the files the release tool reads, to change without touching the real ones."""
    for part in ("extension/migrations", "tools"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "extension" / "RELEASED", tmp_path / "extension" / "RELEASED")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_edited_released_file_is_caught(checkout):
    tool = load_release_tool(checkout)
    _, _, path = tool.recorded()[0]
    with open(checkout / path, "a") as f:
        f.write("-- an innocent-looking edit\n")
    problems = tool.mismatches()
    assert len(problems) == 1 and path in problems[0] and "changed" in problems[0]
    assert tool.main(["--check"]) == 1
    assert tool.main([]) == 1, "make release refuses to record on top of a changed release"


def test_a_file_added_to_a_released_version_is_caught(checkout):
    tool = load_release_tool(checkout)
    (checkout / "extension/migrations/0002.sneaky.sql").write_text("-- depends: 0001.schema-v1\nSELECT 1;\n")
    assert any("0002.sneaky.sql" in p and "not recorded" in p for p in tool.mismatches())


def test_make_release_records_the_new_versions_and_the_package_version(checkout):
    tool = load_release_tool(checkout)
    before = max(v for v, _, _ in tool.recorded())
    shipped = max(tool.shipped())
    assert tool.main([]) == 0
    after = tool.recorded()
    assert max(v for v, _, _ in after) == shipped
    assert {p for v, _, p in after if v > before} == {
        str(f.relative_to(checkout)) for v, files in tool.shipped().items() if v > before for f in files
    }
    assert f'version = "0.{shipped}.0"' in (checkout / "pyproject.toml").read_text()
    assert tool.mismatches() == []
