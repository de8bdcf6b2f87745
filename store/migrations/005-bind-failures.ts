// Failed binds (store/bind-failures.ts): one row per pod, node and cause, with how often
// and when it last failed, so a pod kube-scheduler retries every few seconds stays one row.
export const sql = `
CREATE TABLE bind_failures (
  id          bigserial PRIMARY KEY,
  first_at    timestamptz NOT NULL,
  last_at     timestamptz NOT NULL,
  namespace   text NOT NULL,
  pod         text NOT NULL,
  pod_uid     text NOT NULL,
  job         text NOT NULL DEFAULT '',
  queue       text NOT NULL DEFAULT '',
  node        text NOT NULL,
  -- rejected (sluice's re-check refused it), node_gone, api_error, allocation_failed (HAMi's device plugin)
  cause       text NOT NULL CHECK (cause IN ('rejected', 'node_gone', 'api_error', 'allocation_failed')),
  reason      text NOT NULL,
  attempts    integer NOT NULL CHECK (attempts > 0),
  UNIQUE (pod_uid, node, cause)
);
CREATE INDEX bind_failures_last_at ON bind_failures (last_at);
`;
