// The queue manager (queue/): a per-user cap in each quota row (like Slurm's per-user
// limits), and what the job records need to say why a job waits.
export const sql = `
ALTER TABLE queue_limits ADD COLUMN per_user_max integer NOT NULL DEFAULT 0 CHECK (per_user_max >= 0);

ALTER TABLE jobs ADD COLUMN waiting_for text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN pods_seen integer NOT NULL DEFAULT 0;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
`;
