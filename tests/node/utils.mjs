// graphile-worker's WorkerUtils on our schema, one call per line, for tests/test_graphile_worker_node.py.
//
//   node tests/node/utils.mjs '{"connectionString": "..."}'
//
// Prints {"ready": true} once makeWorkerUtils() has resolved. Then each stdin line is a JSON
// array [method, ...args], e.g. ["addJob", "t", {"n": 1}, {"queueName": "q"}]; the answer is one
// line {"result": ...} or {"error": {code, message}}. Any "runAt" in the arguments becomes a Date.
// Besides the WorkerUtils methods: ["withPgClient", sql, params] runs sql on a client of withPgClient and gives
// its rows, and ["quickAddJob", identifier, payload, spec] calls quickAddJob with its own pool.
// Ends when stdin closes, releasing the utils (their pool) unless a call already did.
import { createInterface } from "node:readline";
import { gw, logger, say, describe } from "./gw.mjs";

const options = JSON.parse(process.argv[2] ?? "{}");
const revive = (key, value) => (key === "runAt" && typeof value === "string" ? new Date(value) : value);
const utils = await gw.makeWorkerUtils({ connectionString: options.connectionString, logger });
say({ ready: true });

let released = false;
async function call(method, args) {
  if (method === "withPgClient") {
    const [text, values] = args;
    return utils.withPgClient(async (client) => (await client.query(text, values ?? [])).rows);
  }
  if (method === "quickAddJob") return gw.quickAddJob({ connectionString: options.connectionString, logger }, ...args);
  if (method === "release") released = true;
  return utils[method](...args);
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const [method, ...args] = JSON.parse(line, revive);
  try {
    say({ result: (await call(method, args)) ?? null });
  } catch (e) {
    say({ error: describe(e) });
  }
}
if (!released) await utils.release();
