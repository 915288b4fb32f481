// Loads graphile-worker and pg from the npm prefix `make node` fills (GW_NODE_PREFIX, default
// $GW_BUILD/node, default build/node). ESM ignores NODE_PATH, so we import by absolute path.
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const prefix = resolve(process.env.GW_NODE_PREFIX ?? join(process.env.GW_BUILD ?? join(root, "build"), "node"));

export const gw = await import(pathToFileURL(join(prefix, "node_modules/graphile-worker/dist/index.js")).href);
export const pg = createRequire(join(prefix, "package.json"))("pg");

// Warnings and errors go to stderr (the tests show them when something fails); the rest is dropped.
export const logger = new gw.Logger((scope) => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[${scope.label ?? "gw"}] ${level}: ${message}`);
});

// One JSON line on stdout: how the scripts answer the test.
export const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");

// The parts of a thrown error worth comparing (SQLSTATE first).
export const describe = (e) => ({ code: e?.code ?? null, message: String(e?.message ?? e) });
