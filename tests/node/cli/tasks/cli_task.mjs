// A task file for graphile-worker's CLI (run with this directory's parent as the working
// directory): records each run in public.node_runs, as tests/node/worker.mjs's "record" does.
export default async (payload, helpers) => {
  const now = new Date();
  await helpers.query(
    "insert into public.node_runs (job_id, task, payload, attempt, started_at, finished_at, worker)" +
      " values ($1, $2, $3, $4, $5, $5, 'cli')",
    [helpers.job.id, helpers.job.task_identifier, JSON.stringify(payload), helpers.job.attempts, now],
  );
};
