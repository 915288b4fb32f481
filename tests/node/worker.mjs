// graphile-worker's run() on our schema, for tests/test_graphile_worker_node.py.
//
//   node tests/node/worker.mjs '{"connectionString": "...", "tasks": {"t": "record"}, ...}'
//
// Options: tasks maps each task identifier to what it does:
//   record  insert one row into public.node_runs (job id, task, payload, attempt, start, end, worker name)
//   throw   record, then throw, so that the job fails
//   slow    like record, sleeping sleepMs (default 50) between start and end
// and concurrency, pollInterval (default 100 ms), forbiddenFlags, crontab (text), name (the
// node_runs.worker value, default "node"), maxSeconds (a safety stop, default 60).
// Prints {"ready": true} once run() has started; then stops when a line "stop" arrives on stdin,
// or stdin closes, and prints {"stopped": true}. If run() fails, prints {"error": {code, message}}
// and exits with code 3.
import { createInterface } from "node:readline";
import { gw, logger, say, describe } from "./gw.mjs";

const options = JSON.parse(process.argv[2] ?? "{}");
const name = options.name ?? "node";
const sleepMs = options.sleepMs ?? 50;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function task(kind) {
  return async (payload, helpers) => {
    const started = new Date();
    if (kind === "slow") await sleep(sleepMs);
    await helpers.query(
      "insert into public.node_runs (job_id, task, payload, attempt, started_at, finished_at, worker)" +
        " values ($1, $2, $3, $4, $5, $6, $7)",
      [helpers.job.id, helpers.job.task_identifier, JSON.stringify(payload), helpers.job.attempts, started, new Date(), name],
    );
    if (kind === "throw") throw new Error(`${helpers.job.task_identifier} failed on purpose`);
  };
}

const taskList = Object.fromEntries(Object.entries(options.tasks ?? {}).map(([id, kind]) => [id, task(kind)]));

let runner;
try {
  runner = await gw.run({
    connectionString: options.connectionString,
    concurrency: options.concurrency ?? 1,
    pollInterval: options.pollInterval ?? 100,
    forbiddenFlags: options.forbiddenFlags,
    crontab: options.crontab ?? "",
    taskList,
    noHandleSignals: true,
    logger,
  });
} catch (e) {
  say({ error: describe(e) });
  process.exit(3);
}
say({ ready: true });

const safety = setTimeout(() => {
  console.error(`worker.mjs: still running after ${options.maxSeconds ?? 60} s, stopping`);
  process.exit(4);
}, (options.maxSeconds ?? 60) * 1000);

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "stop") break;
}
await runner.stop();
clearTimeout(safety);
say({ stopped: true });
