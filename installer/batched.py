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

from installer.core import SCHEMA, Installer, InstallerError, redact

# The first schema version that has graphile_worker.delete_permafailed_jobs_batch().
BATCHED_SINCE_VERSION = 4
DEFAULT_BATCH_SIZE = 10_000
# The SQL function takes an integer.
MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 2_147_483_647

# progress_callback(deleted_so_far, deleted_in_this_batch, seconds_this_batch_took)
ProgressCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class BatchedResult:
    deleted: int
    batches: int
    longest_batch_seconds: float


def check_batch_size(batch_size) -> None:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not MIN_BATCH_SIZE <= batch_size <= MAX_BATCH_SIZE
    ):
        raise InstallerError(
            f"batch size must be a whole number from {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}, not {batch_size!r}"
        )


def run_batched_cleanup(
    target: Installer | str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress_callback: ProgressCallback | None = None,
) -> BatchedResult:
    """Delete every unlocked, permanently failed job, batch_size per transaction.

    target is an Installer, or a connection string to open one with (and close
    afterwards); either way the Installer's trust check has run before the first
    call into the schema. Stops after the first batch that deletes fewer than
    batch_size jobs (nothing left, or only jobs that are locked or held by other
    transactions). Each batch commits before the next starts; interrupting the
    loop (Ctrl-C) loses at most the batch in flight, which rolls back. Raises
    InstallerError for a bad batch_size, an untrusted, missing or too old schema,
    or a database error.
    """
    check_batch_size(batch_size)
    inst = Installer(target) if isinstance(target, str) else target
    try:
        return _run(inst, batch_size, progress_callback)
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        raise InstallerError(f"batched cleanup failed: {redact(inst.conninfo, message)}") from None
    finally:
        if inst is not target:
            inst.close()


def _run(inst: Installer, batch_size: int, progress_callback: ProgressCallback | None) -> BatchedResult:
    version = inst.installed_version()
    if version is None or version < BATCHED_SINCE_VERSION:
        raise InstallerError(
            f"batched cleanup needs schema version {BATCHED_SINCE_VERSION} or newer "
            f"(installed: {version if version is not None else 'none'}); run migrate first"
        )
    statement = sql.SQL("SELECT {}(%s)").format(sql.Identifier(SCHEMA, "delete_permafailed_jobs_batch"))
    deleted = batches = 0
    longest = 0.0
    while True:
        started = time.perf_counter()
        # autocommit: the call is its own transaction, committed when it returns.
        batch = inst.conn.execute(statement, [batch_size]).fetchone()[0]
        seconds = time.perf_counter() - started
        deleted += batch
        batches += 1
        longest = max(longest, seconds)
        if progress_callback is not None:
            progress_callback(deleted, batch, seconds)
        if batch < batch_size:
            return BatchedResult(deleted, batches, longest)
