// Drives graphile-worker (the npm package, the reference of bench/compare.py) from a line protocol.
//
//   GW_NODE_PREFIX=build/node node bench/reference_worker.mjs '{"connectionString": "...", ...}'
//
// The single argument is JSON: connectionString; concurrency (default 1); localQueueSize
// (-1, the default: each worker fetches its own job); recordStarts (remember when each job,
// identified by payload.id, started, on the monotonic clock Python's time.monotonic_ns reads).
// Everything slow (loading modules, opening the pool's connections, the migration check)
// happens before "ready" is printed. Then, on stdin:
//   go            start run() with a no-op task "noop"; prints "started <ms run() took>"
//   exit          stop the runner, print one JSON line {"starts": {...}} and exit
//   cleanup TASK  time makeWorkerUtils().cleanup({tasks: [TASK]}); prints "cleanup <ms>"
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const options = JSON.parse(process.argv[2] ?? "{}");
const prefix = process.env.GW_NODE_PREFIX && resolve(process.env.GW_NODE_PREFIX);
if (!prefix) throw new Error("GW_NODE_PREFIX must name the npm prefix holding graphile-worker");
const gw = await import(pathToFileURL(join(prefix, "node_modules/graphile-worker/dist/index.js")).href);
const pg = createRequire(join(prefix, "package.json"))("pg");

const concurrency = options.concurrency ?? 1;
const localQueueSize = options.localQueueSize ?? -1;
const nowNs = () => process.hrtime.bigint();
const quiet = new gw.Logger(() => (level, message) => {
  if (level === "error") console.error(message);
});

// One pool for everything, sized so that no worker waits for a connection, opened up front.
const pgPool = new pg.Pool({ connectionString: options.connectionString, max: concurrency + 2 });
pgPool.on("error", (e) => console.error(`pool error: ${e}`));
pgPool.on("connect", (client) => client.on("error", (e) => console.error(`client error: ${e}`)));
const clients = await Promise.all(Array.from({ length: concurrency + 2 }, () => pgPool.connect()));
clients.forEach((c) => c.release());
await gw.runMigrations({ pgPool, logger: quiet });

const starts = {};
const taskList = {
  noop: async (payload) => {
    if (options.recordStarts) starts[payload.id] = nowNs().toString();
  },
};
let runner = null;
let utils = null;

const say = (line) => process.stdout.write(line + "\n");
say("ready");
for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(/\s+/);
  if (command === "go") {
    const t0 = nowNs();
    runner = await gw.run({
      pgPool,
      concurrency,
      taskList,
      noHandleSignals: true,
      logger: quiet,
      preset: { worker: { localQueue: { size: localQueueSize } } },
    });
    say(`started ${Number(nowNs() - t0) / 1e6}`);
  } else if (command === "cleanup") {
    utils ??= await gw.makeWorkerUtils({ pgPool, logger: quiet });
    const t0 = nowNs();
    await utils.cleanup({ tasks: [arg] });
    say(`cleanup ${Number(nowNs() - t0) / 1e6}`);
  } else if (command === "exit") {
    break;
  }
}
if (runner) await runner.stop();
if (utils) await utils.release();
await pgPool.end();
say(JSON.stringify({ starts }));
