"""The wheel built from this repository installs into a fresh virtualenv and migrates from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import psycopg

from gwtest.db import ROOT


def test_wheel_installs_and_migrates(tmp_path, dsn):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "installer/extension/migrations/0001.schema-v1.sql" in names
    assert "installer/extension/migrations/0001.schema-v1.rollback.sql" in names
    # The installer and its SQL only: gwtest/, tools/, tests/ and bench/ are for the checkout.
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"installer"}, f"the wheel carries more than the installer: {sorted(packages)}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    # Run from an unrelated directory, with nothing of the source tree on the path.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(py), "-c", "import installer.core as c; print(c.migrations_dir())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert str(venv) in where.stdout, "migrations must come from the installed wheel, not the source tree"
    migrate = subprocess.run(
        [str(py), "-m", "installer", "--database", dsn, "migrate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0] >= 1
