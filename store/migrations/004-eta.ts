// Estimated start times (queue/duration.ts, queue/forecast.ts): a queue's cap on a job's
// declared duration, and the job kind (the pod owner's kind) that finished-job history is
// grouped by, with an index for that read.
export const sql = `
ALTER TABLE queues ADD COLUMN max_duration_seconds integer NULL CHECK (max_duration_seconds IS NULL OR max_duration_seconds > 0);

ALTER TABLE jobs ADD COLUMN kind text NOT NULL DEFAULT '';
CREATE INDEX jobs_history ON jobs (queue, username, kind, finished_at DESC) WHERE state = 'finished';
`;
