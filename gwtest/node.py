"""graphile-worker's Node side for tests: the npm prefix `make node` fills, and one-off scripts run in it."""

from __future__ import annotations

import os
import subprocess

import pytest

from gwtest.db import BUILD

NODE_PREFIX = BUILD / "node"

# Prepended to a script given as text: `gw` is graphile-worker's module, loaded from NODE_PREFIX
# (ES modules ignore NODE_PATH, so the import names the file).
PRELUDE = """
import { join } from "node:path";
import { pathToFileURL } from "node:url";
const gwEntry = join(process.env.GW_NODE_PREFIX, "node_modules/graphile-worker/dist/index.js");
const gw = await import(pathToFileURL(gwEntry).href);
"""


def require_packages() -> None:
    """Fail (never skip) when graphile-worker is not installed."""
    if not (NODE_PREFIX / "node_modules" / "graphile-worker" / "package.json").exists():
        pytest.fail(f"graphile-worker is not installed under {NODE_PREFIX}; run make node (make test does)")


def run_module(body: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run PRELUDE + body as an ES module with env added; returns the finished process."""
    require_packages()
    return subprocess.run(
        ["node", "--input-type=module", "-e", PRELUDE + body],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "GW_NODE_PREFIX": str(NODE_PREFIX), **env},
    )
