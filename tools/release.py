"""Record released schema versions in extension/RELEASED (make release).

    python tools/release.py          # record every shipped version not yet recorded
    python tools/release.py --check  # only check the recorded digests (exit 1 on a mismatch)

A released migration (and its rollback) may be running in someone's database,
so it never changes again: a change goes into a new migration. RELEASED holds
one line per file, "version sha256 path"; tests/test_released.py fails when a
recorded file no longer has its digest, and when a version below the newest
recorded one is not recorded. Recording also sets the version in pyproject.toml
to 0.<newest schema version>.0, so the package's version follows the schema.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "extension" / "migrations"
RELEASED = ROOT / "extension" / "RELEASED"
PYPROJECT = ROOT / "pyproject.toml"
HEADER = """\
# Released schema versions: the migration files that databases may be running.
# One line per file: version, sha256, path. Never edit a file listed here; add a
# new migration instead. Written by `make release` (tools/release.py).
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped() -> dict[int, list[Path]]:
    """Migration files by version: NNNN.name.sql and NNNN.name.rollback.sql."""
    found: dict[int, list[Path]] = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        found.setdefault(int(path.name.split(".", 1)[0]), []).append(path)
    return found


def recorded() -> list[tuple[int, str, str]]:
    """(version, sha256, path relative to the checkout) for every line of RELEASED."""
    if not RELEASED.exists():
        return []
    rows = []
    for line in RELEASED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            version, sha, path = line.split()
            rows.append((int(version), sha, path))
    return rows


def mismatches() -> list[str]:
    """What is wrong with the record: changed or missing released files, unrecorded old versions."""
    problems = []
    rows = recorded()
    for version, sha, path in rows:
        file = ROOT / path
        if not file.exists():
            problems.append(f"released file {path} (version {version}) is missing")
        elif digest(file) != sha:
            problems.append(f"released file {path} (version {version}) has changed; put the change in a new migration")
    newest = max((v for v, _, _ in rows), default=0)
    paths = {p for _, _, p in rows}
    for version, files in shipped().items():
        for file in files:
            rel = str(file.relative_to(ROOT))
            if version <= newest and rel not in paths:
                problems.append(f"{rel} belongs to released version {version} but is not recorded")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check the record")
    args = parser.parse_args(argv)
    problems = mismatches()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems or args.check:
        return 1 if problems else 0

    rows = recorded()
    newest = max((v for v, _, _ in rows), default=0)
    new = {v: files for v, files in shipped().items() if v > newest}
    if not new:
        print(f"nothing to record: version {newest} is the newest and is recorded")
        return 0
    lines = [f"{v} {digest(f)} {f.relative_to(ROOT)}" for v, files in sorted(new.items()) for f in files]
    body = RELEASED.read_text() if RELEASED.exists() else HEADER
    RELEASED.write_text(body + "\n".join(lines) + "\n")
    top = max(new)
    text = PYPROJECT.read_text()
    PYPROJECT.write_text(re.sub(r'(?m)^version = "[^"]*"$', f'version = "0.{top}.0"', text, count=1))
    print(f"recorded versions {', '.join(map(str, sorted(new)))}; pyproject.toml version 0.{top}.0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
