"""Side-by-side benchmark: graphile-worker 0.18.0 (the npm package, the reference) against our schema.

    python bench/compare.py [SERVER_DSN] [--runs 3] [--skip-admin] [sizes...]

Both run on the same PostgreSQL server in the same run, each in its own scratch
database: gw_cmp_ref (schema made by `graphile-worker --schema-only`) and
gw_cmp_ours (installer.core.Installer.migrate()). The reference is installed on
demand with npm under <build>/node (<build> is $GW_BUILD, else build/).

The comparison runs with fsync on: ALTER SYSTEM SET fsync = on and a reload at
the start, RESET and a reload at the end. A server started with `-c fsync=off`
on its command line (tools/pgserver.sh does that) ignores ALTER SYSTEM, so such
a server on this machine is restarted with fsync=on and, at the end, restarted
again with its original options (--no-restart refuses instead).

Rows (sizes are flags), each --runs times, the order of the two sides alternating:
  a. add_jobs with --add-jobs specs in one call, `SELECT *` and `SELECT count(*)`.
  b. --single-adds single add_job calls from one connection (autocommit, prepared).
  c. --drain-jobs no-op jobs drained by --workers concurrent workers: the
     reference's run() with a local queue of 500 and without one; ours
     (bench/sql_worker.py) fetching 500 or 1 and completing one by one, plus
     500 completed with one complete_worker_jobs, and complete_and_fetch_jobs.
  d. add_job-to-start latency with one idle worker waiting on LISTEN.
  e. admin calls at --jobs-admin jobs (bench/generate.sql), unless --skip-admin.
Server CPU = CPU time of the postmaster and all its processes, from /proc,
between "every client connected and ready" and "the last job done".
The table goes to stdout; every run is written to <build>/bench/compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from gwtest.db import BUILD, ROOT, as_url, drop_database, fresh_database, migrate, with_dbname
from gwtest.procs import as_owner
from gwtest.results import bench_parser, write_json
from gwtest.timing import ServerCPU, cpu_model, log, median, percentile, postmaster_pid, rolled_back_runs

REFERENCE_VERSION = "0.18.0"
SIDES = ("ref", "ours")
DB = {"ref": "gw_cmp_ref", "ours": "gw_cmp_ours"}
TABLES = "graphile_worker._private_jobs, graphile_worker._private_tasks, graphile_worker._private_job_queues"
SPECS = (
    "ARRAY(SELECT ROW('noop', json_build_object('id', i), NULL, NULL, NULL, NULL, NULL, NULL)"
    "::graphile_worker.job_spec FROM generate_series(1, %s) AS i)"
)
EMPTY = "SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs)"
JOB_COLUMNS = (
    "id, job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts, last_error,"
    " created_at, updated_at, key, locked_at, locked_by, revision, flags"
)
ROWS = ("add_jobs", "add_job", "drain", "latency", "admin")
CLEANUP_TASKS = ("GC_TASK_IDENTIFIERS", "GC_JOB_QUEUES", "DELETE_PERMAFAILED_JOBS")

# Worker configurations: (key, side, label, worker options).
DRAIN_CONFIGS = [
    ("ref_local500", "ref", "reference run(), local queue 500, complete one by one", {"localQueueSize": 500}),
    ("ref_single", "ref", "reference run(), one job per fetch", {"localQueueSize": -1}),
    ("ours_500_one", "ours", "fetch_jobs 500, complete_job one by one", {"batch": 500, "mode": "one"}),
    ("ours_1_one", "ours", "fetch_jobs 1, complete_job", {"batch": 1, "mode": "one"}),
    ("ours_500_batch", "ours", "fetch_jobs 500, complete_worker_jobs(batch)", {"batch": 500, "mode": "batch"}),
    ("ours_500_combined", "ours", "complete_and_fetch_jobs 500", {"batch": 500, "mode": "combined"}),
    ("ours_1_combined", "ours", "complete_and_fetch_jobs 1", {"batch": 1, "mode": "combined"}),
]
COMBINED = ("ours_500_combined", "ours_1_combined")
DRAIN_PAIRS = [  # (row label, reference key, our key)
    ("(i) batch 500, complete one by one", "ref_local500", "ours_500_one"),
    ("(ii) one job per fetch", "ref_single", "ours_1_one"),
    ("(iii) ours: batch 500, one complete_worker_jobs vs ref (i)", "ref_local500", "ours_500_batch"),
    ("(iv) ours: complete_and_fetch_jobs 500 vs ref (i)", "ref_local500", "ours_500_combined"),
    ("(v) ours: complete_and_fetch_jobs 1 (one commit a job) vs ref (ii)", "ref_single", "ours_1_combined"),
]


class Child:
    """A benchmark client process speaking the line protocol of sql_worker.py --control / reference_worker.mjs."""

    def __init__(self, argv: list[str], env: dict | None = None):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str, timeout: float = 120.0) -> str:
        """The next line that starts with prefix (other lines are logged); raises if the process ends first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.kill()
                raise SystemExit(f"compare: no {prefix!r} from {self.proc.args[:2]} within {timeout} s") from None
            if line is None:
                self.proc.wait()
                raise SystemExit(f"compare: {self.proc.args[:2]} exited ({self.proc.returncode}) before {prefix!r}")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
            if not line.startswith("done"):  # sql_worker.py's count, when nobody asked for it
                log(f"    [client] {line}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def expect_json(self, timeout: float = 60.0) -> dict:
        return json.loads("{" + self.expect("{", timeout))


class Compare:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.server = args.server
        self.dsn = {side: with_dbname(self.server, DB[side]) for side in SIDES}
        self.ref_url = as_url(self.dsn["ref"])  # node-postgres wants a URL
        self.node_prefix = BUILD / "node"
        self.results: dict = {"environment": {}, "settings": vars(args).copy(), "runs": {}, "admin": {}}
        self.restart_opts: tuple[list[str], list[str], str] | None = None
        self.has_combined = False
        self.rows = set(args.rows.split(",")) - ({"admin"} if args.skip_admin else set())
        if self.rows - set(ROWS):
            raise SystemExit(f"compare: unknown rows {sorted(self.rows - set(ROWS))}; known: {','.join(ROWS)}")

    # -- setup -----------------------------------------------------------------

    def ensure_reference(self) -> None:
        pkg = self.node_prefix / "node_modules" / "graphile-worker" / "package.json"
        have = json.loads(pkg.read_text()).get("version") if pkg.exists() else None
        pg_ok = (self.node_prefix / "node_modules" / "pg" / "package.json").exists()
        if have == REFERENCE_VERSION and pg_ok:
            return
        log(f"installing graphile-worker@{REFERENCE_VERSION} and pg under {self.node_prefix} (npm)")
        self.node_prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(self.node_prefix), "--no-audit", "--no-fund", "--loglevel=error"]
            + [f"graphile-worker@{REFERENCE_VERSION}", "pg"],
            check=True,
            stdout=sys.stderr,
        )

    def server_conn(self) -> psycopg.Connection:
        return psycopg.connect(self.server, autocommit=True)

    def fsync_on(self) -> None:
        with self.server_conn() as conn:
            conn.execute("ALTER SYSTEM SET fsync = on")
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
            setting, source = conn.execute("SELECT setting, source FROM pg_settings WHERE name = 'fsync'").fetchone()
            if setting == "on":
                return
            if source != "command line" or self.args.no_restart:
                raise SystemExit(f"compare: fsync is still off (source: {source}); refusing to compare without it")
            datadir = conn.execute("SHOW data_directory").fetchone()[0]
        opts_file = Path(datadir) / "postmaster.opts"
        words = shlex.split(opts_file.read_text())
        binary, rest = words[0], words[1:]
        kept: list[str] = []
        skip = False
        for w in rest:
            if skip:
                skip = False
            elif w == "-D":
                skip = True
            else:
                kept.append(w)
        on = ["fsync=on" if w == "fsync=off" else w for w in kept]
        self.restart_opts = (kept, on, datadir)
        log("the server was started with -c fsync=off, which ALTER SYSTEM cannot override: restarting it with fsync=on")
        self.pg_ctl_restart(binary, datadir, on)
        self.pg_binary = binary
        with self.server_conn() as conn:
            if conn.execute("SHOW fsync").fetchone()[0] != "on":
                raise SystemExit("compare: fsync still off after the restart")

    def pg_ctl_restart(self, binary: str, datadir: str, opts: list[str]) -> None:
        pg_ctl = str(Path(binary).with_name("pg_ctl"))
        argv = [pg_ctl, "-D", datadir, "-w", "-t", "120", "-m", "fast", "-l", str(Path(datadir) / "server.log")]
        argv += ["-o", " ".join(shlex.quote(o) for o in opts), "restart"]
        subprocess.run(as_owner(argv, datadir), check=True, cwd="/", stdout=subprocess.DEVNULL)

    def fsync_reset(self) -> None:
        try:
            with self.server_conn() as conn:
                conn.execute("ALTER SYSTEM RESET fsync")
                conn.execute("SELECT pg_reload_conf()")
        finally:
            if self.restart_opts:
                kept, _, datadir = self.restart_opts
                log("restarting the server with its original options")
                self.pg_ctl_restart(self.pg_binary, datadir, kept)

    def setup(self) -> None:
        self.ensure_reference()
        self.fsync_on()
        log("creating gw_cmp_ref (graphile-worker --schema-only) and gw_cmp_ours (installer)")
        fresh_database(self.server, DB["ref"])
        subprocess.run(
            ["npx", "--no-install", "graphile-worker", "-c", self.ref_url, "--schema-only"],
            check=True,
            cwd=self.node_prefix,
            stdout=sys.stderr,
        )
        fresh_database(self.server, DB["ours"])
        migrate(self.dsn["ours"])
        with psycopg.connect(self.dsn["ours"]) as conn:
            self.has_combined = conn.execute(
                "SELECT to_regprocedure('graphile_worker.complete_and_fetch_jobs(text, bigint[], text[], integer,"
                " text[])') IS NOT NULL"
            ).fetchone()[0]
            schema_version = conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0]
            self.postmaster = ServerCPU(postmaster_pid(conn))
            env = self.results["environment"]
            env["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
            env["fsync"] = conn.execute("SHOW fsync").fetchone()[0]
            env["synchronous_commit"] = conn.execute("SHOW synchronous_commit").fetchone()[0]
        env.update(
            cores=os.cpu_count(),
            cpu_model=cpu_model(),
            python=platform.python_version(),
            node=subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
            reference=f"graphile-worker {REFERENCE_VERSION}",
            our_schema_version=schema_version,
            complete_and_fetch_jobs=self.has_combined,
            server_cpu_measured=self.postmaster.pid is not None,
        )
        if not self.has_combined:
            log("complete_and_fetch_jobs is not in this schema: rows (iv) and (v) are n/a")

    def teardown(self) -> None:
        if not self.args.keep:
            for side in SIDES:
                drop_database(self.server, DB[side])

    # -- helpers ----------------------------------------------------------------

    def record(self, key: str, side: str, value: dict) -> None:
        self.results["runs"].setdefault(key, {}).setdefault(side, []).append(value)
        shown = ", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
        log(f"  {key} [{side}]: {shown}")

    def reset(self, side: str, jobs: int = 0) -> None:
        """Empty tables (optionally holding `jobs` no-op jobs), vacuumed, analyzed, checkpointed."""
        with psycopg.connect(self.dsn[side], autocommit=True) as conn:
            conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
            if jobs:
                conn.execute(f"SELECT count(*) FROM graphile_worker.add_jobs({SPECS})", [jobs])
            conn.execute(f"VACUUM ANALYZE {TABLES}")
            conn.execute("CHECKPOINT")

    def cpu(self) -> float | None:
        return self.postmaster.total()

    @staticmethod
    def cpu_us_per(cpu0: float | None, cpu1: float | None, n: int) -> float | None:
        return None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1e6 / n

    def sides_in_order(self, run: int) -> tuple[str, ...]:
        return SIDES if run % 2 == 0 else SIDES[::-1]

    def wait_empty(self, conn: psycopg.Connection, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while not conn.execute(EMPTY, prepare=True).fetchone()[0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"compare: the jobs table was not empty after {timeout} s")
            time.sleep(0.01)
        return time.perf_counter()

    def start_worker(self, side: str, opts: dict, concurrency: int, extra: list[str] | None = None) -> Child:
        if side == "ref":
            spec = {"connectionString": self.ref_url, "concurrency": concurrency, **opts}
            return Child(
                ["node", str(ROOT / "bench" / "reference_worker.mjs"), json.dumps(spec)],
                env={"GW_NODE_PREFIX": str(self.node_prefix), "NO_LOG_SUCCESS": "1"},
            )
        argv = [sys.executable, str(ROOT / "bench" / "sql_worker.py"), self.dsn["ours"], "--control"]
        argv += ["--concurrency", str(concurrency), "--batch", str(opts["batch"]), "--mode", opts["mode"]]
        if self.args.processes:
            argv += ["--processes", str(self.args.processes)]
        return Child(argv + (extra or []))

    # -- a, b: enqueueing ---------------------------------------------------------

    def bench_add_jobs(self, run: int) -> None:
        n = self.args.add_jobs
        for form, cols in (("select *", "*"), ("select count(*)", "count(*)")):
            key = f"add_jobs {form}"
            for side in self.sides_in_order(run):
                self.reset(side)
                with psycopg.connect(self.dsn[side], autocommit=True) as conn:
                    stmt = f"SELECT {cols} FROM graphile_worker.add_jobs({SPECS})"
                    cpu0 = self.cpu()
                    t0 = time.perf_counter()
                    rows = conn.execute(stmt, [n]).fetchall()
                    elapsed = time.perf_counter() - t0
                    cpu1 = self.cpu()
                    got = len(rows) if cols == "*" else rows[0][0]
                    assert got == n, f"{key} [{side}]: {got} rows, expected {n}"
                self.record(key, side, {"per_s": n / elapsed, "cpu_us": self.cpu_us_per(cpu0, cpu1, n)})

    def bench_add_job(self, run: int) -> None:
        n = self.args.single_adds
        for side in self.sides_in_order(run):
            self.reset(side)
            with psycopg.connect(self.dsn[side], autocommit=True) as conn:
                stmt = "SELECT id FROM graphile_worker.add_job('noop', %s::json)"
                conn.execute(stmt, ['{"warm": 1}'], prepare=True)
                cpu0 = self.cpu()
                t0 = time.perf_counter()
                for i in range(n):
                    conn.execute(stmt, [f'{{"id": {i}}}'], prepare=True)
                elapsed = time.perf_counter() - t0
                cpu1 = self.cpu()
            self.record("add_job single calls", side, {"per_s": n / elapsed, "cpu_us": self.cpu_us_per(cpu0, cpu1, n)})

    # -- c: draining with concurrent workers -------------------------------------------

    def drain(self, key: str, side: str, opts: dict) -> None:
        n = self.args.drain_jobs
        self.reset(side, n)
        child = self.start_worker(side, opts, self.args.workers, ["--until-empty"] if side == "ours" else None)
        try:
            child.expect("ready")
            with psycopg.connect(self.dsn[side], autocommit=True) as poll:
                poll.execute(EMPTY, prepare=True)
                cpu0 = self.cpu()
                t0 = time.perf_counter()
                child.send("go")
                t1 = self.wait_empty(poll, self.args.drain_timeout)
                extra = {}
                if side == "ours":
                    done = int(child.expect("done"))
                    if done != n:
                        raise SystemExit(f"compare: {key}: {done} jobs completed, expected {n}")
                else:
                    extra["run_startup_ms"] = float(child.expect("started"))
                cpu1 = self.cpu()
            child_finish(child)
        finally:
            child.kill()
        self.record(key, side, {"per_s": n / (t1 - t0), "cpu_us": self.cpu_us_per(cpu0, cpu1, n), **extra})

    def bench_drain(self, run: int) -> None:
        configs = [c for c in DRAIN_CONFIGS if c[0] not in COMBINED or self.has_combined]
        if run % 2:
            configs = configs[::-1]
        for key, side, _label, opts in configs:
            self.drain(key, side, opts)

    # -- d: latency ------------------------------------------------------------------

    def bench_latency(self, run: int) -> None:
        n, spacing = self.args.latency_jobs, self.args.latency_spacing_ms / 1000
        for side in self.sides_in_order(run):
            self.reset(side)
            if side == "ref":
                child = self.start_worker("ref", {"localQueueSize": -1, "recordStarts": True}, 1)
            else:
                extra = ["--record-starts", "--idle-timeout", "1"]
                child = self.start_worker("ours", {"batch": 1, "mode": "one"}, 1, extra)
            try:
                child.expect("ready")
                child.send("go")
                if side == "ref":
                    child.expect("started")
                time.sleep(1.0)  # let the first (empty) fetches pass: the worker is idle, listening
                returned: dict[str, int] = {}
                with psycopg.connect(self.dsn[side], autocommit=True) as conn:
                    stmt = "SELECT id FROM graphile_worker.add_job('noop', json_build_object('id', %s::int))"
                    for i in range(1, n + 1):
                        conn.execute(stmt, [i], prepare=True)
                        returned[str(i)] = time.monotonic_ns()
                        time.sleep(spacing)
                    self.wait_empty(conn, 60)
                starts = child_finish(child)["starts"]
            finally:
                child.kill()
            missing = [i for i in returned if i not in starts]
            if missing:
                raise SystemExit(f"compare: latency [{side}]: {len(missing)} jobs never reported a start")
            lat = [(int(starts[i]) - t) / 1e6 for i, t in returned.items()]
            self.record(
                "latency",
                side,
                {"mean_ms": sum(lat) / len(lat), "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95)},
            )

    # -- e: admin at scale -------------------------------------------------------------

    def admin_calls(self, side: str) -> list[tuple[str, str, list, bool]]:
        n = self.args.jobs_admin
        step = max(n // 10000, 1)
        ids = [3 + k * step for k in range(min(10000, n))]  # id % 100 = 3: waiting, unlocked (generate.sql)
        calls = [
            ("complete_jobs (10,000 ids)", "SELECT count(*) FROM graphile_worker.complete_jobs(%s)", [ids], False),
            (
                "permanently_fail_jobs (10,000 ids)",
                "SELECT count(*) FROM graphile_worker.permanently_fail_jobs(%s, 'bench')",
                [ids],
                True,
            ),
            (
                "reschedule_jobs (10,000 ids, run_at => now() + 1 hour)",
                "SELECT count(*) FROM graphile_worker.reschedule_jobs(%s, run_at => now() + interval '1 hour')",
                [ids],
                True,
            ),
            (
                "force_unlock_workers (1 worker)",
                "SELECT graphile_worker.force_unlock_workers(ARRAY['worker_00007'])",
                [],
                True,
            ),
        ]
        if side == "ours":
            calls += [
                (f"cleanup {t}", f"SELECT deleted_count FROM graphile_worker.cleanup('{{{t}}}')", [], False)
                for t in CLEANUP_TASKS
            ]
        return calls

    def load_admin(self, side: str) -> None:
        n = self.args.jobs_admin
        with psycopg.connect(self.dsn[side], autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("SELECT set_config('bench.jobs', %s, false)", [str(n)])
            conn.execute((ROOT / "bench" / "generate.sql").read_text())
            conn.execute(f"VACUUM ANALYZE {TABLES}")
            conn.execute("CHECKPOINT")
            indexes = conn.execute(
                "SELECT count(*) FROM pg_index WHERE indrelid = 'graphile_worker._private_jobs'::regclass"
            ).fetchone()[0]
        self.results["admin"].setdefault("indexes_on_private_jobs", {})[side] = indexes
        log(f"  [{side}] loaded {n:,} jobs in {time.perf_counter() - t0:.1f} s; {indexes} indexes on _private_jobs")

    def admin_sql(self, side: str) -> None:
        out = self.results["admin"].setdefault("calls", {})
        with psycopg.connect(self.dsn[side]) as conn, psycopg.connect(self.dsn[side], autocommit=True) as maint:

            def vacuum() -> None:
                maint.execute(f"VACUUM {TABLES}")

            for label, stmt, params, dirty in self.admin_calls(side):
                times, cpu, rows = rolled_back_runs(conn, stmt, params, self.args.runs, vacuum if dirty else None)
                out.setdefault(label, {})[side] = {"runs_ms": times, "backend_cpu_ms": cpu, "rows": rows}
                log(f"  {label} [{side}]: median {median(times):.1f} ms ({rows} rows)")

    def admin_committed_cleanup(self, side: str) -> None:
        """Cleanup that commits: the reference's JavaScript (timed in Node around the call) and, to compare
        like with like, ours called from Python in autocommit. The deleted rows are put back after every run."""
        out = self.results["admin"].setdefault("calls", {})
        dsn = self.dsn[side]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_tasks, bench_queues, bench_permafailed")
            conn.execute("CREATE TABLE bench_tasks AS SELECT id, identifier FROM graphile_worker._private_tasks")
            conn.execute(
                "CREATE TABLE bench_queues AS SELECT id, queue_name, locked_at, locked_by"
                " FROM graphile_worker._private_job_queues"
            )
            conn.execute(
                f"CREATE TABLE bench_permafailed AS SELECT {JOB_COLUMNS} FROM graphile_worker._private_jobs"
                " WHERE attempts >= max_attempts"
            )
        child = None
        if side == "ref":
            child = Child(
                ["node", str(ROOT / "bench" / "reference_worker.mjs"), json.dumps({"connectionString": self.ref_url})],
                env={"GW_NODE_PREFIX": str(self.node_prefix)},
            )
            child.expect("ready")
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for task in CLEANUP_TASKS:
                    times, rows = [], None
                    for run in range(self.args.runs + 1):  # run 0 warms the caches
                        if child:
                            child.send(f"cleanup {task}")
                            ms = float(child.expect("cleanup"))
                        else:
                            t0 = time.perf_counter()
                            conn.execute("SELECT deleted_count FROM graphile_worker.cleanup(%s)", [[task]]).fetchall()
                            ms = (time.perf_counter() - t0) * 1000
                        rows = self.restore(side)
                        if run:
                            times.append(ms)
                    key = "ref" if side == "ref" else "ours_committed"
                    out.setdefault(f"cleanup {task}", {})[key] = {"runs_ms": times, "rows": rows, "committed": True}
                    log(f"  cleanup {task} [{side}, committed]: median {median(times):.1f} ms ({rows} rows)")
            if child:
                child_finish(child)
        finally:
            if child:
                child.kill()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS bench_tasks, bench_queues, bench_permafailed")

    def restore(self, side: str) -> int:
        """Put back what a committed cleanup deleted; returns how many rows that was."""
        with psycopg.connect(self.dsn[side], autocommit=True) as conn:
            put = 0
            for table, saved, cols in (
                ("_private_tasks", "bench_tasks", "id, identifier"),
                ("_private_job_queues", "bench_queues", "id, queue_name, locked_at, locked_by"),
                ("_private_jobs", "bench_permafailed", JOB_COLUMNS),
            ):
                put += conn.execute(
                    f"INSERT INTO graphile_worker.{table} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {saved}"
                    f" AS s WHERE NOT EXISTS (SELECT FROM graphile_worker.{table} AS t WHERE t.id = s.id)"
                ).rowcount
            conn.execute(f"VACUUM ANALYZE {TABLES}")
        return put

    def bench_admin(self) -> None:
        for side in SIDES:
            self.load_admin(side)
        for side in SIDES:
            self.admin_sql(side)
        for side in SIDES:
            self.admin_committed_cleanup(side)

    # -- report ------------------------------------------------------------------------

    def report(self) -> str:
        env, runs, a = self.results["environment"], self.results["runs"], self.args
        lines = [
            f"graphile-worker {REFERENCE_VERSION} (reference) vs our schema (version {env['our_schema_version']}),"
            f" median of {a.runs} runs",
            f"PostgreSQL {env['postgres']}, fsync={env['fsync']}, synchronous_commit={env['synchronous_commit']},"
            f" {env['cores']} cores ({env['cpu_model']}), Node {env['node']}, Python {env['python']}",
            "ratio > 1: ours is better (throughput: ours / ref; times, latency and CPU: ref / ours)."
            " cpu = server CPU (all server processes) per job, us",
            "",
        ]
        head = f"{'row':62} {'reference':>12} {'ours':>12} {'ratio':>7}"
        lines += [head, "-" * len(head)]

        def med(key: str, side: str, field: str) -> float | None:
            return median([r.get(field) for r in runs.get(key, {}).get(side, [])])

        def row(label: str, ref: float | None, ours: float | None, higher_better: bool, fmt: str = ",.0f") -> None:
            ratio = ""
            if ref and ours:
                ratio = f"{(ours / ref if higher_better else ref / ours):.2f}"
            cell = lambda v: "n/a" if v is None else format(v, fmt)  # noqa: E731
            lines.append(f"{label:62} {cell(ref):>12} {cell(ours):>12} {ratio:>7}")

        for key, label in (
            ("add_jobs select *", f"add_jobs {a.add_jobs:,} specs, select *, jobs/s"),
            ("add_jobs select count(*)", f"add_jobs {a.add_jobs:,} specs, select count(*), jobs/s"),
            ("add_job single calls", f"add_job x {a.single_adds:,}, one connection, prepared, calls/s"),
        ):
            if key in runs:
                row(label, med(key, "ref", "per_s"), med(key, "ours", "per_s"), True)
                row("  cpu", med(key, "ref", "cpu_us"), med(key, "ours", "cpu_us"), False, ",.1f")
        if any(k.startswith("ref_") for k in runs):
            lines.append(f"drain {a.drain_jobs:,} no-op jobs, {a.workers} workers, jobs/s:")
            for label, ref_key, our_key in DRAIN_PAIRS:
                if our_key in COMBINED and not self.has_combined:
                    lines.append(f"{'  ' + label:62} {'':>12} {'n/a (not in this schema)':>20}")
                    continue
                row("  " + label, med(ref_key, "ref", "per_s"), med(our_key, "ours", "per_s"), True)
                row("    cpu", med(ref_key, "ref", "cpu_us"), med(our_key, "ours", "cpu_us"), False, ",.1f")
        if "latency" in runs:
            lines.append(
                f"add_job-to-start latency, 1 idle worker, {a.latency_jobs} jobs, {a.latency_spacing_ms} ms apart:"
            )
            for field in ("mean_ms", "p50_ms", "p95_ms"):
                ref, ours = med("latency", "ref", field), med("latency", "ours", field)
                row(f"  {field.replace('_ms', '')}, ms", ref, ours, False, ".2f")
        admin = self.results["admin"]
        if admin.get("calls"):
            lines.append(
                f"admin at {a.jobs_admin:,} jobs, ms (rolled back; ref cleanup: its JavaScript, timed in Node):"
            )
            for label, per in admin["calls"].items():
                ref, ours, ours_c = per.get("ref"), per.get("ours"), per.get("ours_committed")
                if ours_c:  # cleanup: committed on both sides, and ours rolled back beside it
                    row(f"  {label}, committed", median(ref["runs_ms"]), median(ours_c["runs_ms"]), False, ",.1f")
                    row(f"  {label}, ours rolled back", None, median(ours["runs_ms"]), False, ",.1f")
                else:
                    row("  " + label, ref and median(ref["runs_ms"]), ours and median(ours["runs_ms"]), False, ",.1f")
            idx = admin["indexes_on_private_jobs"]
            lines.append(f"{'  indexes on _private_jobs':62} {idx.get('ref', ''):>12} {idx.get('ours', ''):>12}")
        return "\n".join(lines)

    def write(self, text: str) -> Path:
        self.results["table"] = text
        return write_json("compare.json", self.results)

    def run(self) -> None:
        self.setup()
        for run in range(self.args.runs):
            log(f"run {run + 1} of {self.args.runs}")
            for name, step in (
                ("add_jobs", self.bench_add_jobs),
                ("add_job", self.bench_add_job),
                ("drain", self.bench_drain),
                ("latency", self.bench_latency),
            ):
                if name in self.rows:
                    step(run)
        if "admin" in self.rows:
            log(f"admin at {self.args.jobs_admin:,} jobs")
            self.bench_admin()
        text = self.report()
        print(text)
        log(f"written to {self.write(text)}")


def child_finish(child: Child) -> dict:
    child.send("exit")
    result = child.expect_json()
    child.proc.stdin.close()
    child.proc.wait(60)
    if child.proc.returncode != 0:
        raise SystemExit(f"compare: {child.proc.args[:2]} exited with {child.proc.returncode}")
    return result


def build_parser() -> argparse.ArgumentParser:
    p = bench_parser(__doc__, keep="keep the two scratch databases")
    p.add_argument("--runs", type=int, default=3, help="runs of every row (medians are reported), default 3")
    p.add_argument("--add-jobs", type=int, default=100_000, help="specs in the add_jobs call")
    p.add_argument("--single-adds", type=int, default=5_000, help="single add_job calls")
    p.add_argument("--drain-jobs", type=int, default=30_000, help="jobs the workers drain")
    p.add_argument("--workers", type=int, default=24, help="concurrent workers when draining")
    p.add_argument(
        "--processes", type=int, default=0, help="OS processes for our workers (default: sql_worker.py's, 2 per core)"
    )
    p.add_argument("--drain-timeout", type=float, default=600, help="seconds a drain may take")
    p.add_argument("--latency-jobs", type=int, default=200, help="jobs added one at a time for the latency row")
    p.add_argument("--latency-spacing-ms", type=float, default=20, help="pause between those adds")
    p.add_argument("--jobs-admin", type=int, default=1_000_000, help="jobs loaded for the admin rows")
    p.add_argument("--skip-admin", action="store_true", help="skip the admin rows (and their large load)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows to run (default {','.join(ROWS)})")
    p.add_argument("--no-restart", action="store_true", help="never restart the server to turn fsync on")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bench = Compare(args)
    try:
        bench.run()
    finally:
        try:
            bench.teardown()
        finally:
            bench.fsync_reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
