"""Command line: python -m installer COMMAND [options].

Exit codes: 0 done (status: up to date), 1 error, 2 bad usage, 3 status: migrations pending,
4 status: graphile_worker.migrations holds rows this installer did not write (a newer
graphile-worker migrated over the schema), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg

from installer import grants, verify
from installer.batched import MAX_BATCH_SIZE, MIN_BATCH_SIZE, check_batch_size, run_batched_cleanup
from installer.core import (
    CLEANUP_TASKS,
    DEFAULT_LOCK_TIMEOUT,
    Installer,
    InstallerError,
    parse_cleanup_tasks,
    redact,
)
from installer.grants import CAPABILITIES

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PENDING = 3
EXIT_FOREIGN_REVISIONS = 4
# 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m installer",
        description="Install, upgrade and administer the graphile_worker job queue schema.",
    )
    parser.add_argument(
        "--database",
        metavar="DSN",
        help="libpq connection string or URI; default: $DATABASE_URL, else libpq's PG* variables",
    )
    # The commands that change the schema wait for the installer's advisory lock.
    locking = argparse.ArgumentParser(add_help=False)
    locking.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting for another run's lock after this long (default {DEFAULT_LOCK_TIMEOUT}; 0: no limit)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("migrate", parents=[locking], help="apply every pending migration (safe to run concurrently)")
    commands.add_parser(
        "status",
        help="show installed version and pending migrations; exit 3 if any are pending, "
        "4 if a newer graphile-worker migrated over the schema",
    )
    rollback = commands.add_parser("rollback", parents=[locking], help="undo migrations newer than a version")
    rollback.add_argument("--to", type=int, required=True, metavar="VERSION", help="version to go back to (0: none)")
    cleanup = commands.add_parser(
        "cleanup",
        help="delete permanently failed jobs and unused task identifiers and queues (safe while workers run)",
    )
    cleanup.add_argument(
        "tasks",
        metavar="TASK[,TASK...]",
        help=f"comma-separated cleanup tasks: {', '.join(CLEANUP_TASKS)}",
    )
    cleanup.add_argument(
        "--keep-task",
        dest="keep_tasks",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID",
        help="task identifier that GC_TASK_IDENTIFIERS must keep even without jobs (repeatable)",
    )
    batched = commands.add_parser(
        "cleanup-batched",
        help="delete permanently failed jobs in batches, one short transaction each, with progress",
    )
    batched.add_argument(
        "--batch-size", type=_batch_size, default=10000, metavar="N", help="jobs per batch (default 10000)"
    )
    for verb, text in (("grant", "grant"), ("revoke", "take back")):
        cmd = commands.add_parser(verb, help=f"{text} a capability set ({', '.join(CAPABILITIES)}) to/from roles")
        for capability in CAPABILITIES:
            cmd.add_argument(
                f"--{capability}",
                dest=_dest(capability),
                action="append",
                default=[],
                metavar="ROLE",
                help=f"{text} the {capability} set (repeatable)",
            )
    commands.add_parser("verify", help="compare the installed schema with this package; exit 1 on any drift")
    uninstall = commands.add_parser(
        "uninstall", parents=[locking], help="drop everything the installer created, jobs included"
    )
    uninstall.add_argument("--yes", action="store_true", help="confirm: this deletes every job")
    return parser


def _dest(capability: str) -> str:
    # --graphile-worker is stored as graphile_worker.
    return capability.replace("-", "_")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, not {text!r}")
    return value


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_BATCH_SIZE <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}, not {text!r}"
        )
    return value


def _conninfo(args: argparse.Namespace) -> str:
    return args.database or os.environ.get("DATABASE_URL") or ""


def _progress(total: int, batch: int, seconds: float) -> None:
    print(f"deleted {total} permanently failed jobs (batch of {batch} in {seconds * 1000:.0f} ms)", flush=True)


def _run(args: argparse.Namespace) -> int:
    # Checked before connecting: a bad task name changes nothing and needs no database.
    cleanup_tasks = parse_cleanup_tasks(args.tasks) if args.command == "cleanup" else []
    if args.command == "cleanup-batched":
        check_batch_size(args.batch_size)
    if args.command in ("grant", "revoke"):
        pairs = [(cap, role) for cap in CAPABILITIES for role in getattr(args, _dest(cap))]
        if not pairs:
            flags = ", ".join(f"--{cap}" for cap in CAPABILITIES)
            raise UsageError(f"{args.command} needs at least one of {flags} ROLE")
    # The one way in: Installer connects, pins search_path and checks trust before anything else.
    inst = Installer(_conninfo(args), getattr(args, "lock_timeout", DEFAULT_LOCK_TIMEOUT))
    try:
        if args.command == "cleanup-batched":
            result = run_batched_cleanup(inst, args.batch_size, _progress)
            print(f"DELETE_PERMAFAILED_JOBS: {result.deleted} deleted in {result.batches} batches")
            return EXIT_OK
        if args.command == "migrate":
            inst.check_schema_present()
            applied = inst.migrate()
            for m in applied:
                print(f"applied {m.id}")
            print(f"schema version {inst.installed_version()}" + ("" if applied else " (nothing to apply)"))
            return EXIT_OK
        if args.command == "status":
            inst.check_schema_present()
            version = inst.installed_version()
            print(f"installed version: {version if version is not None else 'none'}")
            applied = set(inst.applied_ids())
            for m in inst.all_migrations():
                print(f"{'applied' if m.id in applied else 'pending'}  {m.id}")
            pending = inst.pending()
            print(f"{len(pending)} pending" if pending else "up to date")
            if pending:
                return EXIT_PENDING
            foreign = verify.migration_rows_drift(inst.conn)
            for line in foreign:
                print(line)
            return EXIT_FOREIGN_REVISIONS if foreign else EXIT_OK
        if args.command == "rollback":
            if args.to < 0:
                raise InstallerError(f"--to must be 0 or more, not {args.to}")
            undone = inst.rollback(args.to)
            for m in undone:
                print(f"rolled back {m.id}")
            print(
                f"schema version {inst.installed_version() or 'none'}" + ("" if undone else " (nothing to roll back)")
            )
            return EXIT_OK
        if args.command == "cleanup":
            for task, deleted in inst.cleanup(cleanup_tasks, args.keep_tasks):
                print(f"{task}: {deleted} deleted")
            return EXIT_OK
        if args.command in ("grant", "revoke"):
            action = grants.grant if args.command == "grant" else grants.revoke
            for capability, role in pairs:
                action(inst, capability, role)
                done = "granted" if args.command == "grant" else "revoked"
                print(f"{done} {capability} {'to' if args.command == 'grant' else 'from'} {role}")
            return EXIT_OK
        if args.command == "verify":
            inst.check_schema_present()
            pending = inst.pending()
            if pending:
                raise InstallerError(f"{len(pending)} migrations pending; run migrate before verify")
            lines = verify.drift(inst.conn, grants.recorded(inst)) + grants.stale(inst)
            for line in lines:
                print(line)
            print(f"{len(lines)} objects differ from the package" if lines else "schema matches the package")
            return EXIT_ERROR if lines else EXIT_OK
        if args.command == "uninstall":
            if not args.yes:
                raise InstallerError("uninstall deletes every job; pass --yes to confirm")
            print("uninstalled" if inst.uninstall() else "nothing to uninstall")
            return EXIT_OK
        raise InstallerError(f"unknown command {args.command!r}")
    finally:
        inst.close()


class UsageError(Exception):
    """Bad command-line usage found after parsing."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        return int(exc.code or 0)
    try:
        return _run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InstallerError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        # psycopg has cancelled the statement in flight; the transaction it was in is rolled back.
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        print(f"error: {redact(_conninfo(args), message)}", file=sys.stderr)
    except Exception as exc:  # yoyo raises its own types; still one line, no traceback
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {redact(_conninfo(args), message)}", file=sys.stderr)
    return EXIT_ERROR
