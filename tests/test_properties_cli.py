"""Property-based test of the CLI (hypothesis): random argv and random or garbled DSNs (with passwords)
through installer.cli.main, in process. Whatever the input: an exit code of 0 to 3, no password printed,
no traceback, and one line on stderr for an error (argparse's usage text and one error line for a usage error).
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gwtest import strategies as gen
from gwtest.runner import COUNTS, ERRORS
from installer import cli


@settings(gen.SETTINGS, max_examples=150)
@given(argv=st.lists(gen.TOKENS, max_size=5), dsn=gen.dsns(), where=st.sampled_from(["arg", "env", "both"]))
def test_cli_random_argv_and_dsn(argv, dsn, where, capsys, monkeypatch):
    dsn, password = dsn
    # Never reach a real database by accident: the libpq defaults point nowhere.
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", "1")
    monkeypatch.setenv("PGDATABASE", "gw_no_such_db")
    monkeypatch.setenv("PGUSER", "nobody")
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "2")
    monkeypatch.setenv("DATABASE_URL", dsn if where != "arg" else "postgresql://nobody:PwEnvSecret1@127.0.0.1:1/x")
    full = ["--database", dsn, *argv] if where != "env" else list(argv)
    # A DSN that reaches the test server must not name a database we could change.
    assume("54336" not in dsn or "gw_no_such_db" in dsn)
    COUNTS["cli"] += 1
    capsys.readouterr()
    try:
        code = cli.main(full)
    except SystemExit as exc:  # pragma: no cover - main must not exit itself
        pytest.fail(f"cli.main raised SystemExit({exc.code}) for {full!r}")
    out, err = capsys.readouterr()
    ERRORS["cli"] += code != 0
    assert code in (0, 1, 2, 3), f"exit code {code} for {full!r}"
    for secret in (password, "PwEnvSecret1"):
        assert secret not in out and secret not in err, f"password printed for {full!r}: {err!r}"
    assert "Traceback" not in out + err
    if code in (1, 3) or (code == 2 and not err.startswith("usage:")):
        assert len(err.strip().splitlines()) <= 1, f"more than one line on stderr for {full!r}: {err!r}"
    if code == 2 and err.startswith("usage:"):
        # argparse: its usage text, then exactly one error line.
        lines = err.strip().splitlines()
        assert sum(line.startswith("python -m installer") and ": error:" in line for line in lines) == 1, err
