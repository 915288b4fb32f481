"""The administrative UI's calls at scale (schema version 12 onwards), and the hot path before and after them.

    python bench/ui_bench.py --server postgresql://postgres@127.0.0.1:54329/postgres --jobs 10000000

Steps, on the given server:
  1. gw_ui_<jobs>: migrated to the newest schema, loaded with bench/generate.sql's mix, VACUUM
     ANALYZE. Reused if it exists with that many jobs (--reuse), since loading 10M jobs takes minutes.
  2. every UI call, --runs times after one unmeasured warm-up, medians: job_overview; a page of
     list_jobs for every single filter, every order, and task + each state; the second page of a
     few through its cursor; job_detail; pause/resume of a queue and a task (committed).
  3. the hot path on two copies of those rows, alternately, A B B A ...: gw_ui_<jobs>_base, rolled
     back to version --baseline (default 11, before the UI's listing; the newest version gives an
     A/A run, which shows the noise), and gw_ui_<jobs>_new, migrated again from that copy
     to the newest version (so both have indexes built the same way):
     add_jobs of 100,000 jobs and --single-adds add_job calls (each in a transaction that is
     rolled back), the same with a job key each, and a committed enqueue-then-drain cycle by
     concurrent workers of our worker API;
     ratio = newest / baseline (jobs per second: above 1 is faster).
Results: a table on stdout; every run in <build>/bench/ui-<jobs>.json.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from gwtest.db import fresh_database, with_dbname
from gwtest.results import bench_parser, out_dir, write_json
from gwtest.timing import drain_with_workers, log

ROOT = Path(__file__).resolve().parent.parent
GENERATE_SQL = ROOT / "bench" / "generate.sql"

# The targets, in milliseconds.
TARGET_MS = {"overview": 50, "page": 10, "detail": 1, "pause": 5}


def page(**args: object) -> tuple[str, list]:
    names = ", ".join(f"{k} => %s" for k in args)
    return f"SELECT count(*) FROM graphile_worker.list_jobs({names})", list(args.values())


def pages(n: int, now: datetime) -> list[tuple[str, str, tuple[str, list]]]:
    """(group, label, (statement, parameters)) of every listing measured; now: the server's clock."""
    out: list[tuple[str, str, tuple[str, list]]] = [("filter", "no filter (id order)", page())]
    for state in ("waiting", "scheduled", "retrying", "running", "stale", "permanently_failed", "paused"):
        out.append(("filter", f"state {state}", page(states=[state])))
    out += [
        ("filter", "task task_0007", page(task_identifiers=["task_0007"])),
        ("filter", "3 tasks", page(task_identifiers=["task_0007", "task_0008", "task_0009"])),
        ("filter", "queue queue_0007", page(queue_names=["queue_0007"])),
        ("filter", "key prefix key_99", page(key_prefix="key_99")),
        ("filter", "id window (middle 10%)", page(min_id=n // 2, max_id=n // 2 + n // 10)),
        (
            "filter",
            "run_at window (1 day, 100 days ahead)",
            page(run_at_from=now + timedelta(days=100), run_at_before=now + timedelta(days=101)),
        ),
        ("filter", "updated_at window (last 2 days)", page(updated_from=now - timedelta(days=2))),
    ]
    # task_0006 has permanently failed jobs, task_0005 running ones (generate.sql's arithmetic), task_0007 neither.
    for task in ("task_0005", "task_0006", "task_0007"):
        for state in ("waiting", "scheduled", "retrying", "running", "stale", "permanently_failed", "paused"):
            out.append(("task+state", f"{task} + {state}", page(task_identifiers=[task], states=[state])))
    for order in ("id", "run_at", "updated_at"):
        for desc in (False, True):
            out.append(("order", f"order {order} {'desc' if desc else 'asc'}", page(order_by=order, descending=desc)))
            out.append(
                (
                    "order",
                    f"task_0007 by {order} {'desc' if desc else 'asc'}",
                    page(task_identifiers=["task_0007"], order_by=order, descending=desc),
                )
            )
    return out


class UIBench:
    def __init__(self, args):
        self.args = args
        self.n = args.jobs
        self.db = f"gw_ui_{self.n}"
        self.baseline = args.baseline
        self.db_base = f"gw_ui_{self.n}_base"
        self.db_new = f"gw_ui_{self.n}_new"
        self.server = args.server
        self.results: dict = {
            "jobs": self.n,
            "runs": args.runs,
            "baseline_version": args.baseline,
            "ui": {},
            "hot_path": {},
        }

    # -- setup --------------------------------------------------------------

    def loaded(self, dbname: str) -> bool:
        try:
            with psycopg.connect(with_dbname(self.server, dbname), autocommit=True) as conn:
                got = conn.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone()[0]
                return got == self.n
        except psycopg.Error:
            return False

    def setup(self) -> None:
        if self.args.reuse and self.loaded(self.db):
            log(f"reusing {self.db}")
            dsn = with_dbname(self.server, self.db)
            subprocess.run([sys.executable, "-m", "installer", "--database", dsn, "migrate"], check=True, cwd=ROOT)
        else:
            dsn = fresh_database(self.server, self.db, migrated=True)
            started = time.perf_counter()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT set_config('bench.jobs', %s, false)", [str(self.n)])
                conn.execute(GENERATE_SQL.read_text())
                conn.execute(
                    "VACUUM ANALYZE graphile_worker._private_jobs, graphile_worker._private_tasks,"
                    " graphile_worker._private_job_queues"
                )
            log(f"loaded {self.n:,} jobs in {time.perf_counter() - started:.0f} s")
        self.dsn = dsn

    def copies(self) -> None:
        """Two copies of the loaded rows for the hot path, built the same way so that neither has fresher
        indexes: the baseline version (rolled back from the loaded database), and the newest version migrated from
        that copy."""
        with psycopg.connect(self.server, autocommit=True) as conn:
            for name in (self.db_base, self.db_new):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{self.db_base}" TEMPLATE "{self.db}"')
        self.dsn_base = with_dbname(self.server, self.db_base)
        installer = [sys.executable, "-m", "installer", "--database"]
        subprocess.run([*installer, self.dsn_base, "rollback", "--to", str(self.baseline)], check=True, cwd=ROOT)
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_new}" TEMPLATE "{self.db_base}"')
        self.dsn_new = with_dbname(self.server, self.db_new)
        subprocess.run([*installer, self.dsn_new, "migrate"], check=True, cwd=ROOT)
        for dsn in (self.dsn_new, self.dsn_base):
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE graphile_worker._private_jobs")
                self.results.setdefault("schema_versions", []).append(
                    conn.execute("SELECT graphile_worker.schema_version()").fetchone()[0]
                )

    # -- UI calls -----------------------------------------------------------

    def timed(self, conn: psycopg.Connection, stmt: str, params: list, runs: int) -> tuple[list[float], object]:
        conn.execute(stmt, params).fetchall()  # warm-up
        times = []
        result = None
        for _ in range(runs):
            started = time.perf_counter()
            result = conn.execute(stmt, params).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        return times, result

    def record(self, group: str, label: str, times: list[float], rows: object, target: float) -> None:
        median = statistics.median(times)
        self.results["ui"].setdefault(group, {})[label] = {
            "median_ms": round(median, 3),
            "runs_ms": [round(t, 3) for t in times],
            "rows": rows,
            "target_ms": target,
            "met": median < target,
        }
        log(f"  {group} / {label}: {median:.2f} ms ({rows} rows){'' if median < target else '  MISSED'}")

    def run_ui(self) -> None:
        runs = self.args.runs
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            now = conn.execute("SELECT now()").fetchone()[0]

            times, res = self.timed(conn, "SELECT count(*) FROM graphile_worker.job_overview()", [], runs)
            self.record("overview", "job_overview() (cap 10,000)", times, res[0][0], TARGET_MS["overview"])
            times, res = self.timed(conn, "SELECT count(*) FROM graphile_worker.job_overview(100)", [], runs)
            self.record("overview", "job_overview(100)", times, res[0][0], TARGET_MS["overview"])
            times, res = self.timed(conn, "SELECT graphile_worker.refresh_job_overview()", [], runs)
            self.record("overview", "refresh_job_overview() (stores the count)", times, 1, TARGET_MS["overview"])
            times, res = self.timed(conn, "SELECT count(*) FROM graphile_worker.job_overview_snapshot()", [], runs)
            self.record("overview", "job_overview_snapshot() (stored)", times, res[0][0], TARGET_MS["overview"])

            # A paused queue, so that state paused has jobs; resumed at the end.
            conn.execute("SELECT graphile_worker.pause_queue('queue_0011', 'ui bench')")
            try:
                for group, label, (stmt, params) in pages(self.n, now):
                    times, res = self.timed(conn, stmt, params, runs)
                    self.record(group, label, times, res[0][0], TARGET_MS["page"])
                # Second pages, through the cursor of the first.
                for label, order in (("second page, id order", "id"), ("second page, run_at order", "run_at")):
                    # The last row's cursor (a small dataset's task may have fewer than 100 jobs).
                    cur = conn.execute(
                        "SELECT next_cursor FROM graphile_worker.list_jobs(task_identifiers => '{task_0007}',"
                        " order_by => %s)",
                        [order],
                    ).fetchall()[-1][0]
                    times, res = self.timed(
                        conn,
                        "SELECT count(*) FROM graphile_worker.list_jobs(task_identifiers => '{task_0007}',"
                        " order_by => %s, after_cursor => %s)",
                        [order, cur],
                        runs,
                    )
                    self.record("cursor", label, times, res[0][0], TARGET_MS["page"])
            finally:
                conn.execute("SELECT graphile_worker.resume_queue('queue_0011')")

            for job_id, what in ((self.n // 2 + 50, "permanently failed"), (self.n // 2 + 2, "scheduled, in a queue")):
                times, res = self.timed(conn, "SELECT * FROM graphile_worker.job_detail(%s)", [job_id], runs)
                self.record("detail", f"job_detail ({what})", times, len(res), TARGET_MS["detail"])

            for pause, resume, name in (
                ("pause_queue", "resume_queue", "queue_0013"),
                ("pause_task", "resume_task", "task_0013"),
            ):
                for fn in (pause, resume):
                    times = []
                    for _ in range(runs + 1):
                        if fn == resume:
                            conn.execute(f"SELECT graphile_worker.{pause}(%s)", [name])
                        started = time.perf_counter()
                        conn.execute(f"SELECT graphile_worker.{fn}(%s)", [name])
                        times.append((time.perf_counter() - started) * 1000)
                        if fn == pause:
                            conn.execute(f"SELECT graphile_worker.{resume}(%s)", [name])
                    self.record("pause", f"{fn}", times[1:], 1, TARGET_MS["pause"])

    # -- hot path -----------------------------------------------------------

    ADD_JOBS_SQL = (
        "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY("
        " SELECT ROW('hot_task', json_build_object('g', g),"
        "  CASE WHEN g %% 10 = 0 THEN 'hot_q_' || (g %% 1000) END,"
        "  NULL, NULL, CASE WHEN %s THEN 'hot_key_' || g END, NULL, NULL)::graphile_worker.job_spec"
        " FROM generate_series(1, %s) AS g))"
    )

    def enqueue_sample(self, dsn: str, what: str) -> float:
        with psycopg.connect(dsn, autocommit=True) as maint:
            maint.execute("VACUUM graphile_worker._private_jobs, graphile_worker._private_job_queues")
        with psycopg.connect(dsn) as conn:
            started = time.perf_counter()
            if what.startswith("add_jobs"):
                count = 100_000
                conn.execute(self.ADD_JOBS_SQL, [what.endswith("keyed"), count])
            else:
                count = self.args.single_adds
                keyed = what.endswith("keyed")
                for g in range(count):
                    conn.execute(
                        "SELECT graphile_worker.add_job('hot_task', json_build_object('s', %s), job_key => %s)",
                        [g, f"hot_single_{g}" if keyed else None],
                    )
            elapsed = time.perf_counter() - started
            conn.rollback()
        return count / elapsed

    def cycle_sample(self, dsn: str) -> float:
        total, workers, fetch_size = self.args.cycle_jobs, self.args.workers, 10
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM graphile_worker._private_jobs, graphile_worker._private_job_queues")
            conn.execute(self.ADD_JOBS_SQL, [False, total])
            conn.execute("ANALYZE graphile_worker._private_jobs")
        return drain_with_workers(dsn, total, workers, fetch_size, prefix="ui-bench")

    def run_hot_path(self) -> None:
        order: list[str] = []
        for r in range(self.args.hot_rounds):
            order += ["new", "base"] if r % 2 == 0 else ["base", "new"]
        dsns = {"new": self.dsn_new, "base": self.dsn_base}
        for metric in ("add_jobs", "add_jobs keyed", "add_job", "add_job keyed", "enqueue then drain"):
            samples: dict[str, list[float]] = {"new": [], "base": []}
            for variant in order:
                if metric == "enqueue then drain":
                    samples[variant].append(self.cycle_sample(dsns[variant]))
                else:
                    samples[variant].append(self.enqueue_sample(dsns[variant], metric))
            med = {v: statistics.median(s) for v, s in samples.items()}
            ratio = med["new"] / med["base"]
            self.results["hot_path"][metric] = {
                "jobs_per_s_median": {v: round(m, 1) for v, m in med.items()},
                "runs": {v: [round(x, 1) for x in s] for v, s in samples.items()},
                "ratio_new_over_base": round(ratio, 3),
            }
            log(f"  hot path {metric}: new {med['new']:.0f}/s, v{self.baseline} {med['base']:.0f}/s, ratio {ratio:.3f}")

    # -- report -------------------------------------------------------------

    def table(self) -> str:
        lines = [f"UI calls at {self.n:,} jobs (median of {self.args.runs} runs)", ""]
        lines.append(f"{'call':58} {'median ms':>10} {'rows':>6} {'target':>7}  met")
        for group, calls in self.results["ui"].items():
            for label, r in calls.items():
                lines.append(
                    f"{group + ' / ' + label:58} {r['median_ms']:>10.2f} {r['rows']!s:>6} {r['target_ms']:>7}"
                    f"  {'yes' if r['met'] else 'NO'}"
                )
        lines += [
            "",
            f"hot path, newest / version {self.baseline} on the same rows ({self.args.hot_rounds} rounds each)",
            "",
        ]
        for metric, r in self.results["hot_path"].items():
            m = r["jobs_per_s_median"]
            lines.append(
                f"{metric:24} new {m['new']:>10.0f}/s  v{self.baseline} {m['base']:>10.0f}/s"
                f"  ratio {r['ratio_new_over_base']:.3f}"
            )
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__, "keep the databases (the loaded one is kept anyway for --reuse)", option=True)
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--reuse", action="store_true", help="reuse gw_ui_<jobs> if it holds that many jobs")
    p.add_argument("--hot-rounds", type=int, default=3)
    p.add_argument("--baseline", type=int, default=11, help="schema version the hot path is compared with")
    p.add_argument("--single-adds", type=int, default=2000)
    p.add_argument("--cycle-jobs", type=int, default=20000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--skip-hot-path", action="store_true")
    p.add_argument("--skip-ui", action="store_true", help="measure only the hot path")
    args = p.parse_args(argv)
    bench = UIBench(args)
    bench.setup()
    if not args.skip_ui:
        bench.run_ui()
    if not args.skip_hot_path:
        bench.copies()
        bench.run_hot_path()
    if not args.keep:
        with psycopg.connect(args.server, autocommit=True) as conn:
            for name in (bench.db_base, bench.db_new):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    path = write_json(f"ui-{args.jobs}.json", bench.results, out_dir())
    print(bench.table())
    log(f"every run in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
