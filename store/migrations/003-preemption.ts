// Best-effort preemption (scheduler/preempt.ts): one row per preemption the extender
// decided, and on the victims' job records who preempted them.
export const sql = `
CREATE TABLE preemptions (
  id                   bigserial PRIMARY KEY,
  decided_at           timestamptz NOT NULL DEFAULT now(),
  preemptor_namespace  text NOT NULL,
  preemptor_pod        text NOT NULL,
  preemptor_uid        text NOT NULL,
  preemptor_job        text NOT NULL DEFAULT '',
  queue                text NOT NULL,
  node                 text NOT NULL,
  resource             text NOT NULL,
  gpus_freed           integer NOT NULL CHECK (gpus_freed >= 0),
  gpus_taken_back      integer NOT NULL CHECK (gpus_taken_back >= 0),
  -- [{namespace, pod, uid, job, queue, gpus}]
  victims              jsonb NOT NULL,
  reason               text NOT NULL
);
CREATE INDEX preemptions_decided_at ON preemptions (decided_at);
CREATE INDEX preemptions_preemptor ON preemptions (preemptor_namespace, preemptor_pod);

-- "namespace/pod (job J, queue Q)" of the guaranteed pod that took the job's GPUs back.
ALTER TABLE jobs ADD COLUMN preempted_by text NULL;
ALTER TABLE jobs ADD COLUMN preempted_at timestamptz NULL;
`;
