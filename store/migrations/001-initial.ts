// Queues and their GPU quotas, the admission audit, and job records for the queue manager.
// Runs with search_path set to sluice's schema, so names are unqualified.
export const sql = `
CREATE TABLE queues (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(name) <= 63),
  parent      text NULL REFERENCES queues(name) ON DELETE RESTRICT,
  cohort      text NULL,
  open        boolean NOT NULL DEFAULT true,
  weight      double precision NOT NULL DEFAULT 1 CHECK (weight > 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (parent IS NULL OR parent <> name)
);

-- One row per (queue, GPU resource, model); model '' = any model. No rows = no guaranteed
-- quota and no per-job limit.
CREATE TABLE queue_limits (
  queue            text NOT NULL REFERENCES queues(name) ON DELETE CASCADE,
  resource         text NOT NULL,
  model            text NOT NULL DEFAULT '',
  guaranteed       integer NOT NULL DEFAULT 0 CHECK (guaranteed >= 0),
  best_effort_cap  integer NOT NULL DEFAULT 0 CHECK (best_effort_cap >= 0),
  per_job_max      integer NOT NULL DEFAULT 0 CHECK (per_job_max >= 0),
  PRIMARY KEY (queue, resource, model)
);

CREATE TABLE admission_decisions (
  id           bigserial PRIMARY KEY,
  decided_at   timestamptz NOT NULL DEFAULT now(),
  request_uid  text NOT NULL,
  operation    text NOT NULL,
  namespace    text NOT NULL,
  pod          text NOT NULL,
  username     text NOT NULL,
  allowed      boolean NOT NULL,
  code         integer NOT NULL,
  reason       text NOT NULL,
  dry_run      boolean NOT NULL
);
CREATE INDEX admission_decisions_decided_at ON admission_decisions (decided_at);
CREATE INDEX admission_decisions_pod ON admission_decisions (namespace, pod);

-- Job records for the queue manager (queue/). A job is the set of pods sharing
-- sluice.io/job; gang_size pods of gpus_per_pod GPUs each. queue is not a foreign key:
-- history outlives a deleted queue.
CREATE TABLE jobs (
  id            bigserial PRIMARY KEY,
  namespace     text NOT NULL,
  name          text NOT NULL,
  queue         text NOT NULL,
  qos           text NOT NULL CHECK (qos IN ('guaranteed', 'best-effort')),
  username      text NOT NULL DEFAULT '',
  resource      text NOT NULL DEFAULT 'nvidia.com/gpu',
  model         text NOT NULL DEFAULT '',
  gang_size     integer NOT NULL DEFAULT 1 CHECK (gang_size >= 1),
  gpus_per_pod  integer NOT NULL DEFAULT 0 CHECK (gpus_per_pod >= 0),
  gpus          integer NOT NULL DEFAULT 0 CHECK (gpus >= 0),
  state         text NOT NULL DEFAULT 'queued',
  reason        text NOT NULL DEFAULT '',
  submitted_at  timestamptz NOT NULL DEFAULT now(),
  released_at   timestamptz NULL,
  finished_at   timestamptz NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- At most one unfinished record per job; finished ones are history.
CREATE UNIQUE INDEX jobs_active ON jobs (namespace, name) WHERE finished_at IS NULL;
CREATE INDEX jobs_queue_state ON jobs (queue, state);

-- Every change to a queue or its limits notifies '<schema>.queue_changed' with the
-- queue name, so every replica drops that queue from its cache.
CREATE FUNCTION notify_queue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  channel text := TG_TABLE_SCHEMA || '.queue_changed';
BEGIN
  IF TG_TABLE_NAME = 'queues' THEN
    IF TG_OP <> 'INSERT' THEN PERFORM pg_notify(channel, OLD.name); END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.name <> OLD.name) THEN PERFORM pg_notify(channel, NEW.name); END IF;
  ELSE
    IF TG_OP <> 'INSERT' THEN PERFORM pg_notify(channel, OLD.queue); END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.queue <> OLD.queue) THEN PERFORM pg_notify(channel, NEW.queue); END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER queues_changed AFTER INSERT OR UPDATE OR DELETE ON queues
  FOR EACH ROW EXECUTE FUNCTION notify_queue_changed();
CREATE TRIGGER queue_limits_changed AFTER INSERT OR UPDATE OR DELETE ON queue_limits
  FOR EACH ROW EXECUTE FUNCTION notify_queue_changed();

-- The queue pods land in when neither they nor their namespace name one.
INSERT INTO queues (name) VALUES ('default') ON CONFLICT DO NOTHING;
`;
