"""Delete permanently failed jobs in batches, one short transaction per batch.

cleanup DELETE_PERMAFAILED_JOBS deletes every such job in one transaction, which
holds a row lock on each of them until it commits: a million jobs means many
seconds of locks. Here each batch is its own transaction
(graphile_worker.delete_permafailed_jobs_batch, schema version 4), so locks are
held for one batch at a time, and progress is reported after every batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from installer.core import SCHEMA, InstallerError, connect, normalise_conninfo, redact

# The first schema version that has graphile_worker.delete_permafailed_jobs_batch().
BATCHED_SINCE_VERSION = 4
DEFAULT_BATCH_SIZE = 10_000

# progress_callback(deleted_so_far, deleted_in_this_batch, seconds_this_batch_took)
ProgressCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class BatchedResult:
    deleted: int
    batches: int
    longest_batch_seconds: float


def run_batched_cleanup(
    conninfo: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress_callback: ProgressCallback | None = None,
) -> BatchedResult:
    """Delete every unlocked, permanently failed job, batch_size per transaction.

    Stops after the first batch that deletes fewer than batch_size jobs (nothing
    left, or only jobs that are locked or held by other transactions). Each
    batch commits before the next starts; interrupting the loop (Ctrl-C) loses
    at most the batch in flight, which rolls back. Raises InstallerError for a
    bad batch_size, a missing or too old schema, or a database error.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InstallerError(f"batch size must be a whole number of at least 1, not {batch_size!r}")
    conninfo = normalise_conninfo(conninfo)
    conn = connect(conninfo)
    try:
        version = _installed_version(conn)
        if version is None or version < BATCHED_SINCE_VERSION:
            raise InstallerError(
                f"batched cleanup needs schema version {BATCHED_SINCE_VERSION} or newer "
                f"(installed: {version if version is not None else 'none'}); run migrate first"
            )
        statement = sql.SQL("SELECT {}.delete_permafailed_jobs_batch(%s)").format(sql.Identifier(SCHEMA))
        deleted = batches = 0
        longest = 0.0
        while True:
            started = time.perf_counter()
            # autocommit: the call is its own transaction, committed when it returns.
            batch = conn.execute(statement, [batch_size]).fetchone()[0]
            seconds = time.perf_counter() - started
            deleted += batch
            batches += 1
            longest = max(longest, seconds)
            if progress_callback is not None:
                progress_callback(deleted, batch, seconds)
            if batch < batch_size:
                return BatchedResult(deleted, batches, longest)
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        raise InstallerError(f"batched cleanup failed: {redact(conninfo, message)}") from None
    finally:
        conn.close()


def _installed_version(conn: psycopg.Connection) -> int | None:
    if conn.execute("SELECT to_regproc(%s) IS NULL", [f"{SCHEMA}.schema_version"]).fetchone()[0]:
        return None
    return conn.execute(sql.SQL("SELECT {}.schema_version()").format(sql.Identifier(SCHEMA))).fetchone()[0]
